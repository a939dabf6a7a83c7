/**
 * Owner operations on attestation trust (ADR 0027): vendor roots (PEM upload, list, delete),
 * the owned-chip list (entries or a vendor manifest of chip certificates) and the policy.
 *
 * Invariants:
 * - Tenant-scoped and audited (category `attestation`); another organisation's id is NOT_FOUND.
 * - A vendor root must be one PEM CA certificate (basicConstraints cA, RFC 5280 §4.2.1.9) inside
 *   its validity; at most MAX_ROOTS per organisation. Bad input is VALIDATION_FAILED, nothing stored.
 * - Owned-chip values are normalised (lowercase hex) and bounded (MAX_CHIPS_PER_CALL per call).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { FleetkeyError, fromPemAll, toPem, type Clock } from '@fleetkey/protocol';
import type { OwnerContext } from '../provisioning/claim-token/service.js';
import { randomId } from '../provisioning/claim-token/token.js';
import type { AuditEventInput, OwnedChip, OwnedChipMatch, Store, VendorRoot, VendorRootKind } from '../storage/types.js';

export const MAX_ROOTS = 64;
export const MAX_CHIPS_PER_CALL = 10_000;
const iso = (ms: number): string => new Date(ms).toISOString();
const invalid = (field: string, reason: string): FleetkeyError => new FleetkeyError('VALIDATION_FAILED', { details: { field, reason } });

export interface OwnedChipInput {
  readonly match: OwnedChipMatch;
  readonly value: string;
  readonly label?: string;
}

export class AttestationOwnerService {
  constructor(private readonly deps: { store: Store; clock: Clock }) {}

  async addVendorRoot(owner: OwnerContext, input: { kind: VendorRootKind; pem: string; label?: string }) {
    const ders = fromPemAll(input.pem, 'CERTIFICATE');
    if (ders.length !== 1) throw invalid('pem', 'exactly one CERTIFICATE block');
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(ders[0]!);
    } catch {
      throw invalid('pem', 'not an X.509 certificate');
    }
    const now = this.deps.clock.now();
    if (!cert.ca) throw invalid('pem', 'not a CA certificate (basicConstraints cA)');
    if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) throw invalid('pem', 'outside its validity');
    if ((await this.deps.store.attestation.listVendorRoots(owner.tenantId)).length >= MAX_ROOTS) throw invalid('pem', `at most ${MAX_ROOTS} vendor roots`);
    const root: VendorRoot = {
      id: randomId('vr_'), tenantId: owner.tenantId, kind: input.kind, label: input.label ?? null, subject: cert.subject.replace(/\n/g, ', '),
      sha256: createHash('sha256').update(cert.raw).digest('hex'), der: cert.raw, createdAt: now,
    };
    await this.deps.store.attestation.addVendorRoot(root, this.#audit(owner, 'vendor_root.add', { vendorRootId: root.id, kind: root.kind, sha256: root.sha256 }));
    return vendorRootView(root);
  }

  async listVendorRoots(owner: OwnerContext) {
    return (await this.deps.store.attestation.listVendorRoots(owner.tenantId)).map(vendorRootView);
  }

  async deleteVendorRoot(owner: OwnerContext, id: string): Promise<void> {
    const gone = await this.deps.store.attestation.deleteVendorRoot(owner.tenantId, id, this.#audit(owner, 'vendor_root.delete', { vendorRootId: id }));
    if (!gone) throw new FleetkeyError('NOT_FOUND');
  }

  /** Adds entries and/or every certificate of a vendor manifest (PEM bundle) by its SHA-256. */
  async addOwnedChips(owner: OwnerContext, input: { entries?: readonly OwnedChipInput[]; manifestPem?: string }): Promise<{ added: number }> {
    const now = this.deps.clock.now();
    const entries = [...(input.entries ?? []).map(normaliseEntry), ...manifestEntries(input.manifestPem)];
    if (entries.length === 0 || entries.length > MAX_CHIPS_PER_CALL) throw invalid('entries', `1 to ${MAX_CHIPS_PER_CALL} entries`);
    const chips: OwnedChip[] = entries.map((e) => ({ id: randomId('oc_'), tenantId: owner.tenantId, match: e.match, value: e.value, label: e.label ?? null, createdAt: now }));
    const added = await this.deps.store.attestation.addOwnedChips(chips, this.#audit(owner, 'owned_chips.add', { entries: chips.length }));
    return { added };
  }

  async listOwnedChips(owner: OwnerContext, opts: { limit?: number; after?: string }) {
    const chips = await this.deps.store.attestation.listOwnedChips(owner.tenantId, opts);
    return chips.map((c) => ({ id: c.id, match: c.match, value: c.value, label: c.label, createdAt: iso(c.createdAt) }));
  }

  async deleteOwnedChip(owner: OwnerContext, id: string): Promise<void> {
    if (!(await this.deps.store.attestation.deleteOwnedChip(owner.tenantId, id, this.#audit(owner, 'owned_chips.delete', { ownedChipId: id })))) throw new FleetkeyError('NOT_FOUND');
  }

  async getPolicy(owner: OwnerContext) {
    const p = await this.deps.store.attestation.getPolicy(owner.tenantId);
    return { requireAttestation: p.requireAttestation };
  }

  async setPolicy(owner: OwnerContext, requireAttestation: boolean) {
    const policy = { tenantId: owner.tenantId, requireAttestation, updatedAt: this.deps.clock.now() };
    await this.deps.store.attestation.setPolicy(policy, this.#audit(owner, 'policy.set', { requireAttestation }));
    return { requireAttestation };
  }

  #audit(owner: OwnerContext, type: string, details: Record<string, string | number | boolean>): AuditEventInput {
    return { category: 'attestation', type, result: 'success', actor: `owner:${owner.ownerId}`, source: owner.source, tenantId: owner.tenantId, session: owner.session, details };
  }
}

function vendorRootView(r: VendorRoot) {
  return { id: r.id, kind: r.kind, label: r.label, subject: r.subject, sha256: r.sha256, createdAt: iso(r.createdAt), pem: toPem('CERTIFICATE', r.der) };
}

function normaliseEntry(e: OwnedChipInput): OwnedChipInput {
  const value = e.value.trim().toLowerCase().replace(/:/g, '');
  const ok = e.match === 'sha256' ? /^[0-9a-f]{64}$/.test(value) : /^[0-9a-f]{1,40}$/.test(value);
  if (!ok) throw invalid('entries', `${e.match} must be lowercase hex${e.match === 'sha256' ? ' (64 digits)' : ' (at most 20 bytes, RFC 5280 §4.1.2.2)'}`);
  return { match: e.match, value: e.match === 'serial' ? value.replace(/^0+(?=.)/, '') : value, ...(e.label === undefined ? {} : { label: e.label }) };
}

function manifestEntries(pem: string | undefined): OwnedChipInput[] {
  if (pem === undefined) return [];
  const ders = fromPemAll(pem, 'CERTIFICATE');
  if (ders.length === 0) throw invalid('manifestPem', 'no CERTIFICATE block');
  return ders.map((der) => {
    try {
      return { match: 'sha256' as const, value: createHash('sha256').update(new X509Certificate(der).raw).digest('hex') };
    } catch {
      throw invalid('manifestPem', 'a block is not an X.509 certificate');
    }
  });
}
