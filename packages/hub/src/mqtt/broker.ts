/**
 * The embedded MQTT 3.1.1 broker: aedes 1.2 on a TLS server that fleetkey owns (ADR 0012).
 *
 * Invariants:
 * - The only listener is TLS with required client certificates (tls.ts); aedes never opens a
 *   socket of its own, and every byte reaches its parser through the frame guard (max packet
 *   size, malformed length → the connection is destroyed before anything is buffered), and every
 *   parsed packet through the packet guard (packet-guard.ts) before aedes handles it.
 * - Identity, topic rules, ingest before PUBACK and SUBACK 0x80 live in the hooks
 *   (connect-hooks.ts, publish-hook.ts, subscribe-hooks.ts); this module only wires them.
 * - `device.revoked` closes the device's live session synchronously in the handler and marks it,
 *   so a reconnect is refused; `device.command` is published on `devices/{id}/commands/{topic}`
 *   at QoS 1 to this process's subscribers, only when the live session belongs to the event's
 *   tenant, and at most `maxInflight` unwritten commands per connection.
 * - `close` stops listening, closes every session and removes every bus subscription and timer.
 * - Only PUBLISHes some subscription could match are routed through aedes (skipUnroutable).
 */
import type { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Aedes, type Client, type PublishPacket } from 'aedes';
import type { Logger } from 'pino';
import { FleetkeyError, type Clock } from '@fleetkey/protocol';
import type { EventBus, HubEvents } from '../events/bus.js';
import type { Store } from '../storage/types.js';
import type { TelemetrySink } from '../telemetry/types.js';
import { connectHooks } from './connect-hooks.js';
import { makeAudit, type BrokerContext, type MqttLimits } from './context.js';
import { DeviceAuthenticator } from './device-auth.js';
import { FrameGuard } from './frame-guard.js';
import { guardPackets } from './packet-guard.js';
import { publishHook } from './publish-hook.js';
import { DeviceRateLimiter } from './rate-limit.js';
import { SessionRegistry } from './sessions.js';
import { SessionMoves } from './session-moves.js';
import { subscribeHooks } from './subscribe-hooks.js';
import { createMqttTlsServer, reloadTls, type MqttTlsMaterial } from './tls.js';
import { HUB_TOPIC_PREFIX, MAX_TOPIC_LEVELS, commandTopic, maySubscribersMatch } from './topic-policy.js';

export interface MqttBrokerOptions {
  readonly host: string;
  /** 0 = ephemeral (tests). */
  readonly port: number;
  readonly tls: MqttTlsMaterial;
  readonly deviceCaCerts: readonly X509Certificate[];
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sink: TelemetrySink;
  readonly bus: EventBus;
  readonly limits: MqttLimits;
}

export interface MqttBroker {
  readonly port: number;
  /** Devices with a live session in this process. */
  readonly liveSessions: number;
  /** New TLS material and device CA trust for new connections; live sessions are kept. */
  reloadTrust(tls: MqttTlsMaterial, deviceCaCerts: readonly X509Certificate[]): void;
  /**
   * Closes, at random times within `spreadMs`, every live session whose TLS handshake served a
   * certificate that `keep` refuses (a retired root's; ADR 0026); returns how many were scheduled.
   * Devices reconnect under the current root; unacknowledged QoS 1 messages are resent from their
   * outboxes, so nothing acknowledged is lost.
   */
  moveSessions(keep: (served: X509Certificate) => boolean, spreadMs: number): number;
  /** Publishes a retained hub message (QoS 1) on a `$fleetkey/…` topic, e.g. the trust bundle. */
  publishRetained(topic: string, payload: Buffer): Promise<void>;
  close(): Promise<void>;
}

const RATE_SWEEP_MS = 60_000;

/** Every read of the socket passes the frame guard first; a violation destroys the socket. */
function guardReads(socket: TLSSocket, maxPacketBytes: number, logger: Logger): void {
  const guard = new FrameGuard(maxPacketBytes);
  const read = socket.read.bind(socket);
  socket.read = (size?: number): unknown => {
    const chunk: unknown = read(size);
    if (Buffer.isBuffer(chunk)) {
      const violation = guard.feed(chunk);
      if (violation !== undefined) {
        logger.info({ violation, source: socket.remoteAddress }, 'mqtt connection closed: bad framing');
        socket.destroy();
        return null;
      }
    }
    return chunk;
  };
}

type PublishDone = (err?: Error) => void;
type RoutePublish = (packet: PublishPacket, client: Client | PublishDone | null, done?: PublishDone) => void;

/**
 * aedes routes every PUBLISH after its PUBACK (offline-queue lookup, mqemitter trie, `published`
 * hook) and announces every connect/disconnect on `$SYS/<id>/…/clients`. Nobody can receive
 * device telemetry (maySubscribersMatch) or those announcements (devices cannot subscribe to
 * `$SYS`; aedes' own listener ignores its own id; one broker per process), so they skip the
 * routing and complete at once. Everything else (commands, `$fleetkey/…`, heartbeats) is routed.
 */
function skipUnroutable(broker: Aedes): void {
  const own = new Set([`$SYS/${broker.id}/new/clients`, `$SYS/${broker.id}/disconnect/clients`]);
  const target = broker as unknown as { publish: RoutePublish };
  const route = target.publish.bind(broker);
  target.publish = (packet, client, done) => {
    const topic = packet.topic;
    if (topic.startsWith('$SYS/') ? own.has(topic) : !maySubscribersMatch(topic)) {
      (typeof client === 'function' ? client : done)?.();
      return;
    }
    route(packet, client, done);
  };
}

