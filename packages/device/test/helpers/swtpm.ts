/**
 * A real swtpm (TPM 2.0, libtpms) for key store tests: TCP server + control channel on
 * 127.0.0.1 with a fresh state folder, started by async spawn and killed by pid.
 *
 * Invariants:
 * - Ports are probed free first and the pair (port, port+1) is retried a few times if swtpm
 *   could not bind; the TPM is ready when `tpm2_getcap properties-fixed` answers.
 * - `stop()` kills only the swtpm this helper started (SIGKILL by pid) and removes its folder.
 * - A missing swtpm or tpm2-tools fails with the install command, never a skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
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
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const args = ['socket', '--tpm2', '--tpmstate', `dir=${dir}`, '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
      '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--flags', 'not-need-init,startup-clear'];
    const child = spawn(SWTPM, args, { stdio: 'ignore' });
    const tcti = `swtpm:host=127.0.0.1,port=${port}`;
    if (await ready(tcti, child)) {
      return {
        tcti,
        dir,
        stop: async () => {
          if (child.exitCode === null && child.pid !== undefined) {
            const exited = new Promise((r) => child.once('exit', r));
            process.kill(child.pid, 'SIGKILL');
            await exited;
          }
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }
  throw new Error('swtpm did not start (ports busy?)');
}
