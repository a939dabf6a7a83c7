/**
 * When to renew (ADR 0025), as pure arithmetic over a certificate's validity.
 *
 * Invariants:
 * - Nominal renewal time: notBefore + RENEW_AT_FRACTION × lifetime (two thirds: a third of the
 *   lifetime is left for outages and retries).
 * - Jitter: the actual time is uniform in nominal ± jitterFraction × lifetime (default 5 %), so
 *   a fleet enrolled in one afternoon does not renew in one minute; it never leaves
 *   [notBefore, notAfter] and is always before notAfter when jitterFraction < 1/3.
 * - `random` is injected (uniform in [0, 1)); a seeded generator makes it reproducible.
 */

/** Renew once two thirds of the lifetime have passed. */
export const RENEW_AT_FRACTION = 2 / 3;
export const DEFAULT_JITTER_FRACTION = 0.05;
/** The largest jitter that still renews before expiry with margin. */
export const MAX_JITTER_FRACTION = 0.25;

export interface Validity {
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface RenewalWindow {
  readonly earliest: number;
  readonly nominal: number;
  readonly latest: number;
}

export function renewalWindow(v: Validity, jitterFraction = DEFAULT_JITTER_FRACTION): RenewalWindow {
  const lifetime = Math.max(0, v.notAfter - v.notBefore);
  const jitter = Math.min(Math.max(jitterFraction, 0), MAX_JITTER_FRACTION) * lifetime;
  const nominal = v.notBefore + RENEW_AT_FRACTION * lifetime;
  return { earliest: Math.round(nominal - jitter), nominal: Math.round(nominal), latest: Math.round(nominal + jitter) };
}

/** The jittered renewal time: uniform in the window, from one draw of `random`. */
export function renewalTime(v: Validity, random: () => number, jitterFraction = DEFAULT_JITTER_FRACTION): number {
  const w = renewalWindow(v, jitterFraction);
  const r = Math.min(Math.max(random(), 0), 1 - Number.EPSILON);
  return Math.round(w.earliest + r * (w.latest - w.earliest));
}

/** A small seeded PRNG (mulberry32) for reproducible jitter in tests and simulations. */
export { seededRandom } from '@fleetkey/protocol';
