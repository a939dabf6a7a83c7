/**
 * The world of the device MQTT tests: an openssl PKI, devices enrolled through the SDK against
 * the openssl-backed EST hub (so their state directories are real), a watcher certificate for a
 * subscriber, CRLs made with `openssl ca`, and an MQTT.js subscriber that records what arrives.
 * Everything openssl-related runs in `makeWorld`, before any broker is started.
 */
import { promises as fs, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import mqtt, { type MqttClient } from 'mqtt';
import { parseEnvelope } from '@fleetkey/protocol';
import { enroll } from '../../src/index.js';
import { startEstHub } from './est-hub.js';
import { CLIENT_LEAF_EXTENSIONS, makeHubPki, openssl, type HubPki, type TestCert } from './pki.js';
import { pinOf } from './pins.js';
import type { MosquittoOptions } from './mosquitto.js';

export interface World {
  readonly pki: HubPki;
  readonly watcher: TestCert;
  /** State directories of freshly enrolled devices, with their ids. */
  readonly devices: ReadonlyArray<{ readonly stateDir: string; readonly deviceId: string; readonly certPath: string }>;
}

const TOKEN = 'ct_mqtt-test-claim-token';

export async function makeWorld(deviceCount: number): Promise<World> {
  const pki = makeHubPki();
  const hub = await startEstHub({ pki: pki.pki, tlsLeaf: pki.hubLeaf, tlsChain: [pki.root], deviceCa: pki.deviceCa, caCertificates: [pki.deviceCa, pki.root], token: TOKEN });
  const devices = [];
  try {
    for (let i = 0; i < deviceCount; i++) {
      const stateDir = join(await fs.mkdtemp(join(tmpdir(), 'fleetkey-mqtt-')), 'state');
      const id = await enroll({ hubUrl: hub.url, pin: pinOf(pki.root), token: TOKEN, stateDir, timeoutMs: 5000 });
      devices.push({ stateDir, deviceId: id.deviceId, certPath: join(stateDir, 'cert.pem') });
    }
  } finally {
    await hub.close();
  }
  const watcher = pki.pki.issue(pki.deviceCa, { name: 'watcher', subject: '/CN=watcher', extensions: CLIENT_LEAF_EXTENSIONS });
  return { pki, watcher, devices };
}

export function brokerOptions(world: World, name: string, extra: Partial<MosquittoOptions> = {}): MosquittoOptions {
  const { pki } = world;
  return { pki: pki.pki, serverCert: pki.hubLeaf, serverChain: [pki.root], clientCas: [pki.deviceCa, pki.root], name, ...extra };
}

/** A CRL of the device CA revoking `certPaths` (openssl ca -revoke, then -gencrl). */
export function makeCrl(world: World, name: string, certPaths: readonly string[]): string {
  const dir = world.pki.pki.dir;
  const database = join(dir, `${name}.crl-index`);
  const config = join(dir, `${name}.crl.cnf`);
  writeFileSync(database, '');
  writeFileSync(config, ['[ca]', 'default_ca = d', '[d]', `database = ${database}`, 'default_md = sha256', 'default_crl_days = 1', ''].join('\n'));
  const ca = ['-config', config, '-cert', world.pki.deviceCa.certPath, '-keyfile', world.pki.deviceCa.keyPath];
  for (const cert of certPaths) openssl(['ca', ...ca, '-revoke', cert]);
  const out = join(dir, `${name}.crl.pem`);
  openssl(['ca', ...ca, '-gencrl', '-out', out]);
  return out;
}

export interface Received {
  readonly topic: string;
  readonly messageId: string | undefined;
  readonly body: string;
  readonly dup: boolean;
}

/** An MQTT.js subscriber with the watcher certificate (persistent session, QoS 1). */
export class Watcher {
  readonly received: Received[] = [];
  readonly client: MqttClient;

  private constructor(client: MqttClient) {
    this.client = client;
    client.on('message', (topic, payload, packet) => {
      const envelope = parseEnvelope(payload);
      this.received.push({ topic, messageId: envelope?.messageId, body: (envelope?.body ?? payload).toString(), dup: packet.dup });
    });
  }

  static async start(world: World, port: number, filter = 'devices/#'): Promise<Watcher> {
    const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, {
      protocolVersion: 4, clientId: 'watcher', clean: false, reconnectPeriod: 100, connectTimeout: 5000,
      key: world.watcher.keyPem, cert: world.watcher.certPem, ca: world.pki.root.certPem, rejectUnauthorized: true,
    });
    client.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', (connack) => {
        if (connack.sessionPresent) resolve();
        else client.subscribe(filter, { qos: 1 }, (err) => (err ? reject(err) : resolve()));
      });
    });
    return new Watcher(client);
  }

  ids(): Set<string> {
    return new Set(this.received.flatMap((r) => (r.messageId === undefined ? [] : [r.messageId])));
  }

  async waitFor(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms (received ${this.received.length})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.client.end(true, {}, () => resolve()));
  }
}
