/**
 * PKCS#10 certificate signing requests (RFC 2986).
 *
 * Invariants:
 * - `parseCsr` is strict DER with bounds: at most MAX_CSR_BYTES, one CertificationRequest and
 *   nothing after it, version 0 (RFC 2986 §4.1), an allowed public key (`describeSpki`). Faults are
 *   CSR_MALFORMED, key policy is KEY_NOT_ALLOWED; nothing else is thrown for any input.
 * - Only the public key and the proof of possession matter. Subject and requested extensions are
 *   returned for logs only: the CA never copies them into a certificate (docs/adr/0003).
 * - `verifyCsrSignature` checks the signature over the exact CertificationRequestInfo bytes as
 *   received (RFC 2986 §3), with an allowed algorithm matching the key.
 */
import { verify as verifySync } from 'node:crypto';
import { FleetkeyError } from '../errors.js';
import {
  DerError, DerReader, Tag, bitString, contextTag, implicit, integer, oid, readOid, readSmallInteger, sequence,
  derNull, printableString, setOf,
} from '../der/index.js';
import {
  createPublicKeyFromSpki, describeSpki, ecPublicPoint, isEcAlgorithm, signatureAlgorithmFor,
  type EcCurveAlgorithm, type EcdsaHash, type KeyAlgorithm, type KeyDescription,
} from './keys.js';
import { decodeName, encodeName, type DecodedName, type NameEntry } from './name.js';
import { checkSignatureAlgorithm, readAlgorithmIdentifier, signatureBytes, verifyAsync, type AlgorithmIdentifier } from './signature.js';
import { OID } from './oids.js';

/** Generous for RSA-8192 plus a subject and a few extensions; anything larger is refused unread. */
export const MAX_CSR_BYTES = 16 * 1024;

export interface ParsedCsr {
  /** The raw CertificationRequestInfo, exactly as signed. */
  readonly tbs: Buffer;
  /** The raw SubjectPublicKeyInfo. */
  readonly spki: Buffer;
  readonly key: KeyDescription;
  readonly signatureAlgorithmOid: string;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly signature: Buffer;
  /** Informational only. */
  readonly subject: DecodedName;
  /** Raw `Extensions` of an extensionRequest attribute (RFC 2985 §5.4.2), informational only. */
  readonly requestedExtensions: Buffer | undefined;
  /**
   * The challengePassword attribute (RFC 2985 §5.4.1; PrintableString or UTF8String), covered by
   * the CSR signature: RFC 7030 §3.5 puts the TLS channel binding here.
   */
  readonly challengePassword: string | undefined;
}

function readAttributes(reader: DerReader): { requested: Buffer | undefined; challengePassword: string | undefined } {
  const attributes = reader.enter(contextTag(0, true)); // [0] IMPLICIT SET OF Attribute
  let requested: Buffer | undefined;
  let challengePassword: string | undefined;
  while (!attributes.done) {
    const attribute = attributes.enter(Tag.SEQUENCE);
    const type = readOid(attribute.next());
    const values = attribute.enter(Tag.SET);
    attribute.end();
    if (values.done) throw new DerError('attribute without values');
    const first = values.next();
    if (type === OID.extensionRequest) {
      if (requested !== undefined || !values.done || first.tag !== Tag.SEQUENCE) throw new DerError('bad extensionRequest');
      requested = first.raw;
    }
    if (type === OID.challengePassword) {
      const text = first.tag === Tag.PRINTABLE_STRING || first.tag === Tag.UTF8_STRING;
      if (challengePassword !== undefined || !values.done || !text) throw new DerError('bad challengePassword');
      challengePassword = first.value.toString('utf8');
    }
  }
  return { requested, challengePassword };
}

function parseStrict(der: Uint8Array): ParsedCsr {
  if (der.length > MAX_CSR_BYTES) throw new DerError('CSR too large');
  const outer = new DerReader(der);
  const request = outer.enter(Tag.SEQUENCE);
  outer.end();
  const criEl = request.expect(Tag.SEQUENCE);
  const cri = DerReader.of(criEl);
  if (readSmallInteger(cri.expect(Tag.INTEGER)) !== 0) throw new DerError('CSR version is not v1(0)');
  const subjectEl = cri.expect(Tag.SEQUENCE);
  const spki = cri.expect(Tag.SEQUENCE).raw;
  const { requested: requestedExtensions, challengePassword } = readAttributes(cri);
  cri.end();
  const signatureAlgorithm = readAlgorithmIdentifier(request);
  const signature = signatureBytes(request.expect(Tag.BIT_STRING));
  request.end();
  return {
    tbs: criEl.raw,
    spki,
    key: describeSpki(spki),
    signatureAlgorithmOid: signatureAlgorithm.oid,
    signatureAlgorithm,
    signature,
    subject: decodeName(subjectEl.raw),
    requestedExtensions,
    challengePassword,
  };
}

