/**
 * One process per outbox directory: a `lock` file holding the owner's pid.
 *
 * Invariants:
 * - Two live processes never append to the same outbox (their segments would interleave seqs).
 * - A lock left by a dead process (crash, kill -9) is taken over; a live owner's lock is
 *   CONFLICT with details `{ reason: 'outbox_locked', pid }`.
 * - The lock is released only by the process (and outbox instance) that holds it.
 */
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';

const LOCK_FILE = 'lock';
const held = new Set<string>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function tryCreate(path: string): Promise<boolean> {
  try {
    const file = await fs.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    await file.writeFile(String(process.pid));
    await file.close();
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

function locked(pid: number): FleetkeyError {
  return new FleetkeyError('CONFLICT', { details: { reason: 'outbox_locked', pid } });
}

/** Takes the lock of `directory`; returns its release. */
export async function lockOutbox(directory: string): Promise<() => Promise<void>> {
  const path = join(directory, LOCK_FILE);
  if (held.has(path)) throw locked(process.pid); // another outbox instance in this process
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await tryCreate(path)) {
      held.add(path);
      return async () => {
        held.delete(path);
        await fs.rm(path, { force: true });
      };
    }
    const pid = Number(await fs.readFile(path, 'utf8').catch(() => ''));
    const stale = !Number.isInteger(pid) || pid <= 0 || (pid !== process.pid && !pidAlive(pid)) || pid === process.pid;
    if (!stale) throw locked(pid);
    await fs.rm(path, { force: true }); // dead owner (or our own leftover after a crash-test reopen)
  }
  throw locked(0);
}
