/** Renewal policy per organisation and retirement of superseded device certificates (ADR 0025). */
import type { SqliteContext } from './context.js';
import type { RenewalRepo } from '../renewal-types.js';

export function renewalRepo(ctx: SqliteContext): RenewalRepo {
  return {
    policy: async (tenantId) => {
      const r = ctx.get('SELECT * FROM renewal_policies WHERE tenant_id = ?', tenantId);
      return r && { tenantId: String(r.tenant_id), graceDays: Number(r.grace_days), updatedAt: Number(r.updated_at) };
    },
    setPolicy: (p, audit) =>
      ctx.write(() => {
        ctx.run(
          `INSERT INTO renewal_policies (tenant_id, grace_days, updated_at) VALUES (?,?,?)
           ON CONFLICT(tenant_id) DO UPDATE SET grace_days = excluded.grace_days, updated_at = excluded.updated_at`,
          p.tenantId, p.graceDays, p.updatedAt,
        );
      }, audit),
    retirePrevious: ({ tenantId, deviceId, keepSerial, now, audit }) =>
      ctx.write(() => {
        const kept = ctx.get('SELECT issued_at FROM certificates WHERE tenant_id = ? AND device_id = ? AND serial = ?', tenantId, deviceId, keepSerial);
        if (kept === undefined) return [];
        const rows = ctx.all(
          `UPDATE certificates SET revoked_at = ?, revocation_reason = 'superseded'
           WHERE tenant_id = ? AND device_id = ? AND serial <> ? AND revoked_at IS NULL AND issued_at <= ?
           RETURNING serial`,
          now, tenantId, deviceId, keepSerial, Number(kept.issued_at),
        );
        const serials = rows.map((r) => String(r.serial)).sort();
        if (serials.length > 0) ctx.appendAudit({ ...audit, tenantId, details: { ...audit.details, retired: serials.join(',') } });
        return serials;
      }),
  };
}
