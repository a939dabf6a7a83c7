// Factory kits across root rotation and recovery (ADR 0026), through the real owner API on a
// running hub that follows the CLI's trust writes live. New kits are certified by the root in
// service; import accepts a kit certified by any root since the latest recovery, and never one
// that `hub recover` dropped. Each refusal asserts the code, that nothing changed, and the audit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { computePin, fromPem } from '@fleetkey/protocol';
import { openTrustAdmin, type TrustAdmin } from '../../src/trust/admin.js';
import { recoverRoot, rotateRoot } from '../../src/trust/bundles.js';
import { createKit, importState, lineDevice, lineManifest, type LineDevice, type TestKit } from '../helpers/factory-line.js';
import { startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';

const ORG = 'Rotating Works';

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !cond()) await new Promise((r) => setTimeout(r, 100));
  return cond();
}

const issuedBy = (kit: TestKit, rootPem: string): boolean => new X509Certificate(kit.caDer).verify(new X509Certificate(rootPem).publicKey);

describe('factory kits after root rotation and recovery', () => {
  let t: TestHub;
  let admin: TrustAdmin;
  let owner: TestOwner;
  const rootPems: string[] = [];

  before(async () => {
    t = await startTestHub({ FLEETKEY_TLS_RENEW_CHECK: '1' });
    admin = await openTrustAdmin(t.hub.config);
    owner = await t.owner(ORG);
    rootPems.push(t.hub.rootCertPem);
  });
  after(async () => {
    await admin.close();
    await t.stop();
  });

  const made = new Map<TestKit, LineDevice[]>();
  /** The kit's line made `more` devices: its manifest holds every device it ever made. */
  const manifestWith = (kit: TestKit, more: number) => {
    const devices = made.get(kit) ?? [];
    for (let i = 0; i < more; i++) devices.push(lineDevice(kit, devices.length + 1));
    made.set(kit, devices);
    return lineManifest(kit, devices);
  };
  const importOk = async (kit: TestKit, more: number): Promise<void> => {
    const r = await t.api('POST', '/api/v1/batches/import', await manifestWith(kit, more), owner.token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.imported, more);
  };

  let kitBeforeRotation: TestKit;
  let kitAfterRotation: TestKit;

  test('a kit made after rotate-root is certified by the new root, and its response names the new root and pin', async () => {
    kitBeforeRotation = await createKit(t, owner.token, ORG, 10);
    assert.ok(issuedBy(kitBeforeRotation, rootPems[0]!));
    await rotateRoot(admin.context, { overlapMs: 1500, algorithm: 'p384' });
    assert.ok(await waitFor(() => t.hub.trustVersion === 2, 10_000), 'the hub applied v2');
    rootPems.push(t.hub.rootCertPem);
    const r = await t.api('POST', '/api/v1/factory-kits', await kitRequest(), owner.token);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.pin, t.hub.pin);
    assert.equal(r.body.rootCertificatePem, rootPems[1]);
    kitAfterRotation = await createKit(t, owner.token, ORG, 10);
    assert.ok(issuedBy(kitAfterRotation, rootPems[1]!), 'certified by the root in service');
    assert.ok(!issuedBy(kitAfterRotation, rootPems[0]!), 'not by the start-time root');
    const kitRoot = new X509Certificate(fromPem(String(r.body.rootCertificatePem), 'CERTIFICATE'));
    assert.equal(computePin(kitRoot.publicKey.export({ type: 'spki', format: 'der' })), t.hub.pin);
  });

  test('import accepts the new kit, and the kit of the planned-retired root after its overlap ended', async () => {
    await importOk(kitAfterRotation, 2);
    await new Promise((r) => setTimeout(r, 1600)); // past the overlap: the old root is no longer served
    await importOk(kitBeforeRotation, 3);
  });

  test('attack: a kit certified by the root that hub recover dropped cannot import (MANIFEST_INVALID), nothing changes', async () => {
    const stolenRootKit = await createKit(t, owner.token, ORG, 10); // certified by root 2, which is then "stolen"
    assert.ok(issuedBy(stolenRootKit, rootPems[1]!));
    const recoveryKeyPem = readFileSync(t.hub.recoveryKeyFile!, 'utf8');
    await recoverRoot(admin.context, { recoveryKeyPem, algorithm: 'p384', saveRecoveryKey: async () => undefined });
    assert.ok(await waitFor(() => t.hub.trustVersion === 3, 10_000), 'the hub applied the recovery bundle');
    for (const kit of [stolenRootKit, kitBeforeRotation]) {
      const before = importState(t, kit.kitId);
      const auditBefore = await t.hub.store.audit.count();
      const r = await t.api('POST', '/api/v1/batches/import', await manifestWith(kit, 1), owner.token);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'MANIFEST_INVALID');
      assert.equal(importState(t, kit.kitId), before, 'no device, no certificate, kit counter unchanged');
      const last = (await t.hub.store.audit.list({ afterSeq: 0, limit: 100_000 })).at(-1)!;
      assert.equal(await t.hub.store.audit.count(), auditBefore + 1);
      assert.deepEqual([last.type, last.result, last.code], ['factory.import', 'failure', 'MANIFEST_INVALID']);
    }
  });

  test('a kit made after the recovery is certified by the recovery root and imports', async () => {
    const kit = await createKit(t, owner.token, ORG, 10);
    assert.ok(issuedBy(kit, t.hub.rootCertPem));
    await importOk(kit, 1);
  });
});

async function kitRequest(): Promise<Record<string, unknown>> {
  const { generateKeyPairSync, sign } = await import('node:crypto');
  const { buildCsr } = await import('@fleetkey/protocol');
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csr = await buildCsr({ spki: publicKey.export({ type: 'spki', format: 'der' }), subject: [['CN', 'kit']], algorithm: 'p256', sign: async (d) => sign('sha256', d, privateKey) });
  return { orgName: ORG, count: 1, validForSeconds: 3600, csr: csr.toString('base64') };
}
