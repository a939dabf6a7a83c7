// The file store's WAL sync (src/storage/sqlite/wal-sync.ts, ADR 0031) on a real SQLite file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { walSync } from '../../src/storage/sqlite/wal-sync.js';
import { openSqliteStore } from '../../src/storage/sqlite/index.js';
import { systemClock } from '@fleetkey/protocol';

const dir = mkdtempSync(join(tmpdir(), 'fleetkey-walsync-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const syncOnce = (s: ReturnType<typeof walSync>): Promise<void> =>
  new Promise((resolve, reject) => s.sync((err) => (err ? reject(err) : resolve())));

test('syncing the WAL of a committed transaction succeeds, again and again on one descriptor', async () => {
  const path = join(dir, 'ok.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE t (x)');
  const s = walSync(path);
  for (let i = 0; i < 3; i++) {
    db.prepare('INSERT INTO t VALUES (?)').run(i);
    await syncOnce(s);
  }
  await s.close();
  db.close();
});

test('a database without its WAL file is an error, never a silent success', async () => {
  const s = walSync(join(dir, 'missing.db'));
  await assert.rejects(syncOnce(s), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  await s.close();
});

test('the file store keeps what it acknowledged across a close and reopen', async () => {
  const path = join(dir, 'store.db');
  const store = await openSqliteStore({ path, clock: systemClock });
  assert.equal(await store.meta.setIfAbsent('probe', 'durable'), 'durable');
  await store.close();
  const again = await openSqliteStore({ path, clock: systemClock });
  assert.equal(await again.meta.get('probe'), 'durable');
  await again.close();
});
