/**
 * The storage contract: every engine runs this suite (see storage-*.test.ts).
 * A skipped case must name its reason.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { FleetkeyError, ManualClock } from '@fleetkey/protocol';
import type { AuditEventInput, CertificateRecord, ClaimToken, Device, NewTelemetry, Owner, Store, Tenant } from '../../src/storage/types.js';
import { runBatchRepoContract } from './storage-batches.contract.js';
import { runAttestationRepoContract } from './storage-attestation.contract.js';
import { runRenewalRepoContract } from './storage-renewal.contract.js';

export type OpenStore = (clock: ManualClock) => Promise<Store>;

const audit = (type: string, tenantId: string | null = null): AuditEventInput => ({
  category: 'test', type, result: 'success', actor: 'operator', source: 'cli', tenantId, details: { n: 1 },
});
const hash = (s: string): string => createHash('sha256').update(s).digest('hex');

export function fixtures(suffix: string, now: number): { tenant: Tenant; owner: Owner } {
  const tenant = { id: `org_${suffix}`, name: `Org ${suffix}`, createdAt: now };
  const owner: Owner = {
    id: `own_${suffix}`, tenantId: tenant.id, email: `${suffix}@example.test`, passwordHash: '$argon2id$x',
    totpSealed: 'c2VhbGVk', totpLastStep: 0, createdAt: now, disabled: false,
  };
  return { tenant, owner };
}

export function claimToken(tenantId: string, id: string, now: number, over: Partial<ClaimToken> = {}): ClaimToken {
  return {
    id, tenantId, tokenHash: hash(id), label: null, maxUses: 1, uses: 0, createdAt: now,
    expiresAt: now + 900_000, createdBy: 'own_x', revokedAt: null, ...over,
  };
}

function enrollment(tenantId: string, deviceId: string, now: number, spki = randomBytes(16).toString('hex')) {
  const device: Device = {
    id: deviceId, tenantId, status: 'active', createdAt: now, enrolledVia: 'claim-token', claimTokenId: null,
    label: null, currentSerial: null,
  };
  const certificate: CertificateRecord = {
    serial: randomBytes(16).toString('hex'), deviceId, tenantId, spkiSha256: spki, keyAlgorithm: 'p256',
    notBefore: now, notAfter: now + 1000, issuedAt: now, der: randomBytes(40), revokedAt: null, revocationReason: null,
  };
  return { device, certificate, audit: audit('certificate.issue', tenantId) };
}

/** A telemetry row as the sink builds it (dedup keys per ADR 0010). */
function telemetryRow(tenantId: string, deviceId: string, at: number, over: Partial<NewTelemetry> = {}): NewTelemetry {
  const payload = over.payload ?? randomBytes(8);
  return {
    tenantId, deviceId, topic: `devices/${deviceId}/telemetry`, payload, payloadJson: null, qos: 1, receivedAt: at,
    dedupKey: null, contentDedupSince: null, ...over,
  };
}

