/**
 * Batches (ADR 0014) and factory kits (ADR 0015) for the SQLite engine. See `../batch-types.ts`
 * for the invariants; each mutating method is one `ctx.write` unit whose audit record is appended
 * inside it only when the unit changes something.
 */
import { FleetkeyError } from '@fleetkey/protocol';
import type { BatchRepo, BatchRevocation, BundleClaim, IssuedBatchItem } from '../batch-types.js';
import type { AuditEventInput } from '../types.js';
import { insertPreProvisioned, toBatch, toKit } from './batch-rows.js';
import type { SqliteContext } from './context.js';

function recordIssuedInUnit(ctx: SqliteContext, tenantId: string, batchId: string, items: readonly IssuedBatchItem[], audit: AuditEventInput): boolean {
  const row = ctx.get('SELECT * FROM batches WHERE id = ? AND tenant_id = ?', batchId, tenantId);
  if (row === undefined || row.status !== 'running') return false;
  const now = ctx.clock.now();
  for (const it of items) {
    const c = it.certificate;
    insertPreProvisioned(ctx, {
      device: { id: c.deviceId, tenantId, status: 'pre-provisioned', createdAt: now, enrolledVia: 'batch', claimTokenId: null, label: row.label === null ? null : String(row.label), currentSerial: c.serial },
      certificate: c, groupId: batchId, keyTaken: 'KEY_ALREADY_ENROLLED', serialTaken: 'CONFLICT', index: it.idx,
    });
    const marked = ctx.run('UPDATE batch_items SET done = 1, key_sealed = ? WHERE batch_id = ? AND idx = ? AND done = 0', it.keySealed, batchId, it.idx);
    if (marked.changes !== 1) throw new FleetkeyError('CONFLICT', { cause: new Error(`batch item ${it.idx} already issued`) });
  }
  const n = items.length;
  ctx.run(
    `UPDATE batches SET done = done + ?,
       status = CASE WHEN done + ? = count THEN 'done' ELSE status END,
       completed_at = CASE WHEN done + ? = count THEN ? ELSE completed_at END
     WHERE id = ?`,
    n, n, n, now, batchId,
  );
  ctx.appendAudit({ ...audit, tenantId });
  return true;
}

function claimInUnit(ctx: SqliteContext, tenantId: string, id: string, maxDownloads: number, audit: AuditEventInput): BundleClaim {
  const row = ctx.get('SELECT * FROM batches WHERE id = ? AND tenant_id = ?', id, tenantId);
  if (row === undefined) return { ok: false, reason: 'not-found' };
  if (row.status !== 'done') return { ok: false, reason: 'not-ready' };
  const downloads = Number(row.downloads);
  if (downloads >= maxDownloads) return { ok: false, reason: 'gone' };
  const items = ctx.all(
    `SELECT i.idx, i.device_id, i.key_sealed, c.der, c.not_before, c.not_after FROM batch_items i
       JOIN devices d ON d.id = i.device_id JOIN certificates c ON c.serial = d.current_serial
     WHERE i.batch_id = ? ORDER BY i.idx`,
    id,
  ).map((r) => ({
    idx: Number(r.idx), deviceId: String(r.device_id), certificateDer: Buffer.from(r.der as Uint8Array), notBefore: Number(r.not_before), notAfter: Number(r.not_after),
    keySealed: r.key_sealed === null ? null : Buffer.from(r.key_sealed as Uint8Array),
  }));
  ctx.run('UPDATE batches SET downloads = downloads + 1 WHERE id = ?', id);
  const last = downloads + 1 >= maxDownloads;
  if (last) {
    // The secrets leave the hub with the last allowed download (ADR 0014).
    ctx.run('UPDATE batch_items SET key_sealed = NULL WHERE batch_id = ?', id);
    ctx.run('UPDATE batches SET passphrase_sealed = NULL WHERE id = ?', id);
  }
  ctx.appendAudit({ ...audit, tenantId, details: { ...audit.details, download: downloads + 1, keysErased: last } });
  return { ok: true, batch: toBatch(row), items };
}

function revokeUnusedInUnit(ctx: SqliteContext, tenantId: string, id: string, reason: string, now: number, audit: AuditEventInput): BatchRevocation | undefined {
  const batch = ctx.get('SELECT status FROM batches WHERE id = ? AND tenant_id = ?', id, tenantId);
  const kit = batch === undefined ? ctx.get('SELECT id FROM factory_kits WHERE id = ? AND tenant_id = ?', id, tenantId) : undefined;
  if (batch === undefined && kit === undefined) return undefined;
  const cancelled = batch?.status === 'running';
  if (cancelled) ctx.run("UPDATE batches SET status = 'cancelled', completed_at = ? WHERE id = ?", now, id);
  const unused = "FROM devices WHERE tenant_id = ? AND batch_id = ? AND status = 'active' AND pre_provisioned = 1";
  const certs = ctx.all(`SELECT device_id, serial FROM certificates WHERE device_id IN (SELECT id ${unused}) ORDER BY device_id, serial`, tenantId, id);
  ctx.run(`UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE revoked_at IS NULL AND device_id IN (SELECT id ${unused})`, now, reason, tenantId, id);
  ctx.run(`UPDATE devices SET status = 'revoked' WHERE id IN (SELECT id ${unused})`, tenantId, id);
  const byDevice = new Map<string, string[]>();
  for (const c of certs) byDevice.set(String(c.device_id), [...(byDevice.get(String(c.device_id)) ?? []), String(c.serial)]);
  const devices = [...byDevice].map(([deviceId, serials]) => ({ deviceId, serials }));
  ctx.appendAudit({ ...audit, tenantId, details: { ...audit.details, revoked: devices.length, cancelled } });
  return { id, cancelled, devices };
}

