/** Operator commands honour the same settings as the hub, and bad arguments are coded errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import pino from 'pino';
import { loadConfig, startHub } from '@fleetkey/hub';


const run = (args: string[], env: Record<string, string>, stdin = '') => runCli(args, stdin, env);

test('owner add and audit verify find a master key moved off the data folder (FLEETKEY_MASTER_KEY_FILE)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-mk-'));
  const env = { FLEETKEY_DATA_DIR: join(dir, 'data'), FLEETKEY_MASTER_KEY_FILE: join(dir, 'elsewhere', 'master.key') };
  try {
    const hub = await startHub({ config: loadConfig({ 'api-port': '0', 'mqtt-port': '0' }, env), logger: pino({ level: 'silent' }) });
    await hub.close();
    assert.ok(existsSync(env.FLEETKEY_MASTER_KEY_FILE));
    assert.ok(!existsSync(join(dir, 'data', 'secrets', 'master.key')), 'no second master key in the data folder');
    const added = await run(['owner', 'add', '--org', 'Moved Key Ltd', '--email', 'ops@moved.example', '--json'], env, 'a good long password\n');
    assert.equal(added.code, 0, added.stderr);
    const audit = await run(['audit', 'verify', '--json'], env);
    assert.equal(audit.code, 0, audit.stderr);
    assert.equal(JSON.parse(audit.stdout).ok, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unknown flag is VALIDATION_FAILED (exit 2) and its value is not echoed', async () => {
  const r = await run(['claim', 'list', '--secret-looking-flag=fkct_notreallyatoken'], {});
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error VALIDATION_FAILED/m);
  assert.ok(!r.stderr.includes('fkct_notreallyatoken'));
});
