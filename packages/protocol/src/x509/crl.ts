/**
 * X.509 v2 certificate revocation lists (RFC 5280 §5), encoded with our own DER writer.
 *
 * Invariants:
 * - Always v2 (§5.1.2.1) with the crlExtensions authorityKeyIdentifier (§5.2.1, the issuer's
 *   key id by method 1) and cRLNumber (§5.2.3, a non-negative INTEGER of at most 20 octets); the
 *   caller supplies a number that only ever grows. Both extensions are non-critical.
 * - nextUpdate is always present and after thisUpdate (§5.1.2.5: conforming CAs MUST include it).
 * - No entry's revocationDate is after thisUpdate (a revocation cannot be reported before it
 *   happened); times are whole seconds, UTCTime through 2049 (§5.1.2.4, §5.1.2.6).
 * - Entries are sorted by serial, so the same set of revocations always encodes the same way.
 *   The revokedCertificates field is omitted when empty (§5.1.2.6: "MUST be absent").
 * - A reasonCode entry extension (§5.3.1) is written for every reason except `unspecified`, for
 *   which the RFC says the extension SHOULD be absent.
 */
import {
  DerError, DerReader, Tag, contextTag, explicit, integer, readBoolean, readIntegerBytes, readOid, readSmallInteger,
  readTime, readUnsigned, sequence, tlv, x509Time, type DerElement,
} from '../der/index.js';
import { authorityKeyIdentifier, extension, keyIdentifier } from './extensions.js';
import { assembleCertificate, signatureAlgorithmIdentifier, type CertificateSigner } from './certificate.js';
import { readAlgorithmIdentifier, signatureBytes, type AlgorithmIdentifier } from './signature.js';
import type { KeyAlgorithm } from './keys.js';

/** X.680 universal tag 10 (ENUMERATED): CRLReason and OCSPResponseStatus. */
export const ENUMERATED_TAG = 0x0a;

export function enumerated(value: number): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 127) throw new DerError('ENUMERATED out of range');
  return tlv(ENUMERATED_TAG, Buffer.from([value]));
}

export function readEnumerated(el: DerElement): number {
  if (el.tag !== ENUMERATED_TAG || el.value.length !== 1 || (el.value[0]! & 0x80) !== 0) throw new DerError('expected small ENUMERATED');
  return el.value[0]!;
}

/** CRLReason (RFC 5280 §5.3.1); value 7 is not used. */
export const CRL_REASON_CODES = {
  unspecified: 0, keyCompromise: 1, cACompromise: 2, affiliationChanged: 3, superseded: 4,
  cessationOfOperation: 5, certificateHold: 6, removeFromCRL: 8, privilegeWithdrawn: 9, aACompromise: 10,
} as const;
export type CrlReason = keyof typeof CRL_REASON_CODES;

const REASON_BY_CODE = new Map<number, CrlReason>(
  Object.entries(CRL_REASON_CODES).map(([name, code]) => [code, name as CrlReason]),
);

export function isCrlReason(value: unknown): value is CrlReason {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(CRL_REASON_CODES, value);
}

export function crlReasonFromCode(code: number): CrlReason {
  const reason = REASON_BY_CODE.get(code);
  if (reason === undefined) throw new DerError('unknown CRLReason');
  return reason;
}

export const CRL_OIDS = {
  cRLNumber: '2.5.29.20', // RFC 5280 §5.2.3
  reasonCode: '2.5.29.21', // RFC 5280 §5.3.1
} as const;

export interface RevokedEntry {
  /** Unsigned big-endian serial as issued. */
  readonly serial: Buffer;
  readonly revocationDate: Date;
  readonly reason: CrlReason;
}

export interface CrlTemplate {
  /** DER subject Name of the issuing CA (copied as the CRL issuer, §5.1.2.3). */
  readonly issuerName: Buffer;
  /** DER SPKI of the issuing CA key, for the authorityKeyIdentifier. */
  readonly issuerSpki: Buffer;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly crlNumber: bigint;
  readonly revoked: readonly RevokedEntry[];
}

const VERSION_V2 = integer(1); // RFC 5280 §5.1.2.1
const MAX_CRL_NUMBER = (1n << 159n) - 1n; // 20 octets as a positive INTEGER (§5.2.3)
const seconds = (d: Date): number => Math.floor(d.getTime() / 1000);

/** A reasonCode entry extension (RFC 5280 §5.3.1), or none for `unspecified`. */
export function reasonCodeExtension(reason: CrlReason): Buffer | undefined {
  if (reason === 'unspecified') return undefined;
  return extension(CRL_OIDS.reasonCode, false, enumerated(CRL_REASON_CODES[reason]));
}

function encodeEntry(entry: RevokedEntry, thisUpdate: Date): Buffer {
  if (seconds(entry.revocationDate) > seconds(thisUpdate)) throw new DerError('revocationDate after thisUpdate');
  const ext = reasonCodeExtension(entry.reason);
  const fields = [integer(entry.serial), x509Time(entry.revocationDate)];
  if (ext !== undefined) fields.push(sequence(ext));
  return sequence(...fields);
}

function checkTemplate(t: CrlTemplate): void {
  if (!(seconds(t.nextUpdate) > seconds(t.thisUpdate))) throw new DerError('nextUpdate must be after thisUpdate');
  if (t.crlNumber < 0n || t.crlNumber > MAX_CRL_NUMBER) throw new DerError('cRLNumber out of range');
}

