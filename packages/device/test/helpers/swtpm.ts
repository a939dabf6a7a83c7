/**
 * A real swtpm (TPM 2.0, libtpms) for key store tests: TCP server + control channel on
 * 127.0.0.1 with a fresh state folder, started by async spawn and killed by pid.
 *
 * Invariants:
 * - Ports are probed free first (port+1 also against every local socket, TIME_WAIT included) and
 *   the pair is retried a few times if swtpm could not bind; a failed attempt is waited out before
 *   the next; the TPM is ready when `tpm2_getcap properties-fixed` answers.
 * - `stop()` kills only the swtpm this helper started (SIGKILL by pid) and removes its folder.
 * - A missing swtpm or tpm2-tools fails with the install command, never a skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tool } from '../../src/keystore/tpm/tools.js';
import { freePort } from './mosquitto.js';

export interface Swtpm {
  readonly tcti: string;
  readonly dir: string;
  stop(): Promise<void>;
}

const SWTPM = '/usr/bin/swtpm';

function requireTools(): void {
  for (const path of [SWTPM, '/usr/bin/tpm2_createprimary', '/usr/bin/tpm2_sign']) {
    if (!existsSync(path)) throw new Error(`${path} is missing: run scripts/install-test-deps.sh (swtpm, swtpm-tools, tpm2-tools)`);
  }
}

async function ready(tcti: string, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 50 && child.exitCode === null; i++) {
    if (await tool(tcti, 'tpm2_getcap', ['properties-fixed']).then(() => true, () => false)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/**
 * Starts a fresh swtpm; throws after three failed attempts.
 *
 * @example
 * const tpm = await startSwtpm();
 * after(() => tpm.stop());
 * const store = new TpmKeyStore({ directory, tcti: tpm.tcti });
 */
export async function startSwtpm(): Promise<Swtpm> {
  requireTools();
  const dir = await mkdtemp(join(tmpdir(), 'fleetkey-swtpm-'));
  const failures: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await swtpmPort();
    const args = ['socket', '--tpm2', '--tpmstate', `dir=${dir}`, '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
      '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--flags', 'not-need-init,startup-clear'];
    const child = spawn(SWTPM, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-300); });
    const tcti = `swtpm:host=127.0.0.1,port=${port}`;
    if (await ready(tcti, child)) {
      return {
        tcti,
        dir,
        stop: async () => {
          await killAndWait(child);
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    // Wait for the exit: a dying swtpm still holds the state folder's lock, and the next attempt
    // reuses that folder (before, one failed attempt made the retries fail as well).
    await killAndWait(child);
    failures.push(stderr.trim() || `exit ${String(child.exitCode ?? child.signalCode)}`);
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`swtpm did not start (ports busy?): ${failures.join(' | ')}`);
}

/**
 * A free port P whose P+1 (the control channel the swtpm TCTI expects) is held by no local TCP
 * socket in any state: bind(0) gives odd ports, P+1 is even, the kernel's side for outgoing
 * connections, often in TIME_WAIT after a busy run — and swtpm binds without SO_REUSEADDR.
 */
async function swtpmPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    if (!localTcpPorts().has(port + 1)) return port;
  }
  throw new Error('no port P with P+1 unused found for swtpm');
}

/**
 * Local ports of every TCP socket of this host (/proc/net/tcp, tcp6), in any state. The cli
 * package's test helpers (tpm.ts) hold the same function: test helpers are not shared across
 * packages (no package exports them).
 */
function localTcpPorts(): Set<number> {
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const rows = existsSync(table) ? readFileSync(table, 'utf8').split('\n').slice(1) : [];
    for (const row of rows) {
      const local = row.trim().split(/\s+/)[1];
      if (local !== undefined) ports.add(Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16));
    }
  }
  return ports;
}

/** SIGKILL by pid, resolved once the process has exited (at once if it already has). */
async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(child.pid, 'SIGKILL');
  await exited;
}
