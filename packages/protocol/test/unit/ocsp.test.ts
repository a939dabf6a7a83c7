// OCSP (x509/ocsp.ts, ocsp-parse.ts): requests as openssl writes them, the parser's refusals,
// and responses round-tripped through our reader with the signature checked by node:crypto.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import {
  DerError, MAX_OCSP_REQUESTS, OCSP_OIDS, encodeCertId, encodeName, encodeOcspRequest, explicit, extension, issuerHashes,
  ocspErrorResponse, octetString, parseOcspRequest, parseOcspResponse, responderKeyHash, sequence, signOcspResponse,
  subjectPublicKeyBits, type CertificateSigner, type SingleResponse,
} from '../../src/index.js';

// `openssl ocsp -issuer ca.pem -serial 0x01020304 -nonce -reqout req.der` (OpenSSL 3.0.19).
const OPENSSL_REQUEST = Buffer.from(
  '306a30683041303f303d300906052b0e03021a0500041411048cd20cb3592307d019fd0889562b62d36492' +
  '0414fe3bc0bb97242035af2903d9548484999e262e37020401020304a2233021301f06092b06010505073001' +
  '0204120410ca24cf3ab9959fc4348939c4feceaee0', 'hex');

const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
const signer: CertificateSigner = { algorithm: 'p256', sign: async (d) => sign('sha256', d, pair.privateKey) };
const issuerName = encodeName([['CN', 'fleetkey device CA']]);
const serial = Buffer.from('11223344556677889900aabbccddeeff', 'hex');

test('an openssl request parses: SHA-1 CertID, serial, nonce (RFC 9654 inner OCTET STRING)', () => {
  const r = parseOcspRequest(OPENSSL_REQUEST);
  assert.equal(r.certIds.length, 1);
  const id = r.certIds[0]!;
  assert.equal(id.hash, 'sha1');
  assert.equal(id.serial.toString('hex'), '01020304');
  assert.equal(id.issuerNameHash.length, 20);
  assert.equal(r.nonce?.toString('hex'), 'ca24cf3ab9959fc4348939c4feceaee0');
  assert.ok(OPENSSL_REQUEST.includes(id.raw), 'raw CertID is the exact received bytes');
});

test('encodeCertId / encodeOcspRequest round-trip with SHA-256 and the issuer hashes of RFC 6960 §4.1.1', () => {
  const certId = encodeCertId({ hash: 'sha256', issuerName, issuerSpki: spki, serial });
  const r = parseOcspRequest(encodeOcspRequest({ certIds: [certId, certId], nonce: Buffer.alloc(32, 7) }));
  assert.equal(r.certIds.length, 2);
  assert.equal(r.certIds[0]!.hash, 'sha256');
  assert.deepEqual(r.certIds[0]!.issuerNameHash, createHash('sha256').update(issuerName).digest());
  assert.deepEqual(r.certIds[0]!.issuerKeyHash, createHash('sha256').update(subjectPublicKeyBits(spki)).digest());
  assert.deepEqual(issuerHashes(issuerName, spki, 'sha256').keyHash, r.certIds[0]!.issuerKeyHash);
  assert.deepEqual(r.certIds[0]!.raw, certId);
  assert.deepEqual(r.nonce, Buffer.alloc(32, 7));
});

test('a nonce longer than 32 octets, or not an OCTET STRING, is ignored (RFC 9654 §2.1), not an error', () => {
  const certId = encodeCertId({ hash: 'sha1', issuerName, issuerSpki: spki, serial });
  assert.equal(parseOcspRequest(encodeOcspRequest({ certIds: [certId], nonce: Buffer.alloc(33) })).nonce, undefined);
  const raw = sequence(sequence(sequence(sequence(certId)), explicit(2, sequence(extension(OCSP_OIDS.nonce, false, Buffer.from([0x02, 0x01, 0x05]))))));
  assert.equal(parseOcspRequest(raw).nonce, undefined);
});

