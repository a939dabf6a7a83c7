/**
 * Secure-element attestation (ADR 0027) with a SoftHSM2-resident factory key (the `pkcs11` store)
 * whose factory certificate an openssl "vendor CA" issued; the chip signs the hub's nonce with the
 * TLS 1.3 channel binding. The pristine evidence enrolls an `se-attested` device for the factory
 * key; one mutated piece of evidence per test is refused with nothing recorded.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { buildCsr, FleetkeyError } from '@fleetkey/protocol';
import { AttestHub, enrollWithSeAttestation, Pkcs11KeyStore, PinSet, type KeyHandle } from '@fleetkey/device';
import { loadConfig, openAdminContext, startHub, type RunningHub } from '@fleetkey/hub';
import { apiCall } from '../helpers/api.js';
import { cliTokens, type CliTokens } from '../helpers/softhsm.js';
import { runCli } from '../helpers/cli.js';
import { run } from '../helpers/swtpm-ek.js';

let dir: string;
let hub: RunningHub;
let tokens: CliTokens;
let ownerToken: string;
let store: Pkcs11KeyStore;
let factoryKey: KeyHandle;
let deviceCertPem: string;
let strangerCertPem: string;
let otpauthUri: string;

const api = async (method: string, path: string, body?: unknown, token = ownerToken): Promise<{ status: number; body: any }> =>
  apiCall(hub.url, hub.rootCertPem, method, path, body, token);
const SE_CONTEXT = Buffer.from('FLEETKEY-SE-ATTEST-V1\0', 'ascii');

/** An openssl vendor CA (P-256, CA:TRUE) that certifies `key` as a factory device certificate. */
async function vendorIssue(name: string, key: KeyHandle): Promise<{ caPem: string; devicePem: string }> {
  const work = join(dir, name);
  await run('/usr/bin/mkdir', ['-p', work]);
  await run('/usr/bin/openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(work, 'ca.key'), '-out', join(work, 'ca.pem'),
    '-subj', `/CN=${name} SE vendor root`, '-days', '3650', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const csr = await buildCsr({ spki: await key.publicKeySpki(), subject: [['CN', 'se-chip-0001']], algorithm: key.algorithm, sign: (d) => key.sign(d) });
  await writeFile(join(work, 'chip.csr'), csr);
  await writeFile(join(work, 'ext.cnf'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n');
  await run('/usr/bin/openssl', ['x509', '-req', '-inform', 'DER', '-in', join(work, 'chip.csr'), '-CA', join(work, 'ca.pem'), '-CAkey', join(work, 'ca.key'),
    '-CAcreateserial', '-days', '3650', '-extfile', join(work, 'ext.cnf'), '-out', join(work, 'chip.pem')]);
  return { caPem: await readFile(join(work, 'ca.pem'), 'utf8'), devicePem: await readFile(join(work, 'chip.pem'), 'utf8') };
}

before(async () => {
  tokens = await cliTokens(['se-chip']);
  dir = mkdtempSync(join(tmpdir(), 'fleetkey-attest-se-'));
  store = new Pkcs11KeyStore({ uri: tokens.fileUri('se-chip') });
  factoryKey = await store.create('factory', 'p256');
  const vendor = await vendorIssue('acme', factoryKey);
  deviceCertPem = vendor.devicePem;
  strangerCertPem = (await vendorIssue('stranger', factoryKey)).devicePem;
  hub = await startHub({ config: loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, {}), logger: pino({ level: 'silent' }) });
  const admin = await openAdminContext(hub.config);
  const created = await admin.createOrganisationWithOwner({ orgName: 'Elements', email: 'o@se.example', password: 'se attestation password' });
  await admin.close();
  otpauthUri = created.otpauthUri;
  const session = await api('POST', '/api/v1/sessions', { email: 'o@se.example', password: 'se attestation password', totp: OTPAuth.URI.parse(created.otpauthUri).generate() }, '');
  ownerToken = session.body.token as string;
  assert.equal((await api('POST', '/api/v1/attestation/vendor-roots', { kind: 'se', pem: vendor.caPem })).status, 201);
});
after(async () => {
  await hub.close();
  await rm(dir, { recursive: true, force: true });
  await rm(tokens.dir, { recursive: true, force: true });
});

async function claimToken(maxUses = 1): Promise<string> {
  const claim = await api('POST', '/api/v1/claim-tokens', { maxUses });
  assert.equal(claim.status, 201);
  return claim.body.token as string;
}

async function snapshot(): Promise<{ devices: number; tokenUses: number }> {
  const devices = (await api('GET', '/api/v1/devices?limit=1000')).body.items as unknown[];
  const claims = (await api('GET', '/api/v1/claim-tokens')).body.items as { uses: number }[];
  return { devices: devices.length, tokenUses: claims.reduce((n, t) => n + t.uses, 0) };
}

async function lastReason(): Promise<string> {
  const last = (await hub.store.audit.list({ limit: 100000 })).filter((r) => r.type === 'attestation.se' && r.result === 'failure').at(-1);
  return String(last?.details?.reason ?? '');
}

async function refused(promise: Promise<unknown>, reason: RegExp, before: { devices: number; tokenUses: number }): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof FleetkeyError && err.code === 'ATTESTATION_FAILED');
  assert.match(await lastReason(), reason);
  assert.deepEqual(await snapshot(), before, 'nothing recorded');
}

