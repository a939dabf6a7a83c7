/**
 * A strict reader for the X.509 certificates fleetkey handles (its own, and client certificates
 * that TLS already verified). It checks structure, not trust: path validation is elsewhere.
 *
 * Invariants:
 * - Only v3 certificates (RFC 5280 §4.1.2.1; fleetkey never issues v1) with one outer
 *   certificate and no trailing bytes; the inner and outer signature algorithms are identical
 *   (§4.1.1.2); no extension appears twice (§4.2); `critical` is never an explicit FALSE (DER).
 * - Every failure is CERT_INVALID; the DerError is the logged cause.
 */
import { FleetkeyError } from '../errors.js';
import {
  DerError, DerReader, Tag, contextTag, readBoolean, readIntegerBytes, readOid, readSmallInteger, readTime,
} from '../der/index.js';
import {
  checkSignatureAlgorithm, readAlgorithmIdentifier, signatureBytes, verifyAsync, type AlgorithmIdentifier,
} from './signature.js';
import { createPublicKeyFromSpki, describeSpki } from './keys.js';

export interface ParsedExtension {
  readonly oid: string;
  readonly critical: boolean;
  /** The extnValue OCTET STRING contents (the DER of the extension's own type). */
  readonly value: Buffer;
}

export interface ParsedCertificate {
  readonly tbs: Buffer;
  readonly serial: Buffer;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Buffer;
  readonly extensions: readonly ParsedExtension[];
  readonly signature: Buffer;
}

function readExtensions(reader: DerReader): ParsedExtension[] {
  const out: ParsedExtension[] = [];
  const wrapper = reader.optional(contextTag(3, true));
  if (wrapper === undefined) return out;
  const explicitReader = DerReader.of(wrapper);
  const list = explicitReader.enter(Tag.SEQUENCE);
  explicitReader.end();
  if (list.done) throw new DerError('empty extensions'); // SIZE (1..MAX)
  while (!list.done) {
    const ext = list.enter(Tag.SEQUENCE);
    const oid = readOid(ext.next());
    const criticalEl = ext.optional(Tag.BOOLEAN);
    const critical = criticalEl === undefined ? false : readBoolean(criticalEl);
    if (criticalEl !== undefined && !critical) throw new DerError('explicit DEFAULT FALSE');
    const value = ext.expect(Tag.OCTET_STRING).value;
    ext.end();
    if (out.some((e) => e.oid === oid)) throw new DerError(`duplicate extension ${oid}`);
    out.push({ oid, critical, value });
  }
  return out;
}

function readTbs(reader: DerReader): Omit<ParsedCertificate, 'signature' | 'tbs'> {
  const versionEl = reader.expect(contextTag(0, true));
  const versionReader = DerReader.of(versionEl);
  if (readSmallInteger(versionReader.next()) !== 2) throw new DerError('not a v3 certificate');
  versionReader.end();
  const serial = readIntegerBytes(reader.expect(Tag.INTEGER));
  if (serial.negative) throw new DerError('negative serial');
  const signatureAlgorithm = readAlgorithmIdentifier(reader);
  const issuer = reader.expect(Tag.SEQUENCE).raw;
  const validity = reader.enter(Tag.SEQUENCE);
  const notBefore = readTime(validity.next());
  const notAfter = readTime(validity.next());
  validity.end();
  const subject = reader.expect(Tag.SEQUENCE).raw;
  const spki = reader.expect(Tag.SEQUENCE).raw;
  reader.optional(contextTag(1, false)); // issuerUniqueID (never written by fleetkey)
  reader.optional(contextTag(2, false)); // subjectUniqueID
  const extensions = readExtensions(reader);
  reader.end();
  return { serial: serial.bytes, signatureAlgorithm, issuer, subject, notBefore, notAfter, spki, extensions };
}

function parseStrict(der: Uint8Array): ParsedCertificate {
  const outer = new DerReader(der);
  const cert = outer.enter(Tag.SEQUENCE);
  outer.end();
  const tbsEl = cert.expect(Tag.SEQUENCE);
  const fields = readTbs(DerReader.of(tbsEl));
  const outerAlg = readAlgorithmIdentifier(cert);
  if (!outerAlg.raw.equals(fields.signatureAlgorithm.raw)) throw new DerError('signature algorithm mismatch');
  const signature = signatureBytes(cert.expect(Tag.BIT_STRING));
  cert.end();
  return { ...fields, tbs: tbsEl.raw, signature };
}

/** Parses a DER certificate; CERT_INVALID on any structural fault. */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  try {
    return parseStrict(der);
  } catch (cause) {
    if (cause instanceof DerError) throw new FleetkeyError('CERT_INVALID', { cause });
    throw cause;
  }
}

/** The extension with `oid`, if present. */
export function findExtension(cert: ParsedCertificate, oid: string): ParsedExtension | undefined {
  return cert.extensions.find((e) => e.oid === oid);
}

/**
 * Whether `cert` carries a valid signature by the key `issuerSpki`. Only the signature: dates,
 * names, key usage and path rules are the caller's. An algorithm outside the allow-list throws
 * SIGNATURE_ALGORITHM_NOT_ALLOWED; an unusable issuer key throws KEY_NOT_ALLOWED.
 */
export async function verifyCertificateSignature(cert: ParsedCertificate, issuerSpki: Buffer): Promise<boolean> {
  let key;
  try {
    key = describeSpki(issuerSpki);
  } catch (cause) {
    if (cause instanceof DerError) throw new FleetkeyError('KEY_NOT_ALLOWED', { cause });
    throw cause;
  }
  const hash = checkSignatureAlgorithm(cert.signatureAlgorithm, key.algorithm);
  return verifyAsync(hash, cert.tbs, createPublicKeyFromSpki(issuerSpki), cert.signature);
}
