/**
 * X.509 v3 certificate encoding and signing (RFC 5280 §4.1).
 *
 * Invariants:
 * - The certificate is built from the template alone: version 3, the serial, the issuer's
 *   AlgorithmIdentifier (RFC 5280 §4.1.1.2 and §4.1.2.3 carry the same bytes), the issuer and
 *   subject Name bytes as given, the validity, the SPKI, then the pre-encoded extensions in order.
 * - Serials are positive, at most 20 octets (RFC 5280 §4.1.2.2) with at least 64 bits (CA/B BR
 *   §7.1 practice); the first octet is 0x01..0x7f so the bytes are already a minimal INTEGER.
 * - Validity is whole seconds (RFC 5280 §4.1.2.5); notBefore <= notAfter.
 * - The hot path is concatenation: the version, AlgorithmIdentifier and (via the profile) the
 *   constant extensions are encoded once and reused; only one signature is computed.
 */
import {
  DerError, Tag, bitString, derNull, explicit, integer, oid, sequence, tlv, x509Time,
} from '../der/index.js';
import { signatureAlgorithmFor, type KeyAlgorithm } from './keys.js';
import type { EncodedExtension } from './extensions.js';

export interface CertificateTemplate {
  /** Unsigned big-endian serial, 8..20 octets, first octet 0x01..0x7f. */
  readonly serial: Buffer;
  /** DER Name of the issuer: the issuer certificate's subject bytes, copied. */
  readonly issuerName: Buffer;
  readonly subjectName: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER SubjectPublicKeyInfo. */
  readonly spki: Buffer;
  readonly extensions: readonly EncodedExtension[];
}

/** Anything that can produce an X.509-form signature (DER Ecdsa-Sig-Value for ECDSA). */
export interface CertificateSigner {
  readonly algorithm: KeyAlgorithm;
  sign(tbs: Buffer): Promise<Buffer>;
}

const VERSION_V3 = explicit(0, integer(2)); // RFC 5280 §4.1.2.1
const algorithmIdentifiers = new Map<KeyAlgorithm, Buffer>();

/** The signature AlgorithmIdentifier for a signing key: params absent for ECDSA/Ed25519, NULL for RSA. */
export function signatureAlgorithmIdentifier(algorithm: KeyAlgorithm): Buffer {
  let encoded = algorithmIdentifiers.get(algorithm);
  if (encoded === undefined) {
    const alg = signatureAlgorithmFor(algorithm);
    encoded = alg.nullParams ? sequence(oid(alg.oid), derNull()) : sequence(oid(alg.oid));
    algorithmIdentifiers.set(algorithm, encoded);
  }
  return encoded;
}

export const MIN_SERIAL_OCTETS = 8;
export const MAX_SERIAL_OCTETS = 20;

export function checkSerial(serial: Buffer): void {
  if (serial.length < MIN_SERIAL_OCTETS || serial.length > MAX_SERIAL_OCTETS) throw new DerError('serial length');
  const first = serial[0]!;
  if (first === 0 || (first & 0x80) !== 0) throw new DerError('serial first octet must be 0x01..0x7f');
}

/** Validity ::= SEQUENCE { notBefore Time, notAfter Time } (RFC 5280 §4.1.2.5). */
export function encodeValidity(notBefore: Date, notAfter: Date): Buffer {
  checkValidity(notBefore, notAfter);
  return sequence(x509Time(notBefore), x509Time(notAfter));
}

export function checkValidity(notBefore: Date, notAfter: Date): void {
  if (!(notBefore.getTime() <= notAfter.getTime())) throw new DerError('notBefore after notAfter');
}

/** The DER TBSCertificate for `template`, signed later with a key of `algorithm`. */
export function encodeTbsCertificate(template: CertificateTemplate, algorithm: KeyAlgorithm): Buffer {
  checkSerial(template.serial);
  const parts: Buffer[] = [
    VERSION_V3,
    tlv(Tag.INTEGER, template.serial),
    signatureAlgorithmIdentifier(algorithm),
    template.issuerName,
    encodeValidity(template.notBefore, template.notAfter),
    template.subjectName,
    template.spki,
  ];
  if (template.extensions.length > 0) parts.push(explicit(3, sequence(...template.extensions))); // §4.1.2.9
  return tlv(Tag.SEQUENCE, parts);
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } (RFC 5280 §4.1). */
export function assembleCertificate(tbs: Buffer, algorithm: KeyAlgorithm, signature: Buffer): Buffer {
  return sequence(tbs, signatureAlgorithmIdentifier(algorithm), bitString(signature));
}

/** Encodes, signs and assembles a certificate. */
export async function signCertificate(template: CertificateTemplate, signer: CertificateSigner): Promise<Buffer> {
  const tbs = encodeTbsCertificate(template, signer.algorithm);
  const signature = await signer.sign(tbs);
  return assembleCertificate(tbs, signer.algorithm, signature);
}
