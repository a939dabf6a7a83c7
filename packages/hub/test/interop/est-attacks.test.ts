/**
 * Attacks on EST enrollment (RFC 7030) against a real hub over HTTPS on 127.0.0.1.
 * Each test is named after the attack and asserts three things: the error code, that the
 * protected action did not happen (no certificate, no device), and that stored state (the claim
 * token's uses, the device's certificates) did not change.
 *
 * Checklist rows 3, 9, 10, 12, 27, 43 and 44; the hub's time is a ManualClock, so expiry needs
 * no sleeping.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  ManualClock, buildCsr, caTemplate, decodeCertsOnly, deviceIdFromCertificate, deviceLeafTemplate, fromPem,
  parseCertificate, signCertificate, toPem, type CertificateSigner,
} from '@fleetkey/protocol';
import { startTestHub, type RawResponse, type TestHub, type TestOwner } from '../helpers/test-hub.js';

const csrDir = fileURLToPath(new URL('../../../../protocol/test/fixtures/csr/', import.meta.url));
const csrFixture = (name: string): Buffer => fromPem(readFileSync(`${csrDir}${name}.csr.pem`, 'utf8'), 'CERTIFICATE REQUEST');

const DAY_MS = 86_400_000;
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

interface DeviceKey {
  readonly privateKey: KeyObject;
  readonly keyPem: string;
  readonly spki: Buffer;
  readonly csr: Buffer;
}

async function p256Device(): Promise<DeviceKey> {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const csr = await buildCsr({ spki, subject: [['CN', 'device-asks-for-this']], algorithm: 'p256', sign: async (d) => sign('sha256', d, pair.privateKey) });
  return { privateKey: pair.privateKey, keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, spki, csr };
}

const b64 = (der: Buffer): string => der.toString('base64');

function enroll(t: TestHub, token: string | undefined, body: string | Buffer, contentType = 'application/pkcs10'): Promise<RawResponse> {
  return t.request('POST', '/.well-known/est/simpleenroll', {
    headers: {
      'content-type': contentType,
      ...(token === undefined ? {} : { authorization: `Basic ${Buffer.from(`device:${token}`).toString('base64')}` }),
    },
    body,
  });
}

function reenroll(t: TestHub, csr: Buffer, client?: { keyPem: string; certPem: string }): Promise<RawResponse> {
  return t.request('POST', '/.well-known/est/simplereenroll', {
    headers: { 'content-type': 'application/pkcs10' },
    body: b64(csr),
    ...(client === undefined ? {} : { key: client.keyPem, cert: client.certPem }),
  });
}

/** The single certificate of a certs-only PKCS#7 EST response. */
function issuedCertificate(r: RawResponse): Buffer {
  assert.equal(r.status, 200, r.text);
  const certs = decodeCertsOnly(Buffer.from(r.text.replace(/\s+/g, ''), 'base64'));
  assert.equal(certs.length, 1);
  return certs[0]!;
}

function assertError(r: RawResponse, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.body?.error?.code, code, r.text);
  assert.doesNotMatch(r.text, /BEGIN CERTIFICATE|MII/, 'an error answer carries no certificate');
}

/** Stored state the attacks must not touch: the token's use count and the org's devices. */
async function storedUses(t: TestHub, owner: TestOwner, claimTokenId: string): Promise<number> {
  const token = await t.hub.store.claimTokens.get(owner.tenantId, claimTokenId);
  assert.ok(token, 'claim token exists');
  return token.uses;
}

async function deviceIds(t: TestHub, owner: TestOwner): Promise<string[]> {
  return (await t.hub.store.devices.list(owner.tenantId)).map((d) => d.id);
}