/** The DER TBSCertList (RFC 5280 §5.1.2) for `template`, signed later with a key of `algorithm`. */
export function encodeTbsCertList(template: CrlTemplate, algorithm: KeyAlgorithm): Buffer {
  checkTemplate(template);
  const entries = [...template.revoked]
    .sort((a, b) => Buffer.compare(a.serial, b.serial))
    .map((e) => encodeEntry(e, template.thisUpdate));
  const crlExtensions = sequence(
    authorityKeyIdentifier(keyIdentifier(template.issuerSpki)),
    extension(CRL_OIDS.cRLNumber, false, integer(template.crlNumber)),
  );
  const parts = [
    VERSION_V2,
    signatureAlgorithmIdentifier(algorithm),
    template.issuerName,
    x509Time(template.thisUpdate),
    x509Time(template.nextUpdate),
  ];
  if (entries.length > 0) parts.push(tlv(Tag.SEQUENCE, entries));
  parts.push(explicit(0, crlExtensions));
  return tlv(Tag.SEQUENCE, parts);
}

/** Encodes and signs a CRL: CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }. */
export async function signCrl(template: CrlTemplate, signer: CertificateSigner): Promise<Buffer> {
  const tbs = encodeTbsCertList(template, signer.algorithm);
  // Same outer shape as a Certificate (RFC 5280 §5.1.1 vs §4.1.1).
  return assembleCertificate(tbs, signer.algorithm, await signer.sign(tbs));
}

export interface ParsedCrlEntry {
  readonly serial: Buffer;
  readonly revocationDate: Date;
  readonly reason: CrlReason;
}

export interface ParsedCrl {
  readonly tbs: Buffer;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly issuer: Buffer;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly crlNumber: bigint | undefined;
  readonly authorityKeyId: Buffer | undefined;
  readonly entries: readonly ParsedCrlEntry[];
  readonly signature: Buffer;
}

function readExtensionList(reader: DerReader): Array<{ oid: string; value: Buffer }> {
  const out: Array<{ oid: string; value: Buffer }> = [];
  while (!reader.done) {
    const ext = reader.enter(Tag.SEQUENCE);
    const extOid = readOid(ext.next());
    const critical = ext.optional(Tag.BOOLEAN);
    if (critical !== undefined && !readBoolean(critical)) throw new DerError('explicit DEFAULT FALSE');
    out.push({ oid: extOid, value: ext.expect(Tag.OCTET_STRING).value });
    ext.end();
  }
  return out;
}

function readEntry(reader: DerReader): ParsedCrlEntry {
  const entry = reader.enter(Tag.SEQUENCE);
  const serial = readIntegerBytes(entry.expect(Tag.INTEGER)).bytes;
  const revocationDate = readTime(entry.next());
  let reason: CrlReason = 'unspecified';
  if (!entry.done) {
    for (const ext of readExtensionList(entry.enter(Tag.SEQUENCE))) {
      if (ext.oid === CRL_OIDS.reasonCode) reason = crlReasonFromCode(readEnumerated(new DerReader(ext.value).next()));
    }
  }
  entry.end();
  return { serial, revocationDate, reason };
}

function readCrlExtensions(reader: DerReader): { crlNumber?: bigint; authorityKeyId?: Buffer } {
  const wrapper = reader.optional(contextTag(0, true));
  if (wrapper === undefined) return {};
  const out: { crlNumber?: bigint; authorityKeyId?: Buffer } = {};
  for (const ext of readExtensionList(DerReader.of(wrapper).enter(Tag.SEQUENCE))) {
    if (ext.oid === CRL_OIDS.cRLNumber) out.crlNumber = readUnsigned(new DerReader(ext.value).next());
    if (ext.oid === '2.5.29.35') out.authorityKeyId = new DerReader(ext.value).enter(Tag.SEQUENCE).expect(contextTag(0, false)).value;
  }
  return out;
}

/** A strict reader for v2 CRLs as this module writes them (tests, and clients that fetch /crl). */
export function parseCrl(der: Uint8Array): ParsedCrl {
  const outer = new DerReader(der);
  const list = outer.enter(Tag.SEQUENCE);
  outer.end();
  const tbsEl = list.expect(Tag.SEQUENCE);
  const tbs = DerReader.of(tbsEl);
  if (readSmallInteger(tbs.expect(Tag.INTEGER)) !== 1) throw new DerError('not a v2 CRL');
  const signatureAlgorithm = readAlgorithmIdentifier(tbs);
  const issuer = tbs.expect(Tag.SEQUENCE).raw;
  const thisUpdate = readTime(tbs.next());
  const next = tbs.peekTag();
  const nextUpdate = next === Tag.UTC_TIME || next === Tag.GENERALIZED_TIME ? readTime(tbs.next()) : undefined;
  const entries: ParsedCrlEntry[] = [];
  const revoked = tbs.optional(Tag.SEQUENCE);
  if (revoked !== undefined) for (const r = DerReader.of(revoked); !r.done;) entries.push(readEntry(r));
  const extensions = readCrlExtensions(tbs);
  tbs.end();
  const outerAlg = readAlgorithmIdentifier(list);
  if (!outerAlg.raw.equals(signatureAlgorithm.raw)) throw new DerError('signature algorithm mismatch');
  const signature = signatureBytes(list.expect(Tag.BIT_STRING));
  list.end();
  return {
    tbs: tbsEl.raw, signatureAlgorithm, issuer, thisUpdate, nextUpdate, entries, signature,
    crlNumber: extensions.crlNumber, authorityKeyId: extensions.authorityKeyId,
  };
}
