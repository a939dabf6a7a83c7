/**
 * A Grant is a provisioning method's answer to "who is this device?" — and nothing more.
 * Methods decide *who*; only `ca/issuance.ts` decides *what* gets signed, and it reads from a
 * grant only the fields below (docs/adr/0003-identity-encoding.md).
 */
import type { KeyProtection } from '../storage/attestation-types.js';

export interface Grant {
  /** The provisioning method that authorised the request, e.g. `claim-token`, `reenroll`. */
  readonly method: string;
  readonly tenantId: string;
  /** `[a-z0-9-]{1,64}`; becomes CN and SAN URI `urn:fleetkey:device:<id>`. */
  readonly deviceId: string;
  /** Upper bound on validity; the CA's own default (and its own notAfter) still apply. */
  readonly maxValidityMs?: number;
  /** Lowercase hex SHA-256 of the SPKI the request must carry, when the method already knows the key. */
  readonly boundSpkiSha256?: string;
  /** Method-specific facts for the audit trail (token id, previous serial, source address). */
  readonly context?: Record<string, string>;
  /**
   * A claim-token use to spend in the same durable unit that records the certificate: the use is
   * spent if and only if the certificate is recorded (storage `NewEnrollment.redeem`).
   */
  readonly redeem?: { readonly claimTokenHash: string };
  /** How the key is protected: proven by an attestation method, else as the device reported (ADR 0027). */
  readonly keyProtection?: KeyProtection;
}
