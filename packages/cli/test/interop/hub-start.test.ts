/**
 * `fleetkey hub start` as an operator runs it: a child process that prints the URL and pin,
 * answers /healthz, and shuts down cleanly on SIGTERM (exit 0, lock released).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, runCli } from '../helpers/cli.js';


const run = (args: string[], env: Record<string, string> = {}) => runCli(args, '', env);

function healthz(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(`${url}/healthz`, { ca, checkServerIdentity: () => undefined, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

test('hub start prints URL and pin, serves /healthz, and stops cleanly on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-start-'));
  const data = join(dir, 'data');
  try {
    const child = spawn(process.execPath, [BIN, 'hub', 'start', '--data-dir', data, '--api-port', '0', '--mqtt-port', '0', '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hub did not start: ${stdout}`)), 30_000);
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        const m = /API \+ EST:\s+(https:\/\/\S+)/.exec(stdout);
        if (m && stdout.includes('owner add')) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    const pin = /hub pin:\s+(sha256\/\/\S+)/.exec(stdout)?.[1];
    assert.ok(pin);
    assert.match(stdout, /RECOVERY KEY/);
    const rootCert = await run(['hub', 'root-cert', '--data-dir', data]);
    assert.equal(rootCert.code, 0);
    assert.equal((await run(['hub', 'pin'], { FLEETKEY_DATA_DIR: data })).stdout.trim(), pin, 'FLEETKEY_DATA_DIR is honoured');
    assert.equal(await healthz(url, rootCert.stdout), 200);
    assert.ok(existsSync(join(data, 'hub.lock')));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(!existsSync(join(data, 'hub.lock')), 'lock released on clean shutdown');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hub pin on a folder without a hub is a coded error, not a stack trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-nohub-'));
  try {
    const r = await run(['hub', 'pin', '--data-dir', dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error CONFIG_INVALID: .* setting=dataDir/m);
    assert.doesNotMatch(r.stderr, /\s+at .*:\d+:\d+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
