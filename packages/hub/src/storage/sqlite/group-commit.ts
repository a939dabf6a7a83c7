/**
 * Group commit for better-sqlite3 (synchronous driver, one connection).
 *
 * Each write runs synchronously inside its own SAVEPOINT of a shared transaction; the transaction
 * commits at the end of the first event-loop turn that added no write to it, or once it has been
 * open `maxWaitMs` (ADR 0030), or when `maxBatch` writes are pending; every write's promise
 * resolves only after that COMMIT returned — with `synchronous=FULL` in WAL mode, after the
 * fsync. One fsync thus covers many writes (~125k rows/s batched vs ~4.8k/s one per transaction,
 * measured on these machines), and under load a commit covers the writes of several turns.
 *
 * Invariants:
 * - A write whose function throws is rolled back alone (ROLLBACK TO its savepoint, or SQLite's
 *   own statement rollback for a `singleStatement` write) and rejects; the other writes of the
 *   batch are unaffected — unless SQLite rolled back the whole transaction, then they all reject
 *   with STORAGE_UNAVAILABLE.
 * - If COMMIT fails (disk full, I/O error), the whole batch rolls back and every promise in it
 *   rejects with STORAGE_UNAVAILABLE; `onBatchFailed` lets callers reset cached state.
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
  #pending: Pending[] = [];
  #open = false;
  #scheduled = false;
  /** When the open batch began (performance.now()), and its size at the last end-of-turn check. */
  #openedAt = 0;
  #seen = 0;

  constructor(db: Database.Database, opts: { maxBatch?: number; maxWaitMs?: number; onBatchFailed?: () => void } = {}) {
    this.#db = db;
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
    try {
      this.#commitStmt.run();
    } catch (cause) {
      this.#rollbackQuietly();
      this.#onBatchFailed();
      const err = new FleetkeyError('STORAGE_UNAVAILABLE', { cause });
      for (const p of batch) p.reject(err);
      return;
    }
    for (const p of batch) p.resolve();
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
