/**
 * The device MQTT client against a real Mosquitto 2 broker (mutual TLS, device CA, ACL, CRL) and
 * mosquitto_pub as an independent peer. Security tests are named after the attack and assert the
 * code, that nothing was published, and that the outbox (stored state) still holds the message.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { connect, type DeviceClient } from '../../src/index.js';
import { FleetkeyError } from '@fleetkey/protocol';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { brokerOptions, makeCrl, makeWorld, Watcher, type World } from '../helpers/mosquitto-fixture.js';

let world: World;
let broker: Mosquitto;
let watcher: Watcher;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  world = await makeWorld(5);
  const crl = makeCrl(world, 'revoked', [world.devices[2]!.certPath]);
  broker = await startMosquitto(brokerOptions(world, 'main', { crlPath: crl }));
  watcher = await Watcher.start(world, broker.port);
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await watcher.close();
  await broker.kill();
});

async function client(index: number, port = broker.port, extra: Parameters<typeof connect>[0]['backoff'] = { initialMs: 200, maxMs: 1000 }): Promise<DeviceClient> {
  const c = await connect({ stateDir: world.devices[index]!.stateDir, mqttPort: port, timeoutMs: 3000, backoff: extra });
  cleanups.push(() => c.close());
  return c;
}

const once = <T>(c: DeviceClient, event: 'connected' | 'subscribed'): Promise<T> => new Promise((resolve) => c.once(event, (...args: unknown[]) => resolve(args[0] as T)));

describe('device MQTT client against mosquitto', () => {
  test('connects over pinned mTLS and a QoS 1 publish reaches a subscriber with its message id', async () => {
    const device = world.devices[0]!;
    const c = await client(0);
    await once(c, 'connected');
    const result = await c.publish(`devices/${device.deviceId}/telemetry`, '{"t":21.5}');
    assert.equal(result.status, 'queued');
    assert.equal(await c.flush(5000), true, 'PUBACK received, outbox empty');
    await watcher.waitFor(() => watcher.ids().has(result.id));
    const got = watcher.received.find((r) => r.messageId === result.id)!;
    assert.equal(got.topic, `devices/${device.deviceId}/telemetry`);
    assert.equal(got.body, '{"t":21.5}');
    await c.close();
  });

  test('subscribes to its commands and the trust topic; a command from mosquitto_pub is delivered', async () => {
    const device = world.devices[1]!;
    const c = await client(1);
    const granted = await once<Array<{ filter: string; qos: number }>>(c, 'subscribed');
    assert.deepEqual(granted, [{ filter: `devices/${device.deviceId}/commands/#`, qos: 1 }, { filter: '$fleetkey/trust', qos: 1 }]);
    const command = new Promise<{ name: string; payload: Buffer }>((resolve) => c.once('command', resolve));
    const pub = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '--cafile', world.pki.root.certPath,
      '--cert', world.watcher.certPath, '--key', world.watcher.keyPath, '-q', '1', '-i', 'watcher-pub',
      '-t', `devices/${device.deviceId}/commands/reboot`, '-m', '{"delay":5}'], { stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => pub.once('exit', resolve));
    assert.equal(code, 0);
    const got = await command;
    assert.equal(got.name, 'reboot');
    assert.equal(got.payload.toString(), '{"delay":5}');
  });

  test('publishing into another device\'s topic or its own commands is refused before the outbox', async () => {
    const device = world.devices[0]!;
    const c = await client(0, broker.port);
    const before = c.pendingCount;
    for (const topic of [`devices/${world.devices[1]!.deviceId}/telemetry`, `devices/${device.deviceId}/commands/x`, 'devices/#', '$SYS/x', `devices/${device.deviceId}/`]) {
      await assert.rejects(c.publish(topic, 'x'), (e: unknown) => e instanceof FleetkeyError && e.code === 'VALIDATION_FAILED', topic);
    }
    assert.equal(c.pendingCount, before, 'nothing was queued');
  });
});

describe('refusals', () => {
  test('a broker with an unpinned certificate (fake root, same name) gets no CONNECT; the message stays queued', async () => {
    const fake = await startMosquitto(brokerOptions(world, 'fake', { serverCert: world.pki.fakeLeaf, serverChain: [world.pki.fakeRoot] }));
    cleanups.push(() => fake.kill());
    const c = await client(3, fake.port);
    const refused = new Promise<FleetkeyError>((resolve) => c.once('disconnected', resolve));
    const queued = await c.publish(`devices/${world.devices[3]!.deviceId}/telemetry`, 'secret reading');
    assert.equal((await refused).code, 'PIN_MISMATCH');
    await c.close();
    assert.ok((await fake.connectionsLogged()) >= 1, 'the TLS connection was attempted');
    const log = await import('node:fs/promises').then((fs) => fs.readFile(`${world.pki.pki.dir}/fake.log`, 'utf8'));
    assert.doesNotMatch(log, /New client connected/, 'no CONNECT reached the unpinned broker');
    const again = await connect({ stateDir: world.devices[3]!.stateDir, mqttPort: fake.port });
    assert.deepEqual(again.pendingCount, 1, 'the message is still in the outbox');
    await again.close();
    assert.ok(queued.status === 'queued');
  });

  test('a revoked device (its serial in the broker\'s CRL) stops with DEVICE_REVOKED and does not retry', async () => {
    const before = await broker.connectionsLogged();
    const c = await client(2, broker.port, { initialMs: 50, maxMs: 100, minMs: 10 });
    let connected = false;
    c.on('connected', () => { connected = true; });
    const error = await c.stopped;
    assert.ok(error instanceof FleetkeyError);
    assert.equal(error.code, 'DEVICE_REVOKED');
    assert.equal(error.exitCode, 4);
    await new Promise((r) => setTimeout(r, 500)); // a hot loop would show many attempts by now
    assert.equal((await broker.connectionsLogged()) - before, 1, 'exactly one attempt');
    assert.equal(connected, false);
    await assert.rejects(c.publish(`devices/${world.devices[2]!.deviceId}/telemetry`, 'x'), (e: unknown) => e instanceof FleetkeyError);
  });

  test('CONNACK 5 (not authorised) stops with DEVICE_REVOKED after one attempt', async () => {
    let attempts = 0;
    const server = createServer({ key: world.pki.hubLeaf.keyPem, cert: world.pki.hubLeaf.certPem + world.pki.root.certPem, requestCert: true, rejectUnauthorized: false });
    server.on('secureConnection', (socket: TLSSocket) => {
      attempts += 1;
      socket.once('data', () => socket.end(Buffer.from([0x20, 0x02, 0x00, 0x05]))); // CONNACK rc=5, MQTT 3.1.1 §3.2.2.3
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
    const c = await client(4, (server.address() as AddressInfo).port, { initialMs: 50, maxMs: 100, minMs: 10 });
    const error = await c.stopped;
    assert.equal(error?.code, 'DEVICE_REVOKED');
    assert.match(String(error?.cause), /return code 5/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(attempts, 1);
  });
});
