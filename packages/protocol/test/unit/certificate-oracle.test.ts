// Byte-for-byte oracle: for the same inputs, @peculiar/x509 (a general ASN.1 library) and our
// fixed-profile encoder must produce the identical TBSCertificate. DER is canonical, so any
// difference is a bug in one of them (ADR 0002).
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  caTemplate, deviceLeafTemplate, encodeName, encodeTbsCertificate, keyIdentifier, parseCertificate, tlsServerTemplate,
  type KeyAlgorithm,
} from '../../src/index.js';

x509.cryptoProvider.set(globalThis.crypto);

const WEBCRYPTO: Partial<Record<KeyAlgorithm, webcrypto.EcKeyGenParams | webcrypto.Algorithm | webcrypto.RsaHashedKeyGenParams>> = {
  p256: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as webcrypto.EcKeyGenParams,
  p384: { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as webcrypto.EcKeyGenParams,
  ed25519: { name: 'Ed25519' },
  rsa: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as webcrypto.RsaHashedKeyGenParams,
};

async function keys(algorithm: KeyAlgorithm): Promise<{ pair: webcrypto.CryptoKeyPair; spki: Buffer }> {
  const pair = (await webcrypto.subtle.generateKey(WEBCRYPTO[algorithm]!, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  return { pair, spki: Buffer.from(await webcrypto.subtle.exportKey('spki', pair.publicKey)) };
}

const serial = Buffer.from('1102030405060708090a0b0c0d0e0f10', 'hex');
const notBefore = new Date(Date.UTC(2026, 0, 1));
const notAfter = new Date(Date.UTC(2050, 3, 1)); // also exercises GeneralizedTime

async function libraryTbs(caAlg: KeyAlgorithm, ca: webcrypto.CryptoKeyPair, subject: Buffer, issuer: Buffer, publicKey: webcrypto.CryptoKey,
  extensions: x509.Extension[]): Promise<Buffer> {
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial.toString('hex'), issuer: new x509.Name(issuer), subject: new x509.Name(subject),
    notBefore, notAfter, signingAlgorithm: WEBCRYPTO[caAlg]!, publicKey, signingKey: ca.privateKey, extensions,
  });
  return parseCertificate(Buffer.from(cert.rawData)).tbs;
}

for (const caAlg of ['p256', 'p384', 'ed25519', 'rsa'] as const) {
  test(`device leaf TBSCertificate is byte-identical to @peculiar/x509's (${caAlg} CA)`, async () => {
    const ca = await keys(caAlg);
    const device = await keys('p256');
    const issuerName = encodeName([['O', 'Acme'], ['CN', 'fleetkey device CA']]);
    const ours = deviceLeafTemplate({ deviceId: 'dev-1', spki: device.spki, serial, notBefore, notAfter, issuerName,
      issuerSpki: ca.spki, crlUrl: 'http://hub.example/crl', ocspUrl: 'http://hub.example/ocsp' });
    const theirs = await libraryTbs(caAlg, ca.pair, ours.subjectName, issuerName, device.pair.publicKey, [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      await x509.SubjectKeyIdentifierExtension.create(device.pair.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'urn:fleetkey:device:dev-1' }]),
      new x509.AuthorityKeyIdentifierExtension(keyIdentifier(ca.spki).toString('hex')),
      new x509.CRLDistributionPointsExtension(['http://hub.example/crl']),
      new x509.AuthorityInfoAccessExtension({ ocsp: ['http://hub.example/ocsp'] }),
    ]);
    assert.equal(encodeTbsCertificate(ours, caAlg).toString('hex'), theirs.toString('hex'));
  });
}

test('CA and TLS server TBSCertificates are byte-identical to @peculiar/x509\'s', async () => {
  const root = await keys('p384');
  const ours = caTemplate({ subject: [['O', 'Acme'], ['CN', 'fleetkey hub root']], spki: root.spki, serial, notBefore, notAfter, pathLen: 0 });
  const theirs = await libraryTbs('p384', root.pair, ours.subjectName, ours.subjectName, root.pair.publicKey, [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(root.pair.publicKey),
    new x509.AuthorityKeyIdentifierExtension(keyIdentifier(root.spki).toString('hex')),
  ]);
  assert.equal(encodeTbsCertificate(ours, 'p384').toString('hex'), theirs.toString('hex'));

  const server = await keys('p256');
  const tls = tlsServerTemplate({ dnsNames: ['hub.local'], ips: ['10.0.0.2', 'fd00::2'], spki: server.spki, serial, notBefore,
    notAfter, issuerName: ours.subjectName, issuerSpki: root.spki });
  const theirsTls = await libraryTbs('p384', root.pair, tls.subjectName, ours.subjectName, server.pair.publicKey, [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    await x509.SubjectKeyIdentifierExtension.create(server.pair.publicKey),
    new x509.AuthorityKeyIdentifierExtension(keyIdentifier(root.spki).toString('hex')),
    new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'hub.local' }, { type: 'ip', value: '10.0.0.2' }, { type: 'ip', value: 'fd00::2' }]),
  ]);
  assert.equal(encodeTbsCertificate(tls, 'p384').toString('hex'), theirsTls.toString('hex'));
});
