/**
 * Row mapping and shared statements of the batch and factory-kit repositories (ADRs 0014, 0015).
 *
 * Invariants: a batch or factory device is inserted `active` with pre_provisioned = 1 and its
 * batch (or kit) id, together with its one certificate, in the caller's unit; a key already held
 * by another device or a serial already recorded is refused before anything is inserted.
 */
import { FleetkeyError, type ErrorCode } from '@fleetkey/protocol';
import type { Batch, BatchMode, BatchStatus, FactoryKitRecord } from '../batch-types.js';
import type { CertificateRecord, Device } from '../types.js';
import type { SqliteContext } from './context.js';
import type { Row } from './rows.js';

const blobOrNull = (v: unknown): Buffer | null => (v === null || v === undefined ? null : Buffer.from(v as Uint8Array));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export const toBatch = (r: Row): Batch => ({
  id: String(r.id),
  tenantId: String(r.tenant_id),
  label: strOrNull(r.label),
  mode: String(r.mode) as BatchMode,
  keyAlgorithm: String(r.key_algorithm),
  count: Number(r.count),
  done: Number(r.done),
  status: String(r.status) as BatchStatus,
  failureCode: strOrNull(r.failure_code),
  createdAt: Number(r.created_at),
  createdBy: String(r.created_by),
  completedAt: r.completed_at === null ? null : Number(r.completed_at),
  downloads: Number(r.downloads),
  passphraseSealed: blobOrNull(r.passphrase_sealed),
});

export const toKit = (r: Row): FactoryKitRecord => ({
  id: String(r.id),
  tenantId: String(r.tenant_id),
  certificate: Buffer.from(r.certificate as Uint8Array),
  maxCount: Number(r.max_count),
  windowStart: Number(r.window_start),
  windowEnd: Number(r.window_end),
  createdAt: Number(r.created_at),
  createdBy: String(r.created_by),
  importedCounter: Number(r.imported_counter),
  importedDigest: strOrNull(r.imported_digest),
});

export interface PreProvisionedInsert {
  readonly device: Device;
  readonly certificate: CertificateRecord;
  /** Batch or kit id the device belongs to. */
  readonly groupId: string;
  /** Codes for a taken key and a taken serial (batch: KEY_ALREADY_ENROLLED; import: MANIFEST_DUPLICATE). */
  readonly keyTaken: ErrorCode;
  readonly serialTaken: ErrorCode;
  readonly index: number;
}

/** Inserts one pre-provisioned device and its certificate; call inside `ctx.write`. */
export function insertPreProvisioned(ctx: SqliteContext, p: PreProvisionedInsert): void {
  const { device: d, certificate: c } = p;
  if (ctx.get('SELECT 1 AS x FROM certificates WHERE spki_sha256 = ? AND device_id <> ? LIMIT 1', c.spkiSha256, d.id) !== undefined) {
    throw new FleetkeyError(p.keyTaken, { details: { index: p.index, field: 'publicKey' } });
  }
  if (ctx.get('SELECT 1 AS x FROM certificates WHERE serial = ?', c.serial) !== undefined) {
    throw new FleetkeyError(p.serialTaken, { details: { index: p.index, field: 'serial' } });
  }
  ctx.run(
    `INSERT INTO devices (id, tenant_id, status, created_at, enrolled_via, claim_token_id, label, current_serial, pre_provisioned, batch_id)
     VALUES (?, ?, 'active', ?, ?, NULL, ?, ?, 1, ?)`,
    d.id, d.tenantId, d.createdAt, d.enrolledVia, d.label, c.serial, p.groupId,
  );
  ctx.run(
    `INSERT INTO certificates (serial, device_id, tenant_id, spki_sha256, key_algorithm, not_before, not_after, issued_at, der)
     VALUES (?,?,?,?,?,?,?,?,?)`,
    c.serial, c.deviceId, c.tenantId, c.spkiSha256, c.keyAlgorithm, c.notBefore, c.notAfter, c.issuedAt, c.der,
  );
}
