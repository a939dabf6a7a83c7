/**
 * Group commit for better-sqlite3 (synchronous driver, one connection).
 *
 * Each write runs synchronously inside its own SAVEPOINT of a shared transaction; the transaction
 * commits at the end of the first event-loop turn that added no write to it, or once it has been
 * open `maxWaitMs` (ADR 0030), or when `maxBatch` writes are pending; every write's promise
 * resolves only after that COMMIT is durable. One fsync thus covers many writes (~125k rows/s
 * batched vs ~4.8k/s one per transaction, measured on these machines), and under load a commit
 * covers the writes of several turns.
 *
 * Durability comes one of two ways. Without `durableSync` the connection runs `synchronous=FULL`
 * and COMMIT returns after SQLite's own fsync of the WAL — on the event loop, which stays blocked
 * for it (~20 % of its wall time under enrollment load). With `durableSync` (the file store, ADR
 * 0031) the connection runs `synchronous=NORMAL`, COMMIT only writes the WAL, and the batch's
 * promises resolve when `durableSync` — an fdatasync of the WAL file on the libuv pool, started
 * after the COMMIT returned — reports success; the loop serves other requests meanwhile.
 *
 * Invariants:
 * - A write whose function throws is rolled back alone (ROLLBACK TO its savepoint, or SQLite's
 *   own statement rollback for a `singleStatement` write) and rejects; the other writes of the
 *   batch are unaffected — unless SQLite rolled back the whole transaction, then they all reject
 *   with STORAGE_UNAVAILABLE.
 * - If COMMIT fails (disk full, I/O error), the whole batch rolls back and every promise in it
 *   rejects with STORAGE_UNAVAILABLE; `onBatchFailed` lets callers reset cached state.
 * - If `durableSync` fails, the batch's promises reject with STORAGE_UNAVAILABLE and the writer
 *   refuses every later write with it too: after a failed fsync the kernel may have dropped the
 *   dirty pages, so nothing written since can be called durable (as PostgreSQL after "fsyncgate").
 * - Nobody is told "done" before the data is durable.
 * - Reads on the same connection may see writes of the open batch, at most `maxWaitMs` (or one
 *   turn) before they are durable; a failed batch can therefore briefly have been visible
 *   (ADR 0005, ADR 0030).
 * - A lone write (no other write joins its batch) commits at the end of its turn, as before: the
 *   batch waits only while writes keep arriving, so an idle or lightly loaded hub adds no latency.
 */
import type Database from 'better-sqlite3';
import { FleetkeyError } from '@fleetkey/protocol';

interface Pending {
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** Makes everything COMMIT wrote so far durable, then calls `done` (with the error, if it failed). */
export type DurableSync = (done: (err?: Error | null) => void) => void;

/**
 * How long a batch may stay open while writes keep joining it (ADR 0030): under load, several
 * event-loop turns share one COMMIT + fsync; the added latency is at most this, and only when the
 * hub is busy. 0 = commit at the end of every turn (the behaviour before ADR 0030).
 */
export const DEFAULT_MAX_WAIT_MS = 30;

export class GroupCommitWriter {
  readonly #db: Database.Database;
  readonly #maxBatch: number;
  readonly #onBatchFailed: () => void;
  // Prepared once: exec() would re-parse these four statements on every write (hot path).
  readonly #savepoint: Database.Statement;
  readonly #release: Database.Statement;
  readonly #rollbackTo: Database.Statement;
  readonly #beginStmt: Database.Statement;
  readonly #commitStmt: Database.Statement;
  readonly #maxWaitMs: number;
  readonly #durableSync: DurableSync | undefined;
  /** Committed batches that no durableSync started after their COMMIT covers yet. */
  #unsynced: Pending[] = [];
  /** At most one durableSync runs at a time; it covers every batch committed before it began. */
  #syncing = false;
  #drained: Array<() => void> = [];
  /** Set once a durableSync failed: every later write is refused. */
  #poisoned: FleetkeyError | undefined;
  #pending: Pending[] = [];
  #open = false;
  #scheduled = false;
  /** When the open batch began (performance.now()), and its size at the last end-of-turn check. */
  #openedAt = 0;
  #seen = 0;

  constructor(
    db: Database.Database,
    opts: { maxBatch?: number; maxWaitMs?: number; onBatchFailed?: () => void; durableSync?: DurableSync } = {},
  ) {
    this.#db = db;
    this.#durableSync = opts.durableSync;
    this.#maxBatch = opts.maxBatch ?? 1000;
    this.#maxWaitMs = opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
    this.#onBatchFailed = opts.onBatchFailed ?? (() => undefined);
    this.#savepoint = db.prepare('SAVEPOINT w');
    this.#release = db.prepare('RELEASE w');
    this.#rollbackTo = db.prepare('ROLLBACK TO w');
    this.#beginStmt = db.prepare('BEGIN IMMEDIATE');
    this.#commitStmt = db.prepare('COMMIT');
  }