function deliverCommand(ctx: BrokerContext, broker: Aedes, e: HubEvents['device.command']): void {
  const topic = commandTopic(e.deviceId, e.topic);
  const client = ctx.sessions.live(e.deviceId);
  const session = ctx.sessions.session(client ?? null);
  if (topic === undefined || session === undefined || session.identity.tenantId !== e.tenantId) {
    ctx.logger.debug({ deviceId: e.deviceId, valid: topic !== undefined }, 'command not delivered here (no live session of that tenant)');
    return;
  }
  if (session.outboundPending >= ctx.limits.maxInflight) {
    void ctx.audit({ type: 'command.dropped', result: 'failure', code: 'RATE_LIMITED', deviceId: e.deviceId, tenantId: e.tenantId, source: 'mqtt:hub', details: { reason: 'too many commands in flight' } });
    return;
  }
  session.outboundPending++;
  const packet: PublishPacket = { cmd: 'publish', topic, payload: e.payload, qos: 1, dup: false, retain: false };
  broker.publish(packet, () => {
    session.outboundPending--;
  });
}

function watchBroker(ctx: BrokerContext, broker: Aedes): void {
  broker.on('client', (client: Client) => void ctx.sessions.register(client));
  broker.on('clientDisconnect', (client: Client) => ctx.sessions.unregister(client));
  broker.on('unsubscribe', (filters: string[], client: Client) => {
    const session = ctx.sessions.session(client);
    for (const f of filters) session?.filters.delete(f);
  });
  broker.on('clientError', (client: Client, err: Error) => ctx.logger.debug({ err: err.message, clientIdLength: client.id.length }, 'mqtt client closed on error'));
  broker.on('connectionError', (_client: Client, err: Error) => ctx.logger.debug({ err: err.message }, 'mqtt connection closed on error'));
  // aedes emits a bare 'error' on persistence failures; without a listener it would crash the hub.
  (broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => ctx.logger.error({ err }, 'mqtt broker error'));
}

function subscribeBus(ctx: BrokerContext, broker: Aedes, bus: EventBus): Array<() => void> {
  return [
    bus.subscribe('device.revoked', async (e) => {
      const closed = ctx.sessions.revoke(e.deviceId, e.serials, ctx.clock.now());
      if (closed !== undefined) {
        await ctx.audit({ type: 'session.revoked', result: 'success', code: 'CERT_INVALID', deviceId: e.deviceId, tenantId: e.tenantId, source: 'mqtt:hub', details: { reason: 'device revoked' } });
      }
    }),
    bus.subscribe('device.command', (e) => deliverCommand(ctx, broker, e)),
  ];
}

export async function startMqttBroker(o: MqttBrokerOptions): Promise<MqttBroker> {
  let caCerts = o.deviceCaCerts;
  const sessions = new SessionRegistry(o.limits.revocationRetentionMs);
  const ctx: BrokerContext = {
    store: o.store, clock: o.clock, logger: o.logger, sink: o.sink, sessions, limits: o.limits,
    rate: new DeviceRateLimiter(o.limits.rate), audit: makeAudit(o.store, o.logger),
    auth: new DeviceAuthenticator({ store: o.store, clock: o.clock, deviceCaCerts: () => caCerts, isRevoked: (d, s) => sessions.isRevoked(d, s) }),
  };
  const broker = await Aedes.createBroker({
    ...connectHooks(ctx), authorizePublish: publishHook(ctx), ...subscribeHooks(ctx),
    connectTimeout: o.limits.connectTimeoutMs, queueLimit: o.limits.maxQueuedPackets,
    maxClientsIdLength: 64, maxTopicLevels: MAX_TOPIC_LEVELS, keepaliveLimit: 0,
  });
  watchBroker(ctx, broker);
  skipUnroutable(broker);
  const server = createMqttTlsServer(o.tls, o.limits.connectTimeoutMs);
  server.on('secureConnection', (socket: TLSSocket) => {
    guardReads(socket, o.limits.maxPacketBytes, o.logger);
    guardPackets(broker.handle(socket), socket, o.logger);
  });
  server.on('tlsClientError', (err: Error, socket: TLSSocket) => o.logger.info({ err: err.message, source: socket.remoteAddress }, 'mqtt TLS handshake refused'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const unsubscribe = subscribeBus(ctx, broker, o.bus);
  const sweep = setInterval(() => ctx.rate.sweep(o.clock.now()), RATE_SWEEP_MS);
  sweep.unref();
  const moves = new SessionMoves(o.logger);
  return {
    port: (server.address() as AddressInfo).port,
    get liveSessions() {
      return sessions.liveCount;
    },
    moveSessions: (keep, spreadMs) => moves.schedule(sessions.liveClients(), keep, spreadMs),
    reloadTrust: (tls, deviceCaCerts) => {
      reloadTls(server, tls);
      caCerts = deviceCaCerts;
    },
    publishRetained: (topic, payload) => new Promise<void>((resolve, reject) => {
      if (!topic.startsWith(HUB_TOPIC_PREFIX)) return reject(new FleetkeyError('INTERNAL', { cause: new Error('not a hub topic') }));
      const packet: PublishPacket = { cmd: 'publish', topic, payload, qos: 1, dup: false, retain: true };
      broker.publish(packet, (err) => (err ? reject(err) : resolve()));
    }),
    close: async () => {
      for (const u of unsubscribe) u();
      clearInterval(sweep);
      moves.cancel();
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await serverClosed;
    },
  };
}
