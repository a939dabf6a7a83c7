// Cross-checks our DER certificate encoder against two independent parsers: @peculiar/x509 and
// node's crypto.X509Certificate (OpenSSL). Signatures, SKI/AKI chaining and every profile field.
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate as NodeX509, createHash, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  DeviceLeafProfile, FleetkeyError, caTemplate, decodeName, deviceIdFromCertificate, deviceLeafTemplate,
  findExtension, keyIdentifier, parseCertificate, signCertificate, subjectPublicKeyBits, tlsServerTemplate,
  verifyCertificateSignature, OID, type KeyAlgorithm,
} from '../../src/index.js';
import { ALL_ALGORITHMS, makeKey, type TestKey } from './fixtures.js';

x509.cryptoProvider.set(globalThis.crypto);

const serial = (): Buffer => {
  const s = randomBytes(16);
  s[0] = (s[0]! & 0x7f) | 0x01;
  return s;
};
const now = Date.UTC(2026, 0, 1);
const days = (n: number): Date => new Date(now + n * 86_400_000);

async function chain(rootAlg: KeyAlgorithm, caAlg: KeyAlgorithm) {
  const rootKey = makeKey(rootAlg);
  const caKey = makeKey(caAlg);
  const root = await signCertificate(
    caTemplate({ subject: [['O', 'Acme'], ['CN', 'fleetkey hub root']], spki: rootKey.spki, serial: serial(),
      notBefore: days(0), notAfter: days(3650) }), rootKey);
  const rootParsed = parseCertificate(root);
  const deviceCa = await signCertificate(
    caTemplate({ subject: [['O', 'Acme'], ['CN', 'fleetkey device CA']], spki: caKey.spki, serial: serial(),
      notBefore: days(0), notAfter: days(1825), pathLen: 0,
      issuer: { issuerName: rootParsed.subject, issuerSpki: rootKey.spki } }), rootKey);
  return { rootKey, caKey, root, deviceCa, caName: parseCertificate(deviceCa).subject };
}

async function leafFor(ca: { caKey: TestKey; caName: Buffer }, deviceKey: TestKey, deviceId: string): Promise<Buffer> {
  return signCertificate(deviceLeafTemplate({
    deviceId, spki: deviceKey.spki, serial: serial(), notBefore: days(0), notAfter: days(90),
    issuerName: ca.caName, issuerSpki: ca.caKey.spki,
    crlUrl: 'http://hub.example:8080/crl/device-ca.crl', ocspUrl: 'http://hub.example:8080/ocsp',
  }), ca.caKey);
}

test('leaves of every key type parse in node (OpenSSL) and chain to the device CA and root', async () => {
  const pki = await chain('p384', 'p256');
  const root = new NodeX509(pki.root);
  const deviceCa = new NodeX509(pki.deviceCa);
  assert.ok(root.verify(root.publicKey) && root.checkIssued(root));
  assert.ok(deviceCa.verify(root.publicKey) && deviceCa.checkIssued(root));
  assert.equal(deviceCa.ca, true);
  for (const algorithm of ALL_ALGORITHMS) {
    const leaf = new NodeX509(await leafFor(pki, makeKey(algorithm), `dev-${algorithm}`));
    assert.ok(leaf.verify(deviceCa.publicKey), `${algorithm} leaf signature`);
    assert.ok(leaf.checkIssued(deviceCa), `${algorithm} leaf issued by device CA`);
    assert.equal(leaf.ca, false);
    assert.equal(leaf.subject, `CN=dev-${algorithm}`);
    assert.equal(leaf.subjectAltName, `URI:urn:fleetkey:device:dev-${algorithm}`);
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.2']); // node reports the EKU here
  }
});

test('@peculiar/x509 reads exactly the device profile, and SKI/AKI chain', async () => {
  const pki = await chain('p521', 'ed25519');
  const deviceKey = makeKey('p256');
  const leaf = new x509.X509Certificate(await leafFor(pki, deviceKey, 'pump-17'));
  const ca = new x509.X509Certificate(pki.deviceCa);
  assert.ok(await leaf.verify({ publicKey: ca, signatureOnly: true }));
  assert.ok(await ca.verify({ publicKey: new x509.X509Certificate(pki.root), signatureOnly: true }));
  assert.equal(leaf.subject, 'CN=pump-17');
  assert.equal(leaf.issuer, 'O=Acme, CN=fleetkey device CA');
  const bc = leaf.getExtension(x509.BasicConstraintsExtension)!;
  assert.ok(bc.critical && !bc.ca && bc.pathLength === undefined);
  const ku = leaf.getExtension(x509.KeyUsagesExtension)!;
  assert.ok(ku.critical);
  assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature);
  assert.deepEqual([...leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages], ['1.3.6.1.5.5.7.3.2']);
  const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;
  assert.deepEqual(san.names.items.map((n) => [n.type, n.value]), [['url', 'urn:fleetkey:device:pump-17']]);
  const ski = leaf.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
  assert.equal(ski, createHash('sha1').update(subjectPublicKeyBits(deviceKey.spki)).digest('hex'));
  const caSki = ca.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
  assert.equal(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId, caSki);
  assert.equal(ca.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId,
    keyIdentifier(pki.rootKey.spki).toString('hex'));
  const caBc = ca.getExtension(x509.BasicConstraintsExtension)!;
  assert.ok(caBc.critical && caBc.ca && caBc.pathLength === 0);
  assert.equal(ca.getExtension(x509.KeyUsagesExtension)!.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  const aia = leaf.getExtension(x509.AuthorityInfoAccessExtension)!;
  assert.deepEqual(aia.ocsp.map((g) => g.value), ['http://hub.example:8080/ocsp']);
  const crl = leaf.getExtension(x509.CRLDistributionPointsExtension)!;
  assert.equal(crl.distributionPoints.length, 1);
  assert.equal(leaf.extensions.length, 8);
});