test('malformed requests are DerErrors: trailing byte, empty list, too many CertIDs, unknown critical extension, duplicate extension, v2', () => {
  const certId = encodeCertId({ hash: 'sha1', issuerName, issuerSpki: spki, serial });
  const withExtensions = (exts: Buffer[]) => sequence(sequence(sequence(sequence(certId)), explicit(2, sequence(...exts))));
  const cases: Array<[string, Buffer]> = [
    ['trailing byte', Buffer.concat([OPENSSL_REQUEST, Buffer.from([0])])],
    ['empty requestList', sequence(sequence(sequence()))],
    ['too many', encodeOcspRequest({ certIds: Array.from({ length: MAX_OCSP_REQUESTS + 1 }, () => certId) })],
    ['unknown critical extension', withExtensions([extension('1.2.3.4', true, octetString(Buffer.from('x')))])],
    ['duplicate nonce', withExtensions([extension(OCSP_OIDS.nonce, false, octetString(Buffer.alloc(16))), extension(OCSP_OIDS.nonce, false, octetString(Buffer.alloc(16)))])],
    ['version v2', sequence(sequence(explicit(0, Buffer.from([0x02, 0x01, 0x01])), sequence(sequence(certId))))],
    ['truncated', OPENSSL_REQUEST.subarray(0, 50)],
  ];
  for (const [label, der] of cases) assert.throws(() => parseOcspRequest(der), DerError, label);
  assert.doesNotThrow(() => parseOcspRequest(withExtensions([extension('1.2.3.4', false, octetString(Buffer.from('x')))])), 'unknown non-critical is ignored');
});

test('a signed response round-trips: byKey ResponderID, statuses, reason, times, nonce, certs; node:crypto verifies it', async () => {
  const now = new Date(Date.UTC(2026, 5, 1, 12));
  const next = new Date(now.getTime() + 3_600_000);
  const ids = ['01', '02', '03'].map((s) => encodeCertId({ hash: 'sha1', issuerName, issuerSpki: spki, serial: Buffer.from(s, 'hex') }));
  const responses: SingleResponse[] = [
    { certIdRaw: ids[0]!, status: { kind: 'good' }, thisUpdate: now, nextUpdate: next },
    { certIdRaw: ids[1]!, status: { kind: 'revoked', revocationTime: new Date(now.getTime() - 5000), reason: 'keyCompromise' }, thisUpdate: now, nextUpdate: next },
    { certIdRaw: ids[2]!, status: { kind: 'unknown' }, thisUpdate: now, nextUpdate: next },
  ];
  const fakeCert = sequence(octetString(Buffer.from('certificate')));
  const der = await signOcspResponse({ responderKeyHash: responderKeyHash(spki), producedAt: now, responses, nonce: Buffer.from('nonce') }, signer, [fakeCert]);
  const parsed = parseOcspResponse(der);
  assert.equal(parsed.status, 'successful');
  const basic = parsed.basic!;
  assert.deepEqual(basic.responderKeyHash, createHash('sha1').update(subjectPublicKeyBits(spki)).digest());
  assert.equal(basic.producedAt.getTime(), now.getTime());
  assert.deepEqual(basic.responses.map((r) => r.status), responses.map((r) => r.status));
  assert.deepEqual(basic.responses.map((r) => r.certIdRaw), ids);
  assert.equal(basic.responses[0]!.nextUpdate?.getTime(), next.getTime());
  assert.deepEqual(basic.nonce, Buffer.from('nonce'));
  assert.deepEqual(basic.certs, [fakeCert]);
  assert.ok(verify('sha256', basic.tbs, pair.publicKey, basic.signature));
  assert.ok(der.includes(Buffer.from('20260601120000Z', 'latin1')), 'GeneralizedTime even before 2050 (RFC 6960 §4.2.1)');
});

test('revoked with reason unspecified carries no revocationReason; error responses are bare statuses', async () => {
  const now = new Date(Date.UTC(2026, 0, 1));
  const id = encodeCertId({ hash: 'sha1', issuerName, issuerSpki: spki, serial });
  const der = await signOcspResponse({ responderKeyHash: responderKeyHash(spki), producedAt: now, responses: [
    { certIdRaw: id, status: { kind: 'revoked', revocationTime: now, reason: 'unspecified' }, thisUpdate: now, nextUpdate: new Date(now.getTime() + 1000) },
  ] }, signer);
  assert.ok(!der.includes(Buffer.from([0xa0, 0x03, 0x0a, 0x01])), 'no [0] EXPLICIT CRLReason');
  assert.deepEqual(parseOcspResponse(der).basic?.responses[0]?.status, { kind: 'revoked', revocationTime: now, reason: 'unspecified' });
  assert.equal(ocspErrorResponse('malformedRequest').toString('hex'), '30030a0101');
  assert.equal(ocspErrorResponse('unauthorized').toString('hex'), '30030a0106');
  assert.deepEqual(parseOcspResponse(ocspErrorResponse('tryLater')), { status: 'tryLater', basic: undefined });
});