export function batchRepo(ctx: SqliteContext): BatchRepo {
  return {
    create: (b, items, audit) =>
      ctx.write(() => {
        ctx.run(
          `INSERT INTO batches (id, tenant_id, label, mode, key_algorithm, count, done, status, failure_code, created_at, created_by, completed_at, downloads, passphrase_sealed)
           VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
          b.id, b.tenantId, b.label, b.mode, b.keyAlgorithm, b.count, b.done, b.status, b.failureCode, b.createdAt, b.createdBy, b.completedAt, b.downloads, b.passphraseSealed,
        );
        for (const it of items) ctx.run('INSERT INTO batch_items (batch_id, idx, device_id, csr) VALUES (?,?,?,?)', b.id, it.idx, it.deviceId, it.csr);
      }, audit),
    get: async (tenantId, id) => {
      const r = ctx.get('SELECT * FROM batches WHERE tenant_id = ? AND id = ?', tenantId, id);
      return r && toBatch(r);
    },
    listRunning: async () => ctx.all("SELECT * FROM batches WHERE status = 'running' ORDER BY created_at, id").map(toBatch),
    pendingItems: async (batchId, limit) =>
      ctx.all('SELECT batch_id, idx, device_id, csr FROM batch_items WHERE batch_id = ? AND done = 0 ORDER BY idx LIMIT ?', batchId, limit).map((r) => ({
        batchId: String(r.batch_id), idx: Number(r.idx), deviceId: String(r.device_id), csr: r.csr === null ? null : Buffer.from(r.csr as Uint8Array),
      })),
    recordIssued: (tenantId, batchId, items, audit) => ctx.write(() => recordIssuedInUnit(ctx, tenantId, batchId, items, audit)),
    fail: (batchId, code, audit) =>
      ctx.write(() => {
        const u = ctx.run("UPDATE batches SET status = 'failed', failure_code = ?, completed_at = ? WHERE id = ? AND status = 'running'", code, ctx.clock.now(), batchId);
        if (u.changes === 1) ctx.appendAudit(audit);
      }),
    claimBundle: (tenantId, id, max, audit) => ctx.write(() => claimInUnit(ctx, tenantId, id, max, audit)),
    revokeUnused: (tenantId, id, reason, now, audit) => ctx.write(() => revokeUnusedInUnit(ctx, tenantId, id, reason, now, audit)),
    activateDevice: (tenantId, deviceId, audit) =>
      ctx.write(() => {
        const u = ctx.run("UPDATE devices SET pre_provisioned = 0 WHERE tenant_id = ? AND id = ? AND status = 'active' AND pre_provisioned = 1", tenantId, deviceId);
        if (u.changes === 1) ctx.appendAudit({ ...audit, tenantId });
        return u.changes === 1;
      }),
    ...factoryKitRepo(ctx),
  };
}

function factoryKitRepo(ctx: SqliteContext): Pick<BatchRepo, 'createKit' | 'getKit' | 'listKits' | 'importFactory'> {
  return {
    createKit: (k, audit) =>
      ctx.write(() => {
        ctx.run(
          `INSERT INTO factory_kits (id, tenant_id, certificate, max_count, window_start, window_end, created_at, created_by, imported_counter, imported_digest)
           VALUES (?,?,?,?,?,?,?,?,?,?)`,
          k.id, k.tenantId, k.certificate, k.maxCount, k.windowStart, k.windowEnd, k.createdAt, k.createdBy, k.importedCounter, k.importedDigest,
        );
      }, audit),
    getKit: async (id) => {
      const r = ctx.get('SELECT * FROM factory_kits WHERE id = ?', id);
      return r && toKit(r);
    },
    listKits: async () => ctx.all('SELECT * FROM factory_kits ORDER BY created_at, id').map(toKit),
    importFactory: (input) =>
      ctx.write(() => {
        const u = ctx.run(
          'UPDATE factory_kits SET imported_counter = ?, imported_digest = ? WHERE id = ? AND tenant_id = ? AND imported_counter = ?',
          input.counter, input.digest, input.kitId, input.tenantId, input.previousCounter,
        );
        if (u.changes !== 1) throw new FleetkeyError('MANIFEST_STALE', { cause: new Error('kit counter moved meanwhile') });
        input.devices.forEach((d, i) => insertPreProvisioned(ctx, {
          device: d.device, certificate: d.certificate, groupId: input.kitId, keyTaken: 'MANIFEST_DUPLICATE', serialTaken: 'MANIFEST_DUPLICATE', index: i,
        }));
        ctx.appendAudit({ ...input.audit, tenantId: input.tenantId });
      }),
  };
}
