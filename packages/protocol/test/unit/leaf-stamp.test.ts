// The device-leaf stamp (ADR 0031) against the generic encoder: for every shape it covers, the
// stamped TBSCertificate must be byte-for-byte what encodeTbsCertificate(profile.template(p))
// gives, and a signed leaf from it must pass OpenSSL (node's X509Certificate).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate as NodeX509, createPublicKey } from 'node:crypto';
import {
  DeviceLeafProfile, assembleCertificate, encodeName, encodeTbsCertificate, seededRandom, type KeyAlgorithm,
} from '../../src/index.js';
import { LeafStamp, type StampParams } from '../../src/x509/leaf-stamp.js';
import { ALL_ALGORITHMS, makeKey } from './fixtures.js';

const ID_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789-';
const Y1950 = Date.UTC(1950, 0, 1);
const Y2050 = Date.UTC(2050, 0, 1);

function profileFor(caAlg: KeyAlgorithm, urls: boolean): DeviceLeafProfile {
  const ca = makeKey(caAlg);
  return new DeviceLeafProfile({
    issuerName: encodeName([['O', 'Acme'], ['CN', 'fleetkey device CA']]), issuerSpki: ca.spki,
    ...(urls ? { crlUrl: 'https://127.0.0.1:8443/crl', ocspUrl: 'https://127.0.0.1:8443/ocsp' } : {}),
  });
}

test('stamped TBSCertificates equal the generic encoding for random ids, serials, times and every key type', () => {
  const rnd = seededRandom(20261201);
  const deviceKeys = ALL_ALGORITHMS.map((a) => makeKey(a).spki);
  let compared = 0;
  for (const caAlg of ['p256', 'p384'] as const) {
    for (const urls of [true, false]) {
      const profile = profileFor(caAlg, urls);
      for (let i = 0; i < 400; i++) {
        const length = 1 + Math.floor(rnd() * 64);
        let deviceId = '';
        for (let j = 0; j < length; j++) deviceId += ID_CHARS[Math.floor(rnd() * ID_CHARS.length)];
        const serial = Buffer.alloc(8 + Math.floor(rnd() * 13));
        for (let j = 0; j < serial.length; j++) serial[j] = Math.floor(rnd() * 256);
        serial[0] = 1 + (serial[0]! % 127);
        const notBefore = new Date(Y1950 + Math.floor(rnd() * (Y2050 - Y1950 - 1e10)));
        const notAfter = new Date(notBefore.getTime() + Math.floor(rnd() * 1e10));
        const p = { deviceId, serial, notBefore, notAfter, spki: deviceKeys[i % deviceKeys.length]! };
        assert.deepEqual(profile.encodeTbs(p, caAlg), encodeTbsCertificate(profile.template(p), caAlg), `case ${i}`);
        compared++;
      }
    }
  }
  assert.equal(compared, 1600);
});

test('validity outside 1950–2049 (GeneralizedTime) takes the generic encoder and still matches it', () => {
  const profile = profileFor('p256', true);
  const spki = makeKey('p256').spki;
  for (const [nb, na] of [[Date.UTC(2049, 5, 1), Date.UTC(2051, 0, 1)], [Date.UTC(2060, 0, 1), Date.UTC(2061, 0, 1)]] as const) {
    const p = { deviceId: 'dev-late', spki, serial: Buffer.from('0102030405060708', 'hex'), notBefore: new Date(nb), notAfter: new Date(na) };
    const tbs = profile.encodeTbs(p, 'p256');
    assert.deepEqual(tbs, encodeTbsCertificate(profile.template(p), 'p256'));
    const year = new Date(na).getUTCFullYear();
    assert.ok(tbs.includes(Buffer.from([0x18, 15, ...Buffer.from(`${year}0101000000Z`, 'latin1')])), `GeneralizedTime for ${year}`);
  }
});

test('a stamped leaf signed by the CA verifies in OpenSSL with the profile fields', async () => {
  const ca = makeKey('p256');
  const profile = new DeviceLeafProfile({ issuerName: encodeName([['CN', 'fleetkey device CA']]), issuerSpki: ca.spki });
  const device = makeKey('p384');
  const p = { deviceId: 'dev-stamp', spki: device.spki, serial: Buffer.from('01'.repeat(16), 'hex'),
    notBefore: new Date(Date.UTC(2026, 0, 1)), notAfter: new Date(Date.UTC(2026, 3, 1)) };
  profile.encodeTbs(p, 'p256'); // the second call is the stamped one
  const tbs = profile.encodeTbs({ ...p, deviceId: 'dev-stamq' }, 'p256');
  const cert = new NodeX509(assembleCertificate(tbs, 'p256', await ca.sign(tbs)));
  assert.ok(cert.verify(createPublicKey({ key: ca.spki, format: 'der', type: 'spki' })));
  assert.equal(cert.subject, 'CN=dev-stamq');
  assert.equal(cert.subjectAltName, 'URI:urn:fleetkey:device:dev-stamq');
  assert.equal(cert.validFrom, 'Jan  1 00:00:00 2026 GMT');
});

test('a stamp whose layout is wrong refuses to exist (it never reaches a signature)', () => {
  const profile = profileFor('p256', true);
  const spki = makeKey('p256').spki;
  const p = { deviceId: 'dev-layout', spki, serial: Buffer.from('01'.repeat(16), 'hex'), notBefore: new Date(Date.UTC(2026, 0, 1)), notAfter: new Date(Date.UTC(2026, 3, 1)) };
  const generic = (q: StampParams): Buffer => encodeTbsCertificate(profile.template(q), 'p256');
  const ref = generic(p);
  const serialAt = ref.indexOf(p.serial);
  const good = { serialAt, notBeforeAt: ref.indexOf('260101000000Z'), notAfterAt: ref.indexOf('260401000000Z'),
    cnIdAt: ref.indexOf('dev-layout'), spkiAt: ref.indexOf(spki), skiAt: 0, sanIdAt: ref.lastIndexOf('dev-layout') };
  assert.throws(() => new LeafStamp(generic, { ...good, serialAt: serialAt + 1 }, p), /stamp layout/);
  assert.throws(() => new LeafStamp(generic, good, p), /stamp layout/); // skiAt 0 is wrong
});

test('a negative or zero-led serial, or a notAfter before notBefore, is refused on the stamped path as by the generic encoder', () => {
  const profile = profileFor('p256', true);
  const spki = makeKey('p256').spki;
  const day = (y: number): Date => new Date(Date.UTC(y, 0, 1));
  const good = { deviceId: 'dev-a', spki, serial: Buffer.alloc(16, 1), notBefore: day(2026), notAfter: day(2027) };
  profile.encodeTbs(good, 'p256'); // builds the stamp for this shape
  const bad = [
    { ...good, serial: Buffer.alloc(16, 0x80) }, // would encode a negative INTEGER
    { ...good, serial: Buffer.concat([Buffer.from([0]), Buffer.alloc(15, 1)]) }, // not minimal DER
    { ...good, notBefore: day(2027), notAfter: day(2026) },
  ];
  for (const p of bad) {
    assert.throws(() => encodeTbsCertificate(profile.template(p), 'p256'), /serial|notBefore/);
    assert.throws(() => profile.encodeTbs(p, 'p256'), /serial|notBefore/);
  }
});
