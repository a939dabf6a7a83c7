/**
 * Software key parameters per algorithm for node:crypto: key generation and the signature form
 * certificates and CSRs use. Shared by software-backed key stores (file kind) and by tests.
 *
 * Invariants:
 * - ECDSA signatures are DER `ECDSA-Sig-Value` with the hash matched to the curve
 *   (RFC 5758 §3.2): P-256/SHA-256, P-384/SHA-384, P-521/SHA-512.
 * - Ed25519 signs the message itself, no pre-hash (RFC 8410 §6): the digest argument is null.
 * - RSA is PKCS#1 v1.5 with SHA-256 and at least 2048-bit moduli (the hub's key policy).
 */
import { generateKeyPair, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { KEY_ALGORITHMS, signatureAlgorithmFor, type KeyAlgorithm } from '@fleetkey/protocol';

const generateKeyPairAsync = promisify(generateKeyPair);

const CURVES = { p256: 'P-256', p384: 'P-384', p521: 'P-521' } as const;
const RSA_MODULUS_BITS = 3072;

export function isKeyAlgorithm(value: unknown): value is KeyAlgorithm {
  return typeof value === 'string' && (KEY_ALGORITHMS as readonly string[]).includes(value);
}

/** Generates a private key for `algorithm` in memory. */
export async function generatePrivateKey(algorithm: KeyAlgorithm): Promise<KeyObject> {
  switch (algorithm) {
    case 'p256':
    case 'p384':
    case 'p521':
      return (await generateKeyPairAsync('ec', { namedCurve: CURVES[algorithm] })).privateKey;
    case 'ed25519':
      return (await generateKeyPairAsync('ed25519')).privateKey;
    case 'rsa':
      return (await generateKeyPairAsync('rsa', { modulusLength: RSA_MODULUS_BITS })).privateKey;
  }
}

/** The node:crypto digest name used with `algorithm` (null: Ed25519 signs the message). */
export function digestFor(algorithm: KeyAlgorithm): string | null {
  return signatureAlgorithmFor(algorithm).hash; // the one table of signature algorithms, in protocol
}

/** Which algorithm a node:crypto key is, or undefined when fleetkey does not support it. */
export function algorithmOfKey(key: KeyObject): KeyAlgorithm | undefined {
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = details?.namedCurve;
      if (curve === 'prime256v1' || curve === 'P-256') return 'p256';
      if (curve === 'secp384r1' || curve === 'P-384') return 'p384';
      if (curve === 'secp521r1' || curve === 'P-521') return 'p521';
      return undefined;
    }
    case 'ed25519':
      return 'ed25519';
    case 'rsa':
      return (details?.modulusLength ?? 0) >= 2048 ? 'rsa' : undefined;
    default:
      return undefined;
  }
}

/** Signs in X.509 signature form (DER ECDSA, raw Ed25519, PKCS#1 v1.5 RSA). */
export function signWithKey(key: KeyObject, algorithm: KeyAlgorithm, data: Buffer): Buffer {
  // node:crypto's default dsaEncoding is 'der', the form X.509 and PKCS#10 carry.
  return cryptoSign(digestFor(algorithm), data, { key, dsaEncoding: 'der' });
}
