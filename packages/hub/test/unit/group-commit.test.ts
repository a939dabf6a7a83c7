/**
 * GroupCommitWriter with an asynchronous WAL sync (ADR 0005): nobody is told "done" before the
 * sync that covers their commit returned, writes arriving during a sync are committed together after it, a
 * failed sync fails exactly the batches it covered, and drain() waits for the running sync.
 * The sync here is a controllable stand-in for wal-sync.ts so the ordering can be observed; the
 * real fdatasync path runs in every file-backed store test (storage-sqlite, interop).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { FleetkeyError } from '@fleetkey/protocol';
import { GroupCommitWriter } from '../../src/storage/sqlite/group-commit.js';
import { walSync, type WalSync } from '../../src/storage/sqlite/wal-sync.js';

const dir = mkdtempSync(join(tmpdir(), 'fleetkey-gc-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

class HeldSync implements WalSync {
  readonly calls: Array<(err: Error | null) => void> = [];
  sync(done: (err: Error | null) => void): void {
    this.calls.push(done);
  }
  close(): void {}
}

function open(name: string): { db: Database.Database; path: string } {
  const path = join(dir, name);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE t (x INTEGER)');
  return { db, path };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const count = (path: string): number => {
  const raw = new Database(path, { readonly: true });
  try {
    return (raw.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  } finally {
    raw.close();
  }
};

test('a write resolves only after the WAL sync that covers its commit returned', async () => {
  const { db, path } = open('order.db');
  const sync = new HeldSync();
  const writer = new GroupCommitWriter(db, { sync });
  let resolved = false;
  const done = writer.run(() => db.prepare('INSERT INTO t VALUES (1)').run()).then(() => (resolved = true));
  await turn();
  await turn();
  assert.equal(count(path), 1, 'committed (visible to another connection)');
  assert.equal(sync.calls.length, 1, 'one sync requested after the commit');
  assert.equal(resolved, false, 'not acknowledged before the sync returned');
  sync.calls[0]!(null);
  await done;
  assert.equal(resolved, true);
  db.close();
});

test('writes arriving while a sync runs form one batch, committed when it returns, under one next sync', async () => {
  const { db, path } = open('share.db');
  const sync = new HeldSync();
  const writer = new GroupCommitWriter(db, { sync });
  const first = writer.run(() => db.prepare('INSERT INTO t VALUES (1)').run());
  await turn();
  const later = [2, 3, 4].map(async (x) => {
    await new Promise((r) => setTimeout(r, x));
    return writer.run(() => db.prepare('INSERT INTO t VALUES (?)').run(x));
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(sync.calls.length, 1, 'later writes wait for the running sync');
  assert.equal(count(path), 1, 'only the first write is committed while its sync runs');
  sync.calls[0]!(null);
  await first;
  assert.equal(sync.calls.length, 2, 'one sync for all writes that arrived meanwhile');
  assert.equal(count(path), 4, 'they were committed together once the first sync returned');
  sync.calls[1]!(null);
  await Promise.all((await Promise.all(later)));
  db.close();
});

test('a failed WAL sync rejects the batches it covered with STORAGE_UNAVAILABLE; the next ones succeed', async () => {
  const { db } = open('fail.db');
  const sync = new HeldSync();
  let failedBatches = 0;
  const writer = new GroupCommitWriter(db, { sync, onBatchFailed: () => failedBatches++ });
  const a = writer.run(() => db.prepare('INSERT INTO t VALUES (1)').run());
  await turn();
  sync.calls[0]!(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
  await assert.rejects(a, (e: unknown) => e instanceof FleetkeyError && e.code === 'STORAGE_UNAVAILABLE');
  assert.equal(failedBatches, 1);
  const b = writer.run(() => db.prepare('INSERT INTO t VALUES (2)').run());
  await turn();
  sync.calls[1]!(null);
  await b;
  db.close();
});

test('drain() commits the open batch and waits for the running sync', async () => {
  const { db } = open('drain.db');
  const sync = new HeldSync();
  const writer = new GroupCommitWriter(db, { sync });
  const w = writer.run(() => db.prepare('INSERT INTO t VALUES (1)').run());
  let drained = false;
  const d = writer.drain().then(() => (drained = true));
  assert.equal(sync.calls.length, 1, 'drain committed and started the sync at once');
  await turn();
  assert.equal(drained, false);
  sync.calls[0]!(null);
  await Promise.all([w, d]);
  assert.equal(drained, true);
  db.close();
});

test('the real WAL sync: 200 concurrent writes are acknowledged and all are in the file', async () => {
  const { db, path } = open('real.db');
  const sync = walSync(path);
  const writer = new GroupCommitWriter(db, { sync });
  await Promise.all(Array.from({ length: 200 }, (_, i) => writer.run(() => db.prepare('INSERT INTO t VALUES (?)').run(i))));
  await writer.drain();
  assert.equal(count(path), 200);
  sync.close();
  db.close();
});

test('the real WAL sync reports an unreadable WAL as STORAGE_UNAVAILABLE, not success', async () => {
  const { db } = open('nowal.db');
  const sync = walSync(join(dir, 'no-such-folder', 'x.db'));
  const writer = new GroupCommitWriter(db, { sync });
  await assert.rejects(writer.run(() => db.prepare('INSERT INTO t VALUES (1)').run()), (e: unknown) => e instanceof FleetkeyError && e.code === 'STORAGE_UNAVAILABLE');
  db.close();
});

test('a failing single-statement write (no savepoint) rejects alone; the others of its batch are durable', async () => {
  const { db, path } = open('single.db');
  db.exec('CREATE UNIQUE INDEX t_x ON t(x)');
  const sync = walSync(path);
  const writer = new GroupCommitWriter(db, { sync });
  const insert = db.prepare('INSERT INTO t VALUES (?)');
  const results = await Promise.allSettled([1, 2, 1, 3].map((x) => writer.run(() => insert.run(x), { singleStatement: true })));
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  assert.equal(count(path), 3, 'the duplicate alone was undone by SQLite itself');
  sync.close();
  db.close();
});

test('a single-statement write after which SQLite rolled the transaction back fails the whole batch', async () => {
  const { db, path } = open('single-abort.db');
  const sync = walSync(path);
  const writer = new GroupCommitWriter(db, { sync });
  const insert = db.prepare('INSERT INTO t VALUES (?)');
  const first = writer.run(() => insert.run(1), { singleStatement: true });
  const failing = writer.run(() => {
    db.exec('ROLLBACK'); // what SQLite does by itself on SQLITE_FULL / some I/O errors
    throw new Error('disk full');
  }, { singleStatement: true });
  await assert.rejects(first, (e: unknown) => e instanceof FleetkeyError && e.code === 'STORAGE_UNAVAILABLE', 'the earlier write is not acknowledged');
  await assert.rejects(failing, /disk full/);
  await writer.run(() => insert.run(2), { singleStatement: true });
  await writer.drain();
  assert.equal(count(path), 1, 'only the write of the next batch is stored');
  sync.close();
  db.close();
});
