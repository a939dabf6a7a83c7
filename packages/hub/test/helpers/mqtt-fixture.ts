/**
 * In-process broker fixture: a real SQLite store in a temp folder, a fresh hub PKI, devices
 * recorded like enrollment does, the broker on an ephemeral 127.0.0.1 TLS port with a
 * MemorySink, and a raw MQTT 3.1.1 client (node:tls + mqtt-packet) whose every packet the test
 * controls. No child processes.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import mqtt, { type Packet } from 'mqtt-packet';
import pino from 'pino';
import { ManualClock, toPem } from '@fleetkey/protocol';
import { createHubPki, issueTlsServerCert, type HubPki } from '../../src/ca/hub-pki.js';
import { InProcessEventBus } from '../../src/events/bus.js';
import { startMqttBroker, type MqttBroker, type MqttLimits } from '../../src/mqtt/index.js';
import { openSqliteStore } from '../../src/storage/sqlite/index.js';
import type { Store } from '../../src/storage/types.js';
import { makeLeaf, type LeafCredential, type LeafOptions } from './mqtt-certs.js';
import { MemorySink } from './mqtt-memory-sink.js';

export const TEST_LIMITS: MqttLimits = {
  maxPacketBytes: 4096, maxQueuedPackets: 8, maxInflight: 4, maxSubscriptions: 3, connectTimeoutMs: 2000,
  keepAliveMaxSeconds: 60, rate: { perSecond: 5, burst: 10 }, revocationRetentionMs: 90 * 86_400_000,
};

export interface BrokerFixture {
  readonly store: Store;
  readonly clock: ManualClock;
  readonly pki: HubPki;
  readonly bus: InProcessEventBus;
  readonly sink: MemorySink;
  readonly broker: MqttBroker;
  readonly rootPem: string;
  readonly tenantId: string;
  /** Issues a certificate (device CA by default) and records it for `deviceId` in `tenantId`. */
  enroll(deviceId: string, o?: Partial<LeafOptions> & { tenantId?: string; record?: boolean }): Promise<LeafCredential>;
  connect(cred: LeafCredential | undefined, clientId: string, extra?: Partial<mqtt.IConnectPacket>): Promise<RawClient>;
  stop(): Promise<void>;
}

