import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate as NodeX509, createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { FleetkeyError, KEY_ALGORITHMS, ManualClock, deviceIdFromCertificate, type ErrorCode } from '@fleetkey/protocol';
import { CertificateAuthority, type CertificateAuthorityDeps } from '../../src/ca/issuance.js';
import { createHubPki, type HubPki } from '../../src/ca/hub-pki.js';
import { CountingSigner, MemoryRecorder, START, csrFixture, deviceCsr, grantFor, newClock } from './ca-fixtures.js';

x509.cryptoProvider.set(globalThis.crypto);
const DAY = 86_400_000;
const pki: HubPki = await createHubPki({ clock: newClock(), orgName: 'Acme Water' });

function setup(overrides: Partial<CertificateAuthorityDeps> = {}) {
  const recorder = new MemoryRecorder();
  const signer = new CountingSigner(pki.deviceCa.signer);
  const clock = newClock();
  const ca = new CertificateAuthority({ signer, certificate: pki.deviceCa.certificate, recorder, clock, ...overrides });
  return { ca, recorder, signer, clock };
}

const isCode = (code: ErrorCode) => (err: unknown) => err instanceof FleetkeyError && err.code === code;

test('issues a device leaf for every key algorithm, recorded before it is returned', async () => {
  const { ca, recorder } = setup();
  for (const algorithm of KEY_ALGORITHMS) {
    const { csr, spki } = await deviceCsr(algorithm);
    const issued = await ca.issue(grantFor(`dev-${algorithm}`), csr);
    assert.equal(issued.keyAlgorithm, algorithm);
    assert.equal(issued.spkiSha256Hex, createHash('sha256').update(spki).digest('hex'));
    assert.equal(deviceIdFromCertificate(issued.der), `dev-${algorithm}`);
    const leaf = new NodeX509(issued.der);
    assert.ok(leaf.verify(new NodeX509(pki.deviceCa.certificate).publicKey));
    assert.equal(leaf.serialNumber.toLowerCase(), issued.serialHex);
    assert.equal(recorder.records.at(-1)?.issued, issued);
  }
  assert.equal(recorder.records.length, KEY_ALGORITHMS.length);
});

test('privilege escalation via CSR: CA:TRUE, extra SANs and serverAuth are ignored; only the profile is signed', async () => {
  const { ca } = setup();
  const issued = await ca.issue(grantFor('pump-1'), csrFixture('hostile-p256'));
  const cert = new x509.X509Certificate(issued.der);
  assert.equal(cert.subject, 'CN=pump-1');
  const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
  assert.ok(bc.critical && !bc.ca);
  assert.equal(cert.getExtension(x509.KeyUsagesExtension)!.usages, x509.KeyUsageFlags.digitalSignature);
  assert.deepEqual([...cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages], ['1.3.6.1.5.5.7.3.2']);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
  assert.deepEqual(san.names.items.map((n) => n.value), ['urn:fleetkey:device:pump-1']);
  assert.deepEqual([...cert.extensions].map((e) => e.type).sort(),
    ['2.5.29.14', '2.5.29.15', '2.5.29.17', '2.5.29.19', '2.5.29.35', '2.5.29.37']);
});

test('key substitution: a CSR for another key than the bound one is FORBIDDEN; nothing signed or recorded', async () => {
  const { ca, recorder, signer } = setup();
  const bound = await deviceCsr('p256');
  const other = await deviceCsr('p256');
  const grant = grantFor('dev-9', { boundSpkiSha256: createHash('sha256').update(bound.spki).digest('hex') });
  await assert.rejects(ca.issue(grant, other.csr), isCode('FORBIDDEN'));
  assert.equal(signer.count, 0);
  assert.equal(recorder.records.length, 0);
  const upper = { ...grant, boundSpkiSha256: grant.boundSpkiSha256!.toUpperCase() };
  assert.equal((await ca.issue(upper, bound.csr)).deviceId, 'dev-9');
});

test('forged proof of possession: a CSR whose signature does not verify signs and records nothing', async () => {
  const { ca, recorder, signer } = setup();
  const { csr } = await deviceCsr('p256');
  const forged = Buffer.from(csr);
  forged[forged.length - 3]! ^= 0x01;
  await assert.rejects(ca.issue(grantFor('dev-1'), forged), isCode('CSR_SIGNATURE_INVALID'));
  assert.throws(() => ca.prepare(forged), isCode('CSR_SIGNATURE_INVALID'));
  assert.equal(signer.count + recorder.records.length, 0);
});

