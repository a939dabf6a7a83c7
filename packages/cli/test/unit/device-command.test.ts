import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { PassThrough, Readable } from 'node:stream';
import { ERROR_TABLE } from '@fleetkey/protocol';
import { deviceCommand } from '../../src/commands/device.js';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function run(argv: string[], env: NodeJS.ProcessEnv = {}, stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const code = await deviceCommand(argv, { stdout: stdout.stream, stderr: stderr.stream, stdin: Readable.from([stdin]), env });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

test('device status on an empty state directory prints DEVICE_NOT_ENROLLED and exits with its code', async () => {
  const empty = await fs.mkdtemp(join(tmpdir(), 'fleetkey-cli-'));
  const result = await run(['status', '--state-dir', empty]);
  assert.equal(result.code, ERROR_TABLE.DEVICE_NOT_ENROLLED.exit);
  assert.equal(result.stderr, `error DEVICE_NOT_ENROLLED: ${ERROR_TABLE.DEVICE_NOT_ENROLLED.message}\n`);
  assert.equal(result.stdout, '');
});

test('--json errors are JSON on stderr', async () => {
  const empty = await fs.mkdtemp(join(tmpdir(), 'fleetkey-cli-'));
  const result = await run(['status', '--state-dir', empty, '--json']);
  assert.equal(JSON.parse(result.stderr).error.code, 'DEVICE_NOT_ENROLLED');
});

test('a mistyped flag followed by the token does not print the token', async () => {
  const token = 'ct_must-not-be-printed';
  const result = await run(['enroll', '--tokn', token, '--state-dir', '/nonexistent'], { FLEETKEY_DEBUG: '1' });
  assert.equal(result.code, ERROR_TABLE.VALIDATION_FAILED.exit);
  assert.match(result.stderr, /^error VALIDATION_FAILED:/);
  assert.ok(!(result.stdout + result.stderr).includes(token));
});

test('enroll with a malformed pin fails before any network use, without printing the token', async () => {
  const dir = await fs.mkdtemp(join(tmpdir(), 'fleetkey-cli-'));
  const token = 'ct_env-token-value';
  const result = await run(['enroll', '--hub', 'https://127.0.0.1:1', '--pin', 'sha256//short', '--state-dir', dir], { FLEETKEY_CLAIM_TOKEN: token });
  assert.equal(result.code, ERROR_TABLE.VALIDATION_FAILED.exit);
  assert.match(result.stderr, /field=pin/);
  assert.ok(!result.stderr.includes(token));
  assert.deepEqual(await fs.readdir(dir), []);
});

test('enroll without any token source is VALIDATION_FAILED field=token', async () => {
  const dir = await fs.mkdtemp(join(tmpdir(), 'fleetkey-cli-'));
  const pin = `sha256//${Buffer.alloc(32).toString('base64')}`;
  const result = await run(['enroll', '--hub', 'https://127.0.0.1:1', '--pin', pin, '--state-dir', dir]);
  assert.equal(result.code, ERROR_TABLE.VALIDATION_FAILED.exit);
  assert.match(result.stderr, /field=token/);
});

test('an unreachable hub is HUB_UNREACHABLE with its exit code (token from stdin with --token -)', async () => {
  const dir = await fs.mkdtemp(join(tmpdir(), 'fleetkey-cli-'));
  const pin = `sha256//${Buffer.alloc(32).toString('base64')}`;
  const result = await run(['enroll', '--hub', 'https://127.0.0.1:1', '--pin', pin, '--token', '-', '--state-dir', dir], {}, 'ct_from-stdin\n');
  assert.equal(result.code, ERROR_TABLE.HUB_UNREACHABLE.exit);
  assert.match(result.stderr, /^error HUB_UNREACHABLE:/);
  assert.ok(!result.stderr.includes('ct_from-stdin'));
});

test('unknown device subcommands and --key-alg values are VALIDATION_FAILED', async () => {
  assert.equal((await run(['explode', '--state-dir', '/x'])).code, ERROR_TABLE.VALIDATION_FAILED.exit);
  const pin = `sha256//${Buffer.alloc(32).toString('base64')}`;
  const r = await run(['enroll', '--hub', 'https://h', '--pin', pin, '--token', 't', '--state-dir', '/x', '--key-alg', 'dsa']);
  assert.match(r.stderr, /field=key-alg/);
});

test('PIN disclosure: --keystore with pin-value is KEYSTORE_ERROR before any key or network use, and the PIN is not echoed', async () => {
  const pin = `sha256//${Buffer.alloc(32).toString('base64')}`;
  const keystore = 'pkcs11:token=t?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=98765-secret';
  const r = await run(['enroll', '--hub', 'https://127.0.0.1:1', '--pin', pin, '--token', 't', '--state-dir', '/nonexistent', '--keystore', keystore], { FLEETKEY_DEBUG: '1' });
  assert.equal(r.code, ERROR_TABLE.KEYSTORE_ERROR.exit);
  assert.ok(!r.stderr.includes('98765-secret'), r.stderr);
  const unknown = await run(['enroll', '--hub', 'https://127.0.0.1:1', '--pin', pin, '--token', 't', '--state-dir', '/nonexistent', '--keystore', 'hsm']);
  assert.equal(unknown.code, ERROR_TABLE.KEYSTORE_ERROR.exit);
});
