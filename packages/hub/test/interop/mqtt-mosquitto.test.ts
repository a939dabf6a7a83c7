/**
 * The broker against independent MQTT peers: mosquitto_pub and mosquitto_sub (Debian
 * mosquitto-clients 2.0.11) with devices enrolled through the real hub's EST route, and a
 * bad-certificate set made at test time. Children are spawned asynchronously (the hub lives in
 * this process), bounded in time, and killed by pid.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '@fleetkey/protocol';
import { loadMasterKey } from '../../src/datadir.js';
import { loadOrCreateHubPki, type HubPki } from '../../src/pki/bootstrap.js';
import { makeLeaf, sameNameCa } from '../helpers/mqtt-certs.js';
import { recordCertificate } from '../helpers/mqtt-fixture.js';
import { MosquittoSub, enrollDevice, mosquittoPub, run, writeCredential, type PeerFiles } from '../helpers/mqtt-peers.js';
import { startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';

const DAY = 86_400_000;

describe('MQTT broker with mosquitto_pub / mosquitto_sub', () => {
  let t: TestHub;
  let owner: TestOwner;
  let pki: HubPki;
  let alice: Awaited<ReturnType<typeof enrollDevice>>;
  let bob: Awaited<ReturnType<typeof enrollDevice>>;

  const telemetryOf = async (deviceId: string): Promise<Array<{ topic: string; payload?: string }>> => {
    const r = await t.api('GET', `/api/v1/devices/${deviceId}/telemetry?limit=100`, undefined, owner.token);
    return r.status === 200 ? r.body.items : [];
  };
  const storedCount = async (deviceId: string, tenantId = owner.tenantId): Promise<number> => t.hub.store.telemetry.count(tenantId, deviceId);
  const mqttAudit = async (type: string) => (await t.hub.store.audit.list({ limit: 1000 })).filter((r) => r.category === 'mqtt' && r.type === type);

  before(async () => {
    t = await startTestHub();
    owner = await t.owner('Mqtt Interop');
    alice = await enrollDevice(t, owner.token, 'alice');
    bob = await enrollDevice(t, owner.token, 'bob');
    pki = await loadOrCreateHubPki({
      dataDir: t.hub.config.dataDir, sealer: loadMasterKey(t.hub.config.masterKeyFile, false), clock: systemClock,
      rootAlgorithm: t.hub.config.rootKeyAlgorithm, deviceCaAlgorithm: t.hub.config.deviceCaKeyAlgorithm,
    });
  });
  after(async () => t.stop());

  test('own topic: mosquitto_pub QoS 1 is acknowledged and the message shows up through the API', async () => {
    const r = await mosquittoPub(t, alice, `devices/${alice.deviceId}/telemetry`, '{"temp":21.5}');
    assert.equal(r.status, 0, r.stderr);
    const items = await telemetryOf(alice.deviceId);
    assert.ok(items.some((m) => m.topic === `devices/${alice.deviceId}/telemetry`), JSON.stringify(items));
  });

  for (const [label, topic] of [
    ['another device\'s topic', () => `devices/${bob.deviceId}/telemetry`],
    ['another device\'s commands', () => `devices/${bob.deviceId}/commands/reboot`],
    ['its own commands topic', () => `devices/${alice.deviceId}/commands/reboot`],
    ['$SYS', () => '$SYS/broker/fake'],
    ['$fleetkey', () => '$fleetkey/trust'],
  ] as const) {
    test(`attack: publish to ${label} → refused, nothing stored, audit publish.denied`, async () => {
      const before = [await storedCount(alice.deviceId), await storedCount(bob.deviceId)];
      const denied = (await mqttAudit('publish.denied')).length;
      const r = await mosquittoPub(t, alice, topic(), 'evil');
      assert.notEqual(r.status, 0, 'the publish was not acknowledged');
      assert.deepEqual([await storedCount(alice.deviceId), await storedCount(bob.deviceId)], before);
      assert.equal((await mqttAudit('publish.denied')).length, denied + 1);
    });
  }

  test('attack: subscribing to # or another device\'s commands → SUBACK 0x80 (mosquitto_sub reports the refusal)', async () => {
    for (const filter of ['#', `devices/${bob.deviceId}/commands/#`, '$SYS/#']) {
      const sub = new MosquittoSub(t, alice, [filter], 10_000);
      const hit = await sub.waitFor(/^Subscribed \(mid: \d+\): /, 5000);
      sub.stop();
      await sub.exited;
      assert.match(hit?.text ?? sub.lines.map((l) => l.text).join('\n'), /: 128$/, `${filter}: SUBACK return code 0x80`);
    }
    assert.ok((await mqttAudit('subscribe.denied')).length >= 3);
  });

  test('a command from the bus reaches mosquitto_sub on devices/{id}/commands/{topic}', async () => {
    const sub = new MosquittoSub(t, bob, [`devices/${bob.deviceId}/commands/#`], 10_000);
    assert.ok(await sub.waitFor(/SUBACK/, 5000));
    await t.hub.bus.publish('device.command', { tenantId: owner.tenantId, deviceId: bob.deviceId, topic: 'reboot', payload: Buffer.from('now') });
    const line = await sub.waitFor(new RegExp(`devices/${bob.deviceId}/commands/reboot now`), 3000);
    sub.stop();
    await sub.exited;
    assert.ok(line, sub.lines.map((l) => l.text).join('\n'));
  });

  test('attack: client id of another device → refused, and that device\'s live session stays up', async () => {
    const sub = new MosquittoSub(t, bob, [`devices/${bob.deviceId}/commands/#`], 15_000);
    assert.ok(await sub.waitFor(/SUBACK/, 5000));
    const r = await mosquittoPub(t, { ...alice, deviceId: bob.deviceId }, `devices/${bob.deviceId}/telemetry`, 'spoof');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /identifier rejected|Connection Refused/i);
    await t.hub.bus.publish('device.command', { tenantId: owner.tenantId, deviceId: bob.deviceId, topic: 'ping', payload: Buffer.from('still-here') });
    assert.ok(await sub.waitFor(/still-here/, 3000), 'bob was not kicked off');
    assert.equal(sub.lines.filter((l) => /sending CONNECT/.test(l.text)).length, 1, 'bob never had to reconnect');
    sub.stop();
    await sub.exited;
  });

  describe('bad-certificate set (made at test time)', () => {
    const cases: Array<[string, () => Promise<PeerFiles>]> = [
      ['no certificate', async () => ({ deviceId: 'nocert' })],
      ['self-signed', async () => writeCredential(t.dir, 'selfsigned', await makeLeaf({ deviceId: 'selfsigned' }))],
      ['another CA with the same name', async () => writeCredential(t.dir, 'fakeca', await makeLeaf({ deviceId: 'fakeca', issuer: await sameNameCa(pki.deviceCa.certificate) }))],
      ['expired (recorded by the hub)', async () => recorded('expired', { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) })],
      ['not yet valid (recorded by the hub)', async () => recorded('notyet', { notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 10 * DAY) })],
      ['serverAuth-only EKU (device CA, recorded)', async () => recorded('serveronly', { kind: 'serverAuth-only' })],
      ['a CA certificate as leaf (device CA, recorded)', async () => recorded('caleaf', { kind: 'ca-as-leaf' })],
      ['device CA signed but never recorded by the hub', async () => writeCredential(t.dir, 'unrecorded', await makeLeaf({ deviceId: 'unrecorded', issuer: pki.deviceCa }))],
    ];
    async function recorded(id: string, o: Parameters<typeof makeLeaf>[0] extends infer P ? Partial<P> : never): Promise<PeerFiles> {
      const cred = await makeLeaf({ deviceId: id, issuer: pki.deviceCa, ...o });
      await recordCertificate(t.hub.store, owner.tenantId, cred, Date.now());
      return writeCredential(t.dir, id, cred);
    }
    for (const [label, make] of cases) {
      test(`attack: ${label} → refused, nothing stored`, async () => {
        const files = await make();
        const r = await mosquittoPub(t, files, `devices/${files.deviceId}/telemetry`, 'x');
        assert.notEqual(r.status, 0, `${label}: ${r.stdout} ${r.stderr}`);
        assert.equal(r.timedOut, false);
        assert.equal(await storedCount(files.deviceId), 0);
      });
    }
  });

  test('revocation: the live mosquitto_sub is disconnected within 1 s and a reconnect is refused (CONNACK 5)', async () => {
    const carol = await enrollDevice(t, owner.token, 'carol');
    const sub = new MosquittoSub(t, carol, [`devices/${carol.deviceId}/commands/#`], 15_000);
    assert.ok(await sub.waitFor(/SUBACK/, 5000));
    assert.equal(await establishedTo(t.hub.mqttPort), 1);
    const t0 = Date.now();
    await t.hub.bus.publish('device.revoked', { tenantId: owner.tenantId, deviceId: carol.deviceId, serials: [carol.serial] });
    let closedAt: number | undefined;
    while (Date.now() - t0 < 2000) {
      if ((await establishedTo(t.hub.mqttPort)) === 0) {
        closedAt = Date.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(closedAt !== undefined && closedAt - t0 < 1000, `disconnected after ${closedAt === undefined ? '>2000' : closedAt - t0} ms`);
    const code = await Promise.race([sub.exited, new Promise<number>((r) => setTimeout(() => r(-99), 5000))]);
    sub.stop();
    assert.notEqual(code, -99, 'mosquitto_sub saw its connection end');
    assert.ok(sub.lines.some((l) => /connection was lost/i.test(l.text)), sub.lines.map((l) => l.text).join('\n'));
    const again = await mosquittoPub(t, carol, `devices/${carol.deviceId}/telemetry`, 'after');
    assert.notEqual(again.status, 0);
    assert.match(again.stderr + again.stdout, /not authori[sz]ed/i, 'the reconnect gets CONNACK 5');
    assert.equal(await storedCount(carol.deviceId), 0);
    assert.equal((await mqttAudit('session.revoked')).length, 1);
  });

  test('only the TLS port listens: no plaintext MQTT (1883) and a plain TCP MQTT CONNECT gets no CONNACK', async () => {
    const ss = await run('ss', ['-ltnH']);
    const ports = ss.stdout.split('\n').map((l) => l.trim().split(/\s+/)[3] ?? '').map((a) => Number(a.slice(a.lastIndexOf(':') + 1)));
    assert.ok(ports.includes(t.hub.mqttPort));
    assert.equal(ports.includes(1883), false, 'nothing listens on 1883');
    const plain = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(t.hub.mqttPort), '-i', alice.deviceId, '-t', `devices/${alice.deviceId}/t`, '-m', 'plain', '-q', '1']);
    assert.notEqual(plain.status, 0, 'a plaintext client is not served');
  });
});

/** Established TCP connections to the local port (via `ss`, run asynchronously). */
async function establishedTo(port: number): Promise<number> {
  const r = await run('ss', ['-tnH', 'state', 'established', `( sport = :${port} )`]);
  return r.stdout.split('\n').filter((l) => l.trim().length > 0).length;
}
