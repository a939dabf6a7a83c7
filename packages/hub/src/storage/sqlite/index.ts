/**
 * The embedded SQLite engine (better-sqlite3 12, WAL, synchronous=FULL, group commit).
 * See `../types.ts` for the invariants every engine keeps; one file per repository.
 */
import Database from 'better-sqlite3';
import type { Clock } from '@fleetkey/protocol';
import type { Store } from '../types.js';
import { ownerRepo, sessionRepo, tenantRepo, throttleRepo } from './accounts.js';
import { attestationRepo } from './attestation.js';
import { auditRepo, metaRepo } from './audit.js';
import { batchRepo } from './batches.js';
import { claimTokenRepo } from './claim-tokens.js';
import { SqliteContext } from './context.js';
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
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // Savepoint sub-journals (one per group-commit write) stay in memory instead of spilling to a
  // temp file that each write's first page touch would pwrite (ADR 0005).
  db.pragma('temp_store = MEMORY');
  migrate(db);
  const ctx = new SqliteContext(db, opts);
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
      db.close();
    },
  };
}
