/**
 * A strict reader for OCSPResponse (RFC 6960 §4.2.1): for tests that check the responder's
 * bytes, and for clients (the device SDK) that will check a stapled or fetched status.
 *
 * Invariants:
 * - Only BasicOCSPResponse is understood; any fault is a DerError.
 * - It checks structure, not trust: the caller verifies `signature` over `tbs` with the key
 *   whose hash is `responderKeyHash` and decides whether that key may speak for the issuer.
 * - GeneralizedTime is read as RFC 6960 writes it (`YYYYMMDDHHMMSSZ`, any year; RFC 5280's rule
 *   of UTCTime before 2050 is for certificates and CRLs, not OCSP).
 */
import { DerError, DerReader, Tag, contextTag, readOid, type DerElement } from '../der/index.js';
import { crlReasonFromCode, readEnumerated, type CrlReason } from './crl.js';
import { OCSP_OIDS, OCSP_RESPONSE_STATUS, type CertStatus, type OcspResponseStatus } from './ocsp.js';
import { readAlgorithmIdentifier, signatureBytes, type AlgorithmIdentifier } from './signature.js';

export interface ParsedSingleResponse {
  readonly certIdRaw: Buffer;
  readonly status: CertStatus;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
}

export interface ParsedBasicResponse {
  readonly tbs: Buffer;
  /** ResponderID byKey; undefined when the responder named itself byName. */
  readonly responderKeyHash: Buffer | undefined;
  readonly producedAt: Date;
  readonly responses: readonly ParsedSingleResponse[];
  readonly nonce: Buffer | undefined;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly signature: Buffer;
  readonly certs: readonly Buffer[];
}

export interface ParsedOcspResponse {
  readonly status: OcspResponseStatus;
  readonly basic: ParsedBasicResponse | undefined;
}

const STATUS_BY_CODE = new Map<number, OcspResponseStatus>(
  Object.entries(OCSP_RESPONSE_STATUS).map(([name, code]) => [code, name as OcspResponseStatus]),
);
const GENERALIZED_RE = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

export function readGeneralizedTime(el: DerElement): Date {
  const m = el.tag === Tag.GENERALIZED_TIME ? GENERALIZED_RE.exec(el.value.toString('latin1')) : null;
  if (m === null) throw new DerError('expected GeneralizedTime YYYYMMDDHHMMSSZ');
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || date.getUTCHours() !== hour ||
      date.getUTCMinutes() !== minute || date.getUTCSeconds() !== second) {
    throw new DerError('time field out of range');
  }
  return date;
}

function readStatus(el: DerElement): CertStatus {
  if (el.tag === contextTag(0, false) && el.value.length === 0) return { kind: 'good' };
  if (el.tag === contextTag(2, false) && el.value.length === 0) return { kind: 'unknown' };
  if (el.tag !== contextTag(1, true)) throw new DerError('bad CertStatus');
  const info = DerReader.of(el);
  const revocationTime = readGeneralizedTime(info.next());
  let reason: CrlReason = 'unspecified';
  const reasonEl = info.optional(contextTag(0, true));
  if (reasonEl !== undefined) reason = crlReasonFromCode(readEnumerated(DerReader.of(reasonEl).next()));
  info.end();
  return { kind: 'revoked', revocationTime, reason };
}

function readSingle(reader: DerReader): ParsedSingleResponse {
  const single = reader.enter(Tag.SEQUENCE);
  const certIdRaw = single.expect(Tag.SEQUENCE).raw;
  const status = readStatus(single.next());
  const thisUpdate = readGeneralizedTime(single.next());
  const nextEl = single.optional(contextTag(0, true));
  const nextUpdate = nextEl === undefined ? undefined : readGeneralizedTime(DerReader.of(nextEl).next());
  single.optional(contextTag(1, true)); // singleExtensions
  single.end();
  return { certIdRaw, status, thisUpdate, nextUpdate };
}

function readNonce(extensionsEl: DerElement | undefined): Buffer | undefined {
  if (extensionsEl === undefined) return undefined;
  const list = DerReader.of(extensionsEl).enter(Tag.SEQUENCE);
  while (!list.done) {
    const ext = list.enter(Tag.SEQUENCE);
    const extOid = readOid(ext.next());
    ext.optional(Tag.BOOLEAN);
    const value = ext.expect(Tag.OCTET_STRING).value;
    ext.end();
    if (extOid === OCSP_OIDS.nonce) return new DerReader(value).expect(Tag.OCTET_STRING).value;
  }
  return undefined;
}

function readBasic(der: Buffer): ParsedBasicResponse {
  const outer = new DerReader(der);
  const basic = outer.enter(Tag.SEQUENCE);
  outer.end();
  const tbsEl = basic.expect(Tag.SEQUENCE);
  const tbs = DerReader.of(tbsEl);
  tbs.optional(contextTag(0, true)); // version, DEFAULT v1
  const byKey = tbs.optional(contextTag(2, true));
  if (byKey === undefined) tbs.expect(contextTag(1, true)); // byName
  const producedAt = readGeneralizedTime(tbs.next());
  const responses: ParsedSingleResponse[] = [];
  for (const list = tbs.enter(Tag.SEQUENCE); !list.done;) responses.push(readSingle(list));
  const nonce = readNonce(tbs.optional(contextTag(1, true)));
  tbs.end();
  const signatureAlgorithm = readAlgorithmIdentifier(basic);
  const signature = signatureBytes(basic.expect(Tag.BIT_STRING));
  const certs: Buffer[] = [];
  const certsEl = basic.optional(contextTag(0, true));
  if (certsEl !== undefined) for (const list = DerReader.of(certsEl).enter(Tag.SEQUENCE); !list.done;) certs.push(list.expect(Tag.SEQUENCE).raw);
  basic.end();
  const responderKeyHash = byKey === undefined ? undefined : DerReader.of(byKey).expect(Tag.OCTET_STRING).value;
  return { tbs: tbsEl.raw, responderKeyHash, producedAt, responses, nonce, signatureAlgorithm, signature, certs };
}

/** Parses an OCSPResponse; `basic` is present only for a successful one. */
export function parseOcspResponse(der: Uint8Array): ParsedOcspResponse {
  const outer = new DerReader(der);
  const response = outer.enter(Tag.SEQUENCE);
  outer.end();
  const status = STATUS_BY_CODE.get(readEnumerated(response.next()));
  if (status === undefined) throw new DerError('unknown OCSPResponseStatus');
  const bytesEl = response.optional(contextTag(0, true));
  response.end();
  if (status !== 'successful') {
    if (bytesEl !== undefined) throw new DerError('responseBytes in an error response');
    return { status, basic: undefined };
  }
  if (bytesEl === undefined) throw new DerError('successful response without responseBytes');
  const bytes = DerReader.of(bytesEl).enter(Tag.SEQUENCE);
  if (readOid(bytes.next()) !== OCSP_OIDS.basic) throw new DerError('not a BasicOCSPResponse');
  const basicDer = bytes.expect(Tag.OCTET_STRING).value;
  bytes.end();
  return { status, basic: readBasic(basicDer) };
}
