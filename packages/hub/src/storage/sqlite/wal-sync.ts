/**
 * Makes committed WAL frames durable off the event loop (ADR 0005, "Asynchronous fsync").
 *
 * The hub's connection runs `journal_mode=WAL` with `synchronous=NORMAL`: COMMIT appends the
 * transaction's frames to `<db>-wal` without an fsync, and checkpoints still fsync the WAL before
 * copying it into the database and the database before the WAL is reused, so the file is never
 * corrupted by a crash or power loss (https://sqlite.org/pragma.html#pragma_synchronous). What
 * NORMAL gives up — the last commits on power loss — is taken back here: the group-commit writer
 * acknowledges a batch only after `fdatasync(<db>-wal)` on the libuv thread pool returned, which is
 * what `synchronous=FULL` does inside COMMIT, but without blocking the event loop.
 *
 * Invariants:
 * - `sync` calls back only after an fdatasync of the WAL file that started after the call.
 * - The first sync also fsyncs the folder once, so the newly created `-wal` entry itself survives a
 *   power loss (a file's data sync does not cover its directory entry).
 * - Any error (open, fdatasync) is passed to the callback; the writer then fails the batch.
 */
import { close, fdatasync, fsyncSync, openSync, closeSync, constants } from 'node:fs';
import { dirname } from 'node:path';

export interface WalSync {
  /** fdatasync of the WAL file on the libuv pool; `done` runs once it returned. */
  sync(done: (err: Error | null) => void): void;
  close(): void;
}

export function walSync(dbPath: string): WalSync {
  const walPath = `${dbPath}-wal`;
  let fd: number | undefined;
  return {
    sync(done) {
      if (fd === undefined) {
        try {
          // The WAL exists once a transaction committed; the writer only syncs after a COMMIT.
          fd = openSync(walPath, constants.O_RDWR);
          syncDirectory(dirname(walPath));
        } catch (err) {
          done(err as Error);
          return;
        }
      }
      fdatasync(fd, (err) => done(err));
    },
    close() {
      if (fd !== undefined) close(fd, () => undefined);
      fd = undefined;
    },
  };
}

function syncDirectory(dir: string): void {
  const dfd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
