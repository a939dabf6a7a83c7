/**
 * Broker limits in-process: the frame guard (max packet size, malformed Remaining Length,
 * reserved types, any chunking) and the per-device token bucket.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt-packet';
import { FrameGuard } from '../../src/mqtt/frame-guard.js';
import { DeviceRateLimiter, TokenBucket } from '../../src/mqtt/rate-limit.js';

const publish = (payloadBytes: number): Buffer =>
  mqtt.generate({ cmd: 'publish', topic: 'devices/d/t', payload: Buffer.alloc(payloadBytes, 1), qos: 1, messageId: 7, dup: false, retain: false });

describe('frame guard', () => {
  test('passes a stream of valid packets, split at every byte boundary', () => {
    const stream = Buffer.concat([
      mqtt.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'd' }),
      publish(0), publish(127), publish(128), publish(16383), publish(16384), mqtt.generate({ cmd: 'pingreq' }), mqtt.generate({ cmd: 'disconnect' }),
    ]);
    for (const step of [1, 2, 3, 7, 1000, stream.length]) {
      const g = new FrameGuard(20_000);
      for (let i = 0; i < stream.length; i += step) assert.equal(g.feed(stream.subarray(i, i + step)), undefined, `step ${step}`);
    }
  });

  test('a packet exactly at the limit passes; one byte more is refused', () => {
    const p = publish(1000);
    assert.equal(new FrameGuard(p.length).feed(p), undefined);
    assert.equal(new FrameGuard(p.length - 1).feed(p), 'packet too large');
  });

  test('attack: a first packet claiming ~256 MB is refused from its 5 header bytes', () => {
    const g = new FrameGuard(131072);
    assert.equal(g.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])), 'packet too large');
    assert.equal(g.feed(Buffer.alloc(10)), 'packet too large', 'stays failed');
  });

  test('attack: a Remaining Length with a 5th continuation byte is malformed (§2.2.3)', () => {
    assert.equal(new FrameGuard(1 << 30).feed(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x80, 0x01])), 'malformed remaining length');
  });

  test('attack: reserved packet types 0 and 15 are refused', () => {
    assert.equal(new FrameGuard(1000).feed(Buffer.from([0x00, 0x00])), 'reserved packet type');
    assert.equal(new FrameGuard(1000).feed(Buffer.from([0xf0, 0x00])), 'reserved packet type');
    const g = new FrameGuard(1000);
    assert.equal(g.feed(mqtt.generate({ cmd: 'pingreq' })), undefined);
    assert.equal(g.feed(Buffer.from([0xf0])), 'reserved packet type', 'also after valid packets');
  });

  test('random garbage never throws', () => {
    for (let n = 0; n < 2000; n++) {
      const g = new FrameGuard(1024);
      const junk = Buffer.from(Array.from({ length: 64 }, () => Math.floor(Math.random() * 256)));
      assert.doesNotThrow(() => g.feed(junk));
    }
  });
});

describe('token bucket', () => {
  test('lets burst through at once, then perSecond per second', () => {
    const b = new TokenBucket({ perSecond: 10, burst: 5 }, 0);
    for (let i = 0; i < 5; i++) assert.ok(b.take(0));
    assert.equal(b.take(0), false);
    assert.equal(b.take(99), false);
    assert.ok(b.take(100));
    assert.equal(b.take(100), false);
    // never above burst, however long it idles
    let n = 0;
    while (b.take(1_000_000)) n++;
    assert.equal(n, 5);
  });

  test('attack: the clock going backwards adds no tokens', () => {
    const b = new TokenBucket({ perSecond: 1000, burst: 1 }, 10_000);
    assert.ok(b.take(10_000));
    assert.equal(b.take(0), false);
    assert.equal(b.take(10_000), false);
  });

  test('per device, and reconnecting does not refill (the bucket is keyed by device id)', () => {
    const r = new DeviceRateLimiter({ perSecond: 1, burst: 2 });
    assert.ok(r.take('a', 0));
    assert.ok(r.take('a', 0));
    assert.equal(r.take('a', 0), false);
    assert.ok(r.take('b', 0), 'another device has its own bucket');
  });

  test('sweep forgets only full buckets: memory stays bounded by recently active devices', () => {
    const r = new DeviceRateLimiter({ perSecond: 1, burst: 2 });
    for (let i = 0; i < 1000; i++) r.take(`d${i}`, 0);
    assert.equal(r.sweep(0), 1000);
    assert.equal(r.sweep(500), 1000, 'half a token back: not full yet');
    assert.equal(r.sweep(1000), 0);
  });
});
