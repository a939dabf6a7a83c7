/**
 * A real SoftHSM2 token store for PKCS#11 tests, in a temporary directory (SOFTHSM2_CONF).
 *
 * Invariants:
 * - SoftHSM reads SOFTHSM2_CONF once, at C_Initialize: one token directory per test process,
 *   with every token the process needs initialised before the first key store touches it.
 * - softhsm2-util runs through async spawn (the interop tests host a hub in the same process).
 * - A missing tool fails the test with the install command, never a skip.
 * - PIN files hold the PIN only (printf, no newline), mode 0600, as docs/device-sdk.md says.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
export const SOFTHSM_UTIL = '/usr/bin/softhsm2-util';
export const DEBIAN_ENGINES_DIR = '/usr/lib/x86_64-linux-gnu/engines-3';
export const USER_PIN = '4711-fleetkey';
const SO_PIN = '87654321';

export interface SoftHsmTokens {
  readonly dir: string;
  readonly pinFile: string;
  /** The store URI of token `label` with the PIN from the pin file. */
  uri(label: string): string;
}

function requireTool(path: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: run scripts/install-test-deps.sh (Debian packages softhsm2, libengine-pkcs11-openssl, opensc)`);
}

/** Runs a command asynchronously; rejects with its stderr on a non-zero exit or after 30 s. */
export function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} exited ${String(code)}: ${err.trim()}`));
    });
  });
}

let created: SoftHsmTokens | undefined;

/** Creates (once per process) a SoftHSM2 directory with the given tokens and points SOFTHSM2_CONF at it. */
export async function softHsmTokens(labels: readonly string[]): Promise<SoftHsmTokens> {
  if (created !== undefined) return created;
  requireTool(SOFTHSM_UTIL);
  requireTool(SOFTHSM_MODULE);
  const dir = await mkdtemp(join(tmpdir(), 'fleetkey-softhsm-'));
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${dir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  for (const label of labels) {
    await run(SOFTHSM_UTIL, ['--init-token', '--free', '--label', label, '--so-pin', SO_PIN, '--pin', USER_PIN]);
  }
  const pinFile = join(dir, 'user.pin');
  await writeFile(pinFile, USER_PIN, { mode: 0o600 });
  created = {
    dir,
    pinFile,
    uri: (label) => `pkcs11:token=${label}?module-path=${SOFTHSM_MODULE}&pin-source=file:${pinFile}`,
  };
  return created;
}

/**
 * The process environment OpenSSL's pkcs11 engine needs to reach SoftHSM from Node's TLS
 * (docs/device-sdk.md): Debian's engines-3 directory and the module path. Node's bundled OpenSSL
 * reads them when the engine is first loaded, so they must be set before any TLS context.
 */
export function configureEngineEnvironment(): void {
  requireTool(join(DEBIAN_ENGINES_DIR, 'pkcs11.so'));
  process.env.OPENSSL_ENGINES = DEBIAN_ENGINES_DIR;
  process.env.PKCS11_MODULE_PATH = SOFTHSM_MODULE;
}
