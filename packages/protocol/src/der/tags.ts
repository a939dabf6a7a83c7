/**
 * ASN.1 universal tags and the one error type of the DER layer.
 *
 * Invariants:
 * - Only low-tag-number form (tag number < 31) is supported: every structure fleetkey reads or
 *   writes (X.509, PKCS#10, CMS certs-only) fits in it. High-tag-number form is rejected.
 * - `DerError` never reaches a client: callers translate it to a coded `FleetkeyError`
 *   (CSR_MALFORMED, CERT_INVALID, ...) and keep the DerError as the logged cause.
 */

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Tag byte classes (X.690 §8.1.2.2). */
export const TagClass = {
  UNIVERSAL: 0x00,
  APPLICATION: 0x40,
  CONTEXT: 0x80,
  PRIVATE: 0xc0,
} as const;

/** The "constructed" bit of an identifier octet (X.690 §8.1.2.5). */
export const CONSTRUCTED = 0x20;

/** The tag byte of a context-specific element `[n]`. */
export function contextTag(tagNumber: number, constructed: boolean): number {
  if (!Number.isInteger(tagNumber) || tagNumber < 0 || tagNumber > 30) {
    throw new DerError(`context tag number out of range: ${tagNumber}`);
  }
  return TagClass.CONTEXT | (constructed ? CONSTRUCTED : 0) | tagNumber;
}

/** Malformed or unsupported DER. The message is for logs; it never carries input bytes. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

/** Hex name of a tag byte for error messages. */
export function tagName(tag: number): string {
  return `0x${tag.toString(16).padStart(2, '0')}`;
}
