/**
 * Certs-only CMS (a "degenerate" SignedData with no signers): the EST response format
 * (RFC 7030 §4.1.3, §4.2.3) and `openssl pkcs7 -print_certs` input.
 *
 * Invariants:
 * - Encoding follows RFC 5652 §5.1: version 1, empty digestAlgorithms, encapContentInfo of type
 *   id-data with no content, certificates [0] IMPLICIT SET OF (sorted, X.690 §11.6), no CRLs,
 *   empty signerInfos.
 * - Decoding accepts exactly that shape (and an absent certificates field); certificates are
 *   returned as raw DER without further checks: the caller verifies them against its pins.
 */
import {
  DerError, DerReader, Tag, contextTag, explicit, implicit, integer, oid, readOid, readSmallInteger, sequence,
} from '../der/index.js';
import { OID } from './oids.js';

const EMPTY_SET = Buffer.from([Tag.SET, 0]);

/** ContentInfo { signedData, SignedData { certificates [0] } } with the certificates given. */
export function encodeCertsOnly(certs: readonly Buffer[]): Buffer {
  const sortedCerts = [...certs].sort(Buffer.compare); // SET OF in DER order (X.690 §11.6)
  const signedData = sequence(
    integer(1), // RFC 5652 §5.1: version 1 when there are no attribute certificates or v2+ content
    EMPTY_SET, // digestAlgorithms
    sequence(oid(OID.data)), // encapContentInfo without eContent
    implicit(0, sortedCerts, true), // certificates [0] IMPLICIT CertificateSet
    EMPTY_SET, // signerInfos
  );
  return sequence(oid(OID.signedData), explicit(0, signedData));
}

function readCertificates(reader: DerReader): Buffer[] {
  const certsEl = reader.optional(contextTag(0, true));
  const certs: Buffer[] = [];
  if (certsEl === undefined) return certs;
  const inner = DerReader.of(certsEl);
  while (!inner.done) certs.push(inner.expect(Tag.SEQUENCE).raw); // only plain Certificate choices
  return certs;
}

/** The certificates of a certs-only SignedData; DerError on any other shape. */
export function decodeCertsOnly(der: Uint8Array): Buffer[] {
  const outer = new DerReader(der);
  const contentInfo = outer.enter(Tag.SEQUENCE);
  outer.end();
  if (readOid(contentInfo.next()) !== OID.signedData) throw new DerError('not SignedData');
  const wrapper = contentInfo.enter(contextTag(0, true));
  contentInfo.end();
  const signedData = wrapper.enter(Tag.SEQUENCE);
  wrapper.end();
  const version = readSmallInteger(signedData.expect(Tag.INTEGER));
  if (version !== 1) throw new DerError('unexpected SignedData version');
  signedData.expect(Tag.SET); // digestAlgorithms, unused for certs-only
  const encap = signedData.enter(Tag.SEQUENCE);
  if (readOid(encap.next()) !== OID.data) throw new DerError('encapContentInfo is not id-data');
  encap.end(); // certs-only carries no content (RFC 7030 §4.1.3)
  const certs = readCertificates(signedData);
  signedData.optional(contextTag(1, true)); // crls: ignored
  const signerInfos = signedData.enter(Tag.SET);
  if (!signerInfos.done) throw new DerError('certs-only SignedData has signers');
  signedData.end();
  return certs;
}
