/**
 * What the device accepts back from the hub after (re)enrollment.
 *
 * Invariants:
 * - The issued certificate carries exactly our public key (the SPKI we put in the CSR); the hub
 *   cannot hand us someone else's certificate or a key it chose.
 * - It chains, by signatures and within validity, through the returned/cacerts issuers to a
 *   pinned key (verifyPinnedPath, purpose `client`); a certificate that does not would be
 *   refused by every peer that trusts the same root, so it is refused here first.
 * - It names one device identity (CN = SAN URI id, protocol's deviceIdFromCertificate).
 * - Any failure is HUB_PROTOCOL_ERROR: the hub was pinned, so it answered wrongly.
 */
import { X509Certificate } from 'node:crypto';
import { deviceIdFromCertificate, FleetkeyError, type Clock } from '@fleetkey/protocol';
import { verifyPinnedPath } from '../trust/pinned-path.js';
import type { PinSet } from '../trust/pin-set.js';

export interface AcceptedCertificate {
  readonly deviceId: string;
  readonly certificateDer: Buffer;
  /** Issuers from the verified path: device CA first, pinned root last. */
  readonly chainDers: Buffer[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface IssuedInput {
  readonly issued: readonly Buffer[];
  readonly caCertificates: readonly Uint8Array[];
  readonly spki: Buffer;
  readonly pins: PinSet;
  readonly clock: Clock;
}

function protocolError(reason: string, cause?: unknown): FleetkeyError {
  return new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error(reason, cause === undefined ? undefined : { cause }) });
}

function spkiOf(der: Buffer): Buffer | undefined {
  try {
    return new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
  } catch {
    return undefined;
  }
}

/** Checks the hub's answer; see the module invariants. */
export function acceptIssuedCertificate(input: IssuedInput): AcceptedCertificate {
  const leafDer = input.issued.find((der) => spkiOf(der)?.equals(input.spki) === true);
  if (leafDer === undefined) throw protocolError('no returned certificate carries the public key of our CSR');
  let path;
  try {
    path = verifyPinnedPath({ presented: [leafDer], known: [...input.issued, ...input.caCertificates], pins: input.pins, clock: input.clock, purpose: 'client' });
  } catch (err) {
    throw protocolError('the issued certificate does not chain to a pinned key', err);
  }
  let deviceId: string;
  try {
    deviceId = deviceIdFromCertificate(leafDer);
  } catch (err) {
    throw protocolError('the issued certificate does not name one device identity', err);
  }
  return {
    deviceId,
    certificateDer: leafDer,
    chainDers: path.certificates.slice(1).map((c) => Buffer.from(c.raw)),
    notBefore: new Date(path.leaf.validFrom),
    notAfter: new Date(path.leaf.validTo),
  };
}

/** A fresh key label: `device-<UTC yyyymmddhhmmss>-<random>`; labels are never reused. */
export function newKeyLabel(clock: Clock, random: string): string {
  const stamp = new Date(clock.now()).toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `device-${stamp}-${random}`;
}
