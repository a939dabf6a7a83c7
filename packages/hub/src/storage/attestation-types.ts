/**
 * Storage types of hardware attestation (ADR 0027): per-organisation vendor roots, the optional
 * allowlist of owned chips, and the organisation's attestation policy.
 *
 * Invariants every engine keeps (on top of those in types.ts):
 * - Everything is tenant-scoped: another organisation's root, chip or policy is invisible, and a
 *   delete of it changes nothing (false), exactly like one that does not exist.
 * - A vendor root appears at most once per organisation and kind (by certificate SHA-256): a
 *   repeat is CONFLICT and changes nothing. Owned-chip entries are a set: repeats are ignored.
 * - Vendor roots and owned chips are public data (certificates, hashes, serials); no secret here.
 */
import type { AuditEventInput } from './types.js';

/**
 * How a device's key is protected. `file`, `pkcs11` and `tpm` are what the device reported at
 * enrollment (not verified); `tpm-attested` and `se-attested` were proven to the hub.
 */
export type KeyProtection = 'file' | 'pkcs11' | 'tpm' | 'tpm-attested' | 'se-attested';
export const KEY_PROTECTIONS: readonly KeyProtection[] = ['file', 'pkcs11', 'tpm', 'tpm-attested', 'se-attested'];

/** `tpm`: a TPM manufacturer's EK CA; `se`: a secure-element vendor's device CA. */
export type VendorRootKind = 'tpm' | 'se';

export interface VendorRoot {
  readonly id: string;
  readonly tenantId: string;
  readonly kind: VendorRootKind;
  readonly label: string | null;
  /** RFC 4514-ish subject, for display. */
  readonly subject: string;
  /** Lowercase hex SHA-256 of the certificate DER. */
  readonly sha256: string;
  readonly der: Buffer;
  readonly createdAt: number;
}

/** `sha256`: of a chip certificate (EK or SE device certificate) DER; `serial`: its serial, lowercase hex. */
export type OwnedChipMatch = 'sha256' | 'serial';

export interface OwnedChip {
  readonly id: string;
  readonly tenantId: string;
  readonly match: OwnedChipMatch;
  readonly value: string;
  readonly label: string | null;
  readonly createdAt: number;
}

export interface AttestationPolicy {
  readonly tenantId: string;
  /** Every new device must be attested; a claim token alone is refused (ATTESTATION_REQUIRED). */
  readonly requireAttestation: boolean;
  readonly updatedAt: number;
}

export interface AttestationRepo {
  /** CONFLICT (nothing written) when this organisation already has this certificate for `kind`. */
  addVendorRoot(root: VendorRoot, audit: AuditEventInput): Promise<void>;
  listVendorRoots(tenantId: string, kind?: VendorRootKind): Promise<VendorRoot[]>;
  /** False (and no audit) when this organisation has no such root. */
  deleteVendorRoot(tenantId: string, id: string, audit: AuditEventInput): Promise<boolean>;
  /** Adds the entries not yet present, in one unit; returns how many were new. */
  addOwnedChips(chips: readonly OwnedChip[], audit: AuditEventInput): Promise<number>;
  listOwnedChips(tenantId: string, opts?: { limit?: number; after?: string }): Promise<OwnedChip[]>;
  countOwnedChips(tenantId: string): Promise<number>;
  /** True when any candidate (match, value) is on this organisation's list. */
  isOwnedChip(tenantId: string, candidates: readonly { match: OwnedChipMatch; value: string }[]): Promise<boolean>;
  deleteOwnedChip(tenantId: string, id: string, audit: AuditEventInput): Promise<boolean>;
  /** The stored policy, or the default (`requireAttestation: false`, updatedAt 0). */
  getPolicy(tenantId: string): Promise<AttestationPolicy>;
  setPolicy(policy: AttestationPolicy, audit: AuditEventInput): Promise<void>;
}
