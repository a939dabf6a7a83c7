/**
 * Storage types of device certificate renewal (ADR 0025); part of the Store seam of `types.ts`,
 * whose invariants hold here too.
 *
 * Invariants:
 * - An organisation's renewal grace is one row per tenant; no row means "the hub default"
 *   (`renewalGraceDays`). Setting it is one unit with its audit record.
 * - Retiring the previous certificates of a device after a proven renewal marks them revoked with
 *   CRLReason `superseded` (RFC 5280 §5.3.1) in one unit with its audit record; the certificate
 *   that was proven is never touched, a first revocation time is never overwritten, and the
 *   statement is tenant-scoped (another tenant's device changes nothing).
 */
import type { AuditEventInput } from './types.js';

export interface RenewalPolicy {
  readonly tenantId: string;
  /** Days after notAfter in which a same-key renewal is still accepted; 0 = none. */
  readonly graceDays: number;
  readonly updatedAt: number;
}

export interface RenewalRepo {
  /** The tenant's own policy, or undefined when it follows the hub default. */
  policy(tenantId: string): Promise<RenewalPolicy | undefined>;
  /** Sets (inserts or replaces) the tenant's grace, with its audit record, in one unit. */
  setPolicy(policy: RenewalPolicy, audit: AuditEventInput): Promise<void>;
  /**
   * One unit: every unrevoked certificate of this device other than `keepSerial` and issued
   * before it is revoked at `now` with reason `superseded`; returns their serials (possibly
   * none). The audit record is appended only when something was retired.
   */
  retirePrevious(input: { readonly tenantId: string; readonly deviceId: string; readonly keepSerial: string; readonly now: number; readonly audit: AuditEventInput }): Promise<string[]>;
}
