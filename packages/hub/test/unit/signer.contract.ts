// The conformance suite every Signer implementation runs (software now, PKCS#11 later).
// A skipped case must be named with its reason by the caller.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import {
  DerReader, Tag, caTemplate, describeSpki, parseCertificate, readUnsigned, signCertificate,
  signatureAlgorithmFor, verifyCertificateSignature, type KeyAlgorithm,
} from '@fleetkey/protocol';
import type { Signer } from '../../src/ca/signer.js';

/** Checks an ECDSA signature is a strict DER Ecdsa-Sig-Value (RFC 5480 §2.2): SEQUENCE { r, s }. */
function assertEcdsaDer(signature: Buffer): void {
  const outer = new DerReader(signature);
  const seq = outer.enter(Tag.SEQUENCE);
  outer.end();
  assert.ok(readUnsigned(seq.expect(Tag.INTEGER)) > 0n);
  assert.ok(readUnsigned(seq.expect(Tag.INTEGER)) > 0n);
  seq.end();
}

export function runSignerContract(name: string, algorithms: readonly KeyAlgorithm[], makeSigner: (algorithm: KeyAlgorithm) => Promise<Signer>): void {
  for (const algorithm of algorithms) {
    test(`${name} (${algorithm}): spki describes a key of the declared algorithm`, async () => {
      const signer = await makeSigner(algorithm);
      assert.equal(signer.algorithm, algorithm);
      assert.equal(describeSpki(signer.spki).algorithm, algorithm);
    });

    test(`${name} (${algorithm}): signatures verify with node:crypto in X.509 form`, async () => {
      const signer = await makeSigner(algorithm);
      const data = Buffer.from(`fleetkey signer contract ${algorithm}`);
      const signature = await signer.sign(data);
      const key = createPublicKey({ key: signer.spki, format: 'der', type: 'spki' });
      assert.ok(verify(signatureAlgorithmFor(algorithm).hash, data, key, signature));
      assert.ok(!verify(signatureAlgorithmFor(algorithm).hash, Buffer.concat([data, Buffer.from('x')]), key, signature));
      if (algorithm.startsWith('p')) assertEcdsaDer(signature);
      if (algorithm === 'ed25519') assert.equal(signature.length, 64);
    });

    test(`${name} (${algorithm}): concurrent signatures all verify`, async () => {
      const signer = await makeSigner(algorithm);
      const data = Array.from({ length: 16 }, (_, i) => Buffer.from(`message ${i}`));
      const signatures = await Promise.all(data.map((d) => signer.sign(d)));
      const key = createPublicKey({ key: signer.spki, format: 'der', type: 'spki' });
      signatures.forEach((s, i) => assert.ok(verify(signatureAlgorithmFor(algorithm).hash, data[i]!, key, s)));
    });

    test(`${name} (${algorithm}): a self-signed CA certificate verifies under its own key`, async () => {
      const signer = await makeSigner(algorithm);
      const der = await signCertificate(caTemplate({
        subject: [['CN', `contract ${algorithm}`]], spki: signer.spki, serial: Buffer.from('0102030405060708', 'hex'),
        notBefore: new Date(Date.UTC(2026, 0, 1)), notAfter: new Date(Date.UTC(2027, 0, 1)),
      }), signer);
      assert.ok(await verifyCertificateSignature(parseCertificate(der), signer.spki));
    });
  }
}
