// CRL encoder (x509/crl.ts) cross-checked with @peculiar/x509 as an independent parser and
// signature verifier, plus the RFC 5280 §5 invariants the encoder enforces.
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  CRL_OIDS, DerError, DerReader, Tag, readSingle, encodeName, encodeTbsCertList, keyIdentifier, parseCrl, signCrl,
  type CertificateSigner, type CrlTemplate, type KeyAlgorithm,
} from '../../src/index.js';

x509.cryptoProvider.set(globalThis.crypto);

function signerFor(algorithm: KeyAlgorithm): { signer: CertificateSigner; spki: Buffer; publicKey: KeyObject } {
  const pair = algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const hash = algorithm === 'ed25519' ? null : 'sha256';
  return {
    signer: { algorithm, sign: async (data) => sign(hash, data, pair.privateKey) },
    spki: pair.publicKey.export({ type: 'spki', format: 'der' }),
    publicKey: pair.publicKey,
  };
}

const thisUpdate = new Date(Date.UTC(2026, 5, 1, 12, 0, 0));
const serial = (n: number): Buffer => Buffer.from(`${n.toString(16).padStart(2, '0')}0102030405060708090a0b0c0d0e0f`, 'hex');

function template(spki: Buffer, over: Partial<CrlTemplate> = {}): CrlTemplate {
  return {
    issuerName: encodeName([['CN', 'fleetkey device CA'], ['O', 'fleetkey']]), issuerSpki: spki, thisUpdate,
    nextUpdate: new Date(thisUpdate.getTime() + 7 * 86_400_000), crlNumber: 42n,
    revoked: [
      { serial: serial(0x33), revocationDate: new Date(thisUpdate.getTime() - 60_000), reason: 'keyCompromise' },
      { serial: serial(0x11), revocationDate: new Date(thisUpdate.getTime() - 3_600_000), reason: 'unspecified' },
      { serial: serial(0x22), revocationDate: thisUpdate, reason: 'cessationOfOperation' },
    ],
    ...over,
  };
}

for (const algorithm of ['p256', 'ed25519'] as const) {
  test(`${algorithm} CRL: @peculiar/x509 reads v2, issuer, times, entries, reasons, cRLNumber, AKI and verifies the signature`, async () => {
    const { signer, spki, publicKey } = signerFor(algorithm);
    const der = await signCrl(template(spki), signer);
    const crl = new x509.X509Crl(der);
    assert.equal(crl.version, 1); // v2
    assert.equal(crl.issuer, 'CN=fleetkey device CA, O=fleetkey');
    assert.equal(crl.thisUpdate.getTime(), thisUpdate.getTime());
    assert.equal(crl.nextUpdate?.getTime(), thisUpdate.getTime() + 7 * 86_400_000);
    assert.deepEqual(crl.entries.map((e) => [e.serialNumber.toLowerCase(), e.reason]), [
      [serial(0x11).toString('hex'), undefined], // unspecified: no reasonCode extension (RFC 5280 §5.3.1)
      [serial(0x22).toString('hex'), x509.X509CrlReason.cessationOfOperation],
      [serial(0x33).toString('hex'), x509.X509CrlReason.keyCompromise],
    ]);
    const number = crl.getExtension(CRL_OIDS.cRLNumber);
    assert.ok(number && !number.critical);
    assert.equal(Buffer.from(number.value).toString('hex'), '02012a'); // INTEGER 42
    const aki = crl.getExtension<x509.AuthorityKeyIdentifierExtension>(x509.AuthorityKeyIdentifierExtension);
    assert.equal(aki?.keyId, keyIdentifier(spki).toString('hex'));
    const ours = parseCrl(der);
    assert.ok(verify(algorithm === 'ed25519' ? null : 'sha256', ours.tbs, publicKey, ours.signature), 'signature verifies with node:crypto');
    if (algorithm === 'p256') assert.ok(await crl.verify({ publicKey: (await new x509.PublicKey(spki).export()) }), 'signature verifies with @peculiar/x509');
  });
}

test('our reader round-trips what the encoder wrote (number, AKI, sorted entries, reasons)', async () => {
  const { signer, spki } = signerFor('p256');
  const parsed = parseCrl(await signCrl(template(spki, { crlNumber: (1n << 100n) + 7n }), signer));
  assert.equal(parsed.crlNumber, (1n << 100n) + 7n);
  assert.deepEqual(parsed.authorityKeyId, keyIdentifier(spki));
  assert.deepEqual(parsed.entries.map((e) => e.reason), ['unspecified', 'cessationOfOperation', 'keyCompromise']);
  assert.equal(parsed.nextUpdate?.getTime(), thisUpdate.getTime() + 7 * 86_400_000);
});

test('an empty CRL omits revokedCertificates entirely (RFC 5280 §5.1.2.6) and still has number and nextUpdate', async () => {
  const { spki } = signerFor('p256');
  const tbs = encodeTbsCertList(template(spki, { revoked: [] }), 'p256');
  const parsed = new x509.X509Crl(await signCrl(template(spki, { revoked: [] }), signerFor('p256').signer));
  assert.equal(parsed.entries.length, 0);
  assert.ok(parsed.nextUpdate);
  // version, signature, issuer, thisUpdate, nextUpdate, [0] extensions: no SEQUENCE between nextUpdate and [0].
  const fields: number[] = [];
  for (const r = DerReader.of(readSingle(tbs, Tag.SEQUENCE)); !r.done;) fields.push(r.next().tag);
  assert.deepEqual(fields, [Tag.INTEGER, Tag.SEQUENCE, Tag.SEQUENCE, Tag.UTC_TIME, Tag.UTC_TIME, 0xa0]);
});

test('a revocation dated after thisUpdate is refused (revocationDate ≤ thisUpdate)', () => {
  const { spki } = signerFor('p256');
  const late = template(spki, { revoked: [{ serial: serial(1), revocationDate: new Date(thisUpdate.getTime() + 1000), reason: 'superseded' }] });
  assert.throws(() => encodeTbsCertList(late, 'p256'), DerError);
});

test('nextUpdate must be after thisUpdate; a negative cRLNumber is refused', () => {
  const { spki } = signerFor('p256');
  assert.throws(() => encodeTbsCertList(template(spki, { nextUpdate: thisUpdate }), 'p256'), DerError);
  assert.throws(() => encodeTbsCertList(template(spki, { crlNumber: -1n }), 'p256'), DerError);
  assert.throws(() => encodeTbsCertList(template(spki, { crlNumber: 1n << 160n }), 'p256'), DerError);
});

test('times from 2050 are GeneralizedTime (RFC 5280 §5.1.2.4), and the reader accepts them', async () => {
  const { signer, spki } = signerFor('p256');
  const later = new Date(Date.UTC(2050, 0, 2));
  const der = await signCrl(template(spki, { thisUpdate: later, nextUpdate: new Date(later.getTime() + 3_600_000), revoked: [] }), signer);
  assert.ok(der.includes(Buffer.from('20500102000000Z', 'latin1')));
  assert.equal(parseCrl(der).thisUpdate.getTime(), later.getTime());
});
