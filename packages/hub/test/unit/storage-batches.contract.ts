/**
 * The storage contract of the batches repository (ADRs 0014, 0015; invariants in
 * storage/batch-types.ts). Run by `runStoreContract` for every engine, on the store it opened.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FleetkeyError, type ManualClock } from '@fleetkey/protocol';
import type { AuditEventInput, Batch, CertificateRecord, FactoryKitRecord, IssuedBatchItem, NewBatchItem, Store } from '../../src/storage/types.js';

const audit = (type: string, tenantId: string | null = null): AuditEventInput => ({ category: 'test', type, result: 'success', actor: 'operator', source: 'cli', tenantId });
const isCode = (code: string) => (e: unknown): boolean => e instanceof FleetkeyError && e.code === code;

function newBatch(id: string, tenantId: string, count: number, now: number): { batch: Batch; items: NewBatchItem[] } {
  const batch: Batch = {
    id, tenantId, label: 'line', mode: 'hub-keys', keyAlgorithm: 'p256', count, done: 0, status: 'running', failureCode: null,
    createdAt: now, createdBy: 'owner:x', completedAt: null, downloads: 0, passphraseSealed: null,
  };
  const items = Array.from({ length: count }, (_, i) => ({ idx: i + 1, deviceId: `${id}-${String(i + 1).padStart(6, '0')}`, csr: null }));
  return { batch, items };
}

function certificate(tenantId: string, deviceId: string, now: number, spki = randomBytes(32).toString('hex')): CertificateRecord {
  return {
    serial: randomBytes(16).toString('hex'), deviceId, tenantId, spkiSha256: spki, keyAlgorithm: 'p256', notBefore: now, notAfter: now + 1000,
    issuedAt: now, der: randomBytes(40), revokedAt: null, revocationReason: null,
  };
}

const issued = (tenantId: string, items: readonly NewBatchItem[], now: number): IssuedBatchItem[] =>
  items.map((it) => ({ idx: it.idx, certificate: certificate(tenantId, it.deviceId, now), keySealed: randomBytes(24) }));

function kit(id: string, tenantId: string, now: number): FactoryKitRecord {
  return { id, tenantId, certificate: randomBytes(50), maxCount: 10, windowStart: now, windowEnd: now + 86_400_000, createdAt: now, createdBy: 'owner:x', importedCounter: 0, importedDigest: null };
}

export function runBatchRepoContract(name: string, ctx: () => { store: Store; clock: ManualClock; tenantId: string; otherTenantId: string }): void {
  describe(`Store contract (batches): ${name}`, () => {
    test('a batch is tenant-scoped, listed as running, and hands out its pending items in index order', async () => {
      const { store, clock, tenantId, otherTenantId } = ctx();
      const { batch, items } = newBatch('bt-contract-a', tenantId, 5, clock.now());
      await store.batches.create(batch, items, audit('batch.create', tenantId));
      assert.deepEqual(await store.batches.get(tenantId, batch.id), batch);
      assert.equal(await store.batches.get(otherTenantId, batch.id), undefined);
      assert.ok((await store.batches.listRunning()).some((b) => b.id === batch.id));
      assert.deepEqual((await store.batches.pendingItems(batch.id, 3)).map((i) => i.idx), [1, 2, 3]);
      await assert.rejects(store.batches.create(batch, items, audit('batch.create', tenantId)), isCode('CONFLICT'));
    });

    test('recordIssued registers a chunk in one unit; the last chunk completes the batch; an issued item cannot be issued again', async () => {
      const { store, clock, tenantId } = ctx();
      const { batch, items } = newBatch('bt-contract-b', tenantId, 4, clock.now());
      await store.batches.create(batch, items, audit('batch.create', tenantId));
      const first = issued(tenantId, items.slice(0, 2), clock.now());
      assert.equal(await store.batches.recordIssued(tenantId, batch.id, first, audit('batch.issue')), true);
      assert.deepEqual([(await store.batches.get(tenantId, batch.id))?.done, (await store.batches.pendingItems(batch.id, 10)).map((i) => i.idx)], [2, [3, 4]]);
      assert.equal((await store.devices.get(tenantId, items[0]!.deviceId))?.status, 'pre-provisioned');
      // A resumed job re-signing an item already recorded: refused, nothing written.
      const again = issued(tenantId, items.slice(1, 3), clock.now());
      await assert.rejects(store.batches.recordIssued(tenantId, batch.id, again, audit('batch.issue')), (e: unknown) => e instanceof FleetkeyError);
      assert.equal(await store.devices.get(tenantId, items[2]!.deviceId), undefined, 'the chunk rolled back as a whole');
      assert.equal((await store.devices.certificates(tenantId, items[1]!.deviceId)).length, 1);
      assert.equal(await store.batches.recordIssued(tenantId, batch.id, issued(tenantId, items.slice(2), clock.now()), audit('batch.issue')), true);
      const done = await store.batches.get(tenantId, batch.id);
      assert.deepEqual([done?.status, done?.done, done?.completedAt], ['done', 4, clock.now()]);
    });

    test('a chunk with a key held by another device rolls back whole (KEY_ALREADY_ENROLLED); a cancelled batch records nothing', async () => {
      const { store, clock, tenantId } = ctx();
      const { batch, items } = newBatch('bt-contract-c', tenantId, 3, clock.now());
      await store.batches.create(batch, items, audit('batch.create', tenantId));
      const taken = await store.devices.certificates(tenantId, 'bt-contract-b-000001');
      const chunk = issued(tenantId, items, clock.now());
      const bad = chunk.map((c, i) => (i === 2 ? { ...c, certificate: certificate(tenantId, c.certificate.deviceId, clock.now(), taken[0]!.spkiSha256) } : c));
      await assert.rejects(store.batches.recordIssued(tenantId, batch.id, bad, audit('batch.issue')), isCode('KEY_ALREADY_ENROLLED'));
      assert.equal(await store.devices.get(tenantId, items[0]!.deviceId), undefined);
      assert.equal((await store.batches.get(tenantId, batch.id))?.done, 0);
      const revoked = await store.batches.revokeUnused(tenantId, batch.id, 'unspecified', clock.now(), audit('batch.revoke'));
      assert.equal(revoked?.cancelled, true);
      assert.equal(await store.batches.recordIssued(tenantId, batch.id, chunk, audit('batch.issue')), false);
      assert.equal(await store.devices.get(tenantId, items[0]!.deviceId), undefined);
    });

    test('bundle claims: not ready while running, counted up to maxDownloads, keys and passphrase erased with the last', async () => {
      const { store, clock, tenantId, otherTenantId } = ctx();
      const { batch, items } = newBatch('bt-contract-d', tenantId, 2, clock.now());
      await store.batches.create({ ...batch, passphraseSealed: randomBytes(20) }, items, audit('batch.create', tenantId));
      assert.deepEqual(await store.batches.claimBundle(tenantId, batch.id, 2, audit('dl')), { ok: false, reason: 'not-ready' });
      const chunk = issued(tenantId, items, clock.now());
      await store.batches.recordIssued(tenantId, batch.id, chunk, audit('batch.issue'));
      assert.deepEqual(await store.batches.claimBundle(otherTenantId, batch.id, 2, audit('dl')), { ok: false, reason: 'not-found' });
      const one = await store.batches.claimBundle(tenantId, batch.id, 2, audit('dl'));
      assert.ok(one.ok);
      assert.deepEqual(one.items.map((i) => [i.deviceId, i.certificateDer, i.keySealed]), chunk.map((c) => [c.certificate.deviceId, c.certificate.der, c.keySealed]));
      const two = await store.batches.claimBundle(tenantId, batch.id, 2, audit('dl'));
      assert.ok(two.ok && two.items.every((i) => i.keySealed !== null), 'the second of two downloads still has the keys');
      assert.deepEqual(await store.batches.claimBundle(tenantId, batch.id, 2, audit('dl')), { ok: false, reason: 'gone' });
      const after = await store.batches.get(tenantId, batch.id);
      assert.deepEqual([after?.downloads, after?.passphraseSealed], [2, null]);
    });

    test('activation flips pre-provisioned → active once; revokeUnused takes only the never-connected, and is tenant-scoped', async () => {
      const { store, clock, tenantId, otherTenantId } = ctx();
      const { batch, items } = newBatch('bt-contract-e', tenantId, 3, clock.now());
      await store.batches.create(batch, items, audit('batch.create', tenantId));
      await store.batches.recordIssued(tenantId, batch.id, issued(tenantId, items, clock.now()), audit('batch.issue'));
      assert.equal(await store.batches.activateDevice(tenantId, items[0]!.deviceId, audit('device.activate')), true);
      assert.equal(await store.batches.activateDevice(tenantId, items[0]!.deviceId, audit('device.activate')), false);
      assert.equal(await store.batches.activateDevice(otherTenantId, items[1]!.deviceId, audit('device.activate')), false);
      assert.equal(await store.batches.revokeUnused(otherTenantId, batch.id, 'unspecified', clock.now(), audit('batch.revoke')), undefined);
      assert.equal((await store.devices.get(tenantId, items[1]!.deviceId))?.status, 'pre-provisioned');
      const r = await store.batches.revokeUnused(tenantId, batch.id, 'cessationOfOperation', clock.now(), audit('batch.revoke'));
      assert.deepEqual([r?.cancelled, r?.devices.map((d) => d.deviceId)], [false, [items[1]!.deviceId, items[2]!.deviceId]]);
      assert.deepEqual((await Promise.all(items.map((i) => store.devices.get(tenantId, i.deviceId)))).map((d) => d?.status), ['active', 'revoked', 'revoked']);
    });

    test('fail marks only a running batch failed, with its code', async () => {
      const { store, clock, tenantId } = ctx();
      const { batch, items } = newBatch('bt-contract-f', tenantId, 1, clock.now());
      await store.batches.create(batch, items, audit('batch.create', tenantId));
      await store.batches.fail(batch.id, 'KEY_ALREADY_ENROLLED', audit('batch.fail'));
      await store.batches.fail(batch.id, 'INTERNAL', audit('batch.fail'));
      const b = await store.batches.get(tenantId, batch.id);
      assert.deepEqual([b?.status, b?.failureCode], ['failed', 'KEY_ALREADY_ENROLLED']);
      assert.ok(!(await store.batches.listRunning()).some((x) => x.id === batch.id));
    });

    test('factory import is one unit conditional on the counter: a moved counter or a taken key changes nothing', async () => {
      const { store, clock, tenantId } = ctx();
      const k = kit('fk-00000000c1', tenantId, clock.now());
      await store.batches.createKit(k, audit('factory_kit.create', tenantId));
      assert.deepEqual(await store.batches.getKit(k.id), k);
      assert.ok((await store.batches.listKits()).some((x) => x.id === k.id));
      const device = (id: string, spki?: string) => ({
        device: { id, tenantId, status: 'pre-provisioned' as const, createdAt: clock.now(), enrolledVia: 'factory', claimTokenId: null, label: null, currentSerial: null },
        certificate: certificate(tenantId, id, clock.now(), spki),
      });
      const input = { kitId: k.id, tenantId, previousCounter: 0, counter: 2, digest: 'd1', devices: [device(`${k.id}-000001`), device(`${k.id}-000002`)], audit: audit('factory.import') };
      await assert.rejects(store.batches.importFactory({ ...input, previousCounter: 1 }), isCode('MANIFEST_STALE'));
      const held = (await store.devices.certificates(tenantId, 'bt-contract-e-000001'))[0]!.spkiSha256;
      await assert.rejects(store.batches.importFactory({ ...input, devices: [input.devices[0]!, device(`${k.id}-000002`, held)] }), isCode('MANIFEST_DUPLICATE'));
      assert.equal(await store.devices.get(tenantId, `${k.id}-000001`), undefined, 'nothing of the refused import remains');
      assert.equal((await store.batches.getKit(k.id))?.importedCounter, 0);
      await store.batches.importFactory(input);
      assert.deepEqual([(await store.batches.getKit(k.id))?.importedCounter, (await store.batches.getKit(k.id))?.importedDigest], [2, 'd1']);
      assert.equal((await store.devices.get(tenantId, `${k.id}-000002`))?.status, 'pre-provisioned');
      await assert.rejects(store.batches.importFactory(input), isCode('MANIFEST_STALE'), 'the same counter step cannot apply twice');
    });
  });
}
