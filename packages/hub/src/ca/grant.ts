/**
 * A Grant is what a provisioning method decided: *who* may get a certificate. It never says what
 * the certificate contains; the CA's profile alone decides that (ADR 0009).
 */
export interface Grant {
  /** The provisioning method that authorised this (e.g. `claim-token`, `reenroll`). */
  readonly method: string;
  readonly tenantId: string;
  /** The device identity the certificate will carry (CN and SAN URI). */
  readonly deviceId: string;
  /** Upper bound on the certificate lifetime; the CA clamps further. */
  readonly maxValidityMs?: number;
  /** When set, the CSR's key must have this SPKI SHA-256 (hex). */
  readonly boundSpkiSha256?: string;
  /** Non-secret facts for the audit record (claim token id, previous serial, source). */
  readonly context?: Readonly<Record<string, string>>;
}
