/**
 * TPM attestation enrollment (ADR 0027) against a real swtpm manufactured with an EK certificate
 * (swtpm_setup --create-ek-cert; its local CA is the "vendor") and tpm2-tools 5.4, through the
 * real hub over TLS 1.3. The pristine evidence enrolls a `tpm-attested` device; each test below
 * mutates ONE piece of evidence and asserts ATTESTATION_FAILED (or ATTESTATION_REQUIRED), the
 * precise reason in the audit log, and that no device, certificate or token use was recorded.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { buildCsr, FleetkeyError } from '@fleetkey/protocol';
import { AttestHub, enroll, enrollWithTpmAttestation, PinSet, TpmAttester, TpmKeyHandle, TpmKeyStore, type AttestConnection } from '@fleetkey/device';
import { loadConfig, makeCredential, ekParametersOf, openAdminContext, parseTpm2bPublic, startHub, toolsCredentialFile, type RunningHub } from '@fleetkey/hub';
import { apiCall } from '../helpers/api.js';
import { runCli } from '../helpers/cli.js';
import { startEkSwtpm, type EkSwtpm } from '../helpers/swtpm-ek.js';

let dir: string;
let hub: RunningHub;
let tpm: EkSwtpm;
let otherVendor: EkSwtpm;
let ownerToken: string;
let keyStore: TpmKeyStore;

const api = async (method: string, path: string, body?: unknown, token = ownerToken): Promise<{ status: number; body: any }> =>
  apiCall(hub.url, hub.rootCertPem, method, path, body, token);
const der = (pem: string): Buffer => new X509Certificate(pem).raw;

before(async () => {
  [tpm, otherVendor] = await Promise.all([startEkSwtpm(), startEkSwtpm()]);
  dir = mkdtempSync(join(tmpdir(), 'fleetkey-attest-tpm-'));
  keyStore = new TpmKeyStore({ directory: join(dir, 'keys'), tcti: tpm.tcti });
  hub = await startHub({ config: loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, {}), logger: pino({ level: 'silent' }) });
  const admin = await openAdminContext(hub.config);
  const created = await admin.createOrganisationWithOwner({ orgName: 'Chips', email: 'o@chips.example', password: 'tpm attestation password' });
  await admin.close();
  const session = await api('POST', '/api/v1/sessions', { email: 'o@chips.example', password: 'tpm attestation password', totp: OTPAuth.URI.parse(created.otpauthUri).generate() }, '');
  ownerToken = session.body.token as string;
  const root = await api('POST', '/api/v1/attestation/vendor-roots', { kind: 'tpm', pem: tpm.vendorRootPem, label: 'swtpm local CA' });
  assert.equal(root.status, 201, JSON.stringify(root.body));
});
after(async () => {
  await hub.close();
  await Promise.all([tpm.stop(), otherVendor.stop()]);
  await rm(dir, { recursive: true, force: true });
});

async function claimToken(maxUses = 1): Promise<{ id: string; token: string }> {
  const claim = await api('POST', '/api/v1/claim-tokens', { maxUses });
  assert.equal(claim.status, 201, JSON.stringify(claim.body));
  return claim.body;
}

/** What must not change when evidence is refused. */
async function snapshot(): Promise<{ devices: number; tokenUses: number; certificates: number }> {
  const devices = (await api('GET', '/api/v1/devices?limit=1000')).body.items as { id: string }[];
  const tokens = (await api('GET', '/api/v1/claim-tokens')).body.items as { uses: number }[];
  let certificates = 0;
  for (const d of devices) certificates += (await hub.store.devices.certificates((await hub.store.devices.getAnyTenant(d.id))!.tenantId, d.id)).length;
  return { devices: devices.length, tokenUses: tokens.reduce((n, t) => n + t.uses, 0), certificates };
}

async function lastAttestationReason(): Promise<string> {
  const records = await hub.store.audit.list({ limit: 100000 });
  const last = records.filter((r) => r.type === 'attestation.tpm' && r.result === 'failure').at(-1);
  return String(last?.details?.reason ?? '');
}

interface Exchange {
  readonly hub: AttestHub;
  readonly attester: TpmAttester;
  readonly challenge: Record<string, unknown>;
  readonly activatedSecret: Buffer;
}

