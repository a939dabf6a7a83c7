/**
 * The tpm key store against a real swtpm through tpm2-tools (ADR 0024 §6): the contract suite,
 * the key attributes, and the attacks a TPM-held key must withstand.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { FleetkeyError } from '@fleetkey/protocol';
import { TpmKeyStore } from '../../src/keystore/tpm/tpm-keystore.js';
import { openKeyStore } from '../../src/keystore/registry.js';
import { ExportRefused, runKeyStoreContract } from './keystore.contract.js';
import { startSwtpm } from '../helpers/swtpm.js';

const tpm = await startSwtpm();
after(() => tpm.stop());
const keyDirs: string[] = [];
const newStore = async (): Promise<TpmKeyStore> => {
  const directory = await fs.mkdtemp(join(tmpdir(), 'fleetkey-tpmkeys-'));
  keyDirs.push(directory);
  return new TpmKeyStore({ directory, tcti: tpm.tcti });
};
const isKeystoreError = (err: unknown): boolean => err instanceof FleetkeyError && err.code === 'KEYSTORE_ERROR';

/** One tpm2-tools command with exit code and stderr (async; for the attack attempts). */
function attempt(args: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(`/usr/bin/${args[0]!}`, args.slice(1), { cwd, env: { ...process.env, TPM2TOOLS_TCTI: tpm.tcti }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

async function tryDuplicate(store: unknown, label: string): Promise<void> {
  const dir = keyDirs[keyDirs.length - 1]!; // the contract creates the key in the store it just made
  const flush = (): Promise<unknown> => attempt(['tpm2_flushcontext', '-t'], dir);
  await attempt(['tpm2_createprimary', '-C', 'o', '-g', 'sha256', '-G', 'ecc256:null:aes128cfb', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda', '-c', 'p.ctx'], dir);
  await flush();
  const load = await attempt(['tpm2_load', '-C', 'p.ctx', '-u', `${label}.pub`, '-r', `${label}.priv`, '-c', 'k.ctx'], dir);
  await flush();
  assert.equal(load.code, 0, `the key loads for the attempt: ${load.stderr}`);
  const dup = await attempt(['tpm2_duplicate', '-C', 'null', '-c', 'k.ctx', '-G', 'null', '-r', 'dup.priv', '-s', 'dup.seed'], dir);
  await flush();
  assert.ok(store !== undefined);
  if (dup.code !== 0 && /tpm:error/.test(dup.stderr)) throw new ExportRefused(dup.stderr.trim().split('\n')[0]);
  if (dup.code === 0) return; // duplicated: the contract fails the test
  throw new Error(`tpm2_duplicate failed without a TPM answer: ${dup.stderr}`);
}

runKeyStoreContract('tpm (swtpm)', newStore, {
  unsupported: { ed25519: 'TPM 2.0 has no EdDSA signing scheme (TPM 2.0 Part 2 §11.2.1.5); refusal tested below' },
  tryExportPrivateKey: tryDuplicate,
});

test('TPM keys are created fixedTPM|fixedParent|sensitiveDataOrigin, Ed25519 is refused, and the key blob is wrapped', async () => {
  const store = await newStore();
  await store.create('attrs-1', 'p256');
  const dir = keyDirs[keyDirs.length - 1]!;
  const printed = await new Promise<string>((resolve) => {
    const child = spawn('/usr/bin/tpm2_print', ['-t', 'TPM2B_PUBLIC', join(dir, 'attrs-1.pub')], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', () => resolve(out));
  });
  assert.match(printed, /value: fixedtpm\|fixedparent\|sensitivedataorigin\|userwithauth\|sign/);
  assert.equal((await fs.stat(join(dir, 'attrs-1.priv'))).mode & 0o777, 0o600);
  assert.doesNotMatch(await fs.readFile(join(dir, 'attrs-1.priv'), 'latin1'), /PRIVATE KEY/);
  await assert.rejects(store.create('ed-1', 'ed25519'), isKeystoreError);
});

test('key transplant: a key blob copied to another TPM cannot be opened there', async () => {
  const store = await newStore();
  await store.create('move-1', 'p256');
  const other = await startSwtpm();
  try {
    const thief = new TpmKeyStore({ directory: keyDirs[keyDirs.length - 1]!, tcti: other.tcti });
    await assert.rejects(thief.open('move-1'), isKeystoreError);
  } finally {
    await other.stop();
  }
});

test('the registry opens the tpm kind under <stateDir>/tpm with the TCTI as locator', async () => {
  const stateDir = await fs.mkdtemp(join(tmpdir(), 'fleetkey-tpmstate-'));
  const store = openKeyStore('tpm', { stateDir, locator: tpm.tcti });
  assert.equal(store.kind, 'tpm');
  assert.equal(store.locator, tpm.tcti);
  const key = await store.create('reg-1', 'p384');
  assert.equal(key.algorithm, 'p384');
  await fs.access(join(stateDir, 'tpm', 'reg-1.pub'));
});
