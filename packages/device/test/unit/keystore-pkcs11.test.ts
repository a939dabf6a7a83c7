/**
 * The pkcs11 key store against a real SoftHSM2 token (ADR 0024): the contract suite, the key
 * attributes the token reports, and the attacks a hardware store must refuse.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import pkcs11js from 'pkcs11js';
import { FleetkeyError } from '@fleetkey/protocol';
import { CK } from '../../src/keystore/pkcs11/objects.js';
import { Pkcs11KeyStore } from '../../src/keystore/pkcs11/pkcs11-keystore.js';
import { openKeyStore, parseKeyStoreSpec } from '../../src/keystore/registry.js';
import { hasTlsKeyCapability } from '../../src/keystore/types.js';
import { ExportRefused, runKeyStoreContract } from './keystore.contract.js';
import { SOFTHSM_MODULE, softHsmTokens, USER_PIN } from '../helpers/softhsm.js';

const tokens = await softHsmTokens(['fleetkey', 'wrong-pin']);
const storeUri = tokens.uri('fleetkey');

/** A second application view of the same token, as an attacker with the PIN would have it. */
function rawSession(): { module: pkcs11js.PKCS11; session: Buffer } {
  const module = new pkcs11js.PKCS11();
  module.load(SOFTHSM_MODULE);
  try {
    module.C_Initialize();
  } catch (err) {
    if ((err as { code?: number }).code !== CK.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw err;
  }
  const slot = module.C_GetSlotList(true).find((s) => module.C_GetTokenInfo(s).label.trim() === 'fleetkey');
  assert.ok(slot !== undefined, 'token fleetkey present');
  const session = module.C_OpenSession(slot, CK.CKF_SERIAL_SESSION | CK.CKF_RW_SESSION);
  try {
    module.C_Login(session, CK.CKU_USER, USER_PIN);
  } catch (err) {
    if ((err as { code?: number }).code !== CK.CKR_USER_ALREADY_LOGGED_IN) throw err;
  }
  return { module, session };
}

function findPrivate(raw: { module: pkcs11js.PKCS11; session: Buffer }, label: string): Buffer {
  raw.module.C_FindObjectsInit(raw.session, [{ type: CK.CKA_LABEL, value: label }, { type: CK.CKA_CLASS, value: CK.CKO_PRIVATE_KEY }]);
  const [key] = raw.module.C_FindObjects(raw.session, 2);
  raw.module.C_FindObjectsFinal(raw.session);
  assert.ok(key !== undefined, `private key ${label} is on the token`);
  return key;
}

async function tryExport(_store: unknown, label: string): Promise<Buffer> {
  const raw = rawSession();
  const key = findPrivate(raw, label);
  try {
    const [value] = raw.module.C_GetAttributeValue(raw.session, key, [{ type: CK.CKA_VALUE }]);
    return value?.value as Buffer; // the token revealed the private scalar: the contract fails
  } catch (err) {
    if ((err as { code?: number }).code === CK.CKR_ATTRIBUTE_SENSITIVE) throw new ExportRefused('CKR_ATTRIBUTE_SENSITIVE');
    throw err;
  } finally {
    raw.module.C_CloseSession(raw.session);
  }
}

runKeyStoreContract('pkcs11 (SoftHSM2)', async () => new Pkcs11KeyStore({ uri: storeUri }), { tryExportPrivateKey: tryExport });

const isKeystoreError = (err: unknown): boolean => err instanceof FleetkeyError && err.code === 'KEYSTORE_ERROR';
const errorText = (err: unknown): string => {
  let text = '';
  for (let e: unknown = err; e instanceof Error; e = e.cause) text += `${e.message}\n`;
  return text;
};

test('keys are generated in the token as private, sensitive, never-extractable token objects', async () => {
  await new Pkcs11KeyStore({ uri: storeUri }).create('attrs-1', 'p384');
  const raw = rawSession();
  const key = findPrivate(raw, 'attrs-1');
  const types = [CK.CKA_TOKEN, CK.CKA_PRIVATE, CK.CKA_SENSITIVE, CK.CKA_EXTRACTABLE, CK.CKA_NEVER_EXTRACTABLE, CK.CKA_ALWAYS_SENSITIVE];
  const values = types.map((type) => raw.module.C_GetAttributeValue(raw.session, key, [{ type }])[0]?.value?.[0]);
  raw.module.C_CloseSession(raw.session);
  assert.deepEqual(values, [1, 1, 1, 0, 1, 1]);
});

test('key substitution: an extractable key planted under a label is refused on open', async () => {
  const raw = rawSession();
  const label = 'planted-1';
  const common = [{ type: CK.CKA_TOKEN, value: true }, { type: CK.CKA_LABEL, value: label }, { type: CK.CKA_ID, value: Buffer.from('planted') }];
  raw.module.C_GenerateKeyPair(raw.session, { mechanism: CK.CKM_EC_KEY_PAIR_GEN },
    [...common, { type: CK.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }, { type: CK.CKA_VERIFY, value: true }],
    [...common, { type: CK.CKA_PRIVATE, value: true }, { type: CK.CKA_SENSITIVE, value: false }, { type: CK.CKA_EXTRACTABLE, value: true }, { type: CK.CKA_SIGN, value: true }]);
  raw.module.C_CloseSession(raw.session);
  await assert.rejects(new Pkcs11KeyStore({ uri: storeUri }).open(label), (err: unknown) => isKeystoreError(err) && /extractable/.test(errorText(err)));
});

test('PIN guessing: a wrong PIN is KEYSTORE_ERROR (CKR_PIN_INCORRECT) and the error does not carry the PIN', async () => {
  const env = { FLEETKEY_TEST_PIN: 'not-the-pin-9911' };
  const uri = `pkcs11:token=wrong-pin?module-path=${SOFTHSM_MODULE}&pin-source=env:FLEETKEY_TEST_PIN`;
  const err = await new Pkcs11KeyStore({ uri, env }).create('never', 'p256').catch((e: unknown) => e);
  assert.ok(isKeystoreError(err));
  assert.match(errorText(err), /CKR_PIN_INCORRECT/);
  assert.doesNotMatch(errorText(err) + JSON.stringify(err), /not-the-pin-9911/);
});

test('the PIN may come from an environment variable named in the URI', async () => {
  const uri = `pkcs11:token=fleetkey?module-path=${SOFTHSM_MODULE}&pin-source=env:FK_PIN`;
  const store = new Pkcs11KeyStore({ uri, env: { FK_PIN: USER_PIN } });
  const key = await store.create('env-pin-1', 'p256');
  assert.equal((await store.open('env-pin-1')).algorithm, key.algorithm);
  await assert.rejects(new Pkcs11KeyStore({ uri, env: {} }).open('env-pin-1'), (e: unknown) => isKeystoreError(e) && /FK_PIN is not set/.test(errorText(e)));
});

test('a PIN file written with echo (trailing newline) is refused with a clear reason', async () => {
  const pinFile = join(tmpdir(), `fleetkey-pin-${process.pid}`);
  await writeFile(pinFile, `${USER_PIN}\n`, { mode: 0o600 });
  const store = new Pkcs11KeyStore({ uri: `pkcs11:token=wrong-pin?module-path=${SOFTHSM_MODULE}&pin-source=file:${pinFile}` });
  await assert.rejects(store.open('any'), (e: unknown) => isKeystoreError(e) && /line break/.test(errorText(e)));
});

test('TLS capability names the key for the pkcs11 engine, with pin-source for file PINs (no PIN in the identifier)', async () => {
  const store = new Pkcs11KeyStore({ uri: storeUri });
  const handle = await store.create('tls-1', 'p256');
  assert.ok(hasTlsKeyCapability(handle));
  const options = handle.tlsKeyOptions();
  assert.ok('privateKeyEngine' in options);
  assert.equal(options.privateKeyEngine, 'pkcs11');
  assert.equal(options.privateKeyIdentifier, `pkcs11:token=fleetkey;object=tls-1;type=private?pin-source=file:${tokens.pinFile}`);
  assert.doesNotMatch(options.privateKeyIdentifier + store.locator, new RegExp(USER_PIN));
});

test('the registry opens pkcs11 stores from their locator; --keystore specs are parsed strictly', async () => {
  const spec = parseKeyStoreSpec(storeUri);
  assert.equal(spec.kind, 'pkcs11');
  const store = openKeyStore(spec.kind, { stateDir: tmpdir(), locator: spec.locator });
  assert.equal(store.kind, 'pkcs11');
  assert.equal(store.locator, storeUri);
  await store.create('registry-1', 'p256');
  assert.throws(() => openKeyStore('pkcs11', { stateDir: tmpdir() }), isKeystoreError);
  assert.deepEqual(parseKeyStoreSpec('file'), { kind: 'file' });
  assert.deepEqual(parseKeyStoreSpec('tpm:swtpm:port=2321'), { kind: 'tpm', locator: 'swtpm:port=2321' });
  assert.throws(() => parseKeyStoreSpec('hsm'), isKeystoreError);
});
