/**
 * The embedded SQLite engine (better-sqlite3 12, WAL, synchronous=FULL, group commit).
 * See `../types.ts` for the invariants every engine keeps.
 */
import Database from 'better-sqlite3';
import { FleetkeyError, type Clock } from '@fleetkey/protocol';
import { ChainVerifier, GENESIS, nextAuditRecord, type ChainHead } from '../../audit/chain.js';
import type {
  AuditEventInput, AuditRecord, AuditRepo, ClaimTokenRepo, ConsumeResult, DeviceRepo, MetaRepo,
  OwnerRepo, SessionRepo, Store, TenantRepo, ThrottlePolicy, ThrottleRepo, ThrottleState,
} from '../types.js';
import { GroupCommitWriter } from './group-commit.js';
import { MIGRATIONS } from './schema.js';
import { toAudit, toCertificate, toClaimToken, toDevice, toOwner, toSession, toTenant, type Row } from './rows.js';

export interface SqliteStoreOptions {
  /** File path, or ':memory:' for the fast test tier. */
  readonly path: string;
  readonly clock: Clock;
  readonly maxBatch?: number;
}

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
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
  migrate(db);
  return new SqliteStore(db, opts);
}

class SqliteStore implements Store {
  readonly engine = 'sqlite';
  readonly #db: Database.Database;
  readonly #clock: Clock;
  readonly #writer: GroupCommitWriter;
  readonly #stmts = new Map<string, Database.Statement>();

  constructor(db: Database.Database, opts: SqliteStoreOptions) {
    this.#db = db;
    this.#clock = opts.clock;
    this.#writer = new GroupCommitWriter(db, opts.maxBatch === undefined ? {} : { maxBatch: opts.maxBatch });
  }

  #stmt(sql: string): Database.Statement {
    let s = this.#stmts.get(sql);
    if (s === undefined) {
      s = this.#db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  #get(sql: string, ...params: unknown[]): Row | undefined {
    return this.#stmt(sql).get(...params) as Row | undefined;
  }