describe('EST enrollment attacks (real hub over HTTPS)', () => {
  let t: TestHub;
  let clock: ManualClock;
  let orgA: TestOwner;
  /** Every claim token this suite created and every EST answer it got, for the leak check. */
  const secrets: string[] = [];
  const answers: string[] = [];

  const newClaimToken = async (owner: TestOwner, body: Record<string, unknown> = {}) => {
    const created = await t.claimToken(owner.token, body);
    secrets.push(created.token);
    return created;
  };
  const est = async (token: string | undefined, body: string | Buffer, contentType?: string) => {
    const r = await enroll(t, token, body, contentType);
    answers.push(r.text, JSON.stringify(r.headers));
    return r;
  };

  before(async () => {
    clock = new ManualClock(Date.now());
    // 49 losers of the redemption race are failures from one source: keep the source limit above them.
    t = await startTestHub({ FLEETKEY_ENROLL_FAILURE_LIMIT: '100' }, { clock, captureLogs: true });
    orgA = await t.owner('Org A');
  });
  after(async () => t.stop());

  test('single-use claim token redeemed by 50 concurrent HTTPS requests: exactly one wins, 49 get 401 CLAIM_TOKEN_INVALID, one device', async () => {
    const org = await t.owner('Race Org');
    const claim = await newClaimToken(org);
    const devices = await Promise.all(Array.from({ length: 50 }, () => p256Device()));
    const auditBefore = (await t.hub.store.audit.list({ limit: 100_000 })).length;
    const results = await Promise.all(devices.map((d) => est(claim.token, b64(d.csr))));
    const won = results.filter((r) => r.status === 200);
    const lost = results.filter((r) => r.status !== 200);
    assert.equal(won.length, 1, results.map((r) => r.status).join(','));
    assert.equal(lost.length, 49);
    for (const r of lost) assertError(r, 401, 'CLAIM_TOKEN_INVALID');
    const ids = await deviceIds(t, org);
    assert.equal(ids.length, 1, 'exactly one device in the organisation');
    assert.equal(ids[0], deviceIdFromCertificate(issuedCertificate(won[0]!)));
    assert.equal(await storedUses(t, org, claim.id), 1);
    // Every loser is audited once, whether it lost at authorisation or at the record step.
    const added = (await t.hub.store.audit.list({ limit: 100_000 })).slice(auditBefore);
    assert.equal(added.filter((r) => r.type === 'claim_token.redeem' && r.result === 'failure').length, 49);
    assert.equal(added.filter((r) => r.type === 'certificate.issue').length, 1);
  });

  test('expired claim token (clock past its TTL) is refused with 401 CLAIM_TOKEN_INVALID; uses unchanged, no device', async () => {
    const org = await t.owner('Expired Org');
    const claim = await newClaimToken(org, { ttlSeconds: 60 });
    clock.advance(61_000);
    const r = await est(claim.token, b64((await p256Device()).csr));
    assertError(r, 401, 'CLAIM_TOKEN_INVALID');
    assert.equal(await storedUses(t, org, claim.id), 0);
    assert.deepEqual(await deviceIds(t, org), []);
  });

  test('revoked claim token (DELETE /api/v1/claim-tokens/{id}) is refused with 401; no device', async () => {
    const org = await t.owner('Revoked Org');
    const claim = await newClaimToken(org);
    const del = await t.api('DELETE', `/api/v1/claim-tokens/${claim.id}`, undefined, org.token);
    assert.equal(del.status, 204);
    const r = await est(claim.token, b64((await p256Device()).csr));
    assertError(r, 401, 'CLAIM_TOKEN_INVALID');
    assert.equal(await storedUses(t, org, claim.id), 0);
    assert.deepEqual(await deviceIds(t, org), []);
  });

  test("a claim token of org A enrolls into org A only: org B's owner cannot see or fetch the device (404)", async () => {
    const orgB = await t.owner('Org B');
    const before = await deviceIds(t, orgB);
    const claim = await newClaimToken(orgA);
    const deviceId = deviceIdFromCertificate(issuedCertificate(await est(claim.token, b64((await p256Device()).csr))));
    assert.ok((await deviceIds(t, orgA)).includes(deviceId));
    assert.deepEqual(await deviceIds(t, orgB), before);
    const listB = await t.api('GET', '/api/v1/devices', undefined, orgB.token);
    assert.equal(listB.status, 200);
    assert.ok(!listB.body.items.some((d: { id: string }) => d.id === deviceId));
    const getB = await t.api('GET', `/api/v1/devices/${deviceId}`, undefined, orgB.token);
    assert.equal(getB.status, 404);
    assert.equal(getB.body.error.code, 'NOT_FOUND');
    assert.equal((await t.api('GET', `/api/v1/devices/${deviceId}`, undefined, orgA.token)).status, 200);
  });

  test('CSR with a broken signature (no proof of possession) → 400 CSR_SIGNATURE_INVALID and the single-use token is not spent', async () => {
    const claim = await newClaimToken(orgA);
    const device = await p256Device();
    const broken = Buffer.from(device.csr);
    broken.writeUInt8(broken.at(-1)! ^ 0x01, broken.length - 1); // last byte of the ECDSA s value: still DER, no longer a signature
    const before = await deviceIds(t, orgA);
    const r = await est(claim.token, b64(broken));
    assertError(r, 400, 'CSR_SIGNATURE_INVALID');
    assert.equal(await storedUses(t, orgA, claim.id), 0, 'token not spent');
    assert.deepEqual(await deviceIds(t, orgA), before);
    issuedCertificate(await est(claim.token, b64(device.csr))); // the token still works afterwards
    assert.equal(await storedUses(t, orgA, claim.id), 1);
  });

  test('CSR asking for CA:TRUE, extra SANs, serverAuth and certSign gets only the device profile', async () => {
    const claim = await newClaimToken(orgA);
    const der = issuedCertificate(await est(claim.token, b64(csrFixture('hostile-p256'))));
    const cert = new X509Certificate(der);
    const deviceId = deviceIdFromCertificate(der);
    assert.equal(cert.ca, false);
    assert.deepEqual(cert.keyUsage, [CLIENT_AUTH], 'EKU is clientAuth only (node names the EKU list keyUsage)');
    assert.equal(cert.subjectAltName, `URI:urn:fleetkey:device:${deviceId}`);
    assert.equal(cert.subject, `CN=${deviceId}`);
    assert.doesNotMatch(cert.toString(), /hub\.example\.com|someone-else|10\.0\.0\.1|fixture-device|Fleetkey Fixtures/);
  });

  for (const fixture of ['rsa1024', 'p192', 'explicit-p256', 'secp256k1']) {
    test(`weak or unlisted key (${fixture}) → 400 KEY_NOT_ALLOWED, token not spent, no device`, async () => {
      const claim = await newClaimToken(orgA);
      const before = await deviceIds(t, orgA);
      const r = await est(claim.token, b64(csrFixture(fixture)));
      assertError(r, 400, 'KEY_NOT_ALLOWED');
      assert.equal(await storedUses(t, orgA, claim.id), 0);
      assert.deepEqual(await deviceIds(t, orgA), before);
    });
  }

  test('malformed, oversized and mistyped EST bodies are refused before the token is spent', async () => {
    const claim = await newClaimToken(orgA);
    const good = (await p256Device()).csr;
    const cases: Array<[string, string | Buffer, string, number, string]> = [
      ['truncated DER', b64(good.subarray(0, Math.floor(good.length / 2))), 'application/pkcs10', 400, 'CSR_MALFORMED'],
      ['non-base64 body', '%%% this is not base64 !!!', 'application/pkcs10', 400, 'CSR_MALFORMED'],
      ['base64 with junk after the padding', `${b64(good)}=AAAA`, 'application/pkcs10', 400, 'CSR_MALFORMED'],
      ['empty body', '', 'application/pkcs10', 400, 'CSR_MALFORMED'],
      ['body over maxCsrBytes (16 KiB)', 'A'.repeat(16 * 1024 + 4), 'application/pkcs10', 413, 'BODY_TOO_LARGE'],
      ['wrong content type (octet-stream)', good, 'application/octet-stream', 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['wrong content type (text/plain, valid CSR)', b64(good), 'text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['wrong content type (JSON)', JSON.stringify({ csr: b64(good) }), 'application/json', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ];
    const before = await deviceIds(t, orgA);
    for (const [label, body, contentType, status, code] of cases) {
      const r = await est(claim.token, body, contentType);
      assert.equal(r.status, status, `${label}: ${r.text}`);
      assert.equal(r.body?.error?.code, code, label);
      assert.equal(await storedUses(t, orgA, claim.id), 0, `${label}: token not spent`);
    }
    assert.deepEqual(await deviceIds(t, orgA), before);
    issuedCertificate(await est(claim.token, b64(good))); // still unspent: the right request works
  });

  test('a claim token never appears in the logs (debug level) nor in any error body', async () => {
    const claim = await newClaimToken(orgA, { maxUses: 2 });
    const shapedButUnknown = `fkct_${'A'.repeat(43)}`;
    secrets.push(shapedButUnknown);
    issuedCertificate(await est(claim.token, b64((await p256Device()).csr)));
    await est(shapedButUnknown, b64((await p256Device()).csr));
    await est(claim.token, '%%% not base64');
    await est(claim.token, b64(csrFixture('rsa1024')));
    issuedCertificate(await est(claim.token, b64((await p256Device()).csr)));
    assertError(await est(claim.token, b64((await p256Device()).csr)), 401, 'CLAIM_TOKEN_INVALID'); // used up
    assert.ok(t.logs.length > 0, 'logs were captured');
    assert.ok(t.logs.some((l) => l.includes('"level":20') || l.includes('"level":30')), 'debug/info lines were written');
    const logText = t.logs.join('');
    const errorBodies = answers.filter((a) => a.includes('"error"')).join('\n');
    assert.ok(errorBodies.length > 0);
    for (const secret of secrets) {
      const body = secret.slice('fkct_'.length);
      assert.ok(!logText.includes(body), 'claim token found in the hub log');
      assert.ok(!errorBodies.includes(body), 'claim token found in an error body');
      assert.ok(!logText.includes(Buffer.from(`device:${secret}`).toString('base64')), 'Basic credentials found in the hub log');
    }
  });

  describe('simplereenroll over mutual TLS', () => {
    let device: DeviceKey;
    let certPem: string;
    let deviceId: string;

    before(async () => {
      device = await p256Device();
      const claim = await newClaimToken(orgA);
      const der = issuedCertificate(await est(claim.token, b64(device.csr)));
      certPem = toPem('CERTIFICATE', der);
      deviceId = deviceIdFromCertificate(der);
    });

    const storedCertificates = async () => (await t.hub.store.devices.certificates(orgA.tenantId, deviceId)).map((c) => c.serial);
    const currentSerial = async () => (await t.hub.store.devices.get(orgA.tenantId, deviceId))?.currentSerial;

    test('no client certificate → 401 CERT_REQUIRED, nothing issued', async () => {
      const before = await storedCertificates();
      const r = await reenroll(t, (await p256Device()).csr);
      assertError(r, 401, 'CERT_REQUIRED');
      assert.deepEqual(await storedCertificates(), before);
    });

    test('certificate from a different CA with the same CA name, device subject, SAN, key and serial → 401 CERT_INVALID', async () => {
      const real = parseCertificate(fromPem(certPem, 'CERTIFICATE'));
      const caResponse = await t.request('GET', '/.well-known/est/cacerts');
      const chain = decodeCertsOnly(Buffer.from(caResponse.text.replace(/\s+/g, ''), 'base64'));
      const realCa = chain.map((der) => parseCertificate(der)).find((c) => c.subject.equals(real.issuer));
      assert.ok(realCa, 'the device CA is in cacerts');
      // The forger's CA: a new key under exactly the real device CA's name.
      const fakeCaPair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const fakeCaSpki = fakeCaPair.publicKey.export({ type: 'spki', format: 'der' });
      const fakeSigner: CertificateSigner = { algorithm: 'p256', sign: async (tbs) => sign('sha256', tbs, fakeCaPair.privateKey) };
      const fakeCa = await signCertificate({
        ...caTemplate({ subject: [['CN', 'placeholder']], spki: fakeCaSpki, serial: Buffer.from('0102030405060708', 'hex'), notBefore: real.notBefore, notAfter: real.notAfter, pathLen: 0 }),
        subjectName: realCa.subject, issuerName: realCa.issuer,
      }, fakeSigner);
      assert.equal(new X509Certificate(fakeCa).subject, new X509Certificate(chain.find((der) => parseCertificate(der).subject.equals(real.issuer))!).subject);
      const forged = await signCertificate(deviceLeafTemplate({
        issuerName: realCa.subject, issuerSpki: fakeCaSpki, deviceId, spki: device.spki,
        serial: real.serial, notBefore: real.notBefore, notAfter: real.notAfter,
      }), fakeSigner);
      const forgedCert = new X509Certificate(forged);
      assert.equal(forgedCert.subject, new X509Certificate(fromPem(certPem, 'CERTIFICATE')).subject);
      assert.equal(forgedCert.serialNumber, new X509Certificate(fromPem(certPem, 'CERTIFICATE')).serialNumber);
      const before = await storedCertificates();
      const serialBefore = await currentSerial();
      const r = await reenroll(t, (await p256Device()).csr, { keyPem: device.keyPem, certPem: toPem('CERTIFICATE', forged) + toPem('CERTIFICATE', fakeCa) });
      assertError(r, 401, 'CERT_INVALID');
      assert.deepEqual(await storedCertificates(), before);
      assert.equal(await currentSerial(), serialBefore);
    });

    test('the genuine certificate re-enrolls (control for the refusals around it)', async () => {
      const next = await p256Device();
      const der = issuedCertificate(await reenroll(t, next.csr, { keyPem: device.keyPem, certPem }));
      assert.equal(deviceIdFromCertificate(der), deviceId);
      device = next;
      certPem = toPem('CERTIFICATE', der);
    });

    // ADR 0025: after expiry only the same key renews, within the grace; a new key needs a new claim.
    test('expired device certificate (clock past notAfter) renewing to a different key → 403 RENEWAL_NEEDS_CLAIM, nothing issued', async () => {
      const notAfter = Date.parse(new X509Certificate(fromPem(certPem, 'CERTIFICATE')).validTo);
      clock.set(notAfter + DAY_MS);
      const before = await storedCertificates();
      const serialBefore = await currentSerial();
      const r = await reenroll(t, (await p256Device()).csr, { keyPem: device.keyPem, certPem });
      assertError(r, 403, 'RENEWAL_NEEDS_CLAIM');
      assert.deepEqual(await storedCertificates(), before);
      assert.equal(await currentSerial(), serialBefore);
    });
  });
});

describe('EST source throttle (enrollFailureLimit = 3)', () => {
  let t: TestHub;
  let owner: TestOwner;
  before(async () => {
    t = await startTestHub({ FLEETKEY_ENROLL_FAILURE_LIMIT: '3' });
    owner = await t.owner('Throttle Org');
  });
  after(async () => t.stop());

  test('after 3 bad claim tokens from 127.0.0.1 even a valid token is refused with 429 RATE_LIMITED and is not spent', async () => {
    const claim = await t.claimToken(owner.token);
    const csr = b64((await p256Device()).csr);
    for (let i = 0; i < 3; i++) {
      assertError(await enroll(t, `fkct_${String(i).repeat(43)}`, csr), 401, 'CLAIM_TOKEN_INVALID');
    }
    const r = await enroll(t, claim.token, csr);
    assertError(r, 429, 'RATE_LIMITED');
    const stored = await t.hub.store.claimTokens.get(owner.tenantId, claim.id);
    assert.equal(stored?.uses, 0, 'valid token not spent');
    assert.deepEqual(await t.hub.store.devices.list(owner.tenantId), []);
  });
});
