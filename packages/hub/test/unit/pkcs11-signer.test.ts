/**
 * The hub CA signer in a PKCS#11 token (ADR 0028) against a real SoftHSM2: the signer contract
 * suite, key attributes, export refused, planted extractable keys and bad URIs refused.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pkcs11js from 'pkcs11js';
import { FleetkeyError } from '@fleetkey/protocol';
import { Pkcs11Signer, parseSignerUri } from '../../src/ca/pkcs11-signer.js';
import { runSignerContract } from './signer.contract.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const PIN = '5150-hub-ca';

function run(command: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command}: ${err}`))));
  });
}

const dir = await mkdtemp(join(tmpdir(), 'fleetkey-hub-softhsm-'));
after(() => rm(dir, { recursive: true, force: true }));
await writeFile(join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
await run('/usr/bin/softhsm2-util', ['--init-token', '--free', '--label', 'hub-ca', '--so-pin', '11112222', '--pin', PIN]);
const pinFile = join(dir, 'pin');
await writeFile(pinFile, PIN, { mode: 0o600 });
const uri = `pkcs11:token=hub-ca?module-path=${SOFTHSM_MODULE}&pin-source=file:${pinFile}`;
const isConfigInvalid = (err: unknown): boolean => err instanceof FleetkeyError && err.code === 'CONFIG_INVALID';

const made = new Map<string, Pkcs11Signer>();
runSignerContract('Pkcs11Signer (SoftHSM2)', ['p256', 'p384', 'p521'], async (algorithm) => {
  const signer = made.get(algorithm) ?? await Pkcs11Signer.generate(uri, 'contract', algorithm);
  made.set(algorithm, signer);
  return signer;
});
// Ed25519 and RSA: not offered for a pkcs11 CA signer (ECDSA only, see the module header); refusal below.

runSignerContract('Pkcs11Signer reopened by label', ['p256'], async (algorithm) => {
  const first = await Pkcs11Signer.generate(uri, 'reopen', algorithm);
  const again = await Pkcs11Signer.open(uri, first.label);
  assert.ok(again.spki.equals(first.spki));
  return again;
});

/** A session on the same SoftHSM2 token, for the attacks. */
function tokenSession(): { p11: pkcs11js.PKCS11; session: Buffer } {
  const p11 = new pkcs11js.PKCS11();
  p11.load(SOFTHSM_MODULE);
  try {
    p11.C_Initialize();
  } catch (err) {
    assert.match((err as Error).message, /ALREADY_INITIALIZED/);
  }
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === 'hub-ca');
  assert.ok(slot !== undefined);
  return { p11, session: p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION) };
}

test('CA key export from the token is refused: CKA_VALUE is sensitive, the key is never extractable', async () => {
  const signer = await Pkcs11Signer.generate(uri, 'export', 'p256');
  const { p11, session } = tokenSession();
  try {
    p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: signer.label }, { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }]);
    const [key] = p11.C_FindObjects(session, 1);
    p11.C_FindObjectsFinal(session);
    assert.ok(key !== undefined);
    assert.throws(() => p11.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }]), /CKR_ATTRIBUTE_SENSITIVE/);
    assert.throws(() => p11.C_SetAttributeValue(session, key, [{ type: pkcs11js.CKA_EXTRACTABLE, value: true }]), /CKR_/);
    const [never] = p11.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_NEVER_EXTRACTABLE }]);
    assert.equal((never?.value as Buffer)[0], 1);
  } finally {
    p11.C_CloseSession(session);
  }
  assert.ok(await signer.sign(Buffer.from('still signs')), 'the attempt changed nothing');
});

test('planted CA key: an extractable key under a fleetkey label is refused on open', async () => {
  const { p11, session } = tokenSession();
  const label = 'fleetkey-planted-0123456789abcdef';
  try {
    const common = [{ type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_LABEL, value: label }];
    p11.C_GenerateKeyPair(session, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
      [...common, { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }, { type: pkcs11js.CKA_VERIFY, value: true }],
      [...common, { type: pkcs11js.CKA_PRIVATE, value: true }, { type: pkcs11js.CKA_SENSITIVE, value: false }, { type: pkcs11js.CKA_EXTRACTABLE, value: true }, { type: pkcs11js.CKA_SIGN, value: true }]);
  } finally {
    p11.C_CloseSession(session);
  }
  await assert.rejects(Pkcs11Signer.open(uri, label), isConfigInvalid);
});

test('CA signer URIs: pin-value, relative paths, unknown attributes and Ed25519 keys are refused', async () => {
  for (const bad of [
    `pkcs11:token=hub-ca?module-path=${SOFTHSM_MODULE}&pin-value=${PIN}`,
    `pkcs11:token=hub-ca?module-path=softhsm.so&pin-source=file:${pinFile}`,
    `pkcs11:token=hub-ca;object=x?module-path=${SOFTHSM_MODULE}&pin-source=file:${pinFile}`,
    `pkcs11:token=hub-ca?module-path=${SOFTHSM_MODULE}&pin-source=file:pin`,
  ]) {
    assert.throws(() => parseSignerUri(bad), isConfigInvalid, bad);
  }
  await assert.rejects(Pkcs11Signer.generate(uri, 'ed', 'ed25519'), isConfigInvalid);
  await assert.rejects(Pkcs11Signer.open(uri, 'fleetkey-missing-00000000'), isConfigInvalid);
});

test('config: caSigner is software or a pkcs11 URI, and a pkcs11 CA signer refuses Ed25519 CA keys', async () => {
  const { loadConfig } = await import('../../src/config/load.js');
  assert.equal(loadConfig({}, {}).caSigner, 'software');
  assert.equal(loadConfig({ 'ca-signer': uri }, {}).caSigner, uri);
  assert.throws(() => loadConfig({ 'ca-signer': 'hsm' }, {}), isConfigInvalid);
  assert.throws(() => loadConfig({ 'ca-signer': uri }, { FLEETKEY_ROOT_KEY_ALGORITHM: 'ed25519' }), isConfigInvalid);
});
