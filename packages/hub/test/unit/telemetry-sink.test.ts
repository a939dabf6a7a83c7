/**
 * The TelemetrySink over a real SQLite file (WAL, synchronous=FULL, group commit): ack after
 * commit, dedup through the sink, refusals that store nothing, `telemetry.stored` events, and the
 * accepts/s figures of group commit against one transaction per message (measured in this run).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { FleetkeyError, ManualClock } from '@fleetkey/protocol';
import { InProcessEventBus, type HubEvents } from '../../src/events/bus.js';
import { openSqliteStore } from '../../src/storage/sqlite/index.js';
import type { Store } from '../../src/storage/types.js';
import { dedupKeyFor, wrapEnvelope } from '../../src/telemetry/dedup.js';
import { StoringTelemetrySink } from '../../src/telemetry/sink.js';
import type { InboundTelemetry } from '../../src/telemetry/types.js';

const TENANT = 'org_sink';
const LIMIT = 1024;

function inbound(deviceId: string, payload: Buffer, at: number, o: { dup?: boolean; topic?: string; qos?: 0 | 1 } = {}): InboundTelemetry {
  const topic = o.topic ?? `devices/${deviceId}/telemetry`;
  return { tenantId: TENANT, deviceId, topic, payload, qos: o.qos ?? 1, receivedAt: at, dedupKey: dedupKeyFor(topic, payload, o.dup ?? false) };
}

const rejectsWith = async (p: Promise<unknown>, code: string): Promise<void> => {
  await assert.rejects(p, (e: unknown) => e instanceof FleetkeyError && e.code === code);
};

describe('TelemetrySink on a SQLite file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-sink-'));
  const path = join(dir, 'sink.db');
  const clock = new ManualClock(Date.UTC(2026, 5, 1));
  const bus = new InProcessEventBus();
  const events: HubEvents['telemetry.stored'][] = [];
  let store: Store;
  let sink: StoringTelemetrySink;
  let raw: Database.Database;
  const rawCount = (deviceId: string): number =>
    Number((raw.prepare('SELECT count(*) AS n FROM telemetry WHERE device_id = ?').get(deviceId) as { n: number }).n);

  before(async () => {
    store = await openSqliteStore({ path, clock });
    sink = new StoringTelemetrySink({ store, bus, limits: { maxPayloadBytes: LIMIT, dupWindowMs: 60_000 } });
    bus.subscribe('telemetry.stored', (e) => void events.push(e));
    raw = new Database(path, { readonly: true }); // an independent connection: sees committed data only
  });
  after(async () => {
    raw.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('accept resolves only after the row is committed: invisible to another connection before, visible at resolution', async () => {
    const pending = sink.accept(inbound('dev_ack', Buffer.from('{"t":1}'), clock.now()));
    assert.equal(rawCount('dev_ack'), 0, 'row visible to another connection before COMMIT');
    let resolved = false;
    void pending.then(() => (resolved = true));
    await Promise.resolve();
    assert.equal(resolved, false, 'resolved within the same turn, before the group commit');
    const r = await pending;
    assert.equal(rawCount('dev_ack'), 1, 'resolved before another connection could read the row');
    assert.equal(r.duplicate, false);
  });

  test('an enveloped message is stored unwrapped, once, with its message id; copies answer the original seq', async () => {
    const id = randomUUID();
    const p = wrapEnvelope(id, Buffer.from('{"temp":21.5}'));
    const [a, b] = await Promise.all([sink.accept(inbound('dev_env', p, clock.now())), sink.accept(inbound('dev_env', p, clock.now(), { dup: true }))]);
    const c = await sink.accept(inbound('dev_env', p, clock.now() + 3_600_000)); // after reconnect, hours later
    assert.equal(a.duplicate, false);
    assert.deepEqual([b, c], [{ seq: a.seq, duplicate: true }, { seq: a.seq, duplicate: true }]);
    const [row] = await store.telemetry.list(TENANT, 'dev_env', { limit: 10 });
    assert.equal(row?.payload.toString(), '{"temp":21.5}');
    assert.equal(row?.payloadJson, '{"temp":21.5}');
    assert.equal(row?.dedupKey, `id:${id}`);
    assert.equal(events.filter((e) => e.deviceId === 'dev_env').length, 1, 'a duplicate was announced');
    assert.equal(events.find((e) => e.deviceId === 'dev_env')?.messageId, id);
  });

  test('plain payloads: identical readings are two rows; a DUP redelivery within the window is one', async () => {
    const p = Buffer.from('21.5');
    const first = await sink.accept(inbound('dev_plain', p, clock.now()));
    const second = await sink.accept(inbound('dev_plain', p, clock.now() + 1));
    const redelivered = await sink.accept(inbound('dev_plain', p, clock.now() + 2, { dup: true }));
    assert.equal(second.duplicate, false);
    assert.deepEqual(redelivered, { seq: second.seq, duplicate: true });
    assert.notEqual(first.seq, second.seq);
    assert.equal((await sink.accept(inbound('dev_plain', p, clock.now() + 120_000, { dup: true }))).duplicate, false, 'outside the window');
    assert.equal(rawCount('dev_plain'), 3);
  });

  test('oversized payload: BODY_TOO_LARGE, nothing stored, nothing announced', async () => {
    const before = events.length;
    await rejectsWith(sink.accept(inbound('dev_big', Buffer.alloc(LIMIT + 1, 0x41), clock.now())), 'BODY_TOO_LARGE');
    await rejectsWith(sink.accept(inbound('dev_big', wrapEnvelope(randomUUID(), Buffer.alloc(LIMIT + 1)), clock.now())), 'BODY_TOO_LARGE');
    assert.equal((await sink.accept(inbound('dev_big', Buffer.alloc(LIMIT), clock.now()))).duplicate, false, 'exactly the limit is fine');
    assert.equal(await store.telemetry.count(TENANT, 'dev_big'), 1);
    assert.equal(events.length, before + 1);
  });

  test('cross-device publish through a broker bug: FORBIDDEN, nothing stored for either device', async () => {
    await rejectsWith(sink.accept(inbound('dev_a', Buffer.from('x'), clock.now(), { topic: 'devices/dev_b/telemetry' })), 'FORBIDDEN');
    await rejectsWith(sink.accept(inbound('dev_a', Buffer.from('x'), clock.now(), { topic: 'devices/dev_a' })), 'FORBIDDEN');
    const forgedKey = { ...inbound('dev_a', Buffer.from('x'), clock.now()), dedupKey: 'id:someone-elses-message-id' };
    await rejectsWith(sink.accept(forgedKey), 'INTERNAL');
    assert.equal(rawCount('dev_a') + rawCount('dev_b'), 0);
  });

  test('figures: accepts/s with group commit vs one transaction per message (same file, this run)', async (t) => {
    const n = 5000;
    const batch = Array.from({ length: n }, (_, i) => inbound('dev_bench', wrapEnvelope(randomUUID(), Buffer.from(`{"i":${i}}`)), clock.now()));
    let start = performance.now();
    await Promise.all(batch.map((m) => sink.accept(m)));
    const grouped = n / ((performance.now() - start) / 1000);
    const m = 300;
    start = performance.now();
    for (let i = 0; i < m; i++) await sink.accept(inbound('dev_bench1', wrapEnvelope(randomUUID(), Buffer.from(`{"i":${i}}`)), clock.now()));
    const single = m / ((performance.now() - start) / 1000);
    t.diagnostic(`group commit: ${Math.round(grouped)} accepts/s; one commit per message: ${Math.round(single)} accepts/s; ratio ${(grouped / single).toFixed(1)}x`);
    assert.equal(rawCount('dev_bench'), n);
    assert.ok(grouped > single, 'group commit is not faster than one commit per message');
  });
});