test('key policy: algorithms outside the allow-list and RSA below minRsaBits are KEY_NOT_ALLOWED', async () => {
  const { ca, recorder } = setup({ policy: { allowedKeyAlgorithms: ['p256', 'rsa'], minRsaBits: 3072 } });
  await assert.rejects(ca.issue(grantFor('dev-1'), (await deviceCsr('ed25519')).csr), isCode('KEY_NOT_ALLOWED'));
  await assert.rejects(ca.issue(grantFor('dev-1'), (await deviceCsr('rsa')).csr), isCode('KEY_NOT_ALLOWED'));
  assert.throws(() => ca.prepare(csrFixture('ed25519')), isCode('KEY_NOT_ALLOWED'));
  assert.throws(() => setup({ policy: { minRsaBits: 1024 } }), isCode('CONFIG_INVALID'));
  assert.equal(recorder.records.length, 0);
});

test('validity is clamped: grant maximum, 90-day default, 5-minute backdate, never past the CA', async () => {
  const { ca } = setup();
  const { csr } = await deviceCsr('p256');
  const long = await ca.issue(grantFor('dev-1', { maxValidityMs: 400 * DAY }), csr);
  assert.equal(long.notAfter.getTime(), START + 90 * DAY);
  assert.equal(long.notBefore.getTime(), START - 5 * 60_000);
  const short = await ca.issue(grantFor('dev-1', { maxValidityMs: DAY }), csr);
  assert.equal(short.notAfter.getTime(), START + DAY);
  const lateClock = new ManualClock(new Date(new NodeX509(pki.deviceCa.certificate).validTo).getTime() - 10 * DAY);
  const late = setup({ clock: lateClock });
  const nearEnd = await late.ca.issue(grantFor('dev-1'), csr);
  assert.equal(nearEnd.notAfter.getTime(), new Date(new NodeX509(pki.deviceCa.certificate).validTo).getTime());
  await assert.rejects(ca.issue(grantFor('dev-1', { maxValidityMs: -1 }), csr), isCode('VALIDATION_FAILED'));
  lateClock.advance(11 * DAY);
  await assert.rejects(late.ca.issue(grantFor('dev-1'), csr), isCode('INTERNAL'));
});

test('a failed record returns no certificate', async () => {
  const { ca, recorder } = setup();
  recorder.failNext = true;
  await assert.rejects(ca.issue(grantFor('dev-1'), (await deviceCsr('p256')).csr), /disk full/);
  assert.equal(recorder.records.length, 0);
});

test('prepare() runs verification before any credential is spent; its handle works only with its CA', async () => {
  const a = setup();
  const b = setup();
  const prepared = a.ca.prepare((await deviceCsr('p256')).csr);
  assert.match(prepared.spkiSha256Hex, /^[0-9a-f]{64}$/);
  assert.equal((await a.ca.issue(grantFor('dev-2'), prepared)).deviceId, 'dev-2');
  await assert.rejects(b.ca.issue(grantFor('dev-2'), prepared), isCode('INTERNAL'));
  await assert.rejects(b.ca.issue(grantFor('dev-2'), { ...prepared }), isCode('INTERNAL'));
  assert.throws(() => a.ca.prepare(Buffer.from('3000', 'hex')), isCode('CSR_MALFORMED'));
});

test('identity injection: a grant with a device id outside [a-z0-9-]{1,64} is refused', async () => {
  const { ca, signer } = setup();
  const { csr } = await deviceCsr('p256');
  for (const id of ['', 'Dev', 'a/b', 'x'.repeat(65), 'dev-1,O=Evil']) {
    await assert.rejects(ca.issue(grantFor(id), csr), isCode('VALIDATION_FAILED'), id);
  }
  assert.equal(signer.count, 0);
});

test('serials are 16 octets, positive, and unique', async () => {
  const { ca } = setup();
  const { csr } = await deviceCsr('p256');
  const prepared = ca.prepare(csr);
  const serials = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const { serialHex } = await ca.issue(grantFor('dev-1'), prepared);
    assert.equal(serialHex.length, 32);
    assert.ok(Number.parseInt(serialHex.slice(0, 2), 16) >= 1 && Number.parseInt(serialHex.slice(0, 2), 16) <= 0x7f);
    serials.add(serialHex);
  }
  assert.equal(serials.size, 200);
});

test('a CA whose signer does not match its certificate refuses to start', () => {
  assert.throws(() => setup({ signer: pki.root.signer }), isCode('CONFIG_INVALID'));
});

test('prepareAccepted (stored batch CSRs, ADR 0014): strict parse and key policy still refuse; a good CSR issues', async () => {
  const { ca, recorder, signer } = setup({ policy: { allowedKeyAlgorithms: ['p256'] } });
  assert.throws(() => ca.prepareAccepted(csrFixture('ed25519')), isCode('KEY_NOT_ALLOWED'));
  assert.throws(() => ca.prepareAccepted(Buffer.from('30030201', 'hex')), (e: unknown) => e instanceof FleetkeyError && e.code.startsWith('CSR_'));
  assert.equal(signer.count + recorder.records.length, 0);
  const { csr } = await deviceCsr('p256');
  const issued = await ca.issue(grantFor('dev-accepted'), ca.prepareAccepted(csr));
  assert.equal(deviceIdFromCertificate(issued.der), 'dev-accepted');
});
