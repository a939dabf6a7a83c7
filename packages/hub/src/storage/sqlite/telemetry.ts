/**
 * Telemetry rows (SQLite engine). See `TelemetryRepo` in ../types.ts.
 *
 * Invariants:
 * - `insert` runs through the group-commit writer: it resolves after the durable COMMIT that
 *   contains the row, and thousands of concurrent inserts share one fsync (ADR 0005). It makes
 *   exactly one modifying statement, so it runs without a savepoint (ADR 0023).
 * - Dedup check and insert run in one synchronous write function on the single writer
 *   connection, so concurrent copies of one message can never both be stored: a key conflict is
 *   decided by the UNIQUE(device_id, dedup_key) index, a content match by a lookup inside the
 *   same savepoint (ADR 0010).
 * - Every query is scoped by tenant and device; another tenant's rows are invisible.
 * - No foreign key to `devices`: the broker only passes authenticated devices, and the ingest
 *   path stays one index probe lighter. Device rows are never deleted today.
 */
import type { SqliteContext } from './context.js';
import type { NewTelemetry, TelemetryQuery, TelemetryRecord, TelemetryRepo } from '../types.js';
import type { Row } from './rows.js';

const MAX_LIMIT = 1000;

// No RETURNING: `changes` and `lastInsertRowid` (= seq, the INTEGER PRIMARY KEY) say the same for
// ~4 µs less per row (ADR 0023).
// content_hash is no longer written (NULL): the DUP lookup compares topic and payload bytes (ADR 0010).
const INSERT = `INSERT INTO telemetry (tenant_id, device_id, topic, payload, payload_json, qos, received_at, dedup_key)
  VALUES (?,?,?,?,?,?,?,?)
  ON CONFLICT (device_id, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING`;
const BY_KEY = 'SELECT seq FROM telemetry WHERE device_id = ? AND dedup_key = ?';
// DUP redeliveries without an envelope are rare and look back one window only (ADR 0010). Both
// parts walk telemetry_device_seq backwards (there is no time index, ADR 0029): the inner one stops
// at the device's newest row older than the window, the outer one scans the rows after it, newest
// first, for a row without an envelope with the same topic and payload bytes (compared exactly; no
// hash is kept per row, so the hot path computes none). Rows of one device are stored in arrival
// order with the clock's time, so "after the newest row older than the window" is the window; only
// a backwards clock step larger than the window can hide an original, and then the copy is stored
// once more (never lost).
// Parameters: device, topic, payload, window start, device, window start.
export const BY_CONTENT = `SELECT seq FROM telemetry WHERE device_id = ? AND dedup_key IS NULL AND topic = ? AND payload = ? AND received_at >= ?
  AND seq > coalesce((SELECT seq FROM telemetry WHERE device_id = ? AND received_at < ? ORDER BY seq DESC LIMIT 1), 0)
  ORDER BY seq DESC LIMIT 1`;

function toTelemetry(r: Row): TelemetryRecord {
  return {
    seq: Number(r.seq),
    tenantId: String(r.tenant_id),
    deviceId: String(r.device_id),
    topic: String(r.topic),
    payload: Buffer.from(r.payload as Uint8Array),
    payloadJson: r.payload_json === null || r.payload_json === undefined ? null : String(r.payload_json),
    qos: Number(r.qos) === 1 ? 1 : 0,
    receivedAt: Number(r.received_at),
    dedupKey: r.dedup_key === null || r.dedup_key === undefined ? null : String(r.dedup_key),
  };
}

/** The synchronous body of one insert: dedup decision and row, inside the caller's savepoint. */
function insertOne(ctx: SqliteContext, m: NewTelemetry): { seq: number; duplicate: boolean } {
  if (m.contentDedupSince !== null) {
    const same = ctx.get(BY_CONTENT, m.deviceId, m.topic, m.payload, m.contentDedupSince, m.deviceId, m.contentDedupSince);
    if (same !== undefined) return { seq: Number(same.seq), duplicate: true };
  }
  const inserted = ctx.run(
    INSERT, m.tenantId, m.deviceId, m.topic, m.payload, m.payloadJson, m.qos, m.receivedAt, m.dedupKey,
  );
  if (inserted.changes === 1) return { seq: Number(inserted.lastInsertRowid), duplicate: false };
  // ON CONFLICT DO NOTHING returned no row: the key exists (m.dedupKey is not null here).
  const original = ctx.get(BY_KEY, m.deviceId, m.dedupKey);
  if (original === undefined) throw new Error('telemetry insert neither stored nor conflicted');
  return { seq: Number(original.seq), duplicate: true };
}

function listRows(ctx: SqliteContext, tenantId: string, deviceId: string, q: TelemetryQuery): TelemetryRecord[] {
  const limit = Math.min(Math.max(q.limit, 1), MAX_LIMIT);
  return ctx
    .all(
      `SELECT * FROM telemetry WHERE tenant_id = ? AND device_id = ? AND seq > ? AND received_at >= ? AND received_at < ?
       ORDER BY seq LIMIT ?`,
      tenantId, deviceId, q.afterSeq ?? 0, q.since ?? 0, q.until ?? Number.MAX_SAFE_INTEGER, limit,
    )
    .map(toTelemetry);
}

export function telemetryRepo(ctx: SqliteContext): TelemetryRepo {
  return {
    // One modifying statement (the INSERT; the lookups only read): no savepoint needed.
    insert: (m) => ctx.writeSingleStatement(() => insertOne(ctx, m)),
    list: async (tenantId, deviceId, q) => listRows(ctx, tenantId, deviceId, q),
    count: async (tenantId, deviceId) =>
      Number(ctx.get('SELECT count(*) AS n FROM telemetry WHERE tenant_id = ? AND device_id = ?', tenantId, deviceId)?.n ?? 0),
  };
}
