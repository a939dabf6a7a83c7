// Standard MQTT clients across a root rotation (ADR 0026, docs/operations-rotation.md): what an
// operator must do for mosquitto_pub/mosquitto_sub, which trust the hub through a CA file.
// The documented procedure: at rotate-root, append the new root (`fleetkey hub root-cert`) to
// the clients' CA file; a file with both roots verifies the hub during and after the overlap.
// A client left with only the old root file is refused after the overlap and stores nothing.
// A subscription open across the rotation stays up and receives the new bundle.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTrustAdmin, type TrustAdmin } from '../../src/trust/admin.js';
import { rotateRoot } from '../../src/trust/bundles.js';
import { MosquittoSub, enrollDevice, run, type RunResult } from '../helpers/mqtt-peers.js';
import { startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return cond();
}

describe('mosquitto clients across a root rotation', () => {
  let t: TestHub;
  let admin: TrustAdmin;
  let owner: TestOwner;
  let device: Awaited<ReturnType<typeof enrollDevice>>;
  let sub: MosquittoSub;
  let subExited = false;
  const file = (name: string): string => join(t.dir, name);

  /** mosquitto_pub of `message` trusting the hub through `caFile`. */
  const pub = (caFile: string, message: string): Promise<RunResult> => run('mosquitto_pub', [
    '-h', '127.0.0.1', '-p', String(t.hub.mqttPort), '--cafile', caFile, '--cert', device.certPath, '--key', device.keyPath,
    '-i', device.deviceId, '-q', '1', '-t', `devices/${device.deviceId}/telemetry`, '-m', message,
  ]);
  const stored = async (message: string): Promise<number> =>
    (await t.hub.store.telemetry.list(owner.tenantId, device.deviceId, { limit: 1000 })).filter((r) => r.payload.toString() === message).length;

  before(async () => {
    t = await startTestHub({ FLEETKEY_TLS_RENEW_CHECK: '1' });
    admin = await openTrustAdmin(t.hub.config);
    owner = await t.owner('Mosquitto Rotation');
    device = await enrollDevice(t, owner.token, 'mosq-rot');
    writeFileSync(file('old-root.pem'), t.hub.rootCertPem);
    // Another device: a client id is one session, so the publishes below would take this one over.
    sub = new MosquittoSub(t, await enrollDevice(t, owner.token, 'mosq-sub'), ['$fleetkey/trust'], 60_000); // CA file: the old root
    void sub.exited.then(() => { subExited = true; });
    assert.ok(await sub.waitFor(/\$fleetkey\/trust .*"version":1/, 10_000), 'retained v1 on subscribe');
  });
  after(async () => {
    sub.stop();
    await admin.close();
    await t.stop();
  });

  test('during the overlap a CA file with both roots verifies the hub; the open subscription receives v2 and stays up', async () => {
    await rotateRoot(admin.context, { overlapMs: 3000, algorithm: 'p384' });
    assert.ok(await waitFor(() => t.hub.trustVersion === 2, 10_000));
    writeFileSync(file('new-root.pem'), t.hub.rootCertPem);
    writeFileSync(file('both-roots.pem'), t.hub.rootCertPem + (await import('node:fs')).readFileSync(file('old-root.pem'), 'utf8'));
    assert.ok(await sub.waitFor(/\$fleetkey\/trust .*"version":2/, 10_000), 'the new bundle reached the live subscription');
    const r = await pub(file('both-roots.pem'), 'both roots, overlap');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await stored('both roots, overlap'), 1);
  });

  test('after the overlap: the old root file alone is refused and nothing is stored; both roots and the new root work; the subscription is still up', async () => {
    assert.ok(await waitFor(() => t.hub.deviceCaCerts.length === 1, 15_000), 'overlap over');
    const refused = await pub(file('old-root.pem'), 'old root only, after overlap');
    assert.notEqual(refused.status, 0, 'mosquitto_pub cannot verify the hub with the retired root alone');
    assert.match(refused.stderr, /certificate verify failed|Error|TLS/i);
    assert.equal(await stored('old root only, after overlap'), 0, 'nothing reached the store');
    for (const [name, message] of [['both-roots.pem', 'both roots, after'], ['new-root.pem', 'new root, after']] as const) {
      const r = await pub(file(name), message);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(await stored(message), 1);
    }
    assert.equal(subExited, false, 'the mosquitto_sub opened before the rotation (old root file) is still running');
    assert.equal(sub.lines.filter((l) => /CONNACK/.test(l.text)).length, 1, 'on its first connection: it never had to reconnect');
  });
});
