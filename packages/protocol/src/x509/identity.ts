/**
 * Device identity in certificates (docs/adr/0003-identity-encoding.md).
 *
 * Invariants:
 * - A device id is `[a-z0-9-]{1,64}`: safe in MQTT topics, URIs, file names and log lines, and
 *   within the 64-character CN bound (RFC 5280 Appendix A.1, ub-common-name).
 * - A device certificate names its device twice: subject CN = id, and exactly one SAN, the URI
 *   `urn:fleetkey:device:<id>`. `deviceIdFromCertificate` accepts only when both agree, so a
 *   certificate that names two identities is never read as either of them.
 * - It checks encoding, not trust: call it only on a certificate whose chain was verified.
 */
import { FleetkeyError } from '../errors.js';
import { DerError, DerReader, Tag } from '../der/index.js';
import { decodeName, nameValues } from './name.js';
import { OID } from './oids.js';
import { findExtension, parseCertificate } from './certificate-parse.js';

export const DEVICE_ID_RE = /^[a-z0-9-]{1,64}$/;
export const DEVICE_URI_PREFIX = 'urn:fleetkey:device:';

export function isDeviceId(value: unknown): value is string {
  return typeof value === 'string' && DEVICE_ID_RE.test(value);
}

export function deviceUri(deviceId: string): string {
  if (!isDeviceId(deviceId)) throw new DerError('invalid device id');
  return DEVICE_URI_PREFIX + deviceId;
}

export interface GeneralName {
  /** Context tag number: 1 rfc822Name, 2 dNSName, 6 URI, 7 iPAddress, ... */
  readonly type: number;
  readonly value: Buffer;
}

/** Decodes GeneralNames (RFC 5280 §4.2.1.6) into tag numbers and raw values. */
export function decodeGeneralNames(der: Uint8Array): GeneralName[] {
  const outer = new DerReader(der);
  const names = outer.enter(Tag.SEQUENCE);
  outer.end();
  const out: GeneralName[] = [];
  while (!names.done) {
    const el = names.next();
    if ((el.tag & 0xc0) !== 0x80) throw new DerError('GeneralName is not context-tagged');
    out.push({ type: el.tag & 0x1f, value: el.value });
  }
  if (out.length === 0) throw new DerError('empty GeneralNames');
  return out;
}

function identityFromCertificate(der: Uint8Array): string {
  const cert = parseCertificate(der);
  const san = findExtension(cert, OID.subjectAltName);
  if (san === undefined) throw new DerError('no subjectAltName');
  const names = decodeGeneralNames(san.value);
  const only = names[0];
  if (names.length !== 1 || only === undefined || only.type !== 6) throw new DerError('SAN is not one URI');
  const uri = only.value.toString('latin1');
  if (!uri.startsWith(DEVICE_URI_PREFIX)) throw new DerError('SAN URI is not a fleetkey device URI');
  const id = uri.slice(DEVICE_URI_PREFIX.length);
  const cns = nameValues(decodeName(cert.subject), 'CN');
  if (!isDeviceId(id) || cns.length !== 1 || cns[0] !== id) throw new DerError('CN and SAN URI disagree');
  return id;
}

/** The device id of a verified device certificate; CERT_INVALID when the identity is not exact. */
export function deviceIdFromCertificate(der: Uint8Array): string {
  try {
    return identityFromCertificate(der);
  } catch (cause) {
    if (cause instanceof DerError) throw new FleetkeyError('CERT_INVALID', { cause });
    throw cause;
  }
}
