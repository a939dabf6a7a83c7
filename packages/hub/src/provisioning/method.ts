/**
 * The provisioning seam. A method decides *who* a device is (tenant, device id, limits) and
 * returns a Grant; only `ca/` decides *what* gets signed (see ca/issuance.ts).
 *
 * Invariants:
 * - `authorize` either returns a Grant or throws a FleetkeyError; on throw nothing was granted and
 *   no single-use credential is left half-spent. A credential that must be spent is named in the
 *   grant (`redeem`) and spent by the store together with the certificate record, never before.
 * - A method never reads the CSR's subject or extensions; it may bind the CSR key (by SPKI hash).
 * - Failures are audited by the method with the precise reason; the client sees one public code.
 *
 * Adding a method: one folder under provisioning/, one line in `registry.ts`, one call of the
 * contract suite (test/unit/provisioning.contract.ts), one docs page.
 */
import type { Grant } from '../ca/grant.js';
import type { KeyProtection } from '../storage/attestation-types.js';

/** A key the hub proved to be in a chip (attestation/service.ts builds it, never a client). */
export interface AttestedKey {
  readonly keyProtection: 'tpm-attested' | 'se-attested';
  readonly spkiSha256: string;
  /** SHA-256 (hex) of the chip certificate (EK or SE device certificate). */
  readonly chipSha256: string;
  readonly vendorRootId: string;
}

export type EnrollmentCredential =
  /** A bearer secret: HTTP Basic password or `Authorization: Bearer`. */
  | { readonly kind: 'secret'; readonly secret: string }
  /** The TLS client certificate of this connection (DER), as presented. */
  | { readonly kind: 'certificate'; readonly der: Buffer }
  /** A claim token plus attestation evidence the hub has already verified (ADR 0027). */
  | { readonly kind: 'attested'; readonly secret: string; readonly attestation: AttestedKey };

export interface EnrollmentRequest {
  readonly credential: EnrollmentCredential;
  /** Remote address, for throttling and audit. */
  readonly source: string;
  /** SHA-256 (hex) of the CSR's SubjectPublicKeyInfo. */
  readonly csrSpkiSha256: string;
  /** Which EST operation was called. */
  readonly operation: 'simpleenroll' | 'simplereenroll';
  /** What the device says protects its key (not verified; `file` when absent). */
  readonly reportedKeyProtection?: Extract<KeyProtection, 'file' | 'pkcs11' | 'tpm'>;
}

export interface ProvisioningMethod {
  readonly name: string;
  /** True when this method handles this request (credential kind and operation). */
  accepts(request: EnrollmentRequest): boolean;
  authorize(request: EnrollmentRequest): Promise<Grant>;
}
