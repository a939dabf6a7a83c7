/**
 * Shared plumbing of the SQLite engine's repositories: cached prepared statements, the
 * group-commit writer, and the audit append that every mutating method can join.
 */
import type Database from 'better-sqlite3';
import { FleetkeyError, type Clock } from '@fleetkey/protocol';
import { GENESIS, nextAuditRecord, type ChainHead } from '../../audit/chain.js';
import type { AuditEventInput, AuditRecord } from '../types.js';
import { GroupCommitWriter } from './group-commit.js';
import type { Row } from './rows.js';

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

function mapConflict<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isUniqueViolation(err)) throw new FleetkeyError('CONFLICT', { cause: err });
    throw err;
  }
}

export class SqliteContext {
  readonly db: Database.Database;
  readonly clock: Clock;
  readonly writer: GroupCommitWriter;
  readonly #stmts = new Map<string, Database.Statement>();

  constructor(db: Database.Database, opts: { clock: Clock; maxBatch?: number; maxWaitMs?: number }) {
    this.db = db;
    this.clock = opts.clock;
    this.writer = new GroupCommitWriter(db, {
      ...(opts.maxBatch === undefined ? {} : { maxBatch: opts.maxBatch }),
      ...(opts.maxWaitMs === undefined ? {} : { maxWaitMs: opts.maxWaitMs }),
    });
  }

  #stmt(sql: string): Database.Statement {
    let s = this.#stmts.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  get(sql: string, ...params: unknown[]): Row | undefined {
    return this.#stmt(sql).get(...params) as Row | undefined;
  }

  all(sql: string, ...params: unknown[]): Row[] {
    return this.#stmt(sql).all(...params) as Row[];
  }

  run(sql: string, ...params: unknown[]): Database.RunResult {
    return this.#stmt(sql).run(...params);
  }

  /**
   * The chain head is read inside the write transaction every time (an indexed lookup), never
   * cached: another process (the CLI beside a running hub) may have appended since.
   */
  #loadHead(): ChainHead {
    const row = this.get('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    return row ? { seq: Number(row.seq), hash: String(row.hash) } : { seq: 0, hash: GENESIS };
  }

  /** Runs `fn` as one atomic, durable unit; appends `audit` (if any) in the same unit. */
  write<T>(fn: () => T, audit?: AuditEventInput): Promise<T> {
    return this.writer.run(() => {
      const value = mapConflict(fn);
      if (audit !== undefined) this.appendAudit(audit);
      return value;
    });
  }

  /** `write` for a unit with at most one modifying statement and no audit: no SAVEPOINT (ADR 0023). */
  writeSingleStatement<T>(fn: () => T): Promise<T> {
    return this.writer.run(() => mapConflict(fn), { singleStatement: true });
  }

  appendAudit(event: AuditEventInput): AuditRecord {
    const rec = nextAuditRecord(this.#loadHead(), event, this.clock.now());
    this.run(
      `INSERT INTO audit_log (seq, time, event_id, category, type, result, actor, source, tenant_id,
        session, code, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
      rec.seq, rec.time, rec.eventId, rec.category, rec.type, rec.result, rec.actor, rec.source,
      rec.tenantId ?? null, rec.session ?? null, rec.code ?? null, JSON.stringify(rec.details ?? {}),
      rec.prevHash, rec.hash,
    );
    return rec;
  }
}
