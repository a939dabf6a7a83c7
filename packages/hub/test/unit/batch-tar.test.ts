/**
 * The ustar/gzip writer of batch bundles (batch/tar.ts): round trip through the system `tar`
 * (an independent reader, spawned asynchronously), header fields and checksum read back by hand,
 * block padding and end-of-archive, long names through the ustar prefix field, and the names it
 * refuses (traversal, absolute, non-ASCII, too long to split).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { FleetkeyError } from '@fleetkey/protocol';
import { splitName, tarArchive, tarGz, type TarEntry } from '../../src/batch/tar.js';

const exec = promisify(execFile);
const MTIME = new Date(Date.UTC(2026, 11, 1, 12, 0, 0));
const longDir = `${'d'.repeat(60)}/${'e'.repeat(60)}`; // 121 bytes: needs the prefix field
const name100 = 'n'.repeat(100);

const ENTRIES: TarEntry[] = [
  { name: 'batch.json', data: Buffer.from('{"version":1}\n') },
  { name: 'dev-000001' },
  { name: 'dev-000001/empty', data: Buffer.alloc(0) },
  { name: 'dev-000001/one', data: Buffer.from('x') },
  { name: 'dev-000001/block', data: randomBytes(512) },
  { name: 'dev-000001/block+1', data: randomBytes(513) },
  { name: 'dev-000001/key.pem', data: randomBytes(2000), mode: 0o600 },
  { name: longDir },
  { name: `${longDir}/${'f'.repeat(90)}`, data: Buffer.from('deep') },
  { name: name100, data: Buffer.from('exactly one hundred') },
];

const field = (h: Buffer, at: number, len: number): string => h.subarray(at, at + len).toString('ascii').replace(/\0.*$/s, '');

test('round trip: the system tar extracts every entry byte for byte, with its mode and mtime', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-tar-'));
  try {
    writeFileSync(join(dir, 'b.tar.gz'), await tarGz(ENTRIES, MTIME));
    await exec('tar', ['-xzf', join(dir, 'b.tar.gz'), '-C', dir], { timeout: 10_000 });
    for (const e of ENTRIES) {
      const st = statSync(join(dir, e.name));
      assert.equal(st.isDirectory(), e.data === undefined, e.name);
      assert.equal(st.mtimeMs, MTIME.getTime(), e.name);
      if (e.data !== undefined) assert.deepEqual(readFileSync(join(dir, e.name)), e.data, e.name);
    }
    assert.equal(statSync(join(dir, 'dev-000001/key.pem')).mode & 0o777, 0o600);
    const listed = (await exec('tar', ['-tzf', join(dir, 'b.tar.gz')], { timeout: 10_000 })).stdout.trim().split('\n');
    assert.deepEqual(listed.map((n) => n.replace(/\/$/, '')), ENTRIES.map((e) => e.name), 'order and names as written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('headers: ustar magic, octal fields, checksum over the header with the field as spaces; data padded; two zero blocks at the end', () => {
  const archive = tarArchive([{ name: 'a/b.txt', data: Buffer.from('hello') }], MTIME);
  assert.equal(archive.length, 512 + 512 + 1024);
  const h = archive.subarray(0, 512);
  assert.equal(field(h, 0, 100), 'a/b.txt');
  assert.equal(field(h, 257, 6), 'ustar');
  assert.equal(field(h, 263, 2), '00');
  assert.equal(parseInt(field(h, 124, 12), 8), 5);
  assert.equal(parseInt(field(h, 136, 12), 8), MTIME.getTime() / 1000);
  assert.equal(parseInt(field(h, 100, 8), 8), 0o644);
  assert.equal(field(h, 156, 1), '0');
  const stated = parseInt(field(h, 148, 8).trim(), 8);
  const copy = Buffer.from(h);
  copy.fill(0x20, 148, 156);
  assert.equal(stated, copy.reduce((s, b) => s + b, 0));
  assert.equal(archive.subarray(512, 517).toString(), 'hello');
  assert.ok(archive.subarray(517).every((b) => b === 0), 'padding and the end-of-archive blocks are zeros');
});

test('a name over 100 bytes goes into prefix + name, split at a slash; one of exactly 100 fills the field unterminated', () => {
  assert.deepEqual(splitName(`${longDir}/${'f'.repeat(90)}`), { prefix: longDir, name: 'f'.repeat(90) });
  const h = tarArchive([{ name: name100, data: Buffer.from('x') }], MTIME).subarray(0, 512);
  assert.equal(h.subarray(0, 100).toString('ascii'), name100);
  assert.equal(field(h, 345, 155), '');
});

test('gzip wrapping: gunzip gives back exactly the ustar archive', async () => {
  assert.deepEqual(gunzipSync(await tarGz(ENTRIES, MTIME)), tarArchive(ENTRIES, MTIME));
});

test('attack: entry names that could escape the extraction folder, or cannot be encoded, are refused', () => {
  const refused = [
    '../etc/passwd', 'dev/../../x', '/abs', './dot', 'a/./b', '', 'spa ce', 'caf\u00e9', 'nul\0', 'tab\t',
    'x'.repeat(101), // one component over 100 bytes: no split possible
    `${'p'.repeat(160)}/${'q'.repeat(90)}`, // prefix over 155 bytes
    `${'a/'.repeat(130)}z`, // over 256 bytes
  ];
  for (const name of refused) {
    assert.throws(() => tarArchive([{ name, data: Buffer.from('x') }], MTIME), (e: unknown) => e instanceof FleetkeyError && e.code === 'INTERNAL', JSON.stringify(name));
  }
});