  /**
   * Runs `fn` inside the open batch; resolves once its COMMIT is durable. `singleStatement`: `fn`
   * makes at most one modifying statement, so no SAVEPOINT is needed — SQLite undoes a failed
   * statement by itself (https://sqlite.org/lang_conflict.html, ABORT) — which saves two
   * statements per write on the ingest path (ADR 0023).
   */
  run<T>(fn: () => T, opts?: { readonly singleStatement?: boolean }): Promise<T> {
    if (this.#poisoned !== undefined) return Promise.reject(this.#poisoned);
    this.#begin();
    const guarded = opts?.singleStatement !== true;
    let value: T;
    if (guarded) this.#savepoint.run();
    try {
      value = fn();
      if (guarded) this.#release.run();
    } catch (err) {
      if (guarded) {
        this.#rollbackTo.run();
        this.#release.run();
      } else if (!this.#db.inTransaction) {
        this.#abandon(err); // SQLite rolled the whole transaction back (e.g. SQLITE_FULL)
      }
      return Promise.reject(err);
    }
    const done = new Promise<T>((resolve, reject) => {
      this.#pending.push({ resolve: () => resolve(value), reject });
    });
    if (this.#pending.length >= this.#maxBatch) this.flush();
    return done;
  }

  /** The open transaction is gone: every write of the batch fails, nothing of it is committed. */
  #abandon(cause: unknown): void {
    const batch = this.#pending;
    this.#pending = [];
    this.#open = false;
    this.#onBatchFailed();
    const err = new FleetkeyError('STORAGE_UNAVAILABLE', { cause });
    for (const p of batch) p.reject(err);
  }

  /** Commits the open batch now (also used at close). */
  flush(): void {
    if (!this.#open) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#open = false;
    if (this.#poisoned !== undefined) {
      this.#rollbackQuietly(); // written after a failed sync: never committed, never acknowledged
      for (const p of batch) p.reject(this.#poisoned);
      return;
    }
    try {
      this.#commitStmt.run();
    } catch (cause) {
      this.#rollbackQuietly();
      this.#onBatchFailed();
      const err = new FleetkeyError('STORAGE_UNAVAILABLE', { cause });
      for (const p of batch) p.reject(err);
      return;
    }
    if (this.#durableSync === undefined) {
      for (const p of batch) p.resolve();
      return;
    }
    for (const p of batch) this.#unsynced.push(p);
    if (!this.#syncing) this.#startSync(this.#durableSync);
  }

  /**
   * One sync at a time, so a failure is known before the next one starts: after a failed fsync a
   * later one may report success although the earlier pages are gone (and WAL frames after a lost
   * frame are discarded by recovery), so batches waiting then are refused, never acknowledged.
   */
  #startSync(durableSync: DurableSync): void {
    const covered = this.#unsynced;
    this.#unsynced = [];
    this.#syncing = true;
    durableSync((err) => {
      this.#syncing = false;
      if (err) {
        this.#poisoned ??= new FleetkeyError('STORAGE_UNAVAILABLE', { cause: err });
        this.#onBatchFailed();
      }
      if (this.#poisoned !== undefined) {
        for (const p of [...covered, ...this.#unsynced.splice(0)]) p.reject(this.#poisoned);
      } else {
        for (const p of covered) p.resolve();
        if (this.#unsynced.length > 0) {
          this.#startSync(durableSync);
          return;
        }
      }
      for (const wake of this.#drained.splice(0)) wake();
    });
  }

  /** Resolves once every committed write has been synced or refused (for close). */
  drain(): Promise<void> {
    if (!this.#syncing && this.#unsynced.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #begin(): void {
    if (this.#open) return;
    this.#beginStmt.run();
    this.#open = true;
    this.#openedAt = performance.now();
    this.#seen = 1; // the write that opens the batch
    this.#atEndOfTurn();
  }

  #atEndOfTurn(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#check();
    });
  }

  /**
   * End of a turn: commit, unless writes joined the batch during this turn and it is younger than
   * `maxWaitMs` — then more are likely on their way (other requests of the same load), and one
   * COMMIT + fsync for all of them costs less CPU per write than one per turn (ADR 0030).
   */
  #check(): void {
    if (!this.#open) return;
    const size = this.#pending.length;
    if (size > this.#seen && performance.now() - this.#openedAt < this.#maxWaitMs) {
      this.#seen = size;
      this.#atEndOfTurn();
      return;
    }
    this.flush();
  }

  #rollbackQuietly(): void {
    try {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
    } catch {
      // The connection rolled back by itself (SQLite does on some I/O errors).
    }
  }
}