/** Steps 1–2 of the device side by hand: EK certificate, AK, challenge, activation. */
async function challengeAndActivate(token: string, ekCertificate?: Buffer, chip: EkSwtpm = tpm): Promise<Exchange> {
  const attester = await TpmAttester.open(chip.tcti);
  const client = new AttestHub({ hubUrl: hub.url, pins: PinSet.parse(hub.pin), token });
  const ek = ekCertificate ?? (await attester.ekCertificate());
  const akPublic = await attester.createAk();
  const issuer = chip === tpm ? tpm.issuerPem : otherVendor.issuerPem;
  const challenge = await client.post('tpm/challenge', { ekCertificate: ek.toString('base64'), ekChain: [der(issuer).toString('base64')], akPublic: akPublic.toString('base64') });
  const activatedSecret = await attester.activate(Buffer.from(String(challenge.credentialBlob), 'base64'), Buffer.from(String(challenge.encryptedSecret), 'base64'));
  return { hub: client, attester, challenge, activatedSecret };
}

async function boundCsr(key: TpmKeyHandle, connection: AttestConnection): Promise<Buffer> {
  return buildCsr({ spki: await key.publicKeySpki(), subject: [], algorithm: key.algorithm, sign: (d) => key.sign(d), challengePassword: connection.binding.toString('base64') });
}

/** Steps 3–4: certify a key, bind a CSR to a fresh connection; `mutate` changes one field. */
async function enrollBody(x: Exchange, connection: AttestConnection, mutate: (body: Record<string, string>) => Promise<void> | void = () => undefined) {
  const key = (await keyStore.create(`k${randomBytes(4).toString('hex')}`, 'p256')) as TpmKeyHandle;
  const certified = await x.attester.certify(key);
  const body: Record<string, string> = {
    challengeId: String(x.challenge.challengeId), csr: (await boundCsr(key, connection)).toString('base64'),
    activatedSecret: x.activatedSecret.toString('base64'), keyPublic: certified.keyPublic.toString('base64'),
    certifyInfo: certified.certifyInfo.toString('base64'), certifySignature: certified.certifySignature.toString('base64'),
  };
  await mutate(body);
  return body;
}

async function assertRefused(promise: Promise<unknown>, code: string, reason: RegExp | undefined, before: Awaited<ReturnType<typeof snapshot>>): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof FleetkeyError && err.code === code);
  if (reason !== undefined) assert.match(await lastAttestationReason(), reason);
  assert.deepEqual(await snapshot(), before, 'no device, certificate or token use was recorded');
}

test('unit: MakeCredential in node:crypto is activated by swtpm (tpm2_activatecredential) for the AK name', async () => {
  const attester = await TpmAttester.open(tpm.tcti);
  try {
    const ak = parseTpm2bPublic(await attester.createAk());
    const ek = new X509Certificate(await attester.ekCertificate()).publicKey;
    const secret = randomBytes(32);
    const made = makeCredential(ekParametersOf(ek), secret, ak.name);
    assert.equal(toolsCredentialFile(made).readUInt32BE(0), 0xbadcc0de);
    assert.deepEqual(await attester.activate(made.credentialBlob, made.secret), secret);
    const otherName = Buffer.from(ak.name);
    otherName[otherName.length - 1]! ^= 1;
    const wrong = makeCredential(ekParametersOf(ek), secret, otherName);
    await assert.rejects(attester.activate(wrong.credentialBlob, wrong.secret), (err: unknown) =>
      err instanceof FleetkeyError && err.code === 'KEYSTORE_ERROR' && /tpm2_activatecredential failed/.test(String((err.cause as Error).message)), 'the TPM refuses a credential for another name');
    // The same layout as tpm2_makecredential's own output for this EK and name.
    const work = mkdtempSync(join(tmpdir(), 'fleetkey-mkcred-'));
    await writeFile(join(work, 'ek.pem'), ek.export({ format: 'pem', type: 'spki' }));
    await writeFile(join(work, 'secret'), secret);
    await tpm.tool('tpm2_makecredential', ['-T', 'none', '-e', join(work, 'ek.pem'), '-G', 'rsa', '-s', join(work, 'secret'), '-n', ak.name.toString('hex'), '-o', join(work, 'cred')]);
    const theirs = await readFile(join(work, 'cred'));
    await rm(work, { recursive: true, force: true });
    assert.equal(theirs.length, toolsCredentialFile(made).length);
    assert.deepEqual(theirs.subarray(0, 10), toolsCredentialFile(made).subarray(0, 10), 'magic, version and TPM2B_ID_OBJECT size agree');
  } finally {
    await attester.dispose();
  }
});

