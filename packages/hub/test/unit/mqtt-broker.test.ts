/**
 * The broker in-process over real TLS on 127.0.0.1 with a raw MQTT client (mqtt-packet) and a
 * MemorySink whose `accept` the test holds: where the PUBACK waits, its order, sink failure,
 * client-id binding and takeover, topic refusals, SUBACK 0x80, commands, revocation, limits.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/storage/types.js';
import { startBrokerFixture, type BrokerFixture } from '../helpers/mqtt-fixture.js';

const pub = (topic: string, messageId: number, qos: 0 | 1 | 2 = 1, payload = 'x') =>
  ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, messageId, dup: false, retain: false }) as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function auditTypes(store: Store): Promise<Array<{ type: string; code: string | null | undefined; actor: string }>> {
  return (await store.audit.list({ limit: 1000 })).filter((r) => r.category === 'mqtt').map((r) => ({ type: r.type, code: r.code, actor: r.actor }));
}

async function waitForAudit(store: Store, type: string, timeoutMs = 2000): Promise<{ code: string | null | undefined; actor: string } | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const hit = (await auditTypes(store)).find((r) => r.type === type);
    if (hit) return hit;
    await sleep(20);
  }
  return undefined;
}

describe('MQTT broker in-process', () => {
  let f: BrokerFixture;
  before(async () => {
    f = await startBrokerFixture();
  });
  after(async () => f.stop());

  test('PUBACK waits for the sink: nothing while accept is pending, then PUBACK (aedes writes it after authorizePublish)', async () => {
    const d = await f.enroll('puback-wait');
    const c = await f.connect(d, d.deviceId);
    assert.equal(await c.connack(), 0);
    f.sink.hold = true;
    try {
      const seen = f.sink.seen;
      c.send(pub('devices/puback-wait/telemetry', 11));
      await f.sink.waitFor(seen + 1);
      assert.equal(await c.next('puback', 300), undefined, 'no PUBACK while the sink has not resolved');
      assert.equal(f.sink.stored.some((m) => m.deviceId === 'puback-wait'), false);
      f.sink.release();
      assert.equal((await c.next('puback'))?.messageId, 11);
      assert.equal(f.sink.stored.at(-1)?.topic, 'devices/puback-wait/telemetry');
      assert.equal(f.sink.stored.at(-1)?.deviceId, 'puback-wait');
    } finally {
      f.sink.hold = false;
      c.end();
    }
  });

  test('PUBACKs leave in PUBLISH order even when the sink resolves out of order [MQTT-4.6.0-2]', async () => {
    const d = await f.enroll('puback-order');
    const c = await f.connect(d, d.deviceId);
    assert.equal(await c.connack(), 0);
    f.sink.hold = true;
    try {
      const seen = f.sink.seen;
      // One write: aedes reads the next socket chunk only after a whole batch was answered.
      c.sendAll([pub('devices/puback-order/a', 1), pub('devices/puback-order/b', 2)]);
      await f.sink.waitFor(seen + 2);
      f.sink.release(1); // the second message is durable first
      assert.equal(await c.next('puback', 300), undefined, 'the second PUBACK must not overtake the first');
      f.sink.release(0);
      await c.next('puback', 3000, (p) => p.messageId === 2);
      assert.deepEqual(c.received.filter((p) => p.cmd === 'puback').map((p) => (p as { messageId: number }).messageId), [1, 2]);
    } finally {
      f.sink.hold = false;
      c.end();
    }
  });

  test('sink failure: no PUBACK, the connection is closed, audit ingest.failed', async () => {
    const d = await f.enroll('sink-fails');
    const c = await f.connect(d, d.deviceId);
    assert.equal(await c.connack(), 0);
    f.sink.hold = true;
    try {
      const seen = f.sink.seen;
      c.send(pub('devices/sink-fails/t', 5));
      await f.sink.waitFor(seen + 1);
      f.sink.fail();
      assert.ok(await c.waitClosed());
      assert.equal(c.received.some((p) => p.cmd === 'puback'), false);
      assert.equal((await waitForAudit(f.store, 'ingest.failed'))?.code, 'STORAGE_UNAVAILABLE');
    } finally {
      f.sink.hold = false;
    }
  });

  test('QoS 0 reaches the sink; RETAIN is cleared; the device id comes from the certificate', async () => {
    const d = await f.enroll('qos0');
    const c = await f.connect(d, d.deviceId, { username: 'someone-else', password: Buffer.from('ignored') });
    assert.equal(await c.connack(), 0);
    c.send({ ...pub('devices/qos0/t', 0, 0, 'zero'), retain: true });
    await f.sink.waitFor(f.sink.seen + 1);
    const m = f.sink.stored.at(-1);
    assert.equal(m?.qos, 0);
    assert.equal(m?.payload.toString(), 'zero');
    assert.equal(m?.deviceId, 'qos0');
    c.end();
  });

  test('attack: client id of another device → CONNACK 2, and that device\'s session stays up', async () => {
    const victim = await f.enroll('victim');
    const attacker = await f.enroll('attacker');
    const v = await f.connect(victim, victim.deviceId);
    assert.equal(await v.connack(), 0);
    const a = await f.connect(attacker, 'victim');
    assert.equal(await a.connack(), 2);
    assert.ok(await a.waitClosed());
    const before = f.sink.stored.length;
    v.send(pub('devices/victim/t', 9));
    assert.equal((await v.next('puback'))?.messageId, 9, 'victim still connected');
    assert.equal(f.sink.stored.length, before + 1);
    assert.ok((await auditTypes(f.store)).some((r) => r.type === 'connect' && r.code === 'FORBIDDEN' && r.actor === 'device:attacker'));
    const empty = await f.connect(attacker, '');
    assert.equal(await empty.connack(), 2, 'an empty client id gets a random one: refused too');
    v.end();
  });

  test('a second connection with the same certificate takes over the first, with an audit record', async () => {
    const d = await f.enroll('takeover');
    const first = await f.connect(d, d.deviceId);
    assert.equal(await first.connack(), 0);
    const second = await f.connect(d, d.deviceId);
    assert.equal(await second.connack(), 0);
    assert.ok(await first.waitClosed(), 'the old session is closed');
    assert.equal(second.isClosed, false);
    assert.equal((await waitForAudit(f.store, 'session.takeover'))?.actor, 'device:takeover');
    second.end();
  });

  for (const [label, topic] of [['another device\'s topic', 'devices/victim/t'], ['$SYS', '$SYS/x'], ['$fleetkey', '$fleetkey/trust'], ['own commands', 'devices/pubdeny/commands/x']] as const) {
    test(`attack: publish to ${label} → dropped, connection closed, nothing stored, audit FORBIDDEN`, async () => {
      const d = await f.enroll('pubdeny');
      const c = await f.connect(d, d.deviceId);
      assert.equal(await c.connack(), 0);
      const stored = f.sink.stored.length;
      c.send(pub(topic, 3));
      assert.ok(await c.waitClosed());
      assert.equal(c.received.some((p) => p.cmd === 'puback'), false);
      assert.equal(f.sink.stored.length, stored);
      assert.ok((await auditTypes(f.store)).some((r) => r.type === 'publish.denied' && r.code === 'FORBIDDEN'));
    });
  }

  test('QoS 2 publish is refused (closed), nothing stored', async () => {
    const d = await f.enroll('qos2');
    const c = await f.connect(d, d.deviceId);
    assert.equal(await c.connack(), 0);
    const stored = f.sink.stored.length;
    c.send(pub('devices/qos2/t', 4, 2));
    assert.ok(await c.waitClosed());
    assert.equal(f.sink.stored.length, stored);
  });

  test('subscribe: # and other devices get SUBACK 0x80, own commands granted, cap on filters', async () => {
    const d = await f.enroll('subber');
    const c = await f.connect(d, d.deviceId);
    assert.equal(await c.connack(), 0);
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [
      { topic: '#', qos: 1 }, { topic: 'devices/victim/commands/#', qos: 1 }, { topic: 'devices/subber/commands/#', qos: 2 }, { topic: '$SYS/#', qos: 0 }, { topic: '$fleetkey/#', qos: 0 },
    ] });
    const suback = await c.next('suback');
    assert.deepEqual(suback?.granted, [128, 128, 2, 128, 0]);
    c.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'devices/subber/commands/a', qos: 1 }, { topic: 'devices/subber/commands/b', qos: 1 }] });
    assert.deepEqual((await c.next('suback', 3000, (p) => p.messageId === 2))?.granted, [1, 128], 'maxSubscriptions = 3');
    assert.equal(c.isClosed, false, 'a refused subscription keeps the connection');
    assert.ok((await auditTypes(f.store)).some((r) => r.type === 'subscribe.denied'));
    c.end();
  });

  test('device.command is delivered on devices/{id}/commands/{topic} QoS 1; another tenant\'s event is not', async () => {
    const d = await f.enroll('cmd-dev');
    const c = await f.connect(d, d.deviceId);
    assert.equal(await c.connack(), 0);
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/cmd-dev/commands/#', qos: 1 }] });
    await c.next('suback');
    await f.bus.publish('device.command', { tenantId: 'org_other', deviceId: 'cmd-dev', topic: 'evil', payload: Buffer.from('no') });
    await f.bus.publish('device.command', { tenantId: f.tenantId, deviceId: 'cmd-dev', topic: 'reboot', payload: Buffer.from('now') });
    const msg = await c.next('publish');
    assert.equal(msg?.topic, 'devices/cmd-dev/commands/reboot');
    assert.equal(msg?.qos, 1);
    assert.equal(msg?.payload.toString(), 'now');
    await sleep(100);
    assert.equal(c.received.filter((p) => p.cmd === 'publish').length, 1, 'the cross-tenant command was not delivered');
    c.end();
  });

  test('device.revoked closes the live session within 1 s and a reconnect is refused (CONNACK 5)', async () => {
    const d = await f.enroll('revokee');
    const c = await f.connect(d, d.deviceId);
    assert.equal(await c.connack(), 0);
    const t0 = Date.now();
    await f.bus.publish('device.revoked', { tenantId: f.tenantId, deviceId: 'revokee', serials: [d.serial] });
    assert.ok(await c.waitClosed(1000));
    assert.ok(Date.now() - t0 < 1000, `closed after ${Date.now() - t0} ms`);
    const again = await f.connect(d, d.deviceId);
    assert.equal(await again.connack(), 5);
    assert.ok(await waitForAudit(f.store, 'session.revoked'));
  });

  test('attack: over the per-device rate → disconnected, the excess not stored, audit RATE_LIMITED', async () => {
    const d = await f.enroll('flooder');
    const c = await f.connect(d, d.deviceId);
    assert.equal(await c.connack(), 0);
    const stored = f.sink.stored.length;
    for (let i = 1; i <= 30; i++) c.send(pub('devices/flooder/t', i));
    assert.ok(await c.waitClosed());
    assert.ok(f.sink.stored.length - stored <= 10, 'at most the burst was stored');
    assert.equal((await waitForAudit(f.store, 'publish.rate_limited'))?.code, 'RATE_LIMITED');
  });

  test('attack: a packet over maxPacketBytes closes the connection before it is buffered; nothing stored', async () => {
    const d = await f.enroll('bigpacket');
    const c = await f.connect(d, d.deviceId);
    assert.equal(await c.connack(), 0);
    const stored = f.sink.stored.length;
    c.socket.write(Buffer.from([0x32, 0xff, 0xff, 0xff, 0x7f])); // PUBLISH claiming ~256 MB
    assert.ok(await c.waitClosed());
    c.send(pub('devices/bigpacket/t', 1, 1, 'y'.repeat(5000)));
    assert.equal(f.sink.stored.length, stored);
  });

  test('attack: no client certificate → TLS refuses; unrecorded certificate → CONNACK 5', async () => {
    const none = await f.connect(undefined, 'x');
    assert.ok(await none.waitClosed());
    assert.equal(none.received.length, 0);
    const ghost = await f.enroll('ghost', { record: false });
    const g = await f.connect(ghost, 'ghost');
    assert.equal(await g.connack(), 5);
    // The refusal names the device the certificate claims (parsed only on refusals: an accepted
    // certificate's id is the record's, proven by the byte comparison), and no session exists.
    const refused = (await f.store.audit.list({ limit: 1000 })).filter((r) => r.category === 'mqtt' && r.type === 'connect' && r.actor === 'device:ghost');
    assert.deepEqual(refused.map((r) => [r.actor, r.code, (r.details as { reason?: string }).reason]), [['device:ghost', 'CERT_INVALID', 'certificate not issued by this hub']]);
    assert.equal(f.broker.liveSessions, 0);
  });
});

describe('MQTT broker timers', () => {
  let f: BrokerFixture;
  before(async () => {
    f = await startBrokerFixture({ connectTimeoutMs: 300, keepAliveMaxSeconds: 1 });
  });
  after(async () => f.stop());

  test('no CONNECT within the CONNECT timeout → closed', async () => {
    const d = await f.enroll('slow');
    const c = await f.connect(d, d.deviceId, {});
    c.end();
    const { connect } = await import('node:tls');
    const s = connect({ host: '127.0.0.1', port: f.broker.port, ca: f.rootPem, servername: 'localhost', key: d.keyPem, cert: d.certPem });
    const t0 = Date.now();
    await new Promise<void>((resolve) => s.once('close', () => resolve()).on('error', () => undefined));
    assert.ok(Date.now() - t0 < 2000);
  });

  test('keep-alive 0 is capped: a silent client is closed after 1.5 × the cap', async () => {
    const d = await f.enroll('silent');
    const c = await f.connect(d, d.deviceId, { keepalive: 0 });
    assert.equal(await c.connack(), 0);
    assert.ok(await c.waitClosed(3000));
  });
});
