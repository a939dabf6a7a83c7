/** Vendor roots, owned chips and attestation policy (ADR 0027); see ../attestation-types.ts. */
import type { SqliteContext } from './context.js';
import type { AttestationRepo, OwnedChip, OwnedChipMatch, VendorRoot, VendorRootKind } from '../attestation-types.js';
import type { Row } from './rows.js';

const toVendorRoot = (r: Row): VendorRoot => ({
  id: String(r.id), tenantId: String(r.tenant_id), kind: String(r.kind) as VendorRootKind, label: r.label === null ? null : String(r.label),
  subject: String(r.subject), sha256: String(r.sha256), der: Buffer.from(r.der as Uint8Array), createdAt: Number(r.created_at),
});

const toOwnedChip = (r: Row): OwnedChip => ({
  id: String(r.id), tenantId: String(r.tenant_id), match: String(r.match) as OwnedChipMatch, value: String(r.value),
  label: r.label === null ? null : String(r.label), createdAt: Number(r.created_at),
});

export function attestationRepo(ctx: SqliteContext): AttestationRepo {
  return {
    addVendorRoot: (v, audit) =>
      ctx.write(() => {
        ctx.run(
          'INSERT INTO vendor_roots (id, tenant_id, kind, label, subject, sha256, der, created_at) VALUES (?,?,?,?,?,?,?,?)',
          v.id, v.tenantId, v.kind, v.label, v.subject, v.sha256, v.der, v.createdAt,
        );
      }, audit),
    listVendorRoots: async (tenantId, kind) =>
      (kind === undefined
        ? ctx.all('SELECT * FROM vendor_roots WHERE tenant_id = ? ORDER BY created_at, id', tenantId)
        : ctx.all('SELECT * FROM vendor_roots WHERE tenant_id = ? AND kind = ? ORDER BY created_at, id', tenantId, kind)
      ).map(toVendorRoot),
    deleteVendorRoot: (tenantId, id, audit) => deleteScoped(ctx, 'vendor_roots', tenantId, id, audit),
    addOwnedChips: (chips, audit) =>
      ctx.write(() => {
        let added = 0;
        for (const c of chips) {
          added += ctx.run(
            'INSERT INTO owned_chips (id, tenant_id, match, value, label, created_at) VALUES (?,?,?,?,?,?) ON CONFLICT (tenant_id, match, value) DO NOTHING',
            c.id, c.tenantId, c.match, c.value, c.label, c.createdAt,
          ).changes;
        }
        return added;
      }, audit),
    listOwnedChips: async (tenantId, opts = {}) =>
      ctx.all('SELECT * FROM owned_chips WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?', tenantId, opts.after ?? '', Math.min(Math.max(opts.limit ?? 100, 1), 1000)).map(toOwnedChip),
    countOwnedChips: async (tenantId) => Number(ctx.get('SELECT COUNT(*) AS n FROM owned_chips WHERE tenant_id = ?', tenantId)?.n ?? 0),
    isOwnedChip: async (tenantId, candidates) =>
      candidates.some((c) => ctx.get('SELECT 1 AS ok FROM owned_chips WHERE tenant_id = ? AND match = ? AND value = ?', tenantId, c.match, c.value) !== undefined),
    deleteOwnedChip: (tenantId, id, audit) => deleteScoped(ctx, 'owned_chips', tenantId, id, audit),
    getPolicy: async (tenantId) => {
      const r = ctx.get('SELECT * FROM attestation_policies WHERE tenant_id = ?', tenantId);
      return { tenantId, requireAttestation: r !== undefined && Number(r.require_attestation) === 1, updatedAt: r === undefined ? 0 : Number(r.updated_at) };
    },
    setPolicy: (p, audit) =>
      ctx.write(() => {
        ctx.run(
          `INSERT INTO attestation_policies (tenant_id, require_attestation, updated_at) VALUES (?,?,?)
           ON CONFLICT (tenant_id) DO UPDATE SET require_attestation = excluded.require_attestation, updated_at = excluded.updated_at`,
          p.tenantId, p.requireAttestation ? 1 : 0, p.updatedAt,
        );
      }, audit),
  };
}

/** A tenant-scoped delete; the audit record is appended only when a row went. */
async function deleteScoped(ctx: SqliteContext, table: 'vendor_roots' | 'owned_chips', tenantId: string, id: string, audit: Parameters<SqliteContext['appendAudit']>[0]): Promise<boolean> {
  return ctx.write(() => {
    const gone = ctx.run(`DELETE FROM ${table} WHERE tenant_id = ? AND id = ?`, tenantId, id).changes === 1;
    if (gone) ctx.appendAudit(audit);
    return gone;
  });
}