test('pristine TPM evidence enrolls a tpm-attested device (SDK enrollWithTpmAttestation)', async () => {
  const { token } = await claimToken();
  const stateDir = join(dir, 'sdk-device');
  const identity = await enrollWithTpmAttestation({ hubUrl: hub.url, pin: hub.pin, token, stateDir, keyStore, ekChain: [der(tpm.issuerPem)] });
  assert.equal(identity.keyStore.kind, 'tpm');
  const device = await api('GET', `/api/v1/devices/${identity.deviceId}`);
  assert.equal(device.status, 200);
  assert.equal(device.body.keyProtection, 'tpm-attested');
  assert.equal(device.body.enrolledVia, 'tpm-attestation');
});

test('pristine evidence with the ECC P-384 EK (high-range template; MakeCredential by ECDH + KDFe) enrolls', async () => {
  const { token } = await claimToken();
  const identity = await enrollWithTpmAttestation({ hubUrl: hub.url, pin: hub.pin, token, stateDir: join(dir, 'ecc-ek-device'), keyStore, ek: 'ecc', ekChain: [der(tpm.issuerPem)] });
  assert.equal((await api('GET', `/api/v1/devices/${identity.deviceId}`)).body.keyProtection, 'tpm-attested');
});

test('EK certificate from an unregistered vendor is refused at the challenge', async () => {
  const { token } = await claimToken();
  const before = await snapshot();
  await assertRefused(challengeAndActivate(token, undefined, otherVendor), 'ATTESTATION_FAILED', /chip certificate: no registered vendor root/, before);
});

test('wrong credential proof (secret not activated by this TPM) is refused', async () => {
  const { token } = await claimToken();
  const x = await challengeAndActivate(token);
  const connection = await x.hub.connect();
  const before = await snapshot();
  const body = await enrollBody(x, connection, (b) => { b.activatedSecret = randomBytes(32).toString('base64'); });
  await assertRefused(connection.post('tpm/enroll', body), 'ATTESTATION_FAILED', /wrong credential proof/, before);
});

test('replayed challenge: the second answer to one challenge is refused, even with a token use left', async () => {
  const { token } = await claimToken(2);
  const x = await challengeAndActivate(token);
  const first = await x.hub.connect();
  const answer = await first.post('tpm/enroll', await enrollBody(x, first));
  assert.equal(typeof answer.pkcs7, 'string', 'the pristine first answer enrolls');
  const replay = await x.hub.connect();
  const before = await snapshot();
  await assertRefused(replay.post('tpm/enroll', await enrollBody(x, replay)), 'ATTESTATION_FAILED', /unknown, used or expired challenge/, before);
});

test('exportable (not fixedTPM/fixedParent) key certified by the AK is refused', async () => {
  const { token } = await claimToken();
  const x = await challengeAndActivate(token);
  const connection = await x.hub.connect();
  const before = await snapshot();
  const body = await enrollBody(x, connection, async (b) => {
    const work = mkdtempSync(join(tmpdir(), 'fleetkey-dup-key-'));
    await tpm.tool('tpm2_createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'ecc256:null:aes128cfb', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda', '-c', join(work, 'p.ctx')]);
    await tpm.tool('tpm2_create', ['-C', join(work, 'p.ctx'), '-G', 'ecc256:ecdsa-sha256', '-a', 'sensitivedataorigin|userwithauth|sign', '-u', join(work, 'k.pub'), '-r', join(work, 'k.priv')]);
    const duplicable = new TpmKeyHandle('p256', Buffer.alloc(0), async () => Buffer.alloc(0), { pub: join(work, 'k.pub'), priv: join(work, 'k.priv'), tcti: tpm.tcti });
    const certified = await x.attester.certify(duplicable);
    b.keyPublic = certified.keyPublic.toString('base64');
    b.certifyInfo = certified.certifyInfo.toString('base64');
    b.certifySignature = certified.certifySignature.toString('base64');
    await rm(work, { recursive: true, force: true });
  });
  await assertRefused(connection.post('tpm/enroll', body), 'ATTESTATION_FAILED', /not fixedTPM\|fixedParent\|sensitiveDataOrigin/, before);
});

