/**
 * When may a device certificate be renewed by `simplereenroll`? A pure decision (ADR 0025).
 *
 * Invariants:
 * - Inside its validity (RFC 5280 §4.1.2.5: notBefore ≤ now ≤ notAfter, both inclusive) a
 *   certificate renews with any key the CSR proves (the SDK makes a new one).
 * - After notAfter it renews only within the organisation's grace (`now ≤ notAfter + grace`) and
 *   only for the SAME public key: the TLS handshake proved possession of the certificate's key
 *   (CertificateVerify, RFC 8446 §4.4.3) and the CSR signature proves it again (RFC 2986 §3), so
 *   a chip-bound, non-exportable key means the same chip. Anything else needs a new claim.
 * - Before notBefore nothing renews. The decision reads no clock of its own and does no I/O.
 */
import type { ErrorCode } from '@fleetkey/protocol';

export interface RenewalFacts {
  readonly now: number;
  readonly notBefore: number;
  readonly notAfter: number;
  /** The organisation's grace after notAfter, in ms (0 = none). */
  readonly graceMs: number;
  /** Hex SHA-256 of the SPKI of the presented certificate and of the CSR. */
  readonly certSpkiSha256: string;
  readonly csrSpkiSha256: string;
}

export type RenewalDecision =
  | { readonly kind: 'renew' }
  | { readonly kind: 'grace'; readonly expiredForMs: number }
  | { readonly kind: 'refuse'; readonly code: ErrorCode; readonly reason: string };

export function decideRenewal(f: RenewalFacts): RenewalDecision {
  if (f.now < f.notBefore) return { kind: 'refuse', code: 'CERT_INVALID', reason: 'certificate not yet valid' };
  if (f.now <= f.notAfter) return { kind: 'renew' };
  const expiredForMs = f.now - f.notAfter;
  if (expiredForMs > f.graceMs) return { kind: 'refuse', code: 'RENEWAL_NEEDS_CLAIM', reason: 'expired beyond the renewal grace period' };
  if (f.certSpkiSha256.toLowerCase() !== f.csrSpkiSha256.toLowerCase()) {
    return { kind: 'refuse', code: 'RENEWAL_NEEDS_CLAIM', reason: 'expired certificate: renewal must keep the same key' };
  }
  return { kind: 'grace', expiredForMs };
}
