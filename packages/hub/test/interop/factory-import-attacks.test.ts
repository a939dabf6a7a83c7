/**
 * Manifest attacks at import (ADR 0015), through the real owner API. The test holds the kit key,
 * so every forged manifest carries a valid kit signature: only the import check under test can
 * stop it. Each attack asserts the coded error, that no device was registered, that stored state
 * (devices, certificates, the kit's imported counter and digest) did not change, and that the
 * refusal is audited with its code. Replay into another organisation: factory-cli.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { signManifest, type SignedManifest } from '@fleetkey/protocol';
import { createKit, importState, lineDevice, lineManifest, type LineDevice, type TestKit } from '../helpers/factory-line.js';
import { enrollDevice } from '../helpers/mqtt-peers.js';
import { startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';

const HOUR = 3_600_000;

describe('factory manifest attacks at import', () => {
  let t: TestHub;
  let owner: TestOwner;

  before(async () => {
    t = await startTestHub();
    owner = await t.owner('Import Works');
  });
  after(async () => t.stop());

  const kit = (count = 10): Promise<TestKit> => createKit(t, owner.token, 'Import Works', count);

  /** Imports `manifest`, expecting `code`; asserts nothing changed and the refusal is audited. */
  async function refused(k: TestKit, manifest: SignedManifest | Record<string, unknown>, code: string, status: number): Promise<{ details?: Record<string, unknown> }> {
    const before = importState(t, k.kitId);
    const auditBefore = await t.hub.store.audit.count();
    const r = await t.api('POST', '/api/v1/batches/import', manifest, owner.token);
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(r.body.error.code, code);
    assert.equal(importState(t, k.kitId), before, 'stored state unchanged: no device, no certificate, kit counter and digest as before');
    const audit = await t.hub.store.audit.list({ afterSeq: 0, limit: 100_000 });
    const last = audit.at(-1)!;
    assert.equal(await t.hub.store.audit.count(), auditBefore + 1);
    assert.deepEqual([last.type, last.result, last.code], ['factory.import', 'failure', code]);
    return r.body.error;
  }

  const imported = async (k: TestKit, devices: readonly LineDevice[]): Promise<void> => {
    const r = await t.api('POST', '/api/v1/batches/import', await lineManifest(k, devices), owner.token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };

  test('attack: two entries with the same serial → MANIFEST_DUPLICATE, nothing imported', async () => {
    const k = await kit();
    const first = lineDevice(k, 1);
    const twin = lineDevice(k, 2, { serial: Buffer.from(first.entry.serial, 'hex') });
    const e = await refused(k, await lineManifest(k, [first, twin]), 'MANIFEST_DUPLICATE', 409);
    assert.equal(e.details?.index, 2);
  });

  test('attack: two entries certifying the same public key → MANIFEST_DUPLICATE, nothing imported', async () => {
    const k = await kit();
    const first = lineDevice(k, 1);
    const shared = lineDevice(k, 3, { privateKey: first.privateKey });
    const e = await refused(k, await lineManifest(k, [first, lineDevice(k, 2), shared]), 'MANIFEST_DUPLICATE', 409);
    assert.equal(e.details?.index, 3);
  });

  test('attack: a factory entry certifying the key of an already-registered device → MANIFEST_DUPLICATE, that device untouched', async () => {
    const est = await enrollDevice(t, owner.token, 'est-victim');
    const k = await kit();
    const stolen = lineDevice(k, 1, { privateKey: createPrivateKey(readFileSync(est.keyPath)) });
    await refused(k, await lineManifest(k, [stolen]), 'MANIFEST_DUPLICATE', 409);
    const victim = await t.hub.store.devices.certificates(owner.tenantId, est.deviceId);
    assert.deepEqual(victim.map((c) => [c.serial, c.revokedAt]), [[est.serial, null]]);
  });

  test('attack: a factory entry reusing the serial of an already-registered certificate → MANIFEST_DUPLICATE', async () => {
    const est = await enrollDevice(t, owner.token, 'est-serial');
    const [recorded] = await t.hub.store.devices.certificates(owner.tenantId, est.deviceId);
    const k = await kit();
    await refused(k, await lineManifest(k, [lineDevice(k, 1, { serial: Buffer.from(recorded!.serial, 'hex') })]), 'MANIFEST_DUPLICATE', 409);
  });

  test('attack: an older manifest replayed after a newer import (stale counter) → MANIFEST_STALE, nothing changes', async () => {
    const k = await kit();
    const devices = [lineDevice(k, 1), lineDevice(k, 2), lineDevice(k, 3)];
    const older = await lineManifest(k, devices.slice(0, 2));
    await imported(k, devices);
    await refused(k, older, 'MANIFEST_STALE', 409);
  });

  test('attack: a forked manifest (same counter, an imported entry swapped for another certificate) → MANIFEST_STALE', async () => {
    const k = await kit();
    const devices = [lineDevice(k, 1), lineDevice(k, 2)];
    await imported(k, devices);
    await refused(k, await lineManifest(k, [devices[0]!, lineDevice(k, 2)]), 'MANIFEST_STALE', 409);
    await refused(k, await lineManifest(k, [devices[0]!, lineDevice(k, 2), lineDevice(k, 3)]), 'MANIFEST_STALE', 409);
  });

  test('attack: a kit-signed manifest with more entries than the kit count → FACTORY_LIMIT_EXCEEDED', async () => {
    const k = await kit(2);
    await refused(k, await lineManifest(k, [lineDevice(k, 1), lineDevice(k, 2), lineDevice(k, 3)]), 'FACTORY_LIMIT_EXCEEDED', 403);
  });

  test('attack: kit-signed certificates dated after the window closes or before it opens → FACTORY_LIMIT_EXCEEDED', async () => {
    const k = await kit();
    const late = lineDevice(k, 2, { notBefore: k.windowEnd + HOUR });
    const e = await refused(k, await lineManifest(k, [lineDevice(k, 1), late]), 'FACTORY_LIMIT_EXCEEDED', 403);
    assert.equal(e.details?.index, 2);
    await refused(k, await lineManifest(k, [lineDevice(k, 1, { notBefore: k.windowStart - HOUR })]), 'FACTORY_LIMIT_EXCEEDED', 403);
  });

  test('attack: a manifest whose signature was altered → MANIFEST_INVALID', async () => {
    const k = await kit();
    const m = await lineManifest(k, [lineDevice(k, 1)]);
    const sig = Buffer.from(m.signature, 'base64');
    sig[sig.length - 3] = sig[sig.length - 3]! ^ 0x01;
    await refused(k, { ...m, signature: sig.toString('base64') }, 'MANIFEST_INVALID', 400);
  });

  test('attack: a manifest signed by a device key posing as the kit (not a kit of this hub) → MANIFEST_INVALID', async () => {
    const k = await kit();
    const impostor = lineDevice(k, 1);
    const good = await lineManifest(k, [lineDevice(k, 2)]);
    const body = JSON.parse(Buffer.from(good.body, 'base64').toString('utf8'));
    const forged = await signManifest(body, { algorithm: 'p256', sign: async (d) => sign('sha256', d, impostor.privateKey) }, Buffer.from(impostor.entry.certificate, 'base64'));
    await refused(k, forged, 'MANIFEST_INVALID', 400);
  });
});
