/**
 * The broker and factory-issued identities (ADR 0015), with mosquitto_pub as the device: a
 * certificate signed on an air-gapped line by the organisation's kit is refused by the broker
 * before the signed manifest is imported (the kit sub-CA is trusted, but only recorded
 * certificates authenticate), and accepted — the publish stored, the device active — after it.
 * A certificate of a kit's device that was never in any imported manifest stays refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createKit, lineDevice, lineManifest, type LineDevice, type TestKit } from '../helpers/factory-line.js';
import { mosquittoPub, writeCredential, type PeerFiles } from '../helpers/mqtt-peers.js';
import { startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';

describe('broker and factory-issued device certificates', () => {
  let t: TestHub;
  let owner: TestOwner;
  let kit: TestKit;
  let devices: LineDevice[];
  const files = (d: LineDevice, name: string): Required<PeerFiles> =>
    writeCredential(t.dir, name, { deviceId: d.entry.deviceId, certPem: d.certPem + kit.caPem, keyPem: d.keyPem });

  before(async () => {
    t = await startTestHub();
    owner = await t.owner('Line Works');
    kit = await createKit(t, owner.token, 'Line Works', 5);
    devices = [lineDevice(kit, 1), lineDevice(kit, 2), lineDevice(kit, 3)];
  });
  after(async () => t.stop());

  test('attack: a factory certificate used before its manifest is imported → refused by the broker, nothing stored', async () => {
    const d = devices[0]!;
    const pub = await mosquittoPub(t, files(d, 'before'), `devices/${d.entry.deviceId}/telemetry`, '{"boot":0}');
    assert.notEqual(pub.status, 0, 'mosquitto_pub must fail to connect');
    assert.match(pub.stderr, /not authori[sz]ed/, 'refused at CONNECT (CONNACK 5), past the TLS handshake');
    assert.equal(pub.timedOut, false);
    assert.equal(await t.hub.store.devices.get(owner.tenantId, d.entry.deviceId), undefined, 'no device was created by the attempt');
    assert.equal(await t.hub.store.telemetry.count(owner.tenantId, d.entry.deviceId), 0, 'nothing stored');
  });

  test('after import the same certificate connects with mosquitto_pub, the publish is stored, the device becomes active', async () => {
    const imported = await t.api('POST', '/api/v1/batches/import', await lineManifest(kit, devices.slice(0, 2)), owner.token);
    assert.equal(imported.status, 200, JSON.stringify(imported.body));
    assert.equal(imported.body.imported, 2);
    const d = devices[0]!;
    assert.equal((await t.api('GET', `/api/v1/devices/${d.entry.deviceId}`, undefined, owner.token)).body.status, 'pre-provisioned');
    const pub = await mosquittoPub(t, files(d, 'after'), `devices/${d.entry.deviceId}/telemetry`, '{"boot":1}');
    assert.equal(pub.status, 0, pub.stderr);
    assert.equal(await t.hub.store.telemetry.count(owner.tenantId, d.entry.deviceId), 1);
    assert.equal((await t.api('GET', `/api/v1/devices/${d.entry.deviceId}`, undefined, owner.token)).body.status, 'active');
  });

  test('attack: a kit-signed certificate left out of every imported manifest → still refused, nothing stored', async () => {
    const d = devices[2]!;
    const pub = await mosquittoPub(t, files(d, 'left-out'), `devices/${d.entry.deviceId}/telemetry`, '{"boot":2}');
    assert.notEqual(pub.status, 0);
    assert.match(pub.stderr, /not authori[sz]ed/);
    assert.equal(await t.hub.store.devices.get(owner.tenantId, d.entry.deviceId), undefined);
    assert.equal(await t.hub.store.telemetry.count(owner.tenantId, d.entry.deviceId), 0);
  });
});
