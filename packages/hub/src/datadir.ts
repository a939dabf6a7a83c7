/**
 * The data folder: where the embedded hub keeps its state.
 *
 *   <dataDir>/fleetkey.db            SQLite (WAL): accounts, tokens (hashed), devices, audit
 *   <dataDir>/pki/*.crt              hub root and device CA certificates (public)
 *   <dataDir>/pki/*.key.sealed       their private keys, AES-256-GCM sealed with the master key
 *   <dataDir>/secrets/master.key     the master key (mode 0600; move it with FLEETKEY_MASTER_KEY_FILE)
 *   <dataDir>/hub.lock               pid of the running hub
 *
 * Invariants: folders are created 0700 and secret files 0600; a secret file readable by group or
 * others is refused; only one hub process runs on a data folder at a time.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync, fsyncSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';
import { AesGcmSealer, MASTER_KEY_BYTES } from './secrets/sealer.js';

export const dbPath = (dataDir: string): string => join(dataDir, 'fleetkey.db');
export const pkiDir = (dataDir: string): string => join(dataDir, 'pki');

export function ensureDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
}

/** Writes a file atomically (temp, fsync, rename) with the given mode. */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): void {
  ensureDir(dirname(path));
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Reads a secret file, refusing one that group or others may read. */
export function readSecretFile(path: string): Buffer {
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) {
    throw new FleetkeyError('CONFIG_INVALID', { details: { setting: 'masterKeyFile', problem: 'readable by group or others (chmod 600)' } });
  }
  return readFileSync(path);
}

/**
 * Loads the master key, creating it only when `allowCreate` (a brand-new data folder). An existing
 * PKI without its master key is an error, never a silent re-key.
 */
export function loadMasterKey(path: string, allowCreate: boolean): AesGcmSealer {
  if (!existsSync(path)) {
    if (!allowCreate) throw new FleetkeyError('SECRET_UNREADABLE', { cause: new Error('master key file missing') });
    writeFileAtomic(path, AesGcmSealer.generateKey().toString('base64') + '\n', 0o600);
  }
  const key = Buffer.from(readSecretFile(path).toString('utf8').trim(), 'base64');
  if (key.length !== MASTER_KEY_BYTES) throw new FleetkeyError('SECRET_UNREADABLE', { cause: new Error('master key has the wrong length') });
  return new AesGcmSealer(key);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the data-folder lock; returns its release. A stale lock (dead pid) is taken over. */
export function acquireLock(dataDir: string): () => void {
  const path = join(dataDir, 'hub.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, 'utf8') === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(path, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) throw new FleetkeyError('DATA_DIR_LOCKED', { details: { pid } });
      unlinkSync(path);
    }
  }
  throw new FleetkeyError('DATA_DIR_LOCKED');
}

export function writePublicFile(path: string, data: string | Buffer): void {
  writeFileAtomic(path, data, 0o644);
}

