/**
 * Signature algorithms that fleetkey accepts on CSRs and certificates, and their verification.
 *
 * Invariants:
 * - Allowed: ecdsa-with-SHA256/384/512 (RFC 5758 §3.2), Ed25519 (RFC 8410 §6),
 *   sha256/384/512WithRSAEncryption (RFC 8017 A.2.4). No SHA-1, no MD5, no RSA-PSS.
 *   Anything else is SIGNATURE_ALGORITHM_NOT_ALLOWED.
 * - Parameters: absent for ECDSA (RFC 5758 §3.2) and Ed25519 (RFC 8410 §3); NULL or absent for
 *   RSA (RFC 4055 §5 says implementations MUST accept both).
 * - The signature algorithm must match the key family (no ECDSA OID on an RSA key).
 * - ECDSA signatures are the DER Ecdsa-Sig-Value (RFC 5480 §2.2 / RFC 5758 §3.2).
 */
import { verify as verifyCallback, type KeyObject } from 'node:crypto';
import { FleetkeyError } from '../errors.js';
import { DerError, DerReader, Tag, readOid, type DerElement } from '../der/index.js';
import { OID } from './oids.js';
import type { KeyAlgorithm } from './keys.js';

type KeyFamily = 'ec' | 'ed25519' | 'rsa';

interface AllowedAlgorithm {
  readonly family: KeyFamily;
  readonly hash: 'sha256' | 'sha384' | 'sha512' | null;
}

const ALLOWED: ReadonlyMap<string, AllowedAlgorithm> = new Map([
  [OID.ecdsaWithSha256, { family: 'ec', hash: 'sha256' }],
  [OID.ecdsaWithSha384, { family: 'ec', hash: 'sha384' }],
  [OID.ecdsaWithSha512, { family: 'ec', hash: 'sha512' }],
  [OID.ed25519, { family: 'ed25519', hash: null }],
  [OID.sha256WithRSAEncryption, { family: 'rsa', hash: 'sha256' }],
  [OID.sha384WithRSAEncryption, { family: 'rsa', hash: 'sha384' }],
  [OID.sha512WithRSAEncryption, { family: 'rsa', hash: 'sha512' }],
]);

export interface AlgorithmIdentifier {
  readonly oid: string;
  /** 'absent', 'null' (an ASN.1 NULL), or 'other' (anything else, kept for the policy check). */
  readonly parameters: 'absent' | 'null' | 'other';
  readonly raw: Buffer;
}

/** Reads an AlgorithmIdentifier SEQUENCE (RFC 5280 §4.1.1.2) from `reader`. */
export function readAlgorithmIdentifier(reader: DerReader): AlgorithmIdentifier {
  const el = reader.expect(Tag.SEQUENCE);
  const inner = DerReader.of(el);
  const oid = readOid(inner.next());
  let parameters: AlgorithmIdentifier['parameters'] = 'absent';
  if (!inner.done) {
    const p: DerElement = inner.next();
    parameters = p.tag === Tag.NULL && p.value.length === 0 ? 'null' : 'other';
  }
  inner.end();
  return { oid, parameters, raw: el.raw };
}

function familyOf(algorithm: KeyAlgorithm): KeyFamily {
  return algorithm === 'ed25519' || algorithm === 'rsa' ? algorithm : 'ec';
}

/** The node hash name for an allowed algorithm on a key of `keyAlgorithm`, or throws. */
export function checkSignatureAlgorithm(alg: AlgorithmIdentifier, keyAlgorithm: KeyAlgorithm): string | null {
  const allowed = ALLOWED.get(alg.oid);
  const reject = (reason: string): FleetkeyError =>
    new FleetkeyError('SIGNATURE_ALGORITHM_NOT_ALLOWED', { cause: new Error(reason) });
  if (allowed === undefined) throw reject(`signature algorithm ${alg.oid} not allowed`);
  if (allowed.family !== familyOf(keyAlgorithm)) throw reject('signature algorithm does not match the key');
  const paramsOk = allowed.family === 'rsa' ? alg.parameters !== 'other' : alg.parameters === 'absent';
  if (!paramsOk) throw reject('signature algorithm parameters not allowed');
  return allowed.hash;
}

/** Verifies on the libuv thread pool, so verification spreads over the machine's cores. */
export function verifyAsync(hash: string | null, data: Buffer, key: KeyObject, signature: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      verifyCallback(hash, data, key, signature, (err, ok) => resolve(err === null && ok));
    } catch {
      resolve(false); // node throws synchronously on some malformed signatures
    }
  });
}

/** Converts a BIT STRING signature element to its bytes; DerError when not octet-aligned. */
export function signatureBytes(el: DerElement): Buffer {
  if (el.tag !== Tag.BIT_STRING || el.value.length < 1 || el.value[0] !== 0) {
    throw new DerError('signature BIT STRING malformed');
  }
  return el.value.subarray(1);
}
