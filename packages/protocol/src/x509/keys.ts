/**
 * Subject public keys: what fleetkey accepts, and how it names, pins and verifies them.
 *
 * Invariants:
 * - `describeSpki` parses the SubjectPublicKeyInfo itself (RFC 5280 §4.1.2.7) and accepts only:
 *   id-ecPublicKey with a namedCurve of P-256/P-384/P-521 and an uncompressed point of the right
 *   length (RFC 5480 §2.1.1, §2.2); Ed25519 with absent parameters and 32 key bytes (RFC 8410 §3,
 *   §4); rsaEncryption with NULL parameters (RFC 8017 Appendix C), 2048..8192-bit modulus and an odd
 *   exponent of at least 65537. Anything else is KEY_NOT_ALLOWED; broken DER is a DerError.
 * - Compressed EC points are refused so that one key has one SPKI encoding and one pin.
 * - The curve check happens on our parse; node's createPublicKey is used afterwards only to get a
 *   KeyObject (and so also checks that an EC point lies on its curve).
 */
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { FleetkeyError } from '../errors.js';
import { DerReader, Tag, readNull, readOctetAlignedBits, readOid, readIntegerBytes, DerError, type DerElement } from '../der/index.js';
import { OID } from './oids.js';

export type KeyAlgorithm = 'p256' | 'p384' | 'p521' | 'ed25519' | 'rsa';
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['p256', 'p384', 'p521', 'ed25519', 'rsa'];

export interface KeyDescription {
  readonly algorithm: KeyAlgorithm;
  /** Node/OpenSSL curve name for EC keys: prime256v1, secp384r1, secp521r1. */
  readonly curve?: string;
  readonly rsaBits?: number;
  readonly rsaExponent?: bigint;
}

export type EcCurveAlgorithm = 'p256' | 'p384' | 'p521';
export type EcdsaHash = 'sha256' | 'sha384' | 'sha512';

const CURVES: Readonly<Record<string, { algorithm: EcCurveAlgorithm; curve: string; fieldBytes: number }>> = {
  [OID.p256]: { algorithm: 'p256', curve: 'prime256v1', fieldBytes: 32 },
  [OID.p384]: { algorithm: 'p384', curve: 'secp384r1', fieldBytes: 48 },
  [OID.p521]: { algorithm: 'p521', curve: 'secp521r1', fieldBytes: 66 },
};

export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 8192;

function notAllowed(reason: string): FleetkeyError {
  return new FleetkeyError('KEY_NOT_ALLOWED', { cause: new Error(reason) });
}

/** Key material alongside the description, for a fast JWK import. */
interface InspectedKey {
  readonly description: KeyDescription;
  readonly jwk: JsonWebKey;
}

const b64u = (b: Buffer): string => b.toString('base64url');

function describeEc(params: DerElement | undefined, key: Buffer): InspectedKey {
  // RFC 5480 §2.1.1: only namedCurve; implicitCurve and specifiedCurve MUST NOT be used.
  if (params === undefined || params.tag !== Tag.OID) throw notAllowed('EC parameters are not a named curve');
  const named = CURVES[readOid(params)];
  if (named === undefined) throw notAllowed('EC curve not allowed');
  if (key[0] !== 0x04 || key.length !== 1 + 2 * named.fieldBytes) throw notAllowed('EC point is not uncompressed');
  const n = named.fieldBytes;
  const crv = ({ p256: 'P-256', p384: 'P-384', p521: 'P-521' } as const)[named.algorithm as 'p256'];
  return {
    description: { algorithm: named.algorithm, curve: named.curve },
    jwk: { kty: 'EC', crv, x: b64u(key.subarray(1, 1 + n)), y: b64u(key.subarray(1 + n)) },
  };
}

function bitLength(bytes: Buffer): number {
  const first = bytes[0] ?? 0;
  return first === 0 ? 0 : (bytes.length - 1) * 8 + (32 - Math.clz32(first));
}

function describeRsa(params: DerElement | undefined, key: Buffer): InspectedKey {
  if (params === undefined) throw notAllowed('rsaEncryption without NULL parameters');
  readNull(params); // RFC 8017 Appendix C: parameters MUST be NULL
  const reader = new DerReader(key, 2);
  const inner = reader.enter(Tag.SEQUENCE);
  reader.end();
  const modulus = readIntegerBytes(inner.next());
  const exponent = readIntegerBytes(inner.next());
  inner.end();
  if (modulus.negative || exponent.negative) throw new DerError('negative RSA number');
  const rsaBits = bitLength(modulus.bytes);
  if (rsaBits < MIN_RSA_BITS || rsaBits > MAX_RSA_BITS) throw notAllowed(`RSA modulus of ${rsaBits} bits`);
  if (exponent.bytes.length > 32) throw notAllowed('RSA exponent too large');
  const rsaExponent = BigInt('0x' + exponent.bytes.toString('hex'));
  if (rsaExponent < 65537n || rsaExponent % 2n === 0n) throw notAllowed('RSA exponent not allowed');
  return {
    description: { algorithm: 'rsa', rsaBits, rsaExponent },
    jwk: { kty: 'RSA', n: b64u(modulus.bytes), e: b64u(exponent.bytes) },
  };
}