test('our own parser reads back what we wrote and verifies every CA key type', async () => {
  for (const caAlg of ALL_ALGORITHMS) {
    const pki = await chain(caAlg === 'rsa' ? 'p256' : caAlg, caAlg);
    const der = await leafFor(pki, makeKey('p256'), 'dev-1');
    const parsed = parseCertificate(der);
    assert.ok(await verifyCertificateSignature(parsed, pki.caKey.spki), caAlg);
    assert.equal(await verifyCertificateSignature(parsed, makeKey(caAlg).spki), false, `${caAlg} wrong key`);
    assert.equal(deviceIdFromCertificate(der), 'dev-1');
    assert.deepEqual(decodeName(parsed.issuer), [['O', 'Acme'], ['CN', 'fleetkey device CA']]);
    assert.equal(parsed.notAfter.getTime(), days(90).getTime());
    assert.ok(findExtension(parsed, OID.basicConstraints)?.critical);
  }
});

test('validity uses UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', async () => {
  const key = makeKey('p256');
  const der = await signCertificate(caTemplate({ subject: [['CN', 'long root']], spki: key.spki, serial: serial(),
    notBefore: new Date(Date.UTC(2049, 5, 1, 12, 0, 0, 750)), notAfter: new Date(Date.UTC(2051, 0, 1)) }), key);
  const node = new NodeX509(der);
  assert.equal(new Date(node.validFrom).getTime(), Date.UTC(2049, 5, 1, 12, 0, 0));
  assert.equal(new Date(node.validTo).getTime(), Date.UTC(2051, 0, 1));
  assert.ok(node.verify(node.publicKey));
});

test('identity confusion: a certificate whose CN and SAN URI disagree names no device', async () => {
  const pki = await chain('p256', 'p256');
  const profile = new DeviceLeafProfile({ issuerName: pki.caName, issuerSpki: pki.caKey.spki });
  const good = profile.template({ deviceId: 'dev-a', spki: makeKey('p256').spki, serial: serial(), notBefore: days(0), notAfter: days(1) });
  const forged = await signCertificate({ ...good, subjectName: deviceLeafTemplate({ ...good, deviceId: 'dev-b',
    issuerName: pki.caName, issuerSpki: pki.caKey.spki }).subjectName }, pki.caKey);
  assert.throws(() => deviceIdFromCertificate(forged), (e) => e instanceof FleetkeyError && e.code === 'CERT_INVALID');
  const tls = await signCertificate(tlsServerTemplate({ dnsNames: ['hub.example'], ips: ['127.0.0.1', '::1'],
    spki: makeKey('p256').spki, serial: serial(), notBefore: days(0), notAfter: days(7),
    issuerName: pki.caName, issuerSpki: pki.caKey.spki }), pki.caKey);
  assert.throws(() => deviceIdFromCertificate(tls), (e) => e instanceof FleetkeyError && e.code === 'CERT_INVALID');
  assert.equal(new NodeX509(tls).subjectAltName, 'DNS:hub.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  assert.throws(() => deviceIdFromCertificate(Buffer.from('3000', 'hex')), (e) => e instanceof FleetkeyError && e.code === 'CERT_INVALID');
});

test('serials must be 8..20 octets with a first octet of 0x01..0x7f', async () => {
  const key = makeKey('p256');
  for (const bad of [Buffer.alloc(7, 1), Buffer.alloc(21, 1), Buffer.from('80' + '11'.repeat(15), 'hex'), Buffer.from('00' + '11'.repeat(15), 'hex')]) {
    await assert.rejects(signCertificate(caTemplate({ subject: [['CN', 'x']], spki: key.spki, serial: bad,
      notBefore: days(0), notAfter: days(1) }), key), /serial/);
  }
});