test('certified name ≠ CSR key: a CSR for another TPM key than the certified one is refused', async () => {
  const { token } = await claimToken();
  const x = await challengeAndActivate(token);
  const connection = await x.hub.connect();
  const before = await snapshot();
  const body = await enrollBody(x, connection, async (b) => {
    const other = (await keyStore.create(`o${randomBytes(4).toString('hex')}`, 'p256')) as TpmKeyHandle;
    b.csr = (await boundCsr(other, connection)).toString('base64');
  });
  await assertRefused(connection.post('tpm/enroll', body), 'ATTESTATION_FAILED', /the CSR key is not the certified key/, before);
});

test('wrong attestation magic is refused', async () => {
  const { token } = await claimToken();
  const x = await challengeAndActivate(token);
  const connection = await x.hub.connect();
  const before = await snapshot();
  const body = await enrollBody(x, connection, (b) => {
    const attest = Buffer.from(b.certifyInfo!, 'base64');
    attest.writeUInt32BE(0xff544348, 0);
    b.certifyInfo = attest.toString('base64');
  });
  await assertRefused(connection.post('tpm/enroll', body), 'ATTESTATION_FAILED', /magic is not TPM_GENERATED_VALUE/, before);
});

test('wrong attestation type (TPM_ST_ATTEST_QUOTE instead of CERTIFY) is refused', async () => {
  const { token } = await claimToken();
  const x = await challengeAndActivate(token);
  const connection = await x.hub.connect();
  const before = await snapshot();
  const body = await enrollBody(x, connection, (b) => {
    const attest = Buffer.from(b.certifyInfo!, 'base64');
    attest.writeUInt16BE(0x8018, 4);
    b.certifyInfo = attest.toString('base64');
  });
  await assertRefused(connection.post('tpm/enroll', body), 'ATTESTATION_FAILED', /type is not TPM_ST_ATTEST_CERTIFY/, before);
});

test('evidence relayed from another TLS session (CSR bound to connection X, sent on Y) is refused', async () => {
  const { token } = await claimToken();
  const x = await challengeAndActivate(token);
  const [bound, relay] = [await x.hub.connect(), await x.hub.connect()];
  const before = await snapshot();
  const body = await enrollBody(x, bound);
  await assertRefused(relay.post('tpm/enroll', body), 'ATTESTATION_FAILED', /not bound to this TLS connection/, before);
});

test('requireAttestation: a claim token alone (chip-less impostor with a stolen token) does not enroll', async () => {
  assert.equal((await api('PUT', '/api/v1/attestation/policy', { requireAttestation: true })).status, 200);
  try {
    const { token } = await claimToken();
    const before = await snapshot();
    await assertRefused(enroll({ hubUrl: hub.url, pin: hub.pin, token, stateDir: join(dir, 'impostor') }), 'ATTESTATION_REQUIRED', undefined, before);
    const identity = await enrollWithTpmAttestation({ hubUrl: hub.url, pin: hub.pin, token, stateDir: join(dir, 'required-ok'), keyStore, ekChain: [der(tpm.issuerPem)] });
    assert.equal((await api('GET', `/api/v1/devices/${identity.deviceId}`)).body.keyProtection, 'tpm-attested', 'the same token with the chip\'s proof enrolls');
  } finally {
    await api('PUT', '/api/v1/attestation/policy', { requireAttestation: false });
  }
});

test('CLI: fleetkey device enroll --attest tpm --keystore tpm:TCTI enrolls a tpm-attested device', async () => {
  const { token } = await claimToken();
  const stateDir = join(dir, 'cli-device');
  const chainFile = join(dir, 'ek-issuer.pem');
  await writeFile(chainFile, tpm.issuerPem);
  const enrolled = await runCli(['device', 'enroll', '--hub', hub.url, '--pin', hub.pin, '--token', '-', '--state-dir', stateDir,
    '--keystore', `tpm:${tpm.tcti}`, '--attest', 'tpm', '--ek-chain', chainFile, '--json'], `${token}\n`);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  const deviceId = JSON.parse(enrolled.stdout).deviceId as string;
  assert.equal((await api('GET', `/api/v1/devices/${deviceId}`)).body.keyProtection, 'tpm-attested');
});
