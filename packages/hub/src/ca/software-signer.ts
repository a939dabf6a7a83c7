/**
 * A CA key held in process memory as a node KeyObject.
 *
 * Invariants:
 * - At rest the key is PKCS#8 DER sealed by a `SecretSealer` with associated data naming its
 *   purpose (e.g. `fleetkey:ca-key:device-ca`), so a sealed key cannot be swapped for another.
 * - The algorithm is derived from the key itself (`describeSpki` of its public half), never
 *   from a caller's label, so the signature algorithm always matches the key.
 * - Signing runs on the libuv thread pool (`crypto.sign` with a callback): one hub process
 *   spreads issuance over all cores.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as signCallback, type KeyObject } from 'node:crypto';
import { FleetkeyError, describeSpki, signatureAlgorithmFor, type KeyAlgorithm } from '@fleetkey/protocol';
import type { SecretSealer } from '../secrets/sealer.js';
import type { Signer } from './signer.js';

export function generatePrivateKey(algorithm: KeyAlgorithm): KeyObject {
  switch (algorithm) {
    case 'p256':
    case 'p384':
    case 'p521': {
      const namedCurve = { p256: 'P-256', p384: 'P-384', p521: 'P-521' }[algorithm];
      return generateKeyPairSync('ec', { namedCurve }).privateKey;
    }
    case 'ed25519':
      return generateKeyPairSync('ed25519').privateKey;
    case 'rsa':
      return generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
  }
}

export class SoftwareSigner implements Signer {
  readonly algorithm: KeyAlgorithm;
  readonly spki: Buffer;
  readonly #key: KeyObject;
  readonly #hash: string | null;

  private constructor(key: KeyObject) {
    if (key.type !== 'private') throw new FleetkeyError('CONFIG_INVALID', { cause: new Error('not a private key') });
    this.#key = key;
    this.spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
    this.algorithm = describeSpki(this.spki).algorithm;
    this.#hash = signatureAlgorithmFor(this.algorithm).hash;
  }

  static generate(algorithm: KeyAlgorithm): SoftwareSigner {
    return new SoftwareSigner(generatePrivateKey(algorithm));
  }

  static fromPrivateKey(key: KeyObject): SoftwareSigner {
    return new SoftwareSigner(key);
  }

  static fromPkcs8(der: Buffer): SoftwareSigner {
    return new SoftwareSigner(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  }

  /** Opens a key sealed by `seal`; SECRET_UNREADABLE on a wrong master key, tampering or wrong `aad`. */
  static openSealed(sealed: Buffer, sealer: SecretSealer, aad: string): SoftwareSigner {
    const pkcs8 = sealer.open(sealed, aad);
    try {
      return SoftwareSigner.fromPkcs8(pkcs8);
    } finally {
      pkcs8.fill(0);
    }
  }

  /** PKCS#8 DER of the key, sealed for storage. */
  seal(sealer: SecretSealer, aad: string): Buffer {
    const pkcs8 = this.#key.export({ format: 'der', type: 'pkcs8' });
    try {
      return sealer.seal(pkcs8, aad);
    } finally {
      pkcs8.fill(0);
    }
  }

  sign(data: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      signCallback(this.#hash, data, this.#key, (err, signature) => (err === null ? resolve(signature) : reject(err)));
    });
  }
}
