/**
 * The trust bundle verifier (ADR 0020): pure, no I/O, time passed in. It decides whether a device
 * may move from the bundle it trusts to a candidate, after TUF's root rotation rules (TUF spec
 * §5.3.4, python-tuf `trusted_metadata_set.py`).
 *
 * Invariants — a candidate is accepted only when ALL hold, else TRUST_BUNDLE_REJECTED with a
 * public `reason` and nothing else happens (the caller's trusted state is untouched):
 * - Size ≤ MAX_BUNDLE_BYTES, checked before parsing (`oversized`); canonical, schema-valid
 *   (`malformed`); every name in `critical` is one this verifier implements (`unknown-critical`).
 * - version = trusted.version + 1 exactly: ≤ trusted is `rollback`, more is `version-gap` (a
 *   device that missed versions walks them with verifyChain; skipping would let a key removed in a
 *   skipped version sign again — mix-and-match).
 * - ≥ trusted.threshold valid signatures by distinct keys of the TRUSTED bundle
 *   (`threshold-trusted`) AND ≥ candidate.threshold by distinct keys of the CANDIDATE
 *   (`threshold-own`). A bundle's keys are its root keys and its recovery keys. A key id counts
 *   once however often it appears; signatures by unknown keys, and invalid ones, count zero.
 * - A candidate whose recovery key set differs from the trusted one carries valid signatures by
 *   ≥ min(threshold, |recovery keys|) of the TRUSTED recovery keys (`recovery-not-signed`): a
 *   stolen root alone can never remove the offline recovery key that would undo it.
 * - The final bundle of a step or chain has expires > now (`expired`, the freeze attack).
 *   Intermediate bundles of a chain may have expired since: they only carry keys forward.
 * - verifyInitial (a device that holds only pins): self-signed by its own threshold, unexpired,
 *   and one of its root keys is pinned (`unpinned`).
 */
import { verify as verifySignatureRaw } from 'node:crypto';
import { FleetkeyError } from '../errors.js';
import { computePin, createPublicKeyFromSpki, describeSpki, signatureAlgorithmFor } from '../x509/keys.js';
import { decodeBundle, keyIdOf, MAX_BUNDLE_BYTES, type TrustBundle } from './bundle.js';
import { BundleError, type BundleReason } from './shape.js';

/** Critical extension names this verifier implements (none yet). */
export const KNOWN_CRITICAL: readonly string[] = [];

function rejected(reason: BundleReason, message: string, cause?: unknown): FleetkeyError {
  return new FleetkeyError('TRUST_BUNDLE_REJECTED', { details: { reason }, cause: new BundleError(message, { reason, cause }) });
}

/** Decodes candidate bytes or throws TRUST_BUNDLE_REJECTED (oversized, malformed, unknown-critical). */
export function decodeCandidate(bytes: Uint8Array): TrustBundle {
  if (bytes.length > MAX_BUNDLE_BYTES) throw rejected('oversized', `${bytes.length} bytes > ${MAX_BUNDLE_BYTES}`);
  let bundle: TrustBundle;
  try {
    bundle = decodeBundle(bytes);
  } catch (err) {
    throw rejected(err instanceof BundleError ? err.reason : 'malformed', 'the bundle does not decode', err);
  }
  const unknown = (bundle.content.critical ?? []).find((name) => !KNOWN_CRITICAL.includes(name));
  if (unknown !== undefined) throw rejected('unknown-critical', `critical extension '${unknown}' is not understood by this verifier`);
  return bundle;
}

function signatureValid(spki: Buffer, data: Buffer, sig: Buffer): boolean {
  try {
    const { hash } = signatureAlgorithmFor(describeSpki(spki).algorithm);
    return verifySignatureRaw(hash, data, createPublicKeyFromSpki(spki), sig);
  } catch {
    return false;
  }
}

