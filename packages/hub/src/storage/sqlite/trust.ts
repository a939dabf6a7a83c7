/**
 * Trust bundles and rotated hub roots (ADR 0020, 0021).
 *
 * Invariants:
 * - Versions are consecutive from 1: `append` checks, inside its write unit, that the new
 *   version is the latest + 1, so two writers (a running hub and `fleetkey hub rotate-root`)
 *   can never both publish version N+1; the loser is CONFLICT and writes nothing.
 * - The bundle, the root it introduces and the audit record commit together or not at all: a
 *   crash mid-rotation leaves either the old trust state or the new one (checklist row 39).
 * - Bundles are append-only (SQL triggers); a root row is never changed after insert.
 */
import { FleetkeyError } from '@fleetkey/protocol';
import type { SqliteContext } from './context.js';
import type { HubRootRecord, StoredTrustBundle, TrustRepo } from '../types.js';

type Row = Record<string, unknown>;

const toBundle = (r: Row): StoredTrustBundle => ({
  version: Number(r.version), bytes: Buffer.from(r.bundle as Uint8Array), issuedAt: Number(r.issued_at), expires: Number(r.expires),
});

const toRoot = (r: Row): HubRootRecord => ({
  keyId: String(r.key_id), certificate: Buffer.from(r.certificate as Uint8Array),
  crossCertificate: r.cross_certificate === null ? null : Buffer.from(r.cross_certificate as Uint8Array),
  sealedKey: Buffer.from(r.sealed_key as Uint8Array), deviceCaCertificate: Buffer.from(r.device_ca_certificate as Uint8Array),
  createdAt: Number(r.created_at),
});

function appendInUnit(ctx: SqliteContext, bundle: StoredTrustBundle, root: HubRootRecord | undefined): void {
  const latest = Number(ctx.get('SELECT COALESCE(MAX(version), 0) AS v FROM trust_bundles')!.v);
  if (bundle.version !== latest + 1) {
    throw new FleetkeyError('CONFLICT', { cause: new Error(`trust bundle version ${bundle.version} does not follow ${latest}`) });
  }
  ctx.run('INSERT INTO trust_bundles (version, bundle, issued_at, expires) VALUES (?, ?, ?, ?)', bundle.version, bundle.bytes, bundle.issuedAt, bundle.expires);
  if (root !== undefined) {
    ctx.run(
      'INSERT INTO hub_roots (key_id, certificate, cross_certificate, sealed_key, device_ca_certificate, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      root.keyId, root.certificate, root.crossCertificate, root.sealedKey, root.deviceCaCertificate, root.createdAt,
    );
  }
}

export function trustRepo(ctx: SqliteContext): TrustRepo {
  return {
    latest: async () => {
      const r = ctx.get('SELECT * FROM trust_bundles ORDER BY version DESC LIMIT 1');
      return r === undefined ? undefined : toBundle(r);
    },
    get: async (version) => {
      const r = ctx.get('SELECT * FROM trust_bundles WHERE version = ?', version);
      return r === undefined ? undefined : toBundle(r);
    },
    list: async () => ctx.all('SELECT * FROM trust_bundles ORDER BY version').map(toBundle),
    append: ({ bundle, root, audit }) => ctx.write(() => appendInUnit(ctx, bundle, root), audit),
    roots: async () => ctx.all('SELECT * FROM hub_roots ORDER BY created_at, key_id').map(toRoot),
  };
}