  #all(sql: string, ...params: unknown[]): Row[] {
    return this.#stmt(sql).all(...params) as Row[];
  }

  #run(sql: string, ...params: unknown[]): Database.RunResult {
    return this.#stmt(sql).run(...params);
  }

  /**
   * The chain head is read inside the write transaction every time (an indexed lookup), never
   * cached: another process (the CLI beside a running hub) may have appended since.
   */
  #loadHead(): ChainHead {
    const row = this.#get('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    return row ? { seq: Number(row.seq), hash: String(row.hash) } : { seq: 0, hash: GENESIS };
  }

  /** Runs `fn` as one atomic, durable unit; appends `audit` (if any) in the same unit. */
  #write<T>(fn: () => T, audit?: AuditEventInput): Promise<T> {
    return this.#writer.run(() => {
      let value: T;
      try {
        value = fn();
      } catch (err) {
        if (isUniqueViolation(err)) throw new FleetkeyError('CONFLICT', { cause: err });
        throw err;
      }
      if (audit !== undefined) this.#appendAudit(audit);
      return value;
    });
  }

  #appendAudit(event: AuditEventInput): AuditRecord {
    const rec = nextAuditRecord(this.#loadHead(), event, this.#clock.now());
    this.#run(
      `INSERT INTO audit_log (seq, time, event_id, category, type, result, actor, source, tenant_id,
        session, code, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
      rec.seq, rec.time, rec.eventId, rec.category, rec.type, rec.result, rec.actor, rec.source,
      rec.tenantId ?? null, rec.session ?? null, rec.code ?? null, JSON.stringify(rec.details ?? {}),
      rec.prevHash, rec.hash,
    );
    return rec;
  }

  readonly tenants: TenantRepo = {
    get: async (id) => {
      const r = this.#get('SELECT * FROM tenants WHERE id = ?', id);
      return r && toTenant(r);
    },
    getByName: async (name) => {
      const r = this.#get('SELECT * FROM tenants WHERE name = ?', name);
      return r && toTenant(r);
    },
    createWithOwner: (t, o, audit) =>
      this.#write(() => {
        this.#run('INSERT INTO tenants (id, name, created_at) VALUES (?,?,?)', t.id, t.name, t.createdAt);
        this.#run(
          `INSERT INTO owners (id, tenant_id, email, password_hash, totp_sealed, totp_last_step, created_at, disabled)
           VALUES (?,?,?,?,?,?,?,?)`,
          o.id, o.tenantId, o.email, o.passwordHash, o.totpSealed, o.totpLastStep, o.createdAt, o.disabled ? 1 : 0,
        );
      }, audit),
  };

  readonly owners: OwnerRepo = {
    get: async (id) => {
      const r = this.#get('SELECT * FROM owners WHERE id = ?', id);
      return r && toOwner(r);
    },
    getByEmail: async (email) => {
      const r = this.#get('SELECT * FROM owners WHERE email = ?', email);
      return r && toOwner(r);
    },
    advanceTotpStep: (ownerId, step) =>
      this.#write(
        () => this.#run('UPDATE owners SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?', step, ownerId, step).changes === 1,
      ),
  };

  readonly sessions: SessionRepo = {
    create: (s, audit) =>
      this.#write(() => {
        this.#run(
          'INSERT INTO sessions (token_hash, owner_id, tenant_id, created_at, expires_at, idle_expires_at) VALUES (?,?,?,?,?,?)',
          s.tokenHash, s.ownerId, s.tenantId, s.createdAt, s.expiresAt, s.idleExpiresAt,
        );
      }, audit),
    get: async (tokenHash) => {
      const r = this.#get('SELECT * FROM sessions WHERE token_hash = ?', tokenHash);
      return r && toSession(r);
    },
    touch: (tokenHash, idleExpiresAt) =>
      this.#write(() => {
        this.#run('UPDATE sessions SET idle_expires_at = ? WHERE token_hash = ?', idleExpiresAt, tokenHash);
      }),
    delete: (tokenHash, audit) =>
      this.#write(() => {
        this.#run('DELETE FROM sessions WHERE token_hash = ?', tokenHash);
      }, audit),
    deleteExpired: (now) =>
      this.#write(() => this.#run('DELETE FROM sessions WHERE expires_at <= ? OR idle_expires_at <= ?', now, now).changes),
  };

  readonly throttle: ThrottleRepo = {
    get: async (key, now) => {
      const r = this.#get('SELECT failures, locked_until FROM throttle WHERE key = ?', key);
      if (r === undefined) return { failures: 0, lockedUntil: 0 };
      const lockedUntil = Number(r.locked_until);
      return { failures: Number(r.failures), lockedUntil: lockedUntil > now ? lockedUntil : 0 };
    },
    recordFailure: (key, now, policy) => this.#write(() => this.#recordFailure(key, now, policy)),
    reset: (key) =>
      this.#write(() => {
        this.#run('DELETE FROM throttle WHERE key = ?', key);
      }),
  };

  #recordFailure(key: string, now: number, p: ThrottlePolicy): ThrottleState {
    // One upsert: a failure outside the window starts a new window; reaching the limit locks.
    const r = this.#get(
      `INSERT INTO throttle (key, failures, window_start, locked_until) VALUES (?, 1, ?, 0)
       ON CONFLICT(key) DO UPDATE SET
         failures = CASE WHEN window_start + ? <= excluded.window_start AND locked_until <= excluded.window_start
                         THEN 1 ELSE failures + 1 END,
         window_start = CASE WHEN window_start + ? <= excluded.window_start AND locked_until <= excluded.window_start
                             THEN excluded.window_start ELSE window_start END
       RETURNING failures, locked_until`,
      key, now, p.windowMs, p.windowMs,
    )!;
    let lockedUntil = Number(r.locked_until);
    const failures = Number(r.failures);
    if (failures >= p.maxFailures && lockedUntil <= now) {
      lockedUntil = now + p.lockMs;
      this.#run('UPDATE throttle SET locked_until = ?, failures = 0, window_start = ? WHERE key = ?', lockedUntil, now, key);
    }
    return { failures, lockedUntil: lockedUntil > now ? lockedUntil : 0 };
  }

  readonly claimTokens: ClaimTokenRepo = {
    create: (t, audit) =>
      this.#write(() => {
        this.#run(
          `INSERT INTO claim_tokens (id, tenant_id, token_hash, label, max_uses, uses, created_at, expires_at, created_by, revoked_at)
           VALUES (?,?,?,?,?,?,?,?,?,?)`,
          t.id, t.tenantId, t.tokenHash, t.label, t.maxUses, t.uses, t.createdAt, t.expiresAt, t.createdBy, t.revokedAt,
        );
      }, audit),
    get: async (tenantId, id) => {
      const r = this.#get('SELECT * FROM claim_tokens WHERE tenant_id = ? AND id = ?', tenantId, id);
      return r && toClaimToken(r);
    },
    list: async (tenantId) =>
      this.#all('SELECT * FROM claim_tokens WHERE tenant_id = ? ORDER BY created_at DESC, id', tenantId).map(toClaimToken),
    revoke: (tenantId, id, now, audit) =>
      this.#write(
        () =>
          this.#run('UPDATE claim_tokens SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL', now, tenantId, id)
            .changes === 1,
        audit,
      ),
    consume: (tokenHash, now) =>
      this.#write((): ConsumeResult => {
        // The single conditional statement: never read-then-write.
        const r = this.#get(
          `UPDATE claim_tokens SET uses = uses + 1
           WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ? AND uses < max_uses
           RETURNING *`,
          tokenHash, now,
        );
        return r === undefined ? { ok: false } : { ok: true, token: toClaimToken(r) };
      }),
  };

  readonly devices: DeviceRepo = {
    get: async (tenantId, id) => {
      const r = this.#get('SELECT * FROM devices WHERE tenant_id = ? AND id = ?', tenantId, id);
      return r && toDevice(r);
    },
    getAnyTenant: async (id) => {
      const r = this.#get('SELECT * FROM devices WHERE id = ?', id);
      return r && toDevice(r);
    },
    list: async (tenantId, opts = {}) =>
      this.#all(
        'SELECT * FROM devices WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?',
        tenantId, opts.after ?? '', Math.min(Math.max(opts.limit ?? 100, 1), 1000),
      ).map(toDevice),
    recordEnrollment: ({ device: d, certificate: c, audit }) =>
      this.#write(() => {
        const taken = this.#get('SELECT device_id FROM certificates WHERE spki_sha256 = ? AND device_id <> ? LIMIT 1', c.spkiSha256, d.id);
        if (taken !== undefined) throw new FleetkeyError('KEY_ALREADY_ENROLLED');
        const upsert = this.#run(
          `INSERT INTO devices (id, tenant_id, status, created_at, enrolled_via, claim_token_id, label, current_serial)
           VALUES (?,?,?,?,?,?,?,?)
           ON CONFLICT(id) DO UPDATE SET current_serial = excluded.current_serial
             WHERE devices.tenant_id = excluded.tenant_id AND devices.status = 'active'`,
          d.id, d.tenantId, d.status, d.createdAt, d.enrolledVia, d.claimTokenId, d.label, c.serial,
        );
        // A device of another tenant, or a revoked one, is never re-keyed.
        if (upsert.changes !== 1) throw new FleetkeyError('CONFLICT', { cause: new Error('device exists in another state') });
        this.#run(
          `INSERT INTO certificates (serial, device_id, tenant_id, spki_sha256, key_algorithm, not_before, not_after, issued_at, der)
           VALUES (?,?,?,?,?,?,?,?,?)`,
          c.serial, c.deviceId, c.tenantId, c.spkiSha256, c.keyAlgorithm, c.notBefore, c.notAfter, c.issuedAt, c.der,
        );
      }, audit),
    certificates: async (tenantId, deviceId) =>
      this.#all('SELECT * FROM certificates WHERE tenant_id = ? AND device_id = ? ORDER BY issued_at, serial', tenantId, deviceId).map(
        toCertificate,
      ),
    certificateBySerial: async (serial) => {
      const r = this.#get('SELECT * FROM certificates WHERE serial = ?', serial);
      return r && toCertificate(r);
    },
    certificateBySpki: async (spki) => {
      const r = this.#get('SELECT * FROM certificates WHERE spki_sha256 = ? ORDER BY issued_at DESC LIMIT 1', spki);
      return r && toCertificate(r);
    },
  };

  readonly audit: AuditRepo = {
    append: (event) => this.#write(() => this.#appendAudit(event)),
    list: async (opts = {}) =>
      this.#all('SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?', opts.afterSeq ?? 0, Math.min(opts.limit ?? 100, 10_000)).map(
        toAudit,
      ),
    count: async () => Number(this.#get('SELECT count(*) AS n FROM audit_log')!.n),
    verify: async () => {
      const v = new ChainVerifier();
      for (const row of this.#db.prepare('SELECT * FROM audit_log ORDER BY seq').iterate() as Iterable<Row>) {
        if (!v.add(toAudit(row))) break;
      }
      return v.result();
    },
  };

  readonly meta: MetaRepo = {
    get: async (key) => {
      const r = this.#get('SELECT value FROM meta WHERE key = ?', key);
      return r === undefined ? undefined : String(r.value);
    },
    setIfAbsent: (key, value) =>
      this.#write(() => {
        this.#run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING', key, value);
        return String(this.#get('SELECT value FROM meta WHERE key = ?', key)!.value);
      }),
  };

  async close(): Promise<void> {
    this.#writer.flush();
    this.#db.close();
  }
}
