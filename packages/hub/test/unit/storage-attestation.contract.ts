/**
 * Storage contract for attestation trust (ADR 0027): vendor roots, owned chips and policy are
 * tenant-scoped, a repeated root is CONFLICT and changes nothing, owned chips form a set, and a
 * device's key protection is stored with its enrollment (default `file`).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FleetkeyError, type ManualClock } from '@fleetkey/protocol';
import type { AuditEventInput, Store, VendorRoot } from '../../src/storage/types.js';

const audit = (type: string, tenantId: string): AuditEventInput => ({ category: 'attestation', type, result: 'success', actor: 'owner:o', source: 'test', tenantId });

export function runAttestationRepoContract(name: string, ctx: () => { store: Store; clock: ManualClock; tenantId: string; otherTenantId: string }): void {
  describe(`Store contract (attestation): ${name}`, () => {
    const root = (tenantId: string, id: string, sha256 = randomBytes(32).toString('hex')): VendorRoot => ({
      id, tenantId, kind: 'tpm', label: null, subject: 'CN=vendor', sha256, der: randomBytes(64), createdAt: ctx().clock.now(),
    });

    test('vendor roots are tenant-scoped; a repeated certificate is CONFLICT and changes nothing; delete is scoped', async () => {
      const { store, tenantId, otherTenantId } = ctx();
      const r = root(tenantId, `vr_${randomBytes(4).toString('hex')}`);
      await store.attestation.addVendorRoot(r, audit('vendor_root.add', tenantId));
      const auditCount = await store.audit.count();
      await assert.rejects(store.attestation.addVendorRoot({ ...r, id: 'vr_again' }, audit('vendor_root.add', tenantId)), (e: unknown) => e instanceof FleetkeyError && e.code === 'CONFLICT');
      assert.equal(await store.audit.count(), auditCount, 'a refused add appends no audit record');
      assert.ok((await store.attestation.listVendorRoots(tenantId, 'tpm')).some((x) => x.id === r.id && x.der.equals(r.der)));
      assert.equal((await store.attestation.listVendorRoots(tenantId, 'se')).some((x) => x.id === r.id), false);
      assert.equal((await store.attestation.listVendorRoots(otherTenantId)).some((x) => x.id === r.id), false);
      assert.equal(await store.attestation.deleteVendorRoot(otherTenantId, r.id, audit('vendor_root.delete', otherTenantId)), false, 'another tenant cannot delete it');
      assert.ok((await store.attestation.listVendorRoots(tenantId)).some((x) => x.id === r.id));
      assert.equal(await store.attestation.deleteVendorRoot(tenantId, r.id, audit('vendor_root.delete', tenantId)), true);
      assert.equal((await store.attestation.listVendorRoots(tenantId)).some((x) => x.id === r.id), false);
    });

    test('owned chips are a tenant-scoped set', async () => {
      const { store, clock, tenantId, otherTenantId } = ctx();
      const value = randomBytes(32).toString('hex');
      const chip = (id: string) => ({ id, tenantId, match: 'sha256' as const, value, label: null, createdAt: clock.now() });
      assert.equal(await store.attestation.addOwnedChips([chip('oc_a1'), chip('oc_a2')], audit('owned_chips.add', tenantId)), 1, 'a repeat is ignored');
      assert.equal(await store.attestation.isOwnedChip(tenantId, [{ match: 'serial', value: '99' }, { match: 'sha256', value }]), true);
      assert.equal(await store.attestation.isOwnedChip(otherTenantId, [{ match: 'sha256', value }]), false);
      assert.equal(await store.attestation.countOwnedChips(otherTenantId), 0);
      assert.equal(await store.attestation.deleteOwnedChip(otherTenantId, 'oc_a1', audit('owned_chips.delete', otherTenantId)), false);
      assert.equal(await store.attestation.deleteOwnedChip(tenantId, 'oc_a1', audit('owned_chips.delete', tenantId)), true);
      assert.equal(await store.attestation.isOwnedChip(tenantId, [{ match: 'sha256', value }]), false);
    });

    test('policy defaults to not required, is set per tenant, and another tenant keeps its own', async () => {
      const { store, clock, tenantId, otherTenantId } = ctx();
      assert.equal((await store.attestation.getPolicy(otherTenantId)).requireAttestation, false);
      await store.attestation.setPolicy({ tenantId, requireAttestation: true, updatedAt: clock.now() }, audit('policy.set', tenantId));
      assert.equal((await store.attestation.getPolicy(tenantId)).requireAttestation, true);
      assert.equal((await store.attestation.getPolicy(otherTenantId)).requireAttestation, false);
      await store.attestation.setPolicy({ tenantId, requireAttestation: false, updatedAt: clock.now() }, audit('policy.set', tenantId));
      assert.equal((await store.attestation.getPolicy(tenantId)).requireAttestation, false);
    });
  });
}
