/** The append-only, hash-chained audit log. */
import { ChainVerifier } from '../../audit/chain.js';
import type { SqliteContext } from './context.js';
import type { AuditRepo, MetaRepo } from '../types.js';
import { toAudit, type Row } from './rows.js';

export function auditRepo(ctx: SqliteContext): AuditRepo {
  return {
    append: (event) => ctx.write(() => ctx.appendAudit(event)),
    list: async (opts = {}) =>
      ctx.all('SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?', opts.afterSeq ?? 0, Math.min(opts.limit ?? 100, 10_000)).map(
        toAudit,
      ),
    count: async () => Number(ctx.get('SELECT count(*) AS n FROM audit_log')!.n),
    verify: async () => {
      const v = new ChainVerifier();
      for (const row of ctx.db.prepare('SELECT * FROM audit_log ORDER BY seq').iterate() as Iterable<Row>) {
        if (!v.add(toAudit(row))) break;
      }
      return v.result();
    },
  };
}

export function metaRepo(ctx: SqliteContext): MetaRepo {
  return {
    get: async (key) => {
      const r = ctx.get('SELECT value FROM meta WHERE key = ?', key);
      return r === undefined ? undefined : String(r.value);
    },
    setIfAbsent: (key, value) =>
      ctx.write(() => {
        ctx.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING', key, value);
        return String(ctx.get('SELECT value FROM meta WHERE key = ?', key)!.value);
      }),
  };
}
