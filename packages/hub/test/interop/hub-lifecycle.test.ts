/**
 * The hub's identity across starts: created once, kept, never silently replaced; unique per
 * install; refused when its sealed keys cannot be opened; one hub per data folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { FleetkeyError } from '@fleetkey/protocol';
import { loadConfig } from '../../src/config/load.js';
import { startHub } from '../../src/hub.js';

const silent = pino({ level: 'silent' });
function configIn(dir: string) {
  return loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, {});
}

test('restarting on the same data folder keeps the hub pin; the recovery key is written only once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-life-'));
  try {
    const first = await startHub({ config: configIn(dir), logger: silent });
    assert.ok(first.recoveryKeyFile !== undefined);
    assert.equal(statSync(first.recoveryKeyFile).mode & 0o777, 0o600);
    assert.match(readFileSync(first.recoveryKeyFile, 'utf8'), /BEGIN PRIVATE KEY/);
    const pin = first.pin;
    await first.close();
    const second = await startHub({ config: configIn(dir), logger: silent });
    assert.equal(second.pin, pin);
    assert.equal(second.recoveryKeyFile, undefined, 'recovery key must not be re-announced');
    assert.equal(statSync(join(dir, 'data', 'secrets', 'master.key')).mode & 0o777, 0o600);
    await second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two fresh installs share no secrets: different pins and master keys (no universal defaults)', async () => {
  const a = mkdtempSync(join(tmpdir(), 'fleetkey-a-'));
  const b = mkdtempSync(join(tmpdir(), 'fleetkey-b-'));
  try {
    const ha = await startHub({ config: configIn(a), logger: silent });
    const hb = await startHub({ config: configIn(b), logger: silent });
    assert.notEqual(ha.pin, hb.pin);
    await ha.close();
    await hb.close();
    const key = (d: string) => readFileSync(join(d, 'data', 'secrets', 'master.key'), 'utf8');
    assert.notEqual(key(a), key(b));
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});

test('a second hub on a running data folder is refused with DATA_DIR_LOCKED', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-lock-'));
  try {
    const hub = await startHub({ config: configIn(dir), logger: silent });
    await assert.rejects(startHub({ config: configIn(dir), logger: silent }), (e: unknown) => e instanceof FleetkeyError && e.code === 'DATA_DIR_LOCKED');
    await hub.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('swapped master key: the hub refuses to start (SECRET_UNREADABLE) and does not create a new identity', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-mk-'));
  try {
    const hub = await startHub({ config: configIn(dir), logger: silent });

    await hub.close();
    const keyFile = join(dir, 'data', 'secrets', 'master.key');
    writeFileSync(keyFile, Buffer.alloc(32, 7).toString('base64') + '\n', { mode: 0o600 });
    await assert.rejects(startHub({ config: configIn(dir), logger: silent }), (e: unknown) => e instanceof FleetkeyError && e.code === 'SECRET_UNREADABLE');
    const rootPem = readFileSync(join(dir, 'data', 'pki', 'root.crt'), 'utf8');
    assert.match(rootPem, /BEGIN CERTIFICATE/);
    rmSync(keyFile);
    await assert.rejects(startHub({ config: configIn(dir), logger: silent }), (e: unknown) => e instanceof FleetkeyError && e.code === 'SECRET_UNREADABLE', 'a missing master key is not silently regenerated');
    assert.equal(readFileSync(join(dir, 'data', 'pki', 'root.crt'), 'utf8'), rootPem);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a master key file readable by others is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-perm-'));
  try {
    const hub = await startHub({ config: configIn(dir), logger: silent });
    await hub.close();
    const keyFile = join(dir, 'data', 'secrets', 'master.key');
    const { chmodSync } = await import('node:fs');
    chmodSync(keyFile, 0o644);
    await assert.rejects(startHub({ config: configIn(dir), logger: silent }), (e: unknown) => e instanceof FleetkeyError && e.code === 'CONFIG_INVALID');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