export function runStoreContract(name: string, open: OpenStore): void {
  describe(`Store contract: ${name}`, () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 1));
    let store: Store;
    const { tenant, owner } = fixtures('a', clock.now());
    const other = fixtures('b', clock.now());

    before(async () => {
      store = await open(clock);
      await store.tenants.createWithOwner(tenant, owner, audit('owner.create', tenant.id));
      await store.tenants.createWithOwner(other.tenant, other.owner, audit('owner.create', other.tenant.id));
    });
    after(async () => store.close());

    test('tenant and owner round-trip; duplicate email is CONFLICT and creates no tenant', async () => {
      assert.deepEqual(await store.owners.getByEmail(owner.email), owner);
      const dup = { ...fixtures('c', clock.now()), };
      const err = await store.tenants
        .createWithOwner(dup.tenant, { ...dup.owner, email: owner.email }, audit('owner.create'))
        .catch((e: unknown) => e);
      assert.ok(err instanceof FleetkeyError && err.code === 'CONFLICT');
      assert.equal(await store.tenants.get(dup.tenant.id), undefined, 'half-created tenant remained');
    });

    test('TOTP step advances only forward (a code is accepted once)', async () => {
      assert.equal(await store.owners.advanceTotpStep(owner.id, 100), true);
      assert.equal(await store.owners.advanceTotpStep(owner.id, 100), false);
      assert.equal(await store.owners.advanceTotpStep(owner.id, 99), false);
      assert.equal(await store.owners.advanceTotpStep(owner.id, 101), true);
    });

    test('single-use claim token redeemed by 50 concurrent enrollments: exactly one is recorded', async () => {
      const t = claimToken(tenant.id, 'ct_race', clock.now());
      await store.claimTokens.create(t, audit('claim_token.create', tenant.id));
      const attempts = Array.from({ length: 50 }, (_, i) => ({
        ...enrollment(tenant.id, `dev-race-${i}`, clock.now()), redeem: { claimTokenHash: t.tokenHash, now: clock.now() },
      }));
      const results = await Promise.allSettled(attempts.map((e) => store.devices.recordEnrollment(e)));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) {
        if (r.status === 'rejected') assert.ok(r.reason instanceof FleetkeyError && r.reason.code === 'CLAIM_TOKEN_INVALID');
      }
      assert.equal((await store.claimTokens.get(tenant.id, t.id))?.uses, 1);
      const recorded = await Promise.all(attempts.map((e) => store.devices.get(tenant.id, e.device.id)));
      assert.equal(recorded.filter((d) => d !== undefined).length, 1, 'only the winner has a device');
    });

    test('expired, revoked and used-up tokens are not redeemable, spend nothing and record nothing', async () => {
      const expired = claimToken(tenant.id, 'ct_exp', clock.now(), { expiresAt: clock.now() + 10 });
      const revoked = claimToken(tenant.id, 'ct_rev', clock.now());
      const multi = claimToken(tenant.id, 'ct_multi', clock.now(), { maxUses: 3 });
      for (const t of [expired, revoked, multi]) await store.claimTokens.create(t, audit('claim_token.create'));
      assert.equal(await store.claimTokens.revoke(tenant.id, revoked.id, clock.now(), audit('claim_token.revoke')), true);
      assert.equal(await store.claimTokens.findRedeemable(expired.tokenHash, clock.now() + 10), undefined);
      assert.equal(await store.claimTokens.findRedeemable(revoked.tokenHash, clock.now()), undefined);
      assert.equal((await store.claimTokens.findRedeemable(multi.tokenHash, clock.now()))?.id, multi.id);
      const late = { ...enrollment(tenant.id, 'dev-late', clock.now()), redeem: { claimTokenHash: expired.tokenHash, now: clock.now() + 10 } };
      await assert.rejects(store.devices.recordEnrollment(late), (e: unknown) => e instanceof FleetkeyError && e.code === 'CLAIM_TOKEN_INVALID');
      assert.equal(await store.devices.get(tenant.id, 'dev-late'), undefined);
      assert.equal(await store.devices.certificateBySerial(late.certificate.serial), undefined);
      const wins = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store.devices.recordEnrollment({
        ...enrollment(tenant.id, `dev-multi-${i}`, clock.now()), redeem: { claimTokenHash: multi.tokenHash, now: clock.now() },
      })));
      assert.equal(wins.filter((r) => r.status === 'fulfilled').length, 3);
      assert.equal((await store.claimTokens.get(tenant.id, expired.id))?.uses, 0);
      assert.equal((await store.claimTokens.get(tenant.id, multi.id))?.uses, 3);
      assert.equal(await store.claimTokens.findRedeemable(multi.tokenHash, clock.now()), undefined, 'used up');
    });

    test('an enrollment refused for its key spends no use of its claim token', async () => {
      const t = claimToken(tenant.id, 'ct_keyclash', clock.now());
      await store.claimTokens.create(t, audit('claim_token.create'));
      await store.devices.recordEnrollment(enrollment(tenant.id, 'dev-key-owner', clock.now(), 'spki-clash'));
      const clash = { ...enrollment(tenant.id, 'dev-key-thief', clock.now(), 'spki-clash'), redeem: { claimTokenHash: t.tokenHash, now: clock.now() } };
      await assert.rejects(store.devices.recordEnrollment(clash), (e: unknown) => e instanceof FleetkeyError && e.code === 'KEY_ALREADY_ENROLLED');
      assert.equal((await store.claimTokens.get(tenant.id, t.id))?.uses, 0);
    });

    test('claim tokens are tenant-scoped: another tenant can neither read nor revoke them', async () => {
      const t = claimToken(tenant.id, 'ct_scoped', clock.now());
      await store.claimTokens.create(t, audit('claim_token.create'));
      assert.equal(await store.claimTokens.get(other.tenant.id, t.id), undefined);
      assert.equal(await store.claimTokens.revoke(other.tenant.id, t.id, clock.now(), audit('claim_token.revoke')), false);
      assert.equal((await store.claimTokens.get(tenant.id, t.id))?.revokedAt, null);
      assert.ok(!(await store.claimTokens.list(other.tenant.id)).some((x) => x.id === t.id));
    });

    test('enrollment records device + certificate; another tenant cannot see or re-key it', async () => {
      const e = enrollment(tenant.id, 'dev-contract-1', clock.now());
      await store.devices.recordEnrollment(e);
      const dev = await store.devices.get(tenant.id, e.device.id);
      assert.equal(dev?.currentSerial, e.certificate.serial);
      assert.equal(await store.devices.get(other.tenant.id, e.device.id), undefined);
      const hijack = enrollment(other.tenant.id, e.device.id, clock.now());
      await assert.rejects(store.devices.recordEnrollment(hijack), (err: unknown) => err instanceof FleetkeyError);
      assert.equal(await store.devices.certificateBySerial(hijack.certificate.serial), undefined);
      assert.equal((await store.devices.get(tenant.id, e.device.id))?.currentSerial, e.certificate.serial);
    });

    test('a public key already enrolled on another device is refused (no shared keys)', async () => {
      const first = enrollment(tenant.id, 'dev-contract-2', clock.now(), 'spki-shared');
      await store.devices.recordEnrollment(first);
      const second = enrollment(tenant.id, 'dev-contract-3', clock.now(), 'spki-shared');
      await assert.rejects(store.devices.recordEnrollment(second), (e: unknown) => e instanceof FleetkeyError && e.code === 'KEY_ALREADY_ENROLLED');
      assert.equal(await store.devices.get(tenant.id, 'dev-contract-3'), undefined);
    });

    test('throttle locks after maxFailures within the window and unlocks after lockMs', async () => {
      const policy = { maxFailures: 3, windowMs: 60_000, lockMs: 120_000 };
      let s = await store.throttle.recordFailure('k1', clock.now(), policy);
      s = await store.throttle.recordFailure('k1', clock.now(), policy);
      assert.equal(s.lockedUntil, 0);
      s = await store.throttle.recordFailure('k1', clock.now(), policy);
      assert.equal(s.lockedUntil, clock.now() + 120_000);
      assert.equal((await store.throttle.get('k1', clock.now() + 119_999)).lockedUntil, clock.now() + 120_000);
      assert.equal((await store.throttle.get('k1', clock.now() + 120_000)).lockedUntil, 0);
    });

    test('audit chain verifies, has no gaps, and the store refuses to rewrite history', async () => {
      for (let i = 0; i < 20; i++) await store.audit.append(audit(`e${i}`));
      const v = await store.audit.verify();
      assert.equal(v.ok, true);
      assert.equal(v.records, await store.audit.count());
      const all = await store.audit.list({ limit: 10_000 });
      all.forEach((r, i) => assert.equal(r.seq, i + 1));
    });

    test('a write that fails rolls back alone; concurrent writes in the same batch still land', async () => {
      const good = claimToken(tenant.id, 'ct_batch_ok', clock.now());
      const before = await store.audit.count();
      const [ok, bad] = await Promise.allSettled([
        store.claimTokens.create(good, audit('claim_token.create')),
        store.claimTokens.create({ ...good, id: 'ct_batch_dup' }, audit('claim_token.create')), // same hash
      ]);
      assert.equal(ok.status, 'fulfilled');
      assert.equal(bad.status, 'rejected');
      assert.equal(await store.claimTokens.get(tenant.id, 'ct_batch_dup'), undefined);
      assert.equal(await store.audit.count(), before + 1, 'audit record of the failed write remained');
      assert.equal((await store.audit.verify()).ok, true);
    });

    test('sessions expire by absolute and idle time', async () => {
      const s = { tokenHash: hash('sess'), ownerId: owner.id, tenantId: tenant.id, createdAt: clock.now(), expiresAt: clock.now() + 100, idleExpiresAt: clock.now() + 50 };
      await store.sessions.create(s, audit('login'));
      assert.deepEqual(await store.sessions.get(s.tokenHash), s);
      assert.equal(await store.sessions.deleteExpired(clock.now() + 50), 1);
      assert.equal(await store.sessions.get(s.tokenHash), undefined);
    });
    test('telemetry: stored rows come back oldest first, filtered by time and cursor, only for their tenant', async () => {
      const t0 = clock.now();
      const seqs: number[] = [];
      for (let i = 0; i < 5; i++) seqs.push((await store.telemetry.insert(telemetryRow(tenant.id, 'dev_tq', t0 + i * 1000, { payloadJson: '{"i":1}' }))).seq);
      const all = await store.telemetry.list(tenant.id, 'dev_tq', { limit: 100 });
      assert.deepEqual(all.map((r) => r.seq), seqs);
      assert.equal(all[0]!.payloadJson, '{"i":1}');
      assert.deepEqual((await store.telemetry.list(tenant.id, 'dev_tq', { since: t0 + 1000, until: t0 + 3000, limit: 100 })).map((r) => r.seq), seqs.slice(1, 3));
      assert.deepEqual((await store.telemetry.list(tenant.id, 'dev_tq', { afterSeq: seqs[2]!, limit: 1 })).map((r) => r.seq), [seqs[3]]);
      assert.deepEqual(await store.telemetry.list(other.tenant.id, 'dev_tq', { limit: 100 }), [], 'another tenant sees the rows');
      assert.equal(await store.telemetry.count(other.tenant.id, 'dev_tq'), 0);
    });

    test('telemetry: 1,000 concurrent inserts with ~5% redelivered ids store exactly the distinct messages', async () => {
      const ids = Array.from({ length: 950 }, (_, i) => `id:msg-${String(i).padStart(16, '0')}`);
      const copies = [...ids, ...ids.slice(0, 50)].sort(() => Math.random() - 0.5);
      const results = await Promise.all(copies.map((k) => store.telemetry.insert(telemetryRow(tenant.id, 'dev_tc', clock.now(), { dedupKey: k }))));
      assert.equal(results.filter((r) => !r.duplicate).length, 950);
      assert.equal(await store.telemetry.count(tenant.id, 'dev_tc'), 950);
      const seqOf = new Map<string, Set<number>>();
      copies.forEach((k, i) => seqOf.set(k, (seqOf.get(k) ?? new Set()).add(results[i]!.seq)));
      for (const [k, s] of seqOf) assert.equal(s.size, 1, `${k}: a duplicate answered another seq than the original`);
      // The same id from another device is another message.
      assert.equal((await store.telemetry.insert(telemetryRow(tenant.id, 'dev_tc2', clock.now(), { dedupKey: ids[0]! }))).duplicate, false);
    });

    test('telemetry: a content match is a duplicate only within the window and only for the same device', async () => {
      const payload = Buffer.from('21.5');
      const first = await store.telemetry.insert(telemetryRow(tenant.id, 'dev_tw', clock.now(), { payload }));
      const redelivered = await store.telemetry.insert(telemetryRow(tenant.id, 'dev_tw', clock.now() + 10, { payload, contentDedupSince: clock.now() - 1000 }));
      assert.deepEqual(redelivered, { seq: first.seq, duplicate: true });
      const late = await store.telemetry.insert(telemetryRow(tenant.id, 'dev_tw', clock.now() + 5000, { payload, contentDedupSince: clock.now() + 1 }));
      assert.equal(late.duplicate, false);
      assert.equal((await store.telemetry.insert(telemetryRow(tenant.id, 'dev_tw_other', clock.now(), { payload, contentDedupSince: 0 }))).duplicate, false);
      assert.equal(await store.telemetry.count(tenant.id, 'dev_tw'), 2);
    });

    test('telemetry: the DUP content match is exact — another topic, one byte more, or an enveloped original is no match', async () => {
      const t0 = clock.now() + 50_000;
      const reading = Buffer.from('{"t":21.5}');
      const topic = 'devices/dev_te/telemetry';
      await store.telemetry.insert(telemetryRow(tenant.id, 'dev_te', t0, { payload: reading, topic: 'devices/dev_te/status' }));
      await store.telemetry.insert(telemetryRow(tenant.id, 'dev_te', t0 + 1, { payload: Buffer.concat([reading, Buffer.from(' ')]), topic }));
      await store.telemetry.insert(telemetryRow(tenant.id, 'dev_te', t0 + 2, { payload: reading, topic, dedupKey: 'id:0123456789abcdef' }));
      const copy = await store.telemetry.insert(telemetryRow(tenant.id, 'dev_te', t0 + 3, { payload: reading, topic, contentDedupSince: t0 - 1 }));
      assert.equal(copy.duplicate, false, 'no row without an envelope had this topic and these bytes');
      const again = await store.telemetry.insert(telemetryRow(tenant.id, 'dev_te', t0 + 4, { payload: Buffer.from(reading), topic, contentDedupSince: t0 - 1 }));
      assert.deepEqual(again, { seq: copy.seq, duplicate: true }, 'the same topic and bytes (another Buffer) match the stored copy');
      assert.equal(await store.telemetry.count(tenant.id, 'dev_te'), 4);
    });

    test('telemetry: the DUP content lookup sees exactly the window, with older and newer rows of the device around it', async () => {
      const t0 = clock.now() + 100_000;
      const same = Buffer.from('same reading');
      // Before the window: the same content (must not match), then other rows; inside: the original, then more rows.
      await store.telemetry.insert(telemetryRow(tenant.id, 'dev_tx', t0, { payload: same }));
      for (let i = 1; i <= 20; i++) await store.telemetry.insert(telemetryRow(tenant.id, 'dev_tx', t0 + i));
      const original = await store.telemetry.insert(telemetryRow(tenant.id, 'dev_tx', t0 + 500, { payload: same }));
      for (let i = 1; i <= 20; i++) await store.telemetry.insert(telemetryRow(tenant.id, 'dev_tx', t0 + 500 + i));
      const copy = await store.telemetry.insert(telemetryRow(tenant.id, 'dev_tx', t0 + 600, { payload: same, contentDedupSince: t0 + 100 }));
      assert.deepEqual(copy, { seq: original.seq, duplicate: true });
      // A window that starts after the original: the copy is a new message, and it is stored.
      const later = await store.telemetry.insert(telemetryRow(tenant.id, 'dev_tx', t0 + 700, { payload: same, contentDedupSince: t0 + 501 }));
      assert.equal(later.duplicate, false);
      assert.equal(await store.telemetry.count(tenant.id, 'dev_tx'), 43);
    });

    // --- revocation (ADR 0011) ---
    const revokeInput = (tenantId: string, deviceId: string, reason: string) => ({
      tenantId, deviceId, reason, now: clock.now(), audit: audit('device.revoke', tenantId),
    });

    test('revocation: device and all its certificates revoked in one unit with one audit record; the CRL list shows them', async () => {
      const first = enrollment(tenant.id, 'dev-revoke-1', clock.now());
      await store.devices.recordEnrollment(first);
      const second = { ...enrollment(tenant.id, 'dev-revoke-1', clock.now()), device: { ...first.device, currentSerial: null } };
      await store.devices.recordEnrollment(second);
      const auditBefore = await store.audit.count();
      const r = await store.revocation.revokeDevice(revokeInput(tenant.id, 'dev-revoke-1', 'keyCompromise'));
      assert.ok(r);
      assert.equal(r.alreadyRevoked, false);
      assert.equal(r.device.status, 'revoked');
      assert.deepEqual([...r.serials].sort(), [first.certificate.serial, second.certificate.serial].sort());
      assert.equal(await store.audit.count(), auditBefore + 1);
      const last = (await store.audit.list({ afterSeq: auditBefore }))[0]!;
      assert.equal(last.type, 'device.revoke');
      assert.equal(last.details?.certificates, 2);
      for (const c of await store.devices.certificates(tenant.id, 'dev-revoke-1')) {
        assert.deepEqual([c.revokedAt, c.revocationReason], [clock.now(), 'keyCompromise']);
      }
      const listed = await store.revocation.listRevoked({ notAfterFrom: clock.now() });
      for (const serial of r.serials) assert.ok(listed.some((x) => x.serial === serial && x.reason === 'keyCompromise'));
      assert.deepEqual(listed.map((x) => x.serial), [...listed.map((x) => x.serial)].sort(), 'ordered by serial');
      assert.ok(!(await store.revocation.listRevoked({ notAfterFrom: clock.now() + 1001 })).some((x) => r.serials.includes(x.serial)), 'expired ones leave the list');
    });

    test('revocation: another tenant revoking the device gets undefined and changes nothing (no audit either)', async () => {
      const e = enrollment(tenant.id, 'dev-revoke-2', clock.now());
      await store.devices.recordEnrollment(e);
      const before = { device: await store.devices.get(tenant.id, e.device.id), audit: await store.audit.count() };
      assert.equal(await store.revocation.revokeDevice(revokeInput(other.tenant.id, e.device.id, 'keyCompromise')), undefined);
      assert.deepEqual({ device: await store.devices.get(tenant.id, e.device.id), audit: await store.audit.count() }, before);
      assert.equal((await store.devices.certificateBySerial(e.certificate.serial))?.revokedAt, null);
    });

    test('revocation: a repeat keeps the first time and reason; a revoked device is never re-keyed', async () => {
      const e = enrollment(tenant.id, 'dev-revoke-3', clock.now());
      await store.devices.recordEnrollment(e);
      const first = await store.revocation.revokeDevice(revokeInput(tenant.id, e.device.id, 'superseded'));
      clock.advance(60_000);
      const again = await store.revocation.revokeDevice(revokeInput(tenant.id, e.device.id, 'keyCompromise'));
      assert.deepEqual([again?.alreadyRevoked, again?.revokedAt, again?.reason], [true, first?.revokedAt, 'superseded']);
      const rekey = { ...enrollment(tenant.id, e.device.id, clock.now()) };
      await assert.rejects(store.devices.recordEnrollment(rekey), (err: unknown) => err instanceof FleetkeyError);
      assert.equal(await store.devices.certificateBySerial(rekey.certificate.serial), undefined);
    });

    test('revocation: cRLNumber strictly increases, also under 20 concurrent callers', async () => {
      const first = await store.revocation.nextCrlNumber();
      const many = await Promise.all(Array.from({ length: 20 }, () => store.revocation.nextCrlNumber()));
      assert.equal(new Set(many.map(String)).size, 20);
      assert.ok(many.every((n) => n > first));
      assert.equal(await store.revocation.nextCrlNumber(), first + 21n);
    });

    runBatchRepoContract(name, () => ({ store, clock, tenantId: tenant.id, otherTenantId: other.tenant.id }));
    runAttestationRepoContract(name, () => ({ store, clock, tenantId: tenant.id, otherTenantId: other.tenant.id }));
    runRenewalRepoContract(name, () => ({ store, clock, tenantId: tenant.id, otherTenantId: other.tenant.id }));
    // --- trust bundles (ADR 0020, 0021) ---
    const bundle = (version: number) => ({ version, bytes: Buffer.from(`bundle-${version}`), issuedAt: clock.now(), expires: clock.now() + 1000 });
    const root = (keyId: string) => ({
      keyId, certificate: randomBytes(30), crossCertificate: null, sealedKey: randomBytes(40), deviceCaCertificate: randomBytes(30), createdAt: clock.now(),
    });

    test('trust: versions are consecutive from 1; a gap or a second N+1 is CONFLICT and writes nothing', async () => {
      assert.equal(await store.trust.latest(), undefined);
      await store.trust.append({ bundle: bundle(1), audit: audit('trust.bundle') });
      const auditBefore = await store.audit.count();
      for (const v of [1, 3]) {
        const err = await store.trust.append({ bundle: bundle(v), root: root(`gap-${v}`), audit: audit('trust.bundle') }).catch((e: unknown) => e);
        assert.ok(err instanceof FleetkeyError && err.code === 'CONFLICT', `version ${v}`);
      }
      assert.equal(await store.audit.count(), auditBefore, 'no audit record for a refused append');
      assert.deepEqual(await store.trust.roots(), [], 'no root row from a refused append');
      const r2 = root('k2');
      await store.trust.append({ bundle: bundle(2), root: r2, audit: audit('trust.rotate') });
      assert.deepEqual((await store.trust.list()).map((b) => b.version), [1, 2]);
      assert.deepEqual(await store.trust.get(2), bundle(2));
      assert.equal((await store.trust.latest())?.version, 2);
      assert.deepEqual(await store.trust.roots(), [r2]);
    });
  });
}
