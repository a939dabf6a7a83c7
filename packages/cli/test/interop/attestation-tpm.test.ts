/**
 * TPM attestation enrollment (ADR 0027), pristine paths: a real swtpm manufactured with an EK
 * certificate (its local CA is the "vendor"), tpm2-tools 5.4, the real hub over TLS 1.3, through
 * the SDK and the CLI; the policy `requireAttestation`; and MakeCredential in node:crypto
 * against the TPM's own ActivateCredential. Attacks: attestation-tpm-attacks/-tamper.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';
import { enroll, enrollWithTpmAttestation, TpmAttester } from '@fleetkey/device';
import { ekParametersOf, makeCredential, parseTpm2bPublic, toolsCredentialFile } from '@fleetkey/hub';
import { runCli } from '../helpers/cli.js';
import { der, tpmAttestFixture } from '../helpers/tpm-attest-fixture.js';

const f = tpmAttestFixture();

test('unit: MakeCredential in node:crypto is activated by swtpm (tpm2_activatecredential) for the AK name', async () => {
  const attester = await TpmAttester.open(f.tpm.tcti);
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
    await f.tpm.tool('tpm2_makecredential', ['-T', 'none', '-e', join(work, 'ek.pem'), '-G', 'rsa', '-s', join(work, 'secret'), '-n', ak.name.toString('hex'), '-o', join(work, 'cred')]);
    const theirs = await readFile(join(work, 'cred'));
    await rm(work, { recursive: true, force: true });
    assert.equal(theirs.length, toolsCredentialFile(made).length);
    assert.deepEqual(theirs.subarray(0, 10), toolsCredentialFile(made).subarray(0, 10), 'magic, version and TPM2B_ID_OBJECT size agree');
  } finally {
    await attester.dispose();
  }
});

test('pristine TPM evidence enrolls a tpm-attested device (SDK enrollWithTpmAttestation)', async () => {
  const { token } = await f.claimToken();
  const stateDir = join(f.dir, 'sdk-device');
  const identity = await enrollWithTpmAttestation({ hubUrl: f.hub.url, pin: f.hub.pin, token, stateDir, keyStore: f.keyStore, ekChain: [der(f.tpm.issuerPem)] });
  assert.equal(identity.keyStore.kind, 'tpm');
  const device = await f.api('GET', `/api/v1/devices/${identity.deviceId}`);
  assert.equal(device.status, 200);
  assert.equal(device.body.keyProtection, 'tpm-attested');
  assert.equal(device.body.enrolledVia, 'tpm-attestation');
});

test('pristine evidence with the ECC P-384 EK (high-range template; MakeCredential by ECDH + KDFe) enrolls', async () => {
  const { token } = await f.claimToken();
  const identity = await enrollWithTpmAttestation({ hubUrl: f.hub.url, pin: f.hub.pin, token, stateDir: join(f.dir, 'ecc-ek-device'), keyStore: f.keyStore, ek: 'ecc', ekChain: [der(f.tpm.issuerPem)] });
  assert.equal((await f.api('GET', `/api/v1/devices/${identity.deviceId}`)).body.keyProtection, 'tpm-attested');
});

test('requireAttestation: a claim token alone (chip-less impostor with a stolen token) does not enroll', async () => {
  assert.equal((await f.api('PUT', '/api/v1/attestation/policy', { requireAttestation: true })).status, 200);
  try {
    const { token } = await f.claimToken();
    const before = await f.snapshot();
    await f.assertRefused(enroll({ hubUrl: f.hub.url, pin: f.hub.pin, token, stateDir: join(f.dir, 'impostor') }), 'ATTESTATION_REQUIRED', undefined, before);
    const identity = await enrollWithTpmAttestation({ hubUrl: f.hub.url, pin: f.hub.pin, token, stateDir: join(f.dir, 'required-ok'), keyStore: f.keyStore, ekChain: [der(f.tpm.issuerPem)] });
    assert.equal((await f.api('GET', `/api/v1/devices/${identity.deviceId}`)).body.keyProtection, 'tpm-attested', 'the same token with the chip\'s proof enrolls');
  } finally {
    await f.api('PUT', '/api/v1/attestation/policy', { requireAttestation: false });
  }
});

test('CLI: fleetkey device enroll --attest tpm --keystore tpm:TCTI enrolls a tpm-attested device', async () => {
  const { token } = await f.claimToken();
  const stateDir = join(f.dir, 'cli-device');
  const chainFile = join(f.dir, 'ek-issuer.pem');
  await writeFile(chainFile, f.tpm.issuerPem);
  const enrolled = await runCli(['device', 'enroll', '--hub', f.hub.url, '--pin', f.hub.pin, '--token', '-', '--state-dir', stateDir,
    '--keystore', `tpm:${f.tpm.tcti}`, '--attest', 'tpm', '--ek-chain', chainFile, '--json'], `${token}\n`);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  const deviceId = JSON.parse(enrolled.stdout).deviceId as string;
  assert.equal((await f.api('GET', `/api/v1/devices/${deviceId}`)).body.keyProtection, 'tpm-attested');
});
