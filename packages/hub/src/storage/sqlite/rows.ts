/** Row ↔ domain mapping for the SQLite engine. */
import type { AuditRecord, CertificateRecord, ClaimToken, Device, DeviceStatus, KeyProtection, Owner, Session, Tenant } from '../types.js';

export type Row = Record<string, unknown>;

const str = (v: unknown): string => String(v);
const num = (v: unknown): number => Number(v);
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export const toTenant = (r: Row): Tenant => ({ id: str(r.id), name: str(r.name), createdAt: num(r.created_at) });

export const toOwner = (r: Row): Owner => ({
  id: str(r.id),
  tenantId: str(r.tenant_id),
  email: str(r.email),
  passwordHash: str(r.password_hash),
  totpSealed: str(r.totp_sealed),
  totpLastStep: num(r.totp_last_step),
  createdAt: num(r.created_at),
  disabled: num(r.disabled) !== 0,
});

export const toSession = (r: Row): Session => ({
  tokenHash: str(r.token_hash),
  ownerId: str(r.owner_id),
  tenantId: str(r.tenant_id),
  createdAt: num(r.created_at),
  expiresAt: num(r.expires_at),
  idleExpiresAt: num(r.idle_expires_at),
});

export const toClaimToken = (r: Row): ClaimToken => ({
  id: str(r.id),
  tenantId: str(r.tenant_id),
  tokenHash: str(r.token_hash),
  label: strOrNull(r.label),
  maxUses: num(r.max_uses),
  uses: num(r.uses),
  createdAt: num(r.created_at),
  expiresAt: num(r.expires_at),
  createdBy: str(r.created_by),
  revokedAt: numOrNull(r.revoked_at),
});

export const toDevice = (r: Row): Device => ({
  id: str(r.id),
  tenantId: str(r.tenant_id),
  // A pre-provisioned device is stored active with the flag set (migration 4, ADR 0014).
  status: str(r.status) === 'active' && num(r.pre_provisioned ?? 0) === 1 ? 'pre-provisioned' : (str(r.status) as DeviceStatus),
  createdAt: num(r.created_at),
  enrolledVia: str(r.enrolled_via),
  claimTokenId: strOrNull(r.claim_token_id),
  label: strOrNull(r.label),
  currentSerial: strOrNull(r.current_serial),
  keyProtection: (strOrNull(r.key_protection) ?? 'file') as KeyProtection,
});

export const toCertificate = (r: Row): CertificateRecord => ({
  serial: str(r.serial),
  deviceId: str(r.device_id),
  tenantId: str(r.tenant_id),
  spkiSha256: str(r.spki_sha256),
  keyAlgorithm: str(r.key_algorithm),
  notBefore: num(r.not_before),
  notAfter: num(r.not_after),
  issuedAt: num(r.issued_at),
  der: Buffer.from(r.der as Uint8Array),
  revokedAt: numOrNull(r.revoked_at),
  revocationReason: strOrNull(r.revocation_reason),
});

export const toAudit = (r: Row): AuditRecord => ({
  seq: num(r.seq),
  time: str(r.time),
  eventId: str(r.event_id),
  category: str(r.category),
  type: str(r.type),
  result: str(r.result) as AuditRecord['result'],
  actor: str(r.actor),
  source: str(r.source),
  tenantId: strOrNull(r.tenant_id),
  session: strOrNull(r.session),
  code: strOrNull(r.code),
  details: JSON.parse(str(r.details)) as AuditRecord['details'],
  prevHash: str(r.prev_hash),
  hash: str(r.hash),
});
