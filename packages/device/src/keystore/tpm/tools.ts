/**
 * Running tpm2-tools (5.4) against one TPM, as ADR 0024 §6 decides: async spawn, one command
 * sequence at a time per TCTI, every transient object flushed after each command.
 *
 * Invariants:
 * - Never spawnSync: the device process may host other I/O (and tests host a hub).
 * - Sequences on the same TCTI never interleave (a per-TCTI promise chain): swtpm has three
 *   transient object slots and no resource manager, so each command is followed by
 *   `tpm2_flushcontext -t`, also when it failed.
 * - Each command is bounded in time (killed by pid after TOOL_TIMEOUT_MS); a failure is
 *   KEYSTORE_ERROR naming the tool and the TPM response code line, never file contents.
 * - The TPM storage primary is re-created per sequence from the fixed ECC SRK template
 *   (TCG EK/SRK template: deterministic for the owner seed) into the sequence's temp folder.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';

const TOOL_TIMEOUT_MS = 20_000;
const chains = new Map<string, Promise<unknown>>();
export const SRK_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda';
/** Device keys: fixed to this TPM and parent, generated inside it (TPM 2.0 Part 2 §8.3). */
export const KEY_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign';

export function tpmError(reason: string, cause?: unknown): FleetkeyError {
  return new FleetkeyError('KEYSTORE_ERROR', { cause: new Error(reason, cause === undefined ? undefined : { cause }) });
}

/** One tpm2-tools command; resolves stdout, rejects KEYSTORE_ERROR with the tool's error line. */
export function tool(tcti: string, name: string, args: readonly string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(`/usr/bin/${name}`, args, { env: { ...process.env, TPM2TOOLS_TCTI: tcti }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), TOOL_TIMEOUT_MS);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => { clearTimeout(timer); reject(tpmError(`${name} could not be started (install tpm2-tools)`, e)); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) return resolve(Buffer.concat(out));
      const line = err.split('\n').find((l) => /ERROR: \w+\(0x/.test(l)) ?? err.split('\n')[0] ?? '';
      reject(tpmError(`${name} failed: ${line.slice(0, 200)}`));
    });
  });
}

/**
 * Runs `fn` with exclusive use of the TPM and a private temp folder holding `primary.ctx`
 * (`primary: false`: without creating the storage primary, for sequences that do not use it).
 */
export async function withTpm<T>(tcti: string, fn: (run: (name: string, args: readonly string[]) => Promise<Buffer>, dir: string) => Promise<T>, o: { primary?: boolean } = {}): Promise<T> {
  const previous = chains.get(tcti) ?? Promise.resolve();
  const next = previous.catch(() => undefined).then(() => sequence(tcti, fn, o.primary !== false));
  chains.set(tcti, next.catch(() => undefined));
  return next;
}

async function sequence<T>(tcti: string, fn: (run: (name: string, args: readonly string[]) => Promise<Buffer>, dir: string) => Promise<T>, primary: boolean): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetkey-tpm-'));
  const run = async (name: string, args: readonly string[]): Promise<Buffer> => {
    try {
      return await tool(tcti, name, args);
    } finally {
      await tool(tcti, 'tpm2_flushcontext', ['-t']).catch(() => undefined);
    }
  };
  try {
    if (primary) await run('tpm2_createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'ecc256:null:aes128cfb', '-a', SRK_ATTRIBUTES, '-c', join(dir, 'primary.ctx')]);
    return await fn(run, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
