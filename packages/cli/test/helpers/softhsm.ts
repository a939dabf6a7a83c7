/**
 * SoftHSM2 tokens and the OpenSSL pkcs11 engine environment for the CLI interop tests
 * (docs/device-sdk.md "Keys in a PKCS#11 token"). The device package has the same fixture for
 * its unit tests; test trees cannot import across packages (rootDir), so this is its CLI twin.
 *
 * Invariants:
 * - One token directory per test process (SoftHSM reads SOFTHSM2_CONF once, at C_Initialize);
 *   all tokens are initialised before any key store or child process uses them.
 * - softhsm2-util runs through async spawn only: the same process hosts a hub.
 * - A missing tool fails with the install command, never a skip.
 * - The environment returned is what a device needs: SOFTHSM2_CONF for the token, and
 *   OPENSSL_ENGINES + PKCS11_MODULE_PATH for OpenSSL's pkcs11 engine inside Node's TLS.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const SOFTHSM_UTIL = '/usr/bin/softhsm2-util';
const ENGINES_DIR = '/usr/lib/x86_64-linux-gnu/engines-3';
export const USER_PIN = '2468-cli-token';

export interface CliTokens {
  readonly dir: string;
  readonly pinFile: string;
  /** SOFTHSM2_CONF, OPENSSL_ENGINES, PKCS11_MODULE_PATH (also applied to process.env). */
  readonly env: Readonly<Record<string, string>>;
  /** Store URI of `label`, PIN from the pin file. */
  fileUri(label: string): string;
  /** Store URI of `label`, PIN from environment variable `name`. */
  envUri(label: string, name: string): string;
}

function requireFile(path: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: run scripts/install-test-deps.sh (softhsm2, libengine-pkcs11-openssl)`);
}

function runAsync(command: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} exited ${String(code)}: ${err.trim()}`));
    });
  });
}

/** Initialises the tokens `labels` in a fresh temp dir and configures this process for them. */
export async function cliTokens(labels: readonly string[]): Promise<CliTokens> {
  for (const path of [SOFTHSM_UTIL, SOFTHSM_MODULE, join(ENGINES_DIR, 'pkcs11.so')]) requireFile(path);
  const dir = await mkdtemp(join(tmpdir(), 'fleetkey-cli-softhsm-'));
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${dir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { SOFTHSM2_CONF: conf, OPENSSL_ENGINES: ENGINES_DIR, PKCS11_MODULE_PATH: SOFTHSM_MODULE };
  Object.assign(process.env, env);
  for (const label of labels) {
    await runAsync(SOFTHSM_UTIL, ['--init-token', '--free', '--label', label, '--so-pin', '11223344', '--pin', USER_PIN]);
  }
  const pinFile = join(dir, 'user.pin');
  await writeFile(pinFile, USER_PIN, { mode: 0o600 });
  return {
    dir,
    pinFile,
    env,
    fileUri: (label) => `pkcs11:token=${label}?module-path=${SOFTHSM_MODULE}&pin-source=file:${pinFile}`,
    envUri: (label, name) => `pkcs11:token=${label}?module-path=${SOFTHSM_MODULE}&pin-source=env:${name}`,
  };
}
