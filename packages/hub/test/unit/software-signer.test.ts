import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { FleetkeyError, KEY_ALGORITHMS } from '@fleetkey/protocol';
import { SoftwareSigner } from '../../src/ca/software-signer.js';
import type { SecretSealer } from '../../src/secrets/sealer.js';
import { runSignerContract } from './signer.contract.js';

/** Test-local AES-256-GCM sealer (the hub's real one lives in secrets/). */
class TestSealer implements SecretSealer {
  readonly #key = randomBytes(32);
  seal(plain: Buffer, aad: string): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#key, iv).setAAD(Buffer.from(aad));
    const ct = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), ct]);
  }
  open(sealed: Buffer, aad: string): Buffer {
    try {
      const d = createDecipheriv('aes-256-gcm', this.#key, sealed.subarray(0, 12)).setAAD(Buffer.from(aad));
      d.setAuthTag(sealed.subarray(12, 28));
      return Buffer.concat([d.update(sealed.subarray(28)), d.final()]);
    } catch (cause) {
      throw new FleetkeyError('SECRET_UNREADABLE', { cause });
    }
  }
}

const signers = new Map<string, SoftwareSigner>();
runSignerContract('SoftwareSigner', KEY_ALGORITHMS, async (algorithm) => {
  let signer = signers.get(algorithm);
  if (signer === undefined) {
    signer = SoftwareSigner.generate(algorithm); // RSA-3072 keygen is slow: make one per algorithm
    signers.set(algorithm, signer);
  }
  return signer;
});

runSignerContract('SoftwareSigner reopened from its sealed PKCS#8', ['p256', 'ed25519'], async (algorithm) => {
  const sealer = new TestSealer();
  return SoftwareSigner.openSealed(SoftwareSigner.generate(algorithm).seal(sealer, 'fleetkey:ca-key:test'), sealer, 'fleetkey:ca-key:test');
});

test('key swap: a sealed CA key opened under another purpose is SECRET_UNREADABLE', () => {
  const sealer = new TestSealer();
  const sealed = SoftwareSigner.generate('p256').seal(sealer, 'fleetkey:ca-key:device-ca');
  assert.throws(() => SoftwareSigner.openSealed(sealed, sealer, 'fleetkey:ca-key:root'),
    (e) => e instanceof FleetkeyError && e.code === 'SECRET_UNREADABLE');
  const tampered = Buffer.from(sealed);
  tampered[tampered.length - 1]! ^= 1;
  assert.throws(() => SoftwareSigner.openSealed(tampered, sealer, 'fleetkey:ca-key:device-ca'),
    (e) => e instanceof FleetkeyError && e.code === 'SECRET_UNREADABLE');
});

test('a reopened key keeps its public key and algorithm', () => {
  const sealer = new TestSealer();
  const original = SoftwareSigner.generate('p384');
  const reopened = SoftwareSigner.openSealed(original.seal(sealer, 'a'), sealer, 'a');
  assert.ok(reopened.spki.equals(original.spki));
  assert.equal(reopened.algorithm, 'p384');
});
