/**
 * The packet guard (mqtt/packet-guard.ts): one regression test per malformed packet the fuzz
 * campaign found the broker accepting, named after the attack, against the in-process broker over
 * mutual TLS. Each asserts that the connection was closed, that no reply (CONNACK 0, SUBACK,
 * PUBACK, UNSUBACK) went out, and that nothing was stored or subscribed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Packet } from 'mqtt-packet';
import { Aedes } from 'aedes';
import { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { packetViolation } from '../../src/mqtt/packet-guard.js';
import { connectPacket, publishPacket, subscribePacket, unsubscribePacket } from '../helpers/mqtt-fuzz-gen.js';
import type { LeafCredential } from '../helpers/mqtt-certs.js';
import { RawClient, startBrokerFixture, type BrokerFixture } from '../helpers/mqtt-fixture.js';

const envelope = (n: number): Buffer => Buffer.from(`FK1 guard-test-message-${n}\n{"v":${n}}`);

describe('packet guard: malformed packets the parser lets through close the connection', () => {
  let f: BrokerFixture;
  let dev: LeafCredential;

  before(async () => {
    f = await startBrokerFixture({ rate: { perSecond: 1000, burst: 1000 } });
    dev = await f.enroll('guard-dev');
  });
  after(async () => f.stop());

  /** A connected session of `dev`, then `attack` written raw; resolves the client once closed (or 3 s). */
  async function afterConnect(attack: Buffer): Promise<RawClient> {
    const c = await f.connect(dev, dev.deviceId);
    assert.equal(await c.connack(), 0);
    c.socket.write(attack);
    await c.waitClosed(3000);
    return c;
  }

  /** A raw first packet instead of the fixture's CONNECT; resolves what came back and whether the broker closed. */
  function firstPacket(bytes: Buffer): Promise<{ reply: Buffer; closed: boolean }> {
    const raw = tlsConnect({ host: '127.0.0.1', port: f.broker.port, ca: f.rootPem, servername: 'localhost', key: dev.keyPem, cert: dev.certPem });
    return new Promise((resolve) => {
      const got: Buffer[] = [];
      let closed = true;
      raw.on('data', (d: Buffer) => got.push(d));
      raw.on('error', () => undefined);
      raw.once('secureConnect', () => raw.write(bytes));
      const timer = setTimeout(() => {
        closed = false;
        raw.destroy();
      }, 3000);
      raw.once('close', () => {
        clearTimeout(timer);
        resolve({ reply: Buffer.concat(got), closed });
      });
    });
  }

  test('attack: PUBLISH QoS 1 with packet identifier 0 → closed, no PUBACK, nothing stored [MQTT-2.3.1-1]', async () => {
    const stored = f.sink.stored.length;
    const c = await afterConnect(publishPacket(`devices/${dev.deviceId}/telemetry`, envelope(1), { qos: 1, id: 0 }));
    assert.equal(c.isClosed, true);
    assert.equal(c.received.some((p) => p.cmd === 'puback'), false);
    assert.equal(f.sink.stored.length, stored);
  });

  test('attack: SUBSCRIBE with packet identifier 0 → closed, no SUBACK [MQTT-2.3.1-1]', async () => {
    const c = await afterConnect(subscribePacket([[`devices/${dev.deviceId}/commands/#`, 1]], 0));
    assert.equal(c.isClosed, true);
    assert.equal(c.received.some((p) => p.cmd === 'suback'), false);
  });

  for (const [label, bytes] of [['U+0000', Buffer.from([0x00])], ['ill-formed UTF-8 (a UTF-16 surrogate)', Buffer.from([0xed, 0xa0, 0x80])]] as const) {
    test(`attack: SUBSCRIBE with ${label} in a filter → closed, not SUBACK 0x80 [MQTT-1.5.3-1] [MQTT-1.5.3-2]`, async () => {
      const filter = Buffer.concat([Buffer.from(`devices/${dev.deviceId}/commands/`), bytes, Buffer.from('x')]);
      const c = await afterConnect(subscribePacket([[filter, 1]], 3));
      assert.equal(c.isClosed, true);
      assert.equal(c.received.some((p) => p.cmd === 'suback'), false);
    });

    test(`attack: UNSUBSCRIBE with ${label} in a filter → closed, no UNSUBACK [MQTT-1.5.3-1]`, async () => {
      const c = await afterConnect(unsubscribePacket([Buffer.concat([Buffer.from('devices/'), bytes])], 4));
      assert.equal(c.isClosed, true);
      assert.equal(c.received.some((p) => p.cmd === 'unsuback'), false);
    });
  }

  test('attack: UNSUBSCRIBE without a filter, or with packet identifier 0 → closed [MQTT-3.10.3-2] [MQTT-2.3.1-1]', async () => {
    for (const attack of [unsubscribePacket([], 5), unsubscribePacket([`devices/${dev.deviceId}/commands/#`], 0)]) {
      const c = await afterConnect(attack);
      assert.equal(c.isClosed, true);
      assert.equal(c.received.some((p) => p.cmd === 'unsuback'), false);
    }
  });

  test('attack: a valid PUBLISH in the same write after a malformed packet is not stored', async () => {
    const stored = f.sink.stored.length;
    const c = await afterConnect(Buffer.concat([subscribePacket([[`devices/${dev.deviceId}/commands/#`, 1]], 0), publishPacket(`devices/${dev.deviceId}/telemetry`, envelope(2), { qos: 1, id: 9 })]));
    assert.equal(c.isClosed, true);
    assert.equal(f.sink.stored.length, stored);
    assert.equal(c.received.some((p) => p.cmd === 'puback'), false);
  });

  for (const [label, clause, packet] of [
    ['Will QoS 3', '[MQTT-3.1.2-14]', () => connectPacket({ clientId: dev.deviceId, flags: 0x1e, tail: Buffer.from([0, 5, ...Buffer.from('w/top'), 0, 1, 0x41]) })],
    ['a password without a user name', '[MQTT-3.1.2-22]', () => connectPacket({ clientId: dev.deviceId, flags: 0x42, tail: Buffer.from([0, 2, 0x70, 0x77]) })],
    ['protocol name MQIsdp at level 4', '[MQTT-3.1.2-1]', () => connectPacket({ clientId: dev.deviceId, protocol: 'MQIsdp', level: 4 })],
  ] as const) {
    test(`attack: CONNECT with ${label} from an authorised device → closed without CONNACK ${clause}`, async () => {
      const c = await firstPacket(packet());
      assert.equal(c.closed, true);
      assert.equal(c.reply.length, 0, `no CONNACK: ${c.reply.toString('hex')}`);
      assert.equal(f.broker.liveSessions, 0);
    });
  }
});