export async function startBrokerFixture(limits: Partial<MqttLimits> = {}): Promise<BrokerFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-mqtt-'));
  const clock = new ManualClock(Date.now());
  const store = await openSqliteStore({ path: join(dir, 'hub.db'), clock });
  const pki = await createHubPki({ clock, orgName: 'fleetkey' });
  const tls = await issueTlsServerCert({ rootSigner: pki.root.signer, rootCertificate: pki.root.certificate, dnsNames: ['localhost'], ips: ['127.0.0.1'], clock });
  const bus = new InProcessEventBus();
  const sink = new MemorySink();
  const tenants = new Set<string>();
  const ensureTenant = async (id: string): Promise<void> => {
    if (tenants.has(id)) return;
    tenants.add(id);
    const owner = { id: `own_${id}`, tenantId: id, email: `${id}@example.test`, passwordHash: '$argon2id$x', totpSealed: 'c2VhbGVk', totpLastStep: 0, createdAt: clock.now(), disabled: false };
    await store.tenants.createWithOwner({ id, name: `Org ${id}`, createdAt: clock.now() }, owner, { category: 'test', type: 'owner.create', result: 'success', actor: 'operator', source: 'test' });
  };
  await ensureTenant('org_a');
  const broker = await startMqttBroker({
    host: '127.0.0.1', port: 0, store, clock, sink, bus, logger: pino({ level: process.env.FLEETKEY_TEST_LOG ?? 'silent' }),
    limits: { ...TEST_LIMITS, ...limits },
    tls: { keyPem: tls.privateKeyPem, chainPem: tls.chain.map((c) => toPem('CERTIFICATE', c)).join(''), clientCaPem: toPem('CERTIFICATE', pki.deviceCa.certificate) + toPem('CERTIFICATE', pki.root.certificate) },
    deviceCaCerts: [new X509Certificate(pki.deviceCa.certificate)],
  });
  const rootPem = toPem('CERTIFICATE', pki.root.certificate);
  return {
    store, clock, pki, bus, sink, broker, rootPem, tenantId: 'org_a',
    enroll: async (deviceId, o = {}) => {
      const tenantId = o.tenantId ?? 'org_a';
      await ensureTenant(tenantId);
      const cred = await makeLeaf({ issuer: pki.deviceCa, ...o, deviceId });
      if (o.record !== false) await recordCertificate(store, tenantId, cred, clock.now());
      return cred;
    },
    connect: (cred, clientId, extra) => RawClient.open(broker.port, rootPem, cred, clientId, extra),
    stop: async () => {
      await broker.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function recordCertificate(store: Store, tenantId: string, cred: LeafCredential, now: number): Promise<void> {
  const cert = new X509Certificate(cred.der);
  await store.devices.recordEnrollment({
    device: { id: cred.deviceId, tenantId, status: 'active', createdAt: now, enrolledVia: 'test', claimTokenId: null, label: null, currentSerial: cred.serial },
    certificate: {
      serial: cert.serialNumber.toLowerCase(), deviceId: cred.deviceId, tenantId, spkiSha256: createHash('sha256').update(cred.spki).digest('hex'),
      keyAlgorithm: 'p256', notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo), issuedAt: now, der: cred.der, revokedAt: null, revocationReason: null,
    },
    audit: { category: 'certificate', type: 'certificate.issue', result: 'success', actor: `device:${cred.deviceId}`, source: 'test', tenantId },
  });
}

/** A raw MQTT 3.1.1 client over mutual TLS: every packet it sends and receives is visible. */
export class RawClient {
  readonly received: Packet[] = [];
  readonly closed: Promise<void>;
  #waiters: Array<() => void> = [];
  #isClosed = false;

  private constructor(readonly socket: TLSSocket) {
    const parser = mqtt.parser({ protocolVersion: 4 });
    parser.on('packet', (p: Packet) => {
      this.received.push(p);
      this.#wake();
    });
    socket.on('data', (d: Buffer) => parser.parse(d));
    socket.on('error', () => undefined); // a refused handshake shows as `closed`
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.#isClosed = true;
      this.#wake();
      resolve();
    }));
  }

  static async open(port: number, rootPem: string, cred: LeafCredential | undefined, clientId: string, extra: Partial<mqtt.IConnectPacket> = {}): Promise<RawClient> {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: rootPem, servername: 'localhost', ...(cred ? { key: cred.keyPem, cert: cred.certPem } : {}) });
    const client = new RawClient(socket);
    await new Promise<void>((resolve) => {
      socket.once('secureConnect', () => resolve());
      socket.once('close', () => resolve());
    });
    if (!client.isClosed) client.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId, ...extra } as mqtt.IConnectPacket);
    return client;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  send(packet: mqtt.Packet): void {
    this.socket.write(mqtt.generate(packet, { protocolVersion: 4 }));
  }

  /** Several packets in one write (one TLS record), so the broker parses them as one batch. */
  sendAll(packets: readonly mqtt.Packet[]): void {
    this.socket.write(Buffer.concat(packets.map((p) => mqtt.generate(p, { protocolVersion: 4 }))));
  }

  /** The first received packet of `cmd` matching `where` (waits up to `timeoutMs`); undefined on close/timeout. */
  async next<C extends Packet['cmd']>(cmd: C, timeoutMs = 3000, where: (p: Extract<Packet, { cmd: C }>) => boolean = () => true): Promise<Extract<Packet, { cmd: C }> | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find((p): p is Extract<Packet, { cmd: C }> => p.cmd === cmd && where(p as Extract<Packet, { cmd: C }>));
      if (found !== undefined) return found;
      if (this.#isClosed || Date.now() >= deadline) return undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, Math.max(1, deadline - Date.now())).unref();
      });
    }
  }

  async connack(): Promise<number | undefined> {
    return (await this.next('connack'))?.returnCode;
  }

  /** Waits until the connection is closed; false when still open after `timeoutMs`. */
  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    return this.#isClosed;
  }

  end(): void {
    this.socket.destroy();
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}
