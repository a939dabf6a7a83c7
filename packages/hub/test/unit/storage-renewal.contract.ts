/**
 * The storage contract of the renewal repository (ADR 0025; invariants in
 * storage/renewal-types.ts). Run by `runStoreContract` for every engine, on the store it opened.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ManualClock } from '@fleetkey/protocol';
import type { AuditEventInput, CertificateRecord, Device, Store } from '../../src/storage/types.js';

const audit = (type: string, tenantId: string | null = null): AuditEventInput => ({ category: 'test', type, result: 'success', actor: 'operator', source: 'cli', tenantId });

function enrollment(tenantId: string, deviceId: string, issuedAt: number, spki = randomBytes(16).toString('hex')) {
  const device: Device = { id: deviceId, tenantId, status: 'active', createdAt: issuedAt, enrolledVia: 'claim-token', claimTokenId: null, label: null, currentSerial: null };
  const certificate: CertificateRecord = {
    serial: randomBytes(16).toString('hex'), deviceId, tenantId, spkiSha256: spki, keyAlgorithm: 'p256',
    notBefore: issuedAt, notAfter: issuedAt + 1000, issuedAt, der: randomBytes(40), revokedAt: null, revocationReason: null,
  };
  return { device, certificate, audit: audit('certificate.issue', tenantId) };
}

export function runRenewalRepoContract(name: string, ctx: () => { store: Store; clock: ManualClock; tenantId: string; otherTenantId: string }): void {
  describe(`renewal repository: ${name}`, () => {
    test('grace policy: none until set, then set and replaced, tenant-scoped, audited in the same unit', async () => {
      const { store, clock, tenantId, otherTenantId } = ctx();
      assert.equal(await store.renewal.policy(tenantId), undefined);
      const audits = await store.audit.count();
      await store.renewal.setPolicy({ tenantId, graceDays: 7, updatedAt: clock.now() }, audit('renewal.policy.set', tenantId));
      await store.renewal.setPolicy({ tenantId, graceDays: 0, updatedAt: clock.now() + 1 }, audit('renewal.policy.set', tenantId));
      assert.deepEqual(await store.renewal.policy(tenantId), { tenantId, graceDays: 0, updatedAt: clock.now() + 1 });
      assert.equal(await store.renewal.policy(otherTenantId), undefined, 'another tenant still follows the default');
      assert.equal(await store.audit.count(), audits + 2);
    });

    test('a grace outside 0–365 days is refused by the store and changes nothing', async () => {
      const { store, clock, otherTenantId } = ctx();
      const audits = await store.audit.count();
      await assert.rejects(store.renewal.setPolicy({ tenantId: otherTenantId, graceDays: 366, updatedAt: clock.now() }, audit('renewal.policy.set')));
      assert.equal(await store.renewal.policy(otherTenantId), undefined);
      assert.equal(await store.audit.count(), audits);
    });

    test('retirePrevious revokes the older certificates as superseded, keeps the proven one, and is tenant-scoped', async () => {
      const { store, clock, tenantId, otherTenantId } = ctx();
      const first = enrollment(tenantId, 'dev-renew-1', clock.now() - 2000);
      const second = { ...enrollment(tenantId, 'dev-renew-1', clock.now() - 1000), device: first.device };
      const third = { ...enrollment(tenantId, 'dev-renew-1', clock.now()), device: first.device };
      for (const e of [first, second, third]) await store.devices.recordEnrollment(e);
      const keep = second.certificate.serial;
      // Another tenant naming this device retires nothing.
      assert.deepEqual(await store.renewal.retirePrevious({ tenantId: otherTenantId, deviceId: 'dev-renew-1', keepSerial: keep, now: clock.now(), audit: audit('certificate.retire') }), []);
      const retired = await store.renewal.retirePrevious({ tenantId, deviceId: 'dev-renew-1', keepSerial: keep, now: clock.now(), audit: audit('certificate.retire') });
      assert.deepEqual(retired, [first.certificate.serial]);
      const byserial = new Map((await store.devices.certificates(tenantId, 'dev-renew-1')).map((c) => [c.serial, c]));
      assert.equal(byserial.get(first.certificate.serial)?.revocationReason, 'superseded');
      assert.equal(byserial.get(keep)?.revokedAt, null, 'the proven certificate is untouched');
      assert.equal(byserial.get(third.certificate.serial)?.revokedAt, null, 'a newer certificate is untouched');
      const audits = await store.audit.count();
      assert.deepEqual(await store.renewal.retirePrevious({ tenantId, deviceId: 'dev-renew-1', keepSerial: keep, now: clock.now() + 5, audit: audit('certificate.retire') }), [], 'a repeat retires nothing');
      assert.equal(await store.audit.count(), audits, 'and appends no audit record');
      assert.equal((await store.devices.certificateBySerial(first.certificate.serial))?.revokedAt, clock.now(), 'the first revocation time is kept');
    });

    test("revoking a device after a renewal reports the device's revocation, not the earlier retirement", async () => {
      const { store, clock, tenantId } = ctx();
      const old = enrollment(tenantId, 'dev-renew-2', clock.now() - 1000);
      const current = { ...enrollment(tenantId, 'dev-renew-2', clock.now()), device: old.device };
      for (const e of [old, current]) await store.devices.recordEnrollment(e);
      await store.renewal.retirePrevious({ tenantId, deviceId: 'dev-renew-2', keepSerial: current.certificate.serial, now: clock.now(), audit: audit('certificate.retire') });
      const revokeAt = clock.now() + 60_000;
      const input = (reason: string) => ({ tenantId, deviceId: 'dev-renew-2', reason, now: revokeAt, audit: audit('device.revoke', tenantId) });
      const revoked = await store.revocation.revokeDevice(input('keyCompromise'));
      assert.deepEqual([revoked?.alreadyRevoked, revoked?.revokedAt, revoked?.reason], [false, revokeAt, 'keyCompromise']);
      const again = await store.revocation.revokeDevice({ ...input('unspecified'), now: revokeAt + 1 });
      assert.deepEqual([again?.alreadyRevoked, again?.revokedAt, again?.reason], [true, revokeAt, 'keyCompromise']);
      assert.equal((await store.devices.certificateBySerial(old.certificate.serial))?.revocationReason, 'superseded', 'the retirement keeps its reason');
    });
  });
}
