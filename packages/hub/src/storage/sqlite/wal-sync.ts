/**
 * The file store's durability step (ADR 0031): an fdatasync of the database's WAL file on the
 * libuv thread pool, after COMMIT, instead of SQLite's own fsync inside COMMIT on the event loop.
 *
 * Invariants:
 * - Run with `synchronous=NORMAL` in WAL mode: COMMIT has written (not synced) the transaction's
 *   WAL frames, and SQLite still syncs the WAL before and the database after every checkpoint
 *   (https://sqlite.org/pragma.html#pragma_synchronous), so a frame is either in the WAL or in a
 *   synced database file. An fdatasync of the WAL that starts after COMMIT returned therefore makes
 *   that transaction durable, the same guarantee `synchronous=FULL` gives, plus every frame
 *   written before it (WAL recovery keeps the valid prefix of frames).
 * - The WAL file keeps its inode while this process holds the connection: SQLite restarts and
 *   truncates it but deletes it only when the last connection closes, so one descriptor, opened
 *   at the first sync, stays valid until `close`.
 * - Any error (also a missing WAL file) is reported to the caller, who refuses the writes.
 */
import { close as closeFd, fdatasync, open } from 'node:fs';
import type { DurableSync } from './group-commit.js';

export interface WalSync {
  readonly sync: DurableSync;
  close(): Promise<void>;
}

export function walSync(dbPath: string): WalSync {
  let fd: number | undefined;
  return {
    sync(done) {
      if (fd !== undefined) {
        fdatasync(fd, done);
        return;
      }
      open(`${dbPath}-wal`, 'r', (err, opened) => {
        if (err) {
          done(err);
          return;
        }
        if (fd === undefined) fd = opened;
        else closeFd(opened, () => undefined); // not reached: one sync runs at a time
        fdatasync(fd, done);
      });
    },
    close: () =>
      new Promise((resolve) => {
        if (fd === undefined) {
          resolve();
          return;
        }
        const f = fd;
        fd = undefined;
        closeFd(f, () => resolve());
      }),
  };
}
