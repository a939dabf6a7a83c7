/**
 * GroupCommitWriter's single-statement writes (ADR 0023): no SAVEPOINT around a write that is one
 * statement, because SQLite undoes a failed statement by itself; if SQLite rolled the whole
 * transaction back instead, every write of the open batch fails (nobody is told "done").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { FleetkeyError } from '@fleetkey/protocol';
import { GroupCommitWriter } from '../../src/storage/sqlite/group-commit.js';

const dir = mkdtempSync(join(tmpdir(), 'fleetkey-gc-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function open(name: string): { db: Database.Database; path: string } {
  const path = join(dir, name);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (x INTEGER)');
  return { db, path };
}

const count = (path: string): number => {
  const raw = new Database(path, { readonly: true });
  try {
    return (raw.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  } finally {
    raw.close();
  }
};

test('a failing single-statement write (no savepoint) rejects alone; the others of its batch are durable', async () => {
  const { db, path } = open('single.db');
  db.exec('CREATE UNIQUE INDEX t_x ON t(x)');
  const writer = new GroupCommitWriter(db);
  const insert = db.prepare('INSERT INTO t VALUES (?)');
  const results = await Promise.allSettled([1, 2, 1, 3].map((x) => writer.run(() => insert.run(x), { singleStatement: true })));
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  assert.equal(count(path), 3, 'the duplicate alone was undone by SQLite itself');
  db.close();
});

test('a single-statement write after which SQLite rolled the transaction back fails the whole batch', async () => {
  const { db, path } = open('single-abort.db');
  const writer = new GroupCommitWriter(db);
  const insert = db.prepare('INSERT INTO t VALUES (?)');
  const first = writer.run(() => insert.run(1), { singleStatement: true });
  const failing = writer.run(() => {
    db.exec('ROLLBACK'); // what SQLite does by itself on SQLITE_FULL / some I/O errors
    throw new Error('disk full');
  }, { singleStatement: true });
  await assert.rejects(first, (e: unknown) => e instanceof FleetkeyError && e.code === 'STORAGE_UNAVAILABLE', 'the earlier write is not acknowledged');
  await assert.rejects(failing, /disk full/);
  await writer.run(() => insert.run(2), { singleStatement: true });
  writer.flush();
  assert.equal(count(path), 1, 'only the write of the next batch is stored');
  db.close();
});

// ADR 0030: a batch stays open while writes keep joining it, at most maxWaitMs. No timing is
// asserted: the waits below are far longer than the tests, and turns are counted, not measured.
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('writes that keep arriving turn after turn share one COMMIT, and none is acknowledged or durable before it', async () => {
  const { db, path } = open('wait.db');
  const writer = new GroupCommitWriter(db, { maxWaitMs: 600_000 });
  const insert = db.prepare('INSERT INTO t VALUES (?)');
  const acknowledged: number[] = [];
  const write = (x: number): Promise<void> => writer.run(() => insert.run(x)).then(() => void acknowledged.push(x));
  const writes = [write(1), write(2)];
  for (let x = 3; x <= 6; x++) {
    await turn();
    assert.equal(count(path), 0, `turn ${x - 2}: nothing is committed while writes keep coming`);
    assert.deepEqual(acknowledged, [], 'no write is acknowledged before its COMMIT');
    writes.push(write(x));
  }
  await Promise.all(writes);
  assert.equal(count(path), 6, 'the first turn without a new write committed all six');
  assert.deepEqual(acknowledged, [1, 2, 3, 4, 5, 6]);
  db.close();
});

test('a lone write commits at the end of its own turn: an idle writer adds no wait', async () => {
  const { db, path } = open('lone.db');
  const writer = new GroupCommitWriter(db, { maxWaitMs: 600_000 });
  let done = false;
  void writer.run(() => db.prepare('INSERT INTO t VALUES (1)').run()).then(() => { done = true; });
  await turn();
  assert.equal(count(path), 1, 'committed at the end of the turn');
  await turn();
  assert.equal(done, true);
  db.close();
});

test('with maxWaitMs 0 every turn commits its own writes (the behaviour before ADR 0030)', async () => {
  const { db, path } = open('nowait.db');
  const writer = new GroupCommitWriter(db, { maxWaitMs: 0 });
  const insert = db.prepare('INSERT INTO t VALUES (?)');
  const writes = [writer.run(() => insert.run(1)), writer.run(() => insert.run(2))];
  await turn();
  assert.equal(count(path), 2, 'first turn committed although writes kept coming');
  writes.push(writer.run(() => insert.run(3)), writer.run(() => insert.run(4)));
  await turn();
  assert.equal(count(path), 4);
  await Promise.all(writes);
  db.close();
});
