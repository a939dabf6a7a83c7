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
import { integer, KEY_ALGORITHMS, sequence, signatureAlgorithmFor, type KeyAlgorithm } from '@fleetkey/protocol';

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

/** The byte length of one ECDSA signature half (r or s) for a curve algorithm. */
export function ecdsaHalfLength(algorithm: KeyAlgorithm): number {
  switch (algorithm) {
    case 'p256': return 32;
    case 'p384': return 48;
    case 'p521': return 66;
    default: throw new RangeError(`${algorithm} is not an ECDSA algorithm`);
  }
}

/**
 * Converts a raw ECDSA signature r‖s (PKCS#11 v2.40 §2.3.1, TPM plain format) to the DER
 * `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` X.509 carries (RFC 5480 §2.2 / RFC 3279 §2.2.3).
 */
export function ecdsaRawToDer(raw: Uint8Array, algorithm: KeyAlgorithm): Buffer {
  const half = ecdsaHalfLength(algorithm);
  if (raw.length !== 2 * half) throw new RangeError(`raw ECDSA signature is ${raw.length} bytes, expected ${2 * half}`);
  return sequence(integer(raw.subarray(0, half)), integer(raw.subarray(half)));
}