/** Parses a DER PKCS#10 request. Throws only FleetkeyError (CSR_MALFORMED, KEY_NOT_ALLOWED). */
export function parseCsr(der: Uint8Array): ParsedCsr {
  try {
    return parseStrict(der);
  } catch (cause) {
    if (cause instanceof DerError) throw new FleetkeyError('CSR_MALFORMED', { cause });
    throw cause;
  }
}

/**
 * Proof of possession: the request's signature verifies under its own key.
 * Throws SIGNATURE_ALGORITHM_NOT_ALLOWED, KEY_NOT_ALLOWED or CSR_SIGNATURE_INVALID.
 */
export async function verifyCsrSignature(csr: ParsedCsr): Promise<void> {
  const hash = checkSignatureAlgorithm(csr.signatureAlgorithm, csr.key.algorithm);
  const key = createPublicKeyFromSpki(csr.spki);
  if (!(await verifyAsync(hash, csr.tbs, key, csr.signature))) throw new FleetkeyError('CSR_SIGNATURE_INVALID');
}

/**
 * ECDSA over a raw uncompressed public point (SEC 1 §2.3.3) and a DER signature, with the verdicts
 * of node:crypto's `verify` for the same key: 'bad-key' where node refuses to import the point.
 * The hub injects a faster one (docs/adr/0034); it must agree with node:crypto on every input.
 */
export type EcdsaPointVerifier = (
  curve: EcCurveAlgorithm, hash: EcdsaHash, point: Buffer, data: Buffer, signature: Buffer,
) => 'valid' | 'invalid' | 'bad-key';

const isEcdsaHash = (hash: string | null): hash is EcdsaHash => hash === 'sha256' || hash === 'sha384' || hash === 'sha512';

/**
 * The same check on the calling thread, for callers that must decide before any await. With
 * `ecdsa`, EC keys are checked by it instead of a node KeyObject (same errors, same verdicts).
 */
export function verifyCsrSignatureSync(csr: ParsedCsr, ecdsa?: EcdsaPointVerifier): void {
  const hash = checkSignatureAlgorithm(csr.signatureAlgorithm, csr.key.algorithm);
  if (ecdsa !== undefined && isEcdsaHash(hash) && isEcAlgorithm(csr.key.algorithm)) {
    const verdict = ecdsa(csr.key.algorithm, hash, ecPublicPoint(csr.spki, csr.key.algorithm), csr.tbs, csr.signature);
    if (verdict === 'bad-key') throw new FleetkeyError('KEY_NOT_ALLOWED', { cause: new Error('EC point is not on its curve') });
    if (verdict !== 'valid') throw new FleetkeyError('CSR_SIGNATURE_INVALID');
    return;
  }
  const key = createPublicKeyFromSpki(csr.spki);
  let ok = false;
  try {
    ok = verifySync(hash, csr.tbs, key, csr.signature);
  } catch {
    ok = false; // node throws on some malformed ECDSA signatures
  }
  if (!ok) throw new FleetkeyError('CSR_SIGNATURE_INVALID');
}

export interface BuildCsrOptions {
  /** DER SPKI of the key that signs. */
  readonly spki: Buffer;
  readonly subject: readonly NameEntry[];
  readonly algorithm: KeyAlgorithm;
  /** Signs the CertificationRequestInfo; X.509-form signature (DER for ECDSA). May be a chip. */
  sign(data: Buffer): Promise<Buffer>;
  /** A challengePassword attribute (PrintableString), e.g. the RFC 7030 §3.5 channel binding. */
  readonly challengePassword?: string;
}

/**
 * Builds a DER PKCS#10 request (attributes: only an optional challengePassword). The signature comes from an async callback,
 * so a key in a secure element, PKCS#11 token or TPM can sign.
 *
 * @example
 *   const csr = await buildCsr({ spki, subject: [['CN', deviceId]], algorithm: 'p256',
 *     sign: async (data) => crypto.sign('sha256', data, privateKey) });
 */
export async function buildCsr(options: BuildCsrOptions): Promise<Buffer> {
  const alg = signatureAlgorithmFor(options.algorithm);
  const attributes = options.challengePassword === undefined
    ? []
    : [sequence(oid(OID.challengePassword), setOf([printableString(options.challengePassword)]))];
  const cri = sequence(integer(0), encodeName(options.subject), options.spki, implicit(0, attributes, true));
  const signature = await options.sign(cri);
  const algorithmId = alg.nullParams ? sequence(oid(alg.oid), derNull()) : sequence(oid(alg.oid));
  return sequence(cri, algorithmId, bitString(signature));
}
