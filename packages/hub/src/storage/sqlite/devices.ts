/** Devices and their certificates. */
import { FleetkeyError } from '@fleetkey/protocol';
import type { SqliteContext } from './context.js';
import type { DeviceRepo } from '../types.js';
import { toCertificate, toDevice } from './rows.js';

export function deviceRepo(ctx: SqliteContext): DeviceRepo {
  return {
    get: async (tenantId, id) => {
      const r = ctx.get('SELECT * FROM devices WHERE tenant_id = ? AND id = ?', tenantId, id);
      return r && toDevice(r);
    },
    getAnyTenant: async (id) => {
      const r = ctx.get('SELECT * FROM devices WHERE id = ?', id);
      return r && toDevice(r);
    },
    list: async (tenantId, opts = {}) =>
      ctx.all(
        'SELECT * FROM devices WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?',
        tenantId, opts.after ?? '', Math.min(Math.max(opts.limit ?? 100, 1), 1000),
      ).map(toDevice),
    recordEnrollment: ({ device: d, certificate: c, audit, redeem }) =>
      ctx.write(() => {
        if (redeem !== undefined) spendClaimTokenUse(ctx, redeem.claimTokenHash, redeem.now);
        const taken = ctx.get('SELECT device_id FROM certificates WHERE spki_sha256 = ? AND device_id <> ? LIMIT 1', c.spkiSha256, d.id);
        if (taken !== undefined) throw new FleetkeyError('KEY_ALREADY_ENROLLED');
        const upsert = ctx.run(
          `INSERT INTO devices (id, tenant_id, status, created_at, enrolled_via, claim_token_id, label, current_serial, key_protection)
           VALUES (?,?,?,?,?,?,?,?,?)
           ON CONFLICT(id) DO UPDATE SET current_serial = excluded.current_serial, key_protection = excluded.key_protection
             WHERE devices.tenant_id = excluded.tenant_id AND devices.status = 'active'`,
          d.id, d.tenantId, d.status, d.createdAt, d.enrolledVia, d.claimTokenId, d.label, c.serial, d.keyProtection ?? 'file',
        );
        // A device of another tenant, or a revoked one, is never re-keyed.
        if (upsert.changes !== 1) throw new FleetkeyError('CONFLICT', { cause: new Error('device exists in another state') });
        ctx.run(
          `INSERT INTO certificates (serial, device_id, tenant_id, spki_sha256, key_algorithm, not_before, not_after, issued_at, der)
           VALUES (?,?,?,?,?,?,?,?,?)`,
          c.serial, c.deviceId, c.tenantId, c.spkiSha256, c.keyAlgorithm, c.notBefore, c.notAfter, c.issuedAt, c.der,
        );
      }, audit),
    certificates: async (tenantId, deviceId) =>
      ctx.all('SELECT * FROM certificates WHERE tenant_id = ? AND device_id = ? ORDER BY issued_at, serial', tenantId, deviceId).map(
        toCertificate,
      ),
    certificateBySerial: async (serial) => {
      const r = ctx.get('SELECT * FROM certificates WHERE serial = ?', serial);
      return r && toCertificate(r);
    },
    certificateBySpki: async (spki) => {
      const r = ctx.get('SELECT * FROM certificates WHERE spki_sha256 = ? ORDER BY issued_at DESC LIMIT 1', spki);
      return r && toCertificate(r);
    },
  };
}

/** The single conditional statement that spends one use (never read-then-write). */
function spendClaimTokenUse(ctx: SqliteContext, tokenHash: string, now: number): void {
  const spent = ctx.run(
    `UPDATE claim_tokens SET uses = uses + 1
     WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ? AND uses < max_uses`,
    tokenHash, now,
  );
  if (spent.changes !== 1) throw new FleetkeyError('CLAIM_TOKEN_INVALID', { cause: new Error('no use left to spend at record time') });
}
