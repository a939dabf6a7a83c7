/**
 * Pure certificate path verification against a pin set: no I/O, time from a Clock.
 *
 * Invariants (ADR 0006):
 * - The path starts at the leaf and ends at the first certificate, above the leaf, whose SPKI
 *   SHA-256 is pinned. A pin never matches the leaf itself: hub TLS leaves are short-lived, and a
 *   leaf pin would strand devices at the hub's next renewal.
 * - Every link is proven by signature (issuer's public key verifies the child), not by names:
 *   a fake root with the pinned root's subject name gets nowhere.
 * - Every certificate in the path, the pinned one included, is within its validity at `now`.
 * - Every certificate above the leaf has basicConstraints cA=TRUE (RFC 5280 §4.2.1.9).
 * - Purpose `server`: the leaf MUST carry extendedKeyUsage id-kp-serverAuth (RFC 5280 §4.2.1.12),
 *   so a device certificate issued under the same root can never impersonate the hub.
 *   Purpose `client`: the leaf's EKU, when present, includes id-kp-clientAuth.
 * - Paths are at most MAX_PATH_LENGTH certificates and use each candidate once (no loops).
 * - Where several issuers signed a certificate (a device CA re-certified by a new root, a root
 *   cross-signed by its predecessor: ADR 0021), every one is tried, pinned ones first, within
 *   MAX_SEARCH_STEPS (RFC 4158 path building); the first path that reaches a pin wins.
 * - Failure is a PathError whose message says why; callers map it to their public code.
 */
import { X509Certificate } from 'node:crypto';
import type { Clock } from '@fleetkey/protocol';
import type { PinSet } from './pin-set.js';

export const MAX_PATH_LENGTH = 6;
/** Issuer candidates tried in one verification (cross-signed roots give several paths). */
export const MAX_SEARCH_STEPS = 64;
const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export type PathPurpose = 'server' | 'client';

export class PathError extends Error {
  override readonly name = 'PathError';
}

export interface PinnedPathInput {
  /** DER certificates, the leaf first; the rest in any order (candidates for issuers). */
  readonly presented: readonly Uint8Array[];
  /** Extra issuer candidates already known to the device (e.g. chain.pem). */
  readonly known?: readonly Uint8Array[];
  readonly pins: PinSet;
  readonly clock: Clock;
  readonly purpose: PathPurpose;
}

/** A verified path: `certificates[0]` is the leaf, the last one is the pinned certificate. */
export interface PinnedPath {
  readonly certificates: readonly X509Certificate[];
  readonly leaf: X509Certificate;
  readonly anchor: X509Certificate;
}

function parseAll(ders: readonly Uint8Array[]): X509Certificate[] {
  const seen = new Set<string>();
  const out: X509Certificate[] = [];
  for (const der of ders) {
    const key = Buffer.from(der).toString('base64');
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      out.push(new X509Certificate(der));
    } catch (cause) {
      throw new PathError('a presented certificate is not valid DER X.509', { cause });
    }
  }
  return out;
}

function describe(certificate: X509Certificate): string {
  return `'${certificate.subject.replace(/\n/g, ', ')}'`;
}

function checkValidity(certificate: X509Certificate, now: number): void {
  const notBefore = Date.parse(certificate.validFrom);
  const notAfter = Date.parse(certificate.validTo);
  if (Number.isNaN(notBefore) || Number.isNaN(notAfter)) throw new PathError(`${describe(certificate)} has unreadable validity`);
  if (now < notBefore) throw new PathError(`${describe(certificate)} is not valid before ${certificate.validFrom}`);
  if (now > notAfter) throw new PathError(`${describe(certificate)} expired at ${certificate.validTo}`);
}

function checkPurpose(leaf: X509Certificate, purpose: PathPurpose): void {
  // node returns undefined (despite its typing) when the extension is absent
  const eku = leaf.keyUsage as string[] | undefined;
  if (purpose === 'server' && !(eku ?? []).includes(EKU_SERVER_AUTH)) {
    throw new PathError(`leaf ${describe(leaf)} lacks extendedKeyUsage serverAuth; it is not a hub TLS certificate`);
  }
  if (purpose === 'client' && eku !== undefined && !eku.includes(EKU_CLIENT_AUTH)) {
    throw new PathError(`leaf ${describe(leaf)} has extendedKeyUsage without clientAuth`);
  }
}

interface Search {
  readonly candidates: readonly X509Certificate[];
  readonly pins: PinSet;
  readonly now: number;
  steps: number;
  /** The first reason a branch failed: for a single chain, exactly where it broke. */
  failure: PathError | undefined;
}

function issuerProblem(issuer: X509Certificate, now: number): PathError | undefined {
  if (!issuer.ca) return new PathError(`issuer ${describe(issuer)} is not a CA (basicConstraints cA is not TRUE)`);
  try {
    checkValidity(issuer, now);
    return undefined;
  } catch (err) {
    return err as PathError;
  }
}

/** Depth-first over every issuer that signed `path`'s last certificate, pinned ones first. */
function extend(path: readonly X509Certificate[], s: Search): X509Certificate[] | undefined {
  const child = path[path.length - 1]!;
  if (path.length >= MAX_PATH_LENGTH) {
    s.failure ??= new PathError(`no pinned key within ${MAX_PATH_LENGTH} certificates`);
    return undefined;
  }
  const issuers = s.candidates.filter((c) => !path.includes(c) && child.checkIssued(c) && child.verify(c.publicKey));
  if (issuers.length === 0) s.failure ??= new PathError(`no presented certificate signed ${describe(child)}; the path does not reach a pinned key`);
  issuers.sort((a, b) => Number(s.pins.matchesCertificate(b)) - Number(s.pins.matchesCertificate(a)));
  for (const issuer of issuers) {
    if (++s.steps > MAX_SEARCH_STEPS) {
      s.failure = new PathError(`path search exceeded ${MAX_SEARCH_STEPS} steps`);
      return undefined;
    }
    const problem = issuerProblem(issuer, s.now);
    if (problem !== undefined) {
      s.failure ??= problem;
      continue;
    }
    const next = [...path, issuer];
    if (s.pins.matchesCertificate(issuer)) return next;
    if (issuer.checkIssued(issuer)) {
      s.failure ??= new PathError(`the path ends at root ${describe(issuer)}, whose key is not pinned`);
      continue;
    }
    const found = extend(next, s);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Builds and verifies the path from the leaf to a pinned certificate; throws PathError.
 *
 * @example
 * const path = verifyPinnedPath({ presented: [leafDer, rootDer], pins, clock: systemClock, purpose: 'server' });
 * path.anchor; // the pinned certificate
 */
export function verifyPinnedPath(input: PinnedPathInput): PinnedPath {
  const [leaf, ...rest] = parseAll(input.presented);
  if (leaf === undefined) throw new PathError('no certificate was presented');
  const now = input.clock.now();
  const candidates = [...rest, ...parseAll(input.known ?? [])];
  checkValidity(leaf, now);
  checkPurpose(leaf, input.purpose);
  const search: Search = { candidates, pins: input.pins, now, steps: 0, failure: undefined };
  const path = extend([leaf], search);
  if (path === undefined) throw search.failure ?? new PathError('no path to a pinned key');
  return { certificates: path, leaf, anchor: path[path.length - 1]! };
}
