/**
 * Certificate extension encoders (RFC 5280 §4.2). Each returns one complete `Extension` TLV,
 * so a profile can encode its constant extensions once and reuse the bytes for every certificate.
 *
 * Invariants:
 * - `critical` is written only when TRUE (DER omits DEFAULT values, X.690 §11.5).
 * - Criticality follows RFC 5280: basicConstraints and keyUsage critical in every fleetkey
 *   certificate (§4.2.1.9, §4.2.1.3); SKI/AKI never critical (§4.2.1.1, §4.2.1.2).
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import {
  DerError, DerReader, Tag, bitString, boolean, explicit, ia5String, implicit, integer, octetString, oid,
  readOctetAlignedBits, sequence,
} from '../der/index.js';
import { OID } from './oids.js';

/** A complete DER `Extension` (RFC 5280 §4.1): extnID, critical, extnValue. */
export type EncodedExtension = Buffer;

export function extension(extnId: string, critical: boolean, value: Buffer): EncodedExtension {
  return critical
    ? sequence(oid(extnId), boolean(true), octetString(value))
    : sequence(oid(extnId), octetString(value));
}

/** RFC 5280 §4.2.1.9; always critical in fleetkey. */
export function basicConstraints(options: { cA: boolean; pathLen?: number }): EncodedExtension {
  if (!options.cA && options.pathLen !== undefined) throw new DerError('pathLen requires cA');
  const fields: Buffer[] = [];
  if (options.cA) fields.push(boolean(true));
  if (options.pathLen !== undefined) fields.push(integer(options.pathLen));
  return extension(OID.basicConstraints, true, sequence(...fields));
}

/** Bit positions of KeyUsage (RFC 5280 §4.2.1.3). */
export const KEY_USAGE_BITS = {
  digitalSignature: 0, nonRepudiation: 1, keyEncipherment: 2, dataEncipherment: 3,
  keyAgreement: 4, keyCertSign: 5, cRLSign: 6, encipherOnly: 7, decipherOnly: 8,
} as const;
export type KeyUsageName = keyof typeof KEY_USAGE_BITS;

/** A named-bit BIT STRING with trailing zero bits removed (X.690 §11.2.2). */
export function namedBits(positions: readonly number[]): Buffer {
  if (positions.length === 0) throw new DerError('empty named bit list');
  const highest = Math.max(...positions);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const p of positions) bytes[p >> 3]! |= 0x80 >> (p & 7);
  return bitString(bytes, 7 - (highest & 7));
}

/** RFC 5280 §4.2.1.3; critical. */
export function keyUsage(usages: readonly KeyUsageName[]): EncodedExtension {
  return extension(OID.keyUsage, true, namedBits(usages.map((u) => KEY_USAGE_BITS[u])));
}

const EKU_OIDS = { clientAuth: OID.clientAuth, serverAuth: OID.serverAuth, ocspSigning: OID.ocspSigning } as const;
export type ExtendedKeyUsageName = keyof typeof EKU_OIDS;

/** RFC 5280 §4.2.1.12; not critical. */
export function extKeyUsage(usages: readonly ExtendedKeyUsageName[]): EncodedExtension {
  return extension(OID.extKeyUsage, false, sequence(...usages.map((u) => oid(EKU_OIDS[u]))));
}

/** The subjectPublicKey BIT STRING contents of an SPKI. */
export function subjectPublicKeyBits(spkiDer: Uint8Array): Buffer {
  const outer = new DerReader(spkiDer);
  const spki = outer.enter(Tag.SEQUENCE);
  outer.end();
  spki.expect(Tag.SEQUENCE);
  return readOctetAlignedBits(spki.expect(Tag.BIT_STRING));
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(spkiDer: Uint8Array): Buffer {
  return createHash('sha1').update(subjectPublicKeyBits(spkiDer)).digest();
}

export function subjectKeyIdentifier(keyId: Buffer): EncodedExtension {
  return extension(OID.subjectKeyIdentifier, false, octetString(keyId));
}

/** RFC 5280 §4.2.1.1: keyIdentifier [0] only. */
export function authorityKeyIdentifier(keyId: Buffer): EncodedExtension {
  return extension(OID.authorityKeyIdentifier, false, sequence(implicit(0, keyId, false)));
}

/** An IPv4 or IPv6 address as 4 or 16 octets (RFC 5280 §4.2.1.6). */
export function ipAddressBytes(ip: string): Buffer {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  if (family !== 6 || ip.includes('%')) throw new DerError('invalid IP address');
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    const b = ipAddressBytes(v4[1]!);
    text = text.slice(0, -v4[1]!.length) + `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export interface AltNames {
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ips?: readonly string[];
}

const DNS_NAME_RE = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function checkedIa5(value: string): Buffer {
  ia5String(value); // validates the alphabet
  return Buffer.from(value, 'latin1');
}

/** The GeneralName items: dNSName [2], uniformResourceIdentifier [6], iPAddress [7] (RFC 5280 §4.2.1.6). */
export function generalNameItems(names: AltNames): Buffer[] {
  const items: Buffer[] = [];
  for (const d of names.dnsNames ?? []) {
    if (!DNS_NAME_RE.test(d)) throw new DerError('invalid dNSName'); // preferred name syntax
    items.push(implicit(2, checkedIa5(d), false));
  }
  for (const u of names.uris ?? []) {
    if (!/^[a-z][a-z0-9+.-]*:[^\s]+$/i.test(u)) throw new DerError('invalid URI');
    items.push(implicit(6, checkedIa5(u), false));
  }
  for (const ip of names.ips ?? []) items.push(implicit(7, ipAddressBytes(ip), false));
  if (items.length === 0) throw new DerError('empty GeneralNames');
  return items;
}

export function generalNames(names: AltNames): Buffer {
  return sequence(...generalNameItems(names));
}

/** RFC 5280 §4.2.1.6; critical only when the subject is empty. */
export function subjectAltName(names: AltNames, critical = false): EncodedExtension {
  return extension(OID.subjectAltName, critical, generalNames(names));
}

/** RFC 5280 §4.2.1.13: one DistributionPoint with fullName = URI. */
export function crlDistributionPoints(uri: string): EncodedExtension {
  // distributionPoint [0] (explicit: CHOICE) { fullName [0] IMPLICIT GeneralNames }
  const fullName = implicit(0, generalNameItems({ uris: [uri] }), true);
  return extension(OID.cRLDistributionPoints, false, sequence(sequence(explicit(0, fullName))));
}

/** RFC 5280 §4.2.2.1: id-ad-ocsp and id-ad-caIssuers URIs. */
export function authorityInfoAccess(options: { ocsp?: string; caIssuers?: string }): EncodedExtension {
  const descriptions: Buffer[] = [];
  const uri = (u: string): Buffer => generalNameItems({ uris: [u] })[0]!;
  if (options.ocsp !== undefined) descriptions.push(sequence(oid(OID.accessOcsp), uri(options.ocsp)));
  if (options.caIssuers !== undefined) descriptions.push(sequence(oid(OID.accessCaIssuers), uri(options.caIssuers)));
  if (descriptions.length === 0) throw new DerError('empty authorityInfoAccess');
  return extension(OID.authorityInfoAccess, false, sequence(...descriptions));
}
