/**
 * Distinguished names (RFC 5280 §4.1.2.4, §4.1.2.6).
 *
 * Invariants:
 * - Encoding: one attribute per RDN, in the given order; UTF8String for every attribute except
 *   countryName, which is a two-letter PrintableString (RFC 5280 Appendix A.1, X.520).
 * - Issuer/subject matching uses the raw DER bytes we wrote, never a decoded comparison: fleetkey
 *   writes the issuer field by copying the issuer certificate's subject bytes.
 * - Decoding is informational (logs, CSR subjects that the profile ignores); unknown attribute
 *   types come back as dotted OIDs, unknown string types as `#` + hex (RFC 4514 §2.4).
 */
import { OID } from './oids.js';
import {
  DerError, DerReader, Tag, oid, printableString, readOid, sequence, setOf, utf8String,
  type DerElement,
} from '../der/index.js';

export type NameAttribute = 'CN' | 'O' | 'OU' | 'C' | 'serialNumber';
export type NameEntry = readonly [NameAttribute, string];
/** A decoded name: attribute short names (or dotted OIDs) with string values. */
export type DecodedName = Array<[string, string]>;

const ATTRIBUTE_OIDS: Readonly<Record<NameAttribute, string>> = {
  CN: OID.commonName,
  O: OID.organizationName,
  OU: OID.organizationalUnitName,
  C: OID.countryName,
  serialNumber: OID.serialNumber,
};

const NAMES_BY_OID = new Map<string, string>(Object.entries(ATTRIBUTE_OIDS).map(([k, v]) => [v, k]));

/** RFC 5280 Appendix A.1 upper bounds. */
const MAX_LENGTH: Readonly<Record<NameAttribute, number>> = { CN: 64, O: 64, OU: 64, C: 2, serialNumber: 64 };

function attributeValue(type: NameAttribute, value: string): Buffer {
  if (value.length === 0 || value.length > MAX_LENGTH[type]) throw new DerError(`${type} length out of range`);
  if (type === 'C') {
    if (!/^[A-Z]{2}$/.test(value)) throw new DerError('countryName must be two capital letters');
    return printableString(value);
  }
  if (type === 'serialNumber') return printableString(value); // X.520: PrintableString
  return utf8String(value);
}

/** Encodes an RDNSequence, one AttributeTypeAndValue per RelativeDistinguishedName. */
export function encodeName(entries: readonly NameEntry[]): Buffer {
  const rdns = entries.map(([type, value]) => {
    const typeOid = ATTRIBUTE_OIDS[type];
    if (typeOid === undefined) throw new DerError(`unsupported name attribute ${String(type)}`);
    return setOf([sequence(oid(typeOid), attributeValue(type, value))]);
  });
  return sequence(...rdns);
}

function decodeBmp(bytes: Buffer): string {
  if (bytes.length % 2 !== 0) throw new DerError('odd BMPString length');
  const swapped = Buffer.from(bytes).swap16();
  return swapped.toString('utf16le');
}

function decodeString(el: DerElement): string {
  switch (el.tag) {
    case Tag.UTF8_STRING: {
      const text = el.value.toString('utf8');
      if (!Buffer.from(text, 'utf8').equals(el.value)) throw new DerError('invalid UTF-8');
      return text;
    }
    case Tag.PRINTABLE_STRING:
    case Tag.IA5_STRING:
    case Tag.TELETEX_STRING:
      return el.value.toString('latin1');
    case Tag.BMP_STRING:
      return decodeBmp(el.value);
    default:
      return '#' + el.raw.toString('hex');
  }
}

/** Decodes a Name (RDNSequence) TLV; multi-valued RDNs are flattened in order. */
export function decodeName(nameDer: Uint8Array): DecodedName {
  const outer = new DerReader(nameDer);
  const rdns = outer.enter(Tag.SEQUENCE);
  outer.end();
  const out: DecodedName = [];
  while (!rdns.done) {
    const rdn = rdns.enter(Tag.SET);
    if (rdn.done) throw new DerError('empty RDN');
    while (!rdn.done) {
      const atv = rdn.enter(Tag.SEQUENCE);
      const typeOid = readOid(atv.next());
      const value = decodeString(atv.next());
      atv.end();
      out.push([NAMES_BY_OID.get(typeOid) ?? typeOid, value]);
    }
  }
  return out;
}

/** The values of one attribute type in a decoded name. */
export function nameValues(name: DecodedName, type: string): string[] {
  return name.filter(([t]) => t === type).map(([, v]) => v);
}
