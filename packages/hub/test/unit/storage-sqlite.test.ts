import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ManualClock } from '@fleetkey/protocol';
import { openSqliteStore } from '../../src/storage/sqlite/index.js';
import { BY_CONTENT } from '../../src/storage/sqlite/telemetry.js';
import { fixtures, runStoreContract } from './storage.contract.js';

runStoreContract('sqlite :memory:', (clock) => openSqliteStore({ path: ':memory:', clock }));

const dir = mkdtempSync(join(tmpdir(), 'fleetkey-store-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
runStoreContract('sqlite file (WAL)', (clock) => openSqliteStore({ path: join(dir, 'contract.db'), clock }));

test('audit tampering: editing one record in the database file is reported at that record', async () => {
  const path = join(dir, 'tamper.db');
  const clock = new ManualClock();
  const store = await openSqliteStore({ path, clock });
  for (let i = 0; i < 10; i++) {
    await store.audit.append({ category: 'test', type: `e${i}`, result: 'success', actor: 'operator', source: 'cli' });
  }
  await store.close();
  // An attacker with file access drops the append-only trigger and rewrites record 6.
  const raw = new Database(path);
  raw.exec('DROP TRIGGER audit_log_no_update');
  raw.prepare("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 6").run();
  raw.close();
  const reopened = await openSqliteStore({ path, clock });
  const v = await reopened.audit.verify();
  assert.equal(v.ok, false);
  assert.equal(v.firstBrokenSeq, 6);
  await reopened.close();
});

test('audit rewrite through SQL is refused by the append-only triggers', async () => {
  const path = join(dir, 'triggers.db');
  const store = await openSqliteStore({ path, clock: new ManualClock() });
  await store.audit.append({ category: 'test', type: 'e', result: 'success', actor: 'operator', source: 'cli' });
  await store.close();
  const raw = new Database(path);
  assert.throws(() => raw.prepare('DELETE FROM audit_log').run(), /append-only/);
  assert.throws(() => raw.prepare("UPDATE audit_log SET actor = 'x'").run(), /append-only/);
  assert.equal((raw.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n, 1);
  raw.close();
});

test('data survives close and reopen (durable commit before resolve)', async () => {
  const path = join(dir, 'durable.db');
  const clock = new ManualClock();
  const store = await openSqliteStore({ path, clock });
  const { tenant, owner } = fixtures('d', clock.now());
  await store.tenants.createWithOwner(tenant, owner, { category: 'owner', type: 'owner.create', result: 'success', actor: 'operator', source: 'cli' });
  // Read through an independent connection before closing: the commit happened before resolve.
  const raw = new Database(path, { readonly: true });
  assert.equal((raw.prepare('SELECT count(*) AS n FROM owners').get() as { n: number }).n, 1);
  raw.close();
  await store.close();
});

test('two processes appending to one audit log (hub + CLI) keep one unbroken chain', async () => {
  const path = join(dir, 'two-writers.db');
  const clock = new ManualClock();
  const hub = await openSqliteStore({ path, clock });
  const cli = await openSqliteStore({ path, clock });
  const ev = (type: string) => ({ category: 'test', type, result: 'success' as const, actor: 'operator', source: 'cli' });
  for (let i = 0; i < 5; i++) {
    await hub.audit.append(ev(`hub${i}`));
    await cli.audit.append(ev(`cli${i}`));
  }
  const v = await hub.audit.verify();
  assert.deepEqual(v, { ok: true, records: 10 });
  await hub.close();
  await cli.close();
});

test('telemetry ingest writes no time index; the DUP content lookup is an index search, not a table scan (ADR 0029)', async () => {
  const path = join(dir, 'telemetry-index.db');
  const store = await openSqliteStore({ path, clock: new ManualClock() });
  await store.close();
  const raw = new Database(path, { readonly: true });
  const indexes = (raw.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'telemetry'").all() as Array<{ name: string }>).map((r) => r.name).sort();
  assert.deepEqual(indexes, ['telemetry_dedup', 'telemetry_device_seq']);
  const plan = (raw.prepare(`EXPLAIN QUERY PLAN ${BY_CONTENT}`).all('d', 'devices/d/t', Buffer.alloc(16), 0, 'd', 0) as Array<{ detail: string }>).map((r) => r.detail);
  assert.ok(plan.length >= 2 && plan.every((d) => !d.startsWith('SCAN')), plan.join(' | '));
  assert.ok(plan.some((d) => d.includes('telemetry_device_seq (device_id=? AND seq>?)')), plan.join(' | '));
  raw.close();
});