function inspectSpki(spkiDer: Uint8Array): InspectedKey {
  const outer = new DerReader(spkiDer);
  const spki = outer.enter(Tag.SEQUENCE);
  outer.end();
  const algorithm = spki.enter(Tag.SEQUENCE);
  const algorithmOid = readOid(algorithm.next());
  const params = algorithm.done ? undefined : algorithm.next();
  algorithm.end();
  const key = readOctetAlignedBits(spki.expect(Tag.BIT_STRING));
  spki.end();
  switch (algorithmOid) {
    case OID.ecPublicKey:
      return describeEc(params, key);
    case OID.ed25519:
      if (params !== undefined) throw notAllowed('Ed25519 with parameters'); // RFC 8410 §3
      if (key.length !== 32) throw notAllowed('Ed25519 key is not 32 bytes');
      return { description: { algorithm: 'ed25519' }, jwk: { kty: 'OKP', crv: 'Ed25519', x: b64u(key) } };
    case OID.rsaEncryption:
      return describeRsa(params, key);
    default:
      throw notAllowed('public key algorithm not allowed');
  }
}

/** Field size per curve, from the one curve table above. */
const FIELD_BYTES = Object.fromEntries(Object.values(CURVES).map((c) => [c.algorithm, c.fieldBytes])) as Readonly<Record<EcCurveAlgorithm, number>>;

export const isEcAlgorithm = (algorithm: KeyAlgorithm): algorithm is EcCurveAlgorithm =>
  algorithm === 'p256' || algorithm === 'p384' || algorithm === 'p521';

/**
 * The uncompressed point (0x04 ‖ x ‖ y) of an EC SPKI that `describeSpki` accepted as `algorithm`:
 * the subjectPublicKey BIT STRING is the SPKI's last element and holds exactly that point.
 */
export function ecPublicPoint(spkiDer: Buffer, algorithm: EcCurveAlgorithm): Buffer {
  const point = spkiDer.subarray(spkiDer.length - (1 + 2 * FIELD_BYTES[algorithm]));
  if (point[0] !== 0x04) throw notAllowed('EC point is not uncompressed');
  return point;
}

/** Parses and checks a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7). */
export function describeSpki(spkiDer: Uint8Array): KeyDescription {
  return inspectSpki(spkiDer).description;
}

/**
 * A node KeyObject for an allowed DER SPKI; an invalid key (a point off the curve) is
 * KEY_NOT_ALLOWED. OpenSSL 3's DER decoder costs ~150 µs per key here, its JWK import ~10 µs for
 * RSA/Ed25519 and ~90 µs for P-256 (but slower for P-384/P-521), so the import path depends on the
 * algorithm. Both paths build the same key from the same checked numbers.
 */
export function createPublicKeyFromSpki(spkiDer: Uint8Array): KeyObject {
  const { description, jwk } = inspectSpki(spkiDer);
  try {
    if (description.algorithm === 'p384' || description.algorithm === 'p521') {
      return createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
    }
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (cause) {
    throw new FleetkeyError('KEY_NOT_ALLOWED', { cause });
  }
}

export interface SignatureAlgorithm {
  readonly oid: string;
  /** Hash name for node:crypto, or null for Ed25519 (RFC 8032 PureEdDSA). */
  readonly hash: 'sha256' | 'sha384' | 'sha512' | null;
  /** Whether the AlgorithmIdentifier carries NULL parameters (RSA) or none (ECDSA, Ed25519). */
  readonly nullParams: boolean;
}

/** The signature algorithm fleetkey uses when a key of `algorithm` signs (RFC 5758 §3.2, RFC 8410 §6). */
export function signatureAlgorithmFor(algorithm: KeyAlgorithm): SignatureAlgorithm {
  switch (algorithm) {
    case 'p256':
      return { oid: OID.ecdsaWithSha256, hash: 'sha256', nullParams: false };
    case 'p384':
      return { oid: OID.ecdsaWithSha384, hash: 'sha384', nullParams: false };
    case 'p521':
      return { oid: OID.ecdsaWithSha512, hash: 'sha512', nullParams: false };
    case 'ed25519':
      return { oid: OID.ed25519, hash: null, nullParams: false };
    case 'rsa':
      return { oid: OID.sha256WithRSAEncryption, hash: 'sha256', nullParams: true };
  }
}

export function spkiSha256(spkiDer: Uint8Array): Buffer {
  return createHash('sha256').update(spkiDer).digest();
}

const PIN_PREFIX = 'sha256//';
const PIN_RE = /^sha256\/\/[A-Za-z0-9+/]{43}=$/;

/** curl's --pinnedpubkey form: `sha256//` + base64(SHA-256(SPKI DER)). */
export function computePin(spkiDer: Uint8Array): string {
  return PIN_PREFIX + spkiSha256(spkiDer).toString('base64');
}

/** Validates a pin string and returns the 32-byte hash; VALIDATION_FAILED when malformed. */
export function parsePin(pin: string): Buffer {
  if (!PIN_RE.test(pin)) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'pin' } });
  const hash = Buffer.from(pin.slice(PIN_PREFIX.length), 'base64');
  // Canonical base64 only: the 43rd character must leave the last 2 bits zero.
  if (hash.length !== 32 || PIN_PREFIX + hash.toString('base64') !== pin) {
    throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'pin' } });
  }
  return hash;
}
