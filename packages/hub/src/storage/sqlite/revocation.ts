/**
 * Revocation: a device and all its certificates revoked as one unit with its audit record; the
 * revoked certificates a CRL lists; the persisted cRLNumber counter (ADR 0011).
 *
 * Invariants:
 * - Every statement is tenant-scoped by `tenant_id`: another tenant's device is "no such
 *   device", and nothing at all is written for it.
 * - A certificate's first revocation time and reason are never overwritten (`revoked_at IS NULL`
 *   guard), so a repeated revoke cannot move a date that relying parties have already seen.
 * - The cRLNumber is incremented by one conditional UPDATE … RETURNING and resolves after the
 *   COMMIT: two hub processes never publish the same number, and a restart never reuses one.
 */
import type { SqliteContext } from './context.js';
import type { DeviceRevocation, DeviceRevocationInput, RevocationRepo } from '../types.js';
import { toDevice } from './rows.js';

function revokeInUnit(ctx: SqliteContext, input: DeviceRevocationInput): DeviceRevocation | undefined {
  const { tenantId, deviceId, now } = input;
  const row = ctx.get('SELECT * FROM devices WHERE tenant_id = ? AND id = ?', tenantId, deviceId);
  if (row === undefined) return undefined;
  const alreadyRevoked = toDevice(row).status === 'revoked';
  if (!alreadyRevoked) {
    ctx.run("UPDATE devices SET status = 'revoked' WHERE tenant_id = ? AND id = ?", tenantId, deviceId);
    ctx.run(
      'UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE tenant_id = ? AND device_id = ? AND revoked_at IS NULL',
      now, input.reason, tenantId, deviceId,
    );
  }
  const certs = ctx.all(
    'SELECT serial, revoked_at, revocation_reason FROM certificates WHERE tenant_id = ? AND device_id = ? ORDER BY issued_at, serial',
    tenantId, deviceId,
  );
  // The device's revocation: on a repeat, what the first revoke recorded. It is the LATEST
  // certificate revocation: certificates retired earlier by a renewal (`superseded`, ADR 0025)
  // were revoked before the device was, and nothing revokes a certificate after its device.
  const first = certs.reduce<{ at: number; reason: string } | undefined>((acc, c) => {
    if (c.revoked_at === null) return acc;
    const at = Number(c.revoked_at);
    return acc === undefined || at > acc.at ? { at, reason: String(c.revocation_reason) } : acc;
  }, undefined);
  ctx.appendAudit({
    ...input.audit,
    tenantId,
    details: { ...input.audit.details, certificates: certs.length, alreadyRevoked },
  });
  return {
    device: toDevice(ctx.get('SELECT * FROM devices WHERE tenant_id = ? AND id = ?', tenantId, deviceId)!),
    serials: certs.map((c) => String(c.serial)),
    alreadyRevoked,
    revokedAt: first?.at ?? now,
    reason: first?.reason ?? input.reason,
  };
}

export function revocationRepo(ctx: SqliteContext): RevocationRepo {
  return {
    revokeDevice: (input) => ctx.write(() => revokeInUnit(ctx, input)),
    listRevoked: async ({ notAfterFrom }) =>
      ctx.all(
        'SELECT serial, revoked_at, revocation_reason, not_after FROM certificates WHERE revoked_at IS NOT NULL AND not_after >= ? ORDER BY serial',
        notAfterFrom,
      ).map((r) => ({ serial: String(r.serial), revokedAt: Number(r.revoked_at), reason: String(r.revocation_reason ?? 'unspecified'), notAfter: Number(r.not_after) })),
    nextCrlNumber: () =>
      ctx.write(() => BigInt(String(ctx.get('UPDATE crl_state SET crl_number = crl_number + 1 WHERE id = 1 RETURNING crl_number')!.crl_number))),
  };
}
