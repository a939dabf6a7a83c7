/**
 * OCSP (RFC 6960) requests and responses, with the nonce extension of RFC 9654. Pure: the hub's
 * responder (hub/src/revocation/) looks statuses up and signs; this module only encodes/decodes.
 *
 * Invariants:
 * - `parseOcspRequest` is strict DER and bounded: at most MAX_OCSP_REQUESTS CertIDs, no duplicate
 *   extensions, and an unknown *critical* extension is a fault (RFC 6960 §4.4: unrecognised
 *   extensions are ignored unless critical). Every fault is a DerError, which the responder
 *   answers with malformedRequest; nothing here throws anything else on hostile input.
 * - A CertID is kept as the exact bytes received and echoed unchanged in its SingleResponse
 *   (RFC 6960 §4.2.1), so clients match answers to questions byte for byte.
 * - The nonce is the OCTET STRING inside the extension (RFC 9654 §2.1: `Nonce ::= OCTET
 *   STRING (SIZE(1..32))`); any other shape or size is ignored, which RFC 9654 allows.
 * - Responses: BasicOCSPResponse only (§4.2.1), ResponderID byKey (SHA-1 of the signing key's
 *   subjectPublicKey, §4.2.1), GeneralizedTime in whole seconds, v1 (version omitted, DER
 *   DEFAULT). A revocation reason is written except for `unspecified` (as in CRLs, §5.3.1).
 * - Error responses (malformedRequest, internalError, tryLater, unauthorized) carry no
 *   responseBytes and so no signature (§4.2.1).
 */
import { createHash } from 'node:crypto';
import {
  DerError, DerReader, Tag, contextTag, explicit, generalizedTime, implicit, oid, octetString, readBoolean,
  readIntegerBytes, readOid, readSmallInteger, sequence, derNull, integer, bitString, type DerElement,
} from '../der/index.js';
import { extension, subjectPublicKeyBits } from './extensions.js';
import { signatureAlgorithmIdentifier, type CertificateSigner } from './certificate.js';
import { CRL_REASON_CODES, enumerated, type CrlReason } from './crl.js';

export const OCSP_OIDS = {
  basic: '1.3.6.1.5.5.7.48.1.1', // RFC 6960 §4.2.1 id-pkix-ocsp-basic
  nonce: '1.3.6.1.5.5.7.48.1.2', // RFC 6960 §4.4.1, RFC 9654
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

/** OCSPResponseStatus (RFC 6960 §4.2.1); 4 is not used. */
export const OCSP_RESPONSE_STATUS = {
  successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6,
} as const;
export type OcspResponseStatus = keyof typeof OCSP_RESPONSE_STATUS;

export type OcspHash = 'sha1' | 'sha256';
const HASH_BY_OID = new Map<string, OcspHash>([[OCSP_OIDS.sha1, 'sha1'], [OCSP_OIDS.sha256, 'sha256']]);

export const MAX_OCSP_REQUESTS = 32;
export const MAX_NONCE_OCTETS = 32; // RFC 9654 §2.1

export interface CertId {
  /** undefined when the hash algorithm is not one this module supports. */
  readonly hash: OcspHash | undefined;
  readonly issuerNameHash: Buffer;
  readonly issuerKeyHash: Buffer;
  /** Unsigned magnitude of the serial INTEGER; `negativeSerial` marks a negative one. */
  readonly serial: Buffer;
  readonly negativeSerial: boolean;
  /** The CertID DER exactly as received. */
  readonly raw: Buffer;
}

export interface OcspRequest {
  readonly certIds: readonly CertId[];
  /** The RFC 9654 nonce (1..32 octets), when the request carried a well-formed one. */
  readonly nonce: Buffer | undefined;
}

interface RawExtension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Buffer;
}

/** Extensions inside an EXPLICIT tag: `[n] { SEQUENCE OF Extension }`, nothing else. */
function readExtensions(wrapper: DerElement): RawExtension[] {
  const explicitReader = DerReader.of(wrapper);
  const list = explicitReader.enter(Tag.SEQUENCE);
  explicitReader.end();
  const out: RawExtension[] = [];
  while (!list.done) {
    const ext = list.enter(Tag.SEQUENCE);
    const extOid = readOid(ext.next());
    const criticalEl = ext.optional(Tag.BOOLEAN);
    const critical = criticalEl !== undefined && readBoolean(criticalEl);
    const value = ext.expect(Tag.OCTET_STRING).value;
    ext.end();
    if (out.some((e) => e.oid === extOid)) throw new DerError('duplicate extension');
    out.push({ oid: extOid, critical, value });
  }
  return out;
}

