/**
 * The embedded SQLite engine (better-sqlite3 12, WAL, group commit). A file database syncs its WAL
 * on the libuv pool after each group COMMIT (`synchronous=NORMAL` + wal-sync.ts, ADR 0031); an
 * in-memory one (the fast test tier) has nothing to sync.
 * See `../types.ts` for the invariants every engine keeps; one file per repository.
 */
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Clock } from '@fleetkey/protocol';
import type { Store } from '../types.js';
import { ownerRepo, sessionRepo, tenantRepo, throttleRepo } from './accounts.js';
import { attestationRepo } from './attestation.js';
import { auditRepo, metaRepo } from './audit.js';
import { batchRepo } from './batches.js';
import { claimTokenRepo } from './claim-tokens.js';
import { SqliteContext } from './context.js';
import { walSync } from './wal-sync.js';
import { deviceRepo } from './devices.js';
import { MIGRATIONS } from './schema.js';
import { revocationRepo } from './revocation.js';
import { telemetryRepo } from './telemetry.js';
import { trustRepo } from './trust.js';
import { renewalRepo } from './renewal.js';

export interface SqliteStoreOptions {
  /** File path, or ':memory:' for the fast test tier. */
  readonly path: string;
  readonly clock: Clock;
  readonly maxBatch?: number;
  /** Longest a group-commit batch stays open while writes keep joining it (ADR 0030). */
  readonly maxWaitMs?: number;
}

function migrate(db: Database.Database): void {
  const current = Number(db.pragma('user_version', { simple: true }));
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

export async function openSqliteStore(opts: SqliteStoreOptions): Promise<Store> {
  const db = new Database(opts.path);
  db.pragma('journal_mode = WAL');
  const wal = db.memory || db.name === '' ? undefined : walSync(resolve(db.name));
  // FULL would fsync inside COMMIT, on the event loop; the WAL sync below gives the same
  // durability off it, and SQLite still syncs around every checkpoint in NORMAL (ADR 0031).
  db.pragma(wal === undefined ? 'synchronous = FULL' : 'synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // Savepoint sub-journals (one per group-commit write) stay in memory instead of spilling to a
  // temp file that each write's first page touch would pwrite (ADR 0005).
  db.pragma('temp_store = MEMORY');
  migrate(db);
  const ctx = new SqliteContext(db, { ...opts, ...(wal === undefined ? {} : { durableSync: wal.sync }) });
  return {
    engine: 'sqlite',
    tenants: tenantRepo(ctx),
    owners: ownerRepo(ctx),
    sessions: sessionRepo(ctx),
    throttle: throttleRepo(ctx),
    claimTokens: claimTokenRepo(ctx),
    devices: deviceRepo(ctx),
    audit: auditRepo(ctx),
    meta: metaRepo(ctx),
    revocation: revocationRepo(ctx),
    telemetry: telemetryRepo(ctx),
    batches: batchRepo(ctx),
    trust: trustRepo(ctx),
    attestation: attestationRepo(ctx),
    renewal: renewalRepo(ctx),
    close: async () => {
      ctx.writer.flush();
      await ctx.writer.drain();
      db.close();
      await wal?.close();
    },
  };
}
