/**
 * Crash-safe file writes for the device state directory and the file key store.
 *
 * Invariants:
 * - `writeFileAtomic` writes a uniquely named temporary file in the target's directory (O_EXCL,
 *   mode 0600 unless told otherwise), fsyncs it, renames it over the target and fsyncs the
 *   directory: after a crash the target holds either the old or the new content, never a mix.
 * - `ensurePrivateDirectory` creates the state directory with mode 0700.
 */
import { constants, promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

export const STATE_FILE_MODE = 0o600;
export const STATE_DIR_MODE = 0o700;

export async function ensurePrivateDirectory(path: string): Promise<void> {
  await fs.mkdir(path, { recursive: true, mode: STATE_DIR_MODE });
}

export async function writeFileAtomic(path: string, data: string | Buffer, mode = STATE_FILE_MODE): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const file = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await syncDirectory(dirname(path));
}

/** Renames and fsyncs the directory (for moving a prepared file into place). */
export async function renameDurably(from: string, to: string): Promise<void> {
  await fs.rename(from, to);
  await syncDirectory(dirname(to));
}

/** The file's content, or undefined when it does not exist. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** fsync a directory so a rename or link in it survives power loss. */
export async function syncDirectory(directory: string): Promise<void> {
  const dir = await fs.open(directory, constants.O_RDONLY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