function readCertId(reader: DerReader): CertId {
  const el = reader.expect(Tag.SEQUENCE);
  const id = DerReader.of(el);
  const alg = DerReader.of(id.expect(Tag.SEQUENCE));
  const hashOid = readOid(alg.next());
  if (!alg.done && alg.peekTag() === Tag.NULL) alg.next(); // parameters: NULL or absent
  alg.end();
  const issuerNameHash = id.expect(Tag.OCTET_STRING).value;
  const issuerKeyHash = id.expect(Tag.OCTET_STRING).value;
  const serial = readIntegerBytes(id.expect(Tag.INTEGER));
  id.end();
  return { hash: HASH_BY_OID.get(hashOid), issuerNameHash, issuerKeyHash, serial: serial.bytes, negativeSerial: serial.negative, raw: el.raw };
}

function readRequest(reader: DerReader): CertId {
  const request = reader.enter(Tag.SEQUENCE);
  const certId = readCertId(request);
  const single = request.optional(contextTag(0, true));
  if (single !== undefined) rejectCriticalExtensions(readExtensions(single), []);
  request.end();
  return certId;
}

function rejectCriticalExtensions(extensions: readonly RawExtension[], known: readonly string[]): void {
  if (extensions.some((e) => e.critical && !known.includes(e.oid))) throw new DerError('unsupported critical extension');
}

function nonceOf(extensions: readonly RawExtension[]): Buffer | undefined {
  const ext = extensions.find((e) => e.oid === OCSP_OIDS.nonce);
  if (ext === undefined) return undefined;
  try {
    const reader = new DerReader(ext.value);
    const inner = reader.expect(Tag.OCTET_STRING);
    reader.end();
    return inner.value.length >= 1 && inner.value.length <= MAX_NONCE_OCTETS ? inner.value : undefined;
  } catch {
    return undefined; // RFC 9654 §2.1: a responder may answer without the nonce
  }
}

/** Parses an OCSPRequest (RFC 6960 §4.1.1); any fault is a DerError. */
export function parseOcspRequest(der: Uint8Array): OcspRequest {
  const outer = new DerReader(der);
  const request = outer.enter(Tag.SEQUENCE);
  outer.end();
  const tbs = request.enter(Tag.SEQUENCE);
  const version = tbs.optional(contextTag(0, true));
  if (version !== undefined && readSmallInteger(DerReader.of(version).expect(Tag.INTEGER)) !== 0) throw new DerError('unsupported OCSP version');
  tbs.optional(contextTag(1, true)); // requestorName: informational only
  const list = tbs.enter(Tag.SEQUENCE);
  const certIds: CertId[] = [];
  while (!list.done) {
    if (certIds.length === MAX_OCSP_REQUESTS) throw new DerError('too many requests');
    certIds.push(readRequest(list));
  }
  if (certIds.length === 0) throw new DerError('empty requestList');
  const extEl = tbs.optional(contextTag(2, true));
  const extensions = extEl === undefined ? [] : readExtensions(extEl);
  tbs.end();
  rejectCriticalExtensions(extensions, [OCSP_OIDS.nonce]);
  request.optional(contextTag(0, true)); // optionalSignature: not required by this responder
  request.end();
  return { certIds, nonce: nonceOf(extensions) };
}

/** issuerNameHash and issuerKeyHash of a CA (RFC 6960 §4.1.1) under `hash`. */
export function issuerHashes(issuerName: Buffer, issuerSpki: Buffer, hash: OcspHash): { nameHash: Buffer; keyHash: Buffer } {
  return {
    nameHash: createHash(hash).update(issuerName).digest(),
    keyHash: createHash(hash).update(subjectPublicKeyBits(issuerSpki)).digest(),
  };
}