describe('packetViolation (pure)', () => {
  const connect = (o: Record<string, unknown>): Packet => ({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'd', clean: true, keepalive: 30, ...o }) as Packet;

  test('valid packets pass; an unsupported level is left to aedes (CONNACK 1, [MQTT-3.1.2-2])', () => {
    assert.equal(packetViolation(connect({})), undefined);
    assert.equal(packetViolation(connect({ protocolId: 'MQIsdp', protocolVersion: 3 })), undefined);
    assert.equal(packetViolation(connect({ protocolVersion: 5 })), undefined);
    assert.equal(packetViolation({ cmd: 'publish', topic: 'devices/d/t', payload: Buffer.alloc(0), qos: 0, dup: false, retain: false }), undefined);
    assert.equal(packetViolation({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/#', qos: 1 }] }), undefined);
    assert.equal(packetViolation({ cmd: 'pingreq' }), undefined);
  });

  test('U+FFFD (what the parser makes of ill-formed UTF-8), U+0000 and lone surrogates are refused in every string', () => {
    for (const bad of ['a\ufffdb', 'a\u0000b', 'a\ud800b']) {
      assert.notEqual(packetViolation(connect({ clientId: bad })), undefined);
      assert.notEqual(packetViolation(connect({ username: bad })), undefined);
      assert.notEqual(packetViolation({ cmd: 'publish', topic: bad, payload: Buffer.alloc(0), qos: 0, dup: false, retain: false }), undefined);
      assert.notEqual(packetViolation({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: [bad] }), undefined);
    }
  });

  test('aedes 1.2 keeps the connection parser at client._parser, an EventEmitter (the guard relies on it)', async () => {
    const broker = await Aedes.createBroker();
    const conn = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
    const client = broker.handle(conn as never);
    assert.ok(Reflect.get(client, '_parser') instanceof EventEmitter);
    conn.destroy();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  });
});
