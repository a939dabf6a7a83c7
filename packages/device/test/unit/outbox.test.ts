/**
 * FileOutbox in temp directories: durability across reopen, torn tails, overflow policies,
 * bounded compaction, the single-process lock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { FleetkeyError } from '@fleetkey/protocol';
import { FileOutbox, type OutboxOptions } from '../../src/outbox/outbox.js';

async function dir(): Promise<string> {
  return fs.mkdtemp(join(tmpdir(), 'fleetkey-outbox-'));
}
const open = (directory: string, extra: Partial<OutboxOptions> = {}): Promise<FileOutbox> => FileOutbox.open({ directory, ...extra });
const topic = 'devices/dev-1/telemetry';

test('queued messages survive a reopen with the same id, order and payload; removed ones do not', async () => {
  const d = await dir();
  const a = await open(d);
  const m1 = await a.append(topic, Buffer.from('one'));
  const m2 = await a.append(topic, Buffer.from('two'));
  const m3 = await a.append(topic, Buffer.from([0, 255, 10]));
  a.remove(m2.seq);
  await a.close();
  const b = await open(d);
  assert.deepEqual(b.pending().map((m) => [m.id, m.payload.toString('hex')]), [[m1.id, Buffer.from('one').toString('hex')], [m3.id, '00ff0a']]);
  const m4 = await b.append(topic, Buffer.from('four'));
  assert.ok(m4.seq > m3.seq, 'seqs keep increasing after a reopen');
  await b.close();
});

test('concurrent appends share group commits and all resolve durably', async () => {
  const d = await dir();
  const a = await open(d);
  const all = await Promise.all(Array.from({ length: 200 }, (_, i) => a.append(topic, Buffer.from(`m${i}`))));
  assert.equal(new Set(all.map((m) => m.id)).size, 200);
  await a.close();
  const b = await open(d);
  assert.equal(b.size, 200);
  await b.close();
});

test('a torn record at the end of a segment (crash during write) is ignored, earlier ones kept', async () => {
  const d = await dir();
  const a = await open(d);
  await a.append(topic, Buffer.from('kept'));
  await a.close();
  const [segment] = (await fs.readdir(d)).filter((n) => n.endsWith('.seg')).sort();
  await fs.appendFile(join(d, segment!), Buffer.from([0x40, 0, 0, 0, 1, 2, 3, 4, 5])); // length 64, 5 bytes
  const b = await open(d);
  assert.deepEqual(b.pending().map((m) => m.payload.toString()), ['kept']);
  await b.close();
});

test('a corrupted record (CRC mismatch) ends its segment: nothing after it is trusted', async () => {
  const d = await dir();
  const a = await open(d);
  await a.append(topic, Buffer.from('first'));
  await a.append(topic, Buffer.from('second'));
  await a.close();
  const [segment] = (await fs.readdir(d)).filter((n) => n.endsWith('.seg')).sort();
  const data = await fs.readFile(join(d, segment!));
  data.writeUInt8(data.readUInt8(data.length - 1) ^ 0xff, data.length - 1); // flip a payload byte of the second record
  await fs.writeFile(join(d, segment!), data);
  const b = await open(d);
  assert.deepEqual(b.pending().map((m) => m.payload.toString()), ['first']);
  await b.close();
});

test('overflow drop-oldest: the oldest messages make room and are reported', async () => {
  const d = await dir();
  const dropped: string[] = [];
  const a = await open(d, { maxMessages: 3, onDrop: (m) => dropped.push(m.payload.toString()) });
  for (const p of ['a', 'b', 'c', 'd', 'e']) await a.append(topic, Buffer.from(p));
  assert.deepEqual(a.pending().map((m) => m.payload.toString()), ['c', 'd', 'e']);
  assert.deepEqual(dropped, ['a', 'b']);
  assert.equal(a.stats().dropped, 2);
  await a.close();
  const b = await open(d);
  assert.deepEqual(b.pending().map((m) => m.payload.toString()), ['c', 'd', 'e'], 'drops are durable too');
  await b.close();
});

test('overflow reject: RATE_LIMITED (outbox_full) and the stored messages are unchanged', async () => {
  const d = await dir();
  const a = await open(d, { maxBytes: 2 * (topic.length + 4), overflow: 'reject' });
  await a.append(topic, Buffer.from('1111'));
  await a.append(topic, Buffer.from('2222'));
  await assert.rejects(a.append(topic, Buffer.from('3333')), (e: unknown) => e instanceof FleetkeyError && e.code === 'RATE_LIMITED' && e.details?.reason === 'outbox_full');
  assert.deepEqual(a.pending().map((m) => m.payload.toString()), ['1111', '2222']);
  await a.close();
});

test('a payload over maxPayloadBytes is VALIDATION_FAILED and not stored', async () => {
  const a = await open(await dir(), { maxPayloadBytes: 8 });
  await assert.rejects(a.append(topic, Buffer.alloc(9)), (e: unknown) => e instanceof FleetkeyError && e.code === 'VALIDATION_FAILED');
  assert.equal(a.size, 0);
  await a.close();
});

test('compaction is bounded: a long run with one stuck message keeps disk use near the live size', async () => {
  const d = await dir();
  const a = await open(d, { segmentBytes: 4096 });
  const stuck = await a.append(topic, Buffer.from('never acknowledged'));
  for (let i = 0; i < 2000; i++) {
    const m = await a.append(topic, Buffer.alloc(100, i % 256));
    a.remove(m.seq);
  }
  await a.append(topic, Buffer.from('tail')); // one more commit runs maintenance after the removes
  const stats = a.stats();
  assert.ok(stats.fileBytes <= 2 * stats.pendingBytes + 3 * 4096, `file bytes ${stats.fileBytes} stay bounded`);
  assert.ok(stats.segments <= 4, `segments ${stats.segments}`);
  await a.close();
  const b = await open(d);
  assert.deepEqual(b.pending().map((m) => m.id), [stuck.id, b.pending()[1]!.id]);
  assert.equal(b.pending()[0]!.payload.toString(), 'never acknowledged', 'the stuck message survived compaction with its id');
  await b.close();
});

test('a second outbox on the same directory is refused while the first is open (CONFLICT)', async () => {
  const d = await dir();
  const a = await open(d);
  await assert.rejects(open(d), (e: unknown) => e instanceof FleetkeyError && e.code === 'CONFLICT' && e.details?.reason === 'outbox_locked');
  await a.close();
  const b = await open(d);
  await b.close();
});