/** The device side by hand; `relay`: the chip signs connection X's binding, the answer goes on Y. */
async function seExchange(token: string, certPem: string, relay = false): Promise<Record<string, unknown>> {
  const client = new AttestHub({ hubUrl: hub.url, pins: PinSet.parse(hub.pin), token });
  const challenge = await client.post('se/challenge', { deviceCertificate: new X509Certificate(certPem).raw.toString('base64') });
  const [signOn, sendOn] = relay ? [await client.connect(), await client.connect()] : await client.connect().then((c) => [c, c]);
  const signature = await factoryKey.sign(Buffer.concat([SE_CONTEXT, Buffer.from(String(challenge.nonce), 'base64'), signOn!.binding]));
  const csr = await buildCsr({ spki: await factoryKey.publicKeySpki(), subject: [], algorithm: 'p256', sign: (d) => factoryKey.sign(d), challengePassword: sendOn!.binding.toString('base64') });
  const body = { challengeId: String(challenge.challengeId), csr: csr.toString('base64'), signature: signature.toString('base64') };
  if (relay) signOn!.close();
  return sendOn!.post('se/enroll', body);
}

test('pristine SE evidence enrolls an se-attested device for the factory key (SDK enrollWithSeAttestation)', async () => {
  const identity = await enrollWithSeAttestation({ hubUrl: hub.url, pin: hub.pin, token: await claimToken(), stateDir: join(dir, 'sdk'), keyStore: store, label: 'factory', deviceCertificate: deviceCertPem });
  const device = await api('GET', `/api/v1/devices/${identity.deviceId}`);
  assert.equal(device.body.keyProtection, 'se-attested');
  assert.equal(device.body.enrolledVia, 'se-attestation');
  assert.equal(identity.keyStore.label, 'factory', 'the operational certificate is for the factory key');
});

test('SE device certificate from an unregistered vendor is refused', async () => {
  const before = await snapshot();
  await refused(seExchange(await claimToken(), strangerCertPem), /chip certificate: no registered vendor root/, before);
});

test('SE signature over the channel binding of another TLS session is refused', async () => {
  const before = await snapshot();
  await refused(seExchange(await claimToken(), deviceCertPem, true), /does not verify|not bound to this TLS connection/, before);
});

test('replayed SE nonce: a second answer to one challenge is refused', async () => {
  const client = new AttestHub({ hubUrl: hub.url, pins: PinSet.parse(hub.pin), token: await claimToken(2) });
  const challenge = await client.post('se/challenge', { deviceCertificate: new X509Certificate(deviceCertPem).raw.toString('base64') });
  const answer = async (): Promise<Record<string, unknown>> => {
    const connection = await client.connect();
    const signature = await factoryKey.sign(Buffer.concat([SE_CONTEXT, Buffer.from(String(challenge.nonce), 'base64'), connection.binding]));
    const csr = await buildCsr({ spki: await factoryKey.publicKeySpki(), subject: [], algorithm: 'p256', sign: (d) => factoryKey.sign(d), challengePassword: connection.binding.toString('base64') });
    return connection.post('se/enroll', { challengeId: String(challenge.challengeId), csr: csr.toString('base64'), signature: signature.toString('base64') });
  };
  // The first, valid answer spends the challenge (the factory key is already enrolled by the pristine test).
  await assert.rejects(answer(), (err: unknown) => err instanceof FleetkeyError && err.code === 'KEY_ALREADY_ENROLLED');
  const before = await snapshot();
  await refused(answer(), /unknown, used or expired challenge/, before);
});

test('owned-chip list: a genuine chip of a registered vendor that the organisation does not own is refused', async () => {
  assert.equal((await api('POST', '/api/v1/attestation/owned-chips', { entries: [{ match: 'serial', value: '01' }] })).status, 201);
  const before = await snapshot();
  await refused(seExchange(await claimToken(), deviceCertPem), /not on the organisation's owned-chip list/, before);
});

test('CLI: fleetkey attestation roots/chips/policy manage the organisation\'s attestation trust', async () => {
  const sessionFile = join(dir, 'cli-session.json');
  // The next TOTP step: the step of the test's own login was accepted once already (RFC 6238 §5.2).
  const totp = OTPAuth.URI.parse(otpauthUri).generate({ timestamp: Date.now() + 30_000 });
  const login = await runCli(['login', '--hub', hub.url, '--pin', hub.pin, '--email', 'o@se.example', '--session-file', sessionFile, '--totp', totp], 'se attestation password\n');
  assert.equal(login.code, 0, login.stderr);
  const cli = (args: string[]) => runCli(['attestation', ...args, '--session-file', sessionFile, '--json']);
  const listed = await cli(['roots', 'list']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal(JSON.parse(listed.stdout).items.length, 1);
  const chip = new X509Certificate(deviceCertPem);
  const added = await cli(['chips', 'add', '--serial', chip.serialNumber]);
  assert.equal(JSON.parse(added.stdout).added, 1);
  // The chip is now on the list (by the serial as Node prints it): it enrolls again past the list check.
  await assert.rejects(seExchange(await claimToken(), deviceCertPem), (err: unknown) => err instanceof FleetkeyError && err.code === 'KEY_ALREADY_ENROLLED');
  const set = await cli(['policy', 'set', '--require-attestation', 'true']);
  assert.equal(JSON.parse(set.stdout).requireAttestation, true);
  assert.equal((await api('GET', '/api/v1/attestation/policy')).body.requireAttestation, true);
  const bad = await cli(['policy', 'set', '--require-attestation', 'maybe']);
  assert.equal(bad.code, 2, 'a bad value is VALIDATION_FAILED');
  assert.match(bad.stderr, /VALIDATION_FAILED/);
  await cli(['policy', 'set', '--require-attestation', 'false']);
});
