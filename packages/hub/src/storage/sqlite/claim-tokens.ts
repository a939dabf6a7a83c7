/** Claim tokens: create, list, revoke, and the redeemability read (devices.ts spends a use). */
import type { SqliteContext } from './context.js';
import type { ClaimTokenRepo } from '../types.js';
import { toClaimToken } from './rows.js';

export function claimTokenRepo(ctx: SqliteContext): ClaimTokenRepo {
  return {
    create: (t, audit) =>
      ctx.write(() => {
        ctx.run(
          `INSERT INTO claim_tokens (id, tenant_id, token_hash, label, max_uses, uses, created_at, expires_at, created_by, revoked_at)
           VALUES (?,?,?,?,?,?,?,?,?,?)`,
          t.id, t.tenantId, t.tokenHash, t.label, t.maxUses, t.uses, t.createdAt, t.expiresAt, t.createdBy, t.revokedAt,
        );
      }, audit),
    get: async (tenantId, id) => {
      const r = ctx.get('SELECT * FROM claim_tokens WHERE tenant_id = ? AND id = ?', tenantId, id);
      return r && toClaimToken(r);
    },
    list: async (tenantId) =>
      ctx.all('SELECT * FROM claim_tokens WHERE tenant_id = ? ORDER BY created_at DESC, id', tenantId).map(toClaimToken),
    revoke: (tenantId, id, now, audit) =>
      ctx.write(
        () =>
          ctx.run('UPDATE claim_tokens SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL', now, tenantId, id)
            .changes === 1,
        audit,
      ),
    findRedeemable: async (tokenHash, now) => {
      const r = ctx.get(
        'SELECT * FROM claim_tokens WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ? AND uses < max_uses',
        tokenHash, now,
      );
      return r && toClaimToken(r);
    },
  };
}
