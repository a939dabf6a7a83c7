/** Accounts: tenants, owners, sessions, login throttle. */
import type { SqliteContext } from './context.js';
import type { OwnerRepo, SessionRepo, TenantRepo, ThrottlePolicy, ThrottleRepo, ThrottleState } from '../types.js';
import { toOwner, toSession, toTenant } from './rows.js';

export function tenantRepo(ctx: SqliteContext): TenantRepo {
  return {
    get: async (id) => {
      const r = ctx.get('SELECT * FROM tenants WHERE id = ?', id);
      return r && toTenant(r);
    },
    getByName: async (name) => {
      const r = ctx.get('SELECT * FROM tenants WHERE name = ?', name);
      return r && toTenant(r);
    },
    createWithOwner: (t, o, audit) =>
      ctx.write(() => {
        ctx.run('INSERT INTO tenants (id, name, created_at) VALUES (?,?,?)', t.id, t.name, t.createdAt);
        ctx.run(
          `INSERT INTO owners (id, tenant_id, email, password_hash, totp_sealed, totp_last_step, created_at, disabled)
           VALUES (?,?,?,?,?,?,?,?)`,
          o.id, o.tenantId, o.email, o.passwordHash, o.totpSealed, o.totpLastStep, o.createdAt, o.disabled ? 1 : 0,
        );
      }, audit),
  };
}

export function ownerRepo(ctx: SqliteContext): OwnerRepo {
  return {
    get: async (id) => {
      const r = ctx.get('SELECT * FROM owners WHERE id = ?', id);
      return r && toOwner(r);
    },
    getByEmail: async (email) => {
      const r = ctx.get('SELECT * FROM owners WHERE email = ?', email);
      return r && toOwner(r);
    },
    advanceTotpStep: (ownerId, step) =>
      ctx.write(
        () => ctx.run('UPDATE owners SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?', step, ownerId, step).changes === 1,
      ),
  };
}

export function sessionRepo(ctx: SqliteContext): SessionRepo {
  return {
    create: (s, audit) =>
      ctx.write(() => {
        ctx.run(
          'INSERT INTO sessions (token_hash, owner_id, tenant_id, created_at, expires_at, idle_expires_at) VALUES (?,?,?,?,?,?)',
          s.tokenHash, s.ownerId, s.tenantId, s.createdAt, s.expiresAt, s.idleExpiresAt,
        );
      }, audit),
    get: async (tokenHash) => {
      const r = ctx.get('SELECT * FROM sessions WHERE token_hash = ?', tokenHash);
      return r && toSession(r);
    },
    touch: (tokenHash, idleExpiresAt) =>
      ctx.write(() => {
        ctx.run('UPDATE sessions SET idle_expires_at = ? WHERE token_hash = ?', idleExpiresAt, tokenHash);
      }),
    delete: (tokenHash, audit) =>
      ctx.write(() => {
        ctx.run('DELETE FROM sessions WHERE token_hash = ?', tokenHash);
      }, audit),
    deleteExpired: (now) =>
      ctx.write(() => ctx.run('DELETE FROM sessions WHERE expires_at <= ? OR idle_expires_at <= ?', now, now).changes),
  };
}

export function throttleRepo(ctx: SqliteContext): ThrottleRepo {
  return {
    get: async (key, now) => {
      const r = ctx.get('SELECT failures, locked_until FROM throttle WHERE key = ?', key);
      if (r === undefined) return { failures: 0, lockedUntil: 0 };
      const lockedUntil = Number(r.locked_until);
      return { failures: Number(r.failures), lockedUntil: lockedUntil > now ? lockedUntil : 0 };
    },
    recordFailure: (key, now, policy) => ctx.write(() => recordFailure(ctx, key, now, policy)),
    reset: (key) =>
      ctx.write(() => {
        ctx.run('DELETE FROM throttle WHERE key = ?', key);
      }),
  };
}

function recordFailure(ctx: SqliteContext, key: string, now: number, p: ThrottlePolicy): ThrottleState {
  // One upsert: a failure outside the window starts a new window; reaching the limit locks.
  const r = ctx.get(
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
    ctx.run('UPDATE throttle SET locked_until = ?, failures = 0, window_start = ? WHERE key = ?', lockedUntil, now, key);
  }
  return { failures, lockedUntil: lockedUntil > now ? lockedUntil : 0 };
}