/** A CertID for `serial` issued by the CA with subject `issuerName` and key `issuerSpki`. */
export function encodeCertId(o: { hash: OcspHash; issuerName: Buffer; issuerSpki: Buffer; serial: Buffer }): Buffer {
  const { nameHash, keyHash } = issuerHashes(o.issuerName, o.issuerSpki, o.hash);
  return sequence(sequence(oid(OCSP_OIDS[o.hash]), derNull()), octetString(nameHash), octetString(keyHash), integer(o.serial));
}

/** An unsigned OCSPRequest for CertIDs from `encodeCertId` (clients and tests). */
export function encodeOcspRequest(o: { certIds: readonly Buffer[]; nonce?: Buffer }): Buffer {
  const tbs = [sequence(...o.certIds.map((id) => sequence(id)))];
  if (o.nonce !== undefined) tbs.push(explicit(2, sequence(extension(OCSP_OIDS.nonce, false, octetString(o.nonce)))));
  return sequence(sequence(...tbs));
}

export type CertStatus =
  | { readonly kind: 'good' }
  | { readonly kind: 'revoked'; readonly revocationTime: Date; readonly reason: CrlReason }
  | { readonly kind: 'unknown' };

export interface SingleResponse {
  readonly certIdRaw: Buffer;
  readonly status: CertStatus;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
}

export interface ResponseDataTemplate {
  /** SHA-1 of the responder key's subjectPublicKey (ResponderID byKey, RFC 6960 §4.2.1). */
  readonly responderKeyHash: Buffer;
  readonly producedAt: Date;
  readonly responses: readonly SingleResponse[];
  readonly nonce?: Buffer | undefined;
}

/** KeyHash for ResponderID byKey: SHA-1 of the subjectPublicKey BIT STRING value. */
export function responderKeyHash(spki: Buffer): Buffer {
  return createHash('sha1').update(subjectPublicKeyBits(spki)).digest();
}

function encodeStatus(status: CertStatus): Buffer {
  switch (status.kind) {
    case 'good':
      return implicit(0, Buffer.alloc(0), false); // [0] IMPLICIT NULL
    case 'unknown':
      return implicit(2, Buffer.alloc(0), false); // [2] IMPLICIT UnknownInfo (NULL)
    case 'revoked': {
      const fields = [generalizedTime(status.revocationTime)];
      if (status.reason !== 'unspecified') fields.push(explicit(0, enumerated(CRL_REASON_CODES[status.reason])));
      return implicit(1, fields, true); // [1] IMPLICIT RevokedInfo
    }
  }
}

function encodeSingle(r: SingleResponse): Buffer {
  return sequence(r.certIdRaw, encodeStatus(r.status), generalizedTime(r.thisUpdate), explicit(0, generalizedTime(r.nextUpdate)));
}

/** ResponseData (RFC 6960 §4.2.1), the bytes the responder signs. */
export function encodeResponseData(t: ResponseDataTemplate): Buffer {
  if (t.responses.length === 0) throw new DerError('no responses');
  const parts = [
    explicit(2, octetString(t.responderKeyHash)), // ResponderID byKey [2] (module uses EXPLICIT TAGS)
    generalizedTime(t.producedAt),
    sequence(...t.responses.map(encodeSingle)),
  ];
  if (t.nonce !== undefined) parts.push(explicit(1, sequence(extension(OCSP_OIDS.nonce, false, octetString(t.nonce)))));
  return sequence(...parts);
}

/** A signed, successful OCSPResponse; `certs` help the client find the signer's chain. */
export async function signOcspResponse(t: ResponseDataTemplate, signer: CertificateSigner, certs: readonly Buffer[] = []): Promise<Buffer> {
  const tbs = encodeResponseData(t);
  const signature = await signer.sign(tbs);
  const basicParts = [tbs, signatureAlgorithmIdentifier(signer.algorithm), bitString(signature)];
  if (certs.length > 0) basicParts.push(explicit(0, sequence(...certs)));
  const responseBytes = sequence(oid(OCSP_OIDS.basic), octetString(sequence(...basicParts)));
  return sequence(enumerated(OCSP_RESPONSE_STATUS.successful), explicit(0, responseBytes));
}

/** An unsigned error OCSPResponse (no responseBytes). */
export function ocspErrorResponse(status: Exclude<OcspResponseStatus, 'successful'>): Buffer {
  return sequence(enumerated(OCSP_RESPONSE_STATUS[status]));
}
