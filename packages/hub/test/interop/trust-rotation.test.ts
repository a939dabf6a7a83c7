// Root rotation and recovery on a running hub (ADR 0021): the CLI's store write is applied live,
// openssl and mosquitto clients holding either root file keep working during the overlap, the old
// chain is gone after it, and the recovery bundle drops the stolen root. Real peers, 127.0.0.1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FleetkeyError, activePins, decodeBundle, verifyInitial, verifyNext, type TrustBundle } from '@fleetkey/protocol';
import { openTrustAdmin, type TrustAdmin } from '../../src/trust/admin.js';
import { recoverRoot, rotateRoot } from '../../src/trust/bundles.js';
import { enrollDevice, mosquittoPub } from '../helpers/mqtt-peers.js';
import { startTestHub, type TestHub } from '../helpers/test-hub.js';
import { opensslServedCertificate } from '../helpers/tls-peers.js';

const OVERLAP_MS = 3000;

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

describe('hub root rotation and recovery, live', () => {
  let t: TestHub;
  let admin: TrustAdmin;
  let device: Awaited<ReturnType<typeof enrollDevice>>;
  const roots: string[] = [];
  const bundles: TrustBundle[] = [];
  const rootFile = (i: number): string => join(t.dir, `root-${i}.pem`);

  before(async () => {
    t = await startTestHub({ FLEETKEY_TLS_RENEW_CHECK: '1' });
    admin = await openTrustAdmin(t.hub.config);
    const owner = await t.owner('Rotation Org');
    device = await enrollDevice(t, owner.token, 'rot-dev');
    roots.push(t.hub.rootCertPem);
    writeFileSync(rootFile(0), roots[0]!);
  });
  after(async () => {
    await admin.close();
    await t.stop();
  });

  test('v1 is served at /latest and /1 without authentication, cacheable, and verifies against the pin', async () => {
    const latest = await t.request('GET', '/.well-known/fleetkey/trust/latest');
    assert.equal(latest.status, 200);
    assert.match(String(latest.headers['cache-control']), /max-age=60/);
    const one = await t.request('GET', '/.well-known/fleetkey/trust/1');
    assert.match(String(one.headers['cache-control']), /immutable/);
    assert.equal(one.text, latest.text);
    bundles.push(verifyInitial([t.hub.pin], Buffer.from(one.text), Date.now()));
    assert.equal((await t.request('GET', '/.well-known/fleetkey/trust/2')).status, 404);
    assert.equal((await t.request('GET', '/.well-known/fleetkey/trust/01')).status, 404);
  });

  test('rotate-root: the running hub serves v2 and a chain that both root files verify; old device certificates still connect', async () => {
    const previousPin = t.hub.pin;
    const r = await rotateRoot(admin.context, { overlapMs: OVERLAP_MS, algorithm: 'p384' });
    assert.ok(await waitFor(() => t.hub.trustVersion === 2, 10_000), 'the hub applied v2');
    assert.equal(t.hub.pin, r.pin);
    const v2 = verifyNext(bundles[0]!, Buffer.from((await t.request('GET', '/.well-known/fleetkey/trust/2')).text), Date.now());
    bundles.push(v2);
    assert.deepEqual(activePins(v2, Date.now()), [r.pin, previousPin]);
    roots.push(t.hub.rootCertPem);
    writeFileSync(rootFile(1), roots[1]!);
    for (const port of [t.hub.port, t.hub.mqttPort]) {
      assert.equal((await opensslServedCertificate(port, { caFile: rootFile(0) })).verifyCode, 0, `old root file, port ${port}`);
      assert.equal((await opensslServedCertificate(port, { caFile: rootFile(1) })).verifyCode, 0, `new root file, port ${port}`);
    }
    const pub = await mosquittoPub(t, device, `devices/${device.deviceId}/telemetry`, 'during overlap');
    assert.equal(pub.status, 0, pub.stderr);
  });

  test('after the overlap the old root chain is no longer served; the new root file and old device certificates work', async () => {
    assert.ok(await waitFor(async () => (await opensslServedCertificate(t.hub.port, { caFile: rootFile(0) })).verifyCode !== 0, OVERLAP_MS + 10_000));
    assert.equal((await opensslServedCertificate(t.hub.mqttPort, { caFile: rootFile(0) })).verifyCode !== 0, true);
    assert.equal((await opensslServedCertificate(t.hub.port, { caFile: rootFile(1) })).verifyCode, 0);
    writeFileSync(t.rootPemPath, roots[1]!);
    const pub = await mosquittoPub(t, device, `devices/${device.deviceId}/telemetry`, 'after overlap');
    assert.equal(pub.status, 0, pub.stderr);
  });

  test('recovery with a key that is not the recovery key is AUTH_FAILED and publishes nothing', async () => {
    const wrong = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const rootsBefore = (await admin.store.trust.roots()).length;
    let saved = false;
    const err = await recoverRoot(admin.context, { recoveryKeyPem: wrong, algorithm: 'p384', saveRecoveryKey: async () => { saved = true; } }).catch((e: unknown) => e);
    assert.ok(err instanceof FleetkeyError && err.code === 'AUTH_FAILED');
    assert.equal((await admin.store.trust.latest())?.version, 2);
    assert.equal((await admin.store.trust.roots()).length, rootsBefore);
    assert.equal(saved, false, 'no new recovery key was handed out');
  });

  test('recover: the offline key drops the stolen root at once; the hub serves the new root only', async () => {
    const { readFileSync } = await import('node:fs');
    const recoveryKeyPem = readFileSync(t.hub.recoveryKeyFile!, 'utf8');
    let newKey = '';
    const stolenPin = t.hub.pin;
    const r = await recoverRoot(admin.context, { recoveryKeyPem, algorithm: 'p384', saveRecoveryKey: async (pem) => { newKey = pem; } });
    assert.match(newKey, /BEGIN PRIVATE KEY/);
    assert.ok(await waitFor(() => t.hub.trustVersion === 3, 10_000));
    const v3 = verifyNext(bundles[1]!, Buffer.from((await t.request('GET', '/.well-known/fleetkey/trust/latest')).text), Date.now());
    assert.deepEqual(activePins(v3, Date.now()), [r.pin]);
    assert.ok(!activePins(v3, Date.now()).includes(stolenPin));
    writeFileSync(rootFile(2), t.hub.rootCertPem);
    assert.notEqual((await opensslServedCertificate(t.hub.port, { caFile: rootFile(1) })).verifyCode, 0, 'the stolen root no longer verifies the hub');
    assert.equal((await opensslServedCertificate(t.hub.port, { caFile: rootFile(2) })).verifyCode, 0);
    writeFileSync(t.rootPemPath, t.hub.rootCertPem);
    const pub = await mosquittoPub(t, device, `devices/${device.deviceId}/telemetry`, 'after recovery');
    assert.equal(pub.status, 0, pub.stderr);
    assert.deepEqual((await admin.store.trust.list()).map((b) => decodeBundle(b.bytes).content.version), [1, 2, 3]);
  });
});