/** Distinct keys among `keys` with a valid signature on `bundle` (duplicates count once). */
export function countSigners(bundle: TrustBundle, keys: readonly Buffer[]): number {
  const byId = new Map(keys.map((k) => [keyIdOf(k), k] as const));
  const counted = new Set<string>();
  for (const s of bundle.signatures) {
    const key = byId.get(s.keyid);
    if (key !== undefined && !counted.has(s.keyid) && signatureValid(key, bundle.signedBytes, s.sig)) counted.add(s.keyid);
  }
  return counted.size;
}

const signingKeys = (b: TrustBundle): Buffer[] => [...b.content.rootKeys, ...b.content.recoveryKeys];
const keySet = (keys: readonly Buffer[]): string => keys.map(keyIdOf).sort().join(',');

function checkFresh(bundle: TrustBundle, now: number): void {
  if (bundle.content.expires <= now) throw rejected('expired', `version ${bundle.content.version} expired at ${new Date(bundle.content.expires).toISOString()}`);
}

function checkOwnThreshold(candidate: TrustBundle): void {
  if (countSigners(candidate, signingKeys(candidate)) < candidate.content.threshold) {
    throw rejected('threshold-own', `fewer than ${candidate.content.threshold} signatures by the bundle's own keys`);
  }
}

/** One step N → N+1 without the expiry check (see verifyNext, verifyChain). */
function verifyStep(trusted: TrustBundle, bytes: Uint8Array): TrustBundle {
  const candidate = decodeCandidate(bytes);
  const t = trusted.content;
  const c = candidate.content;
  if (c.version <= t.version) throw rejected('rollback', `version ${c.version} is not above the trusted ${t.version}`);
  if (c.version !== t.version + 1) throw rejected('version-gap', `version ${c.version} does not follow ${t.version}`);
  if (countSigners(candidate, signingKeys(trusted)) < t.threshold) throw rejected('threshold-trusted', `fewer than ${t.threshold} signatures by keys of version ${t.version}`);
  checkOwnThreshold(candidate);
  if (keySet(c.recoveryKeys) !== keySet(t.recoveryKeys)) {
    const needed = Math.min(t.threshold, t.recoveryKeys.length);
    if (countSigners(candidate, t.recoveryKeys) < needed) throw rejected('recovery-not-signed', 'the recovery keys change without the trusted recovery key signing');
  }
  return candidate;
}

/** Accepts `candidate` as the successor of `trusted` at `now`; TRUST_BUNDLE_REJECTED otherwise. */
export function verifyNext(trusted: TrustBundle, candidate: Uint8Array, now: number): TrustBundle {
  const next = verifyStep(trusted, candidate);
  checkFresh(next, now);
  return next;
}

/** Walks `candidates` (consecutive versions after `trusted`) and returns the last; see invariants. */
export function verifyChain(trusted: TrustBundle, candidates: readonly Uint8Array[], now: number): TrustBundle {
  let current = trusted;
  for (const bytes of candidates) current = verifyStep(current, bytes);
  if (current !== trusted) checkFresh(current, now);
  return current;
}

/** The first bundle of a device that holds only pins (from its claim or factory). */
export function verifyInitial(pins: readonly string[], bytes: Uint8Array, now: number): TrustBundle {
  const bundle = decodeCandidate(bytes);
  checkOwnThreshold(bundle);
  if (!bundle.content.rootKeys.some((k) => pins.includes(computePin(k)))) throw rejected('unpinned', 'no root key of the bundle is pinned');
  checkFresh(bundle, now);
  return bundle;
}

/** A bundle read back from the device's own storage: canonical, schema-valid, self-signed (no expiry check). */
export function verifyStored(bytes: Uint8Array): TrustBundle {
  const bundle = decodeCandidate(bytes);
  checkOwnThreshold(bundle);
  return bundle;
}

/** The pins that count at `now`: those without `until`, and retired ones until their end. */
export function activePins(bundle: TrustBundle, now: number): string[] {
  return bundle.content.pins.filter((p) => p.until === undefined || now < p.until).map((p) => p.pin);
}
