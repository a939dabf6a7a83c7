/**
 * Device PUBLISH: authorisation, rate, and durable ingest before the PUBACK.
 *
 * Where the PUBACK leaves (aedes 1.2 `lib/handlers/publish.js`): `handlePublish` runs
 * `[authorizePublish, enqueuePublish]` in series, and `enqueuePublish` writes the PUBACK for
 * QoS 1 *before* `broker.publish` (so before the `published` hook). `authorizePublish` is the
 * only hook that runs before the PUBACK, so ingest happens here: its callback is called only
 * after `TelemetrySink.accept` resolved (test: mqtt-broker.test.ts "PUBACK waits for the sink").
 *
 * Invariants:
 * - Only an authenticated session's PUBLISH is considered; its device id is the certificate's.
 * - A topic the policy denies, QoS 2, or a device over its message rate: nothing is stored, the
 *   callback gets an error, and aedes closes the connection (MQTT 3.1.1 has no negative PUBACK);
 *   one audit record each (FORBIDDEN / VALIDATION_FAILED / RATE_LIMITED).
 * - Sink failure: no PUBACK, the connection is closed, so the client resends (§4.4).
 * - PUBACKs leave in the order the PUBLISHes arrived [MQTT-4.6.0-2], while the sink calls of one
 *   read batch still run concurrently (one group commit).
 * - The RETAIN flag is cleared: the hub keeps no retained messages (ADR 0012).
 */
import type { AedesOptions, Client, PublishPacket } from 'aedes';
import { dedupKeyFor } from '../telemetry/dedup.js';
import type { InboundTelemetry } from '../telemetry/types.js';
import { sourceOf, type BrokerContext } from './context.js';
import type { DeviceSession } from './sessions.js';
import { canPublish } from './topic-policy.js';

type PublishHook = Required<Pick<AedesOptions, 'authorizePublish'>>['authorizePublish'];

function denyPublish(ctx: BrokerContext, client: Client | null, session: DeviceSession | undefined, d: { type: string; code: 'FORBIDDEN' | 'VALIDATION_FAILED' | 'RATE_LIMITED'; reason: string; topic?: string; qos?: number }): Error {
  void ctx.audit({
    type: d.type, result: 'failure', code: d.code, deviceId: session?.identity.deviceId, tenantId: session?.identity.tenantId,
    source: sourceOf(client), details: { reason: d.reason, ...(d.topic !== undefined ? { topic: d.topic.slice(0, 128) } : {}), ...(d.qos !== undefined ? { qos: d.qos } : {}) },
  });
  return new Error(`publish refused: ${d.reason}`);
}

/** Why this PUBLISH may not be ingested, or undefined. */
function refusalOf(ctx: BrokerContext, client: Client | null, session: DeviceSession | undefined, packet: PublishPacket): Error | undefined {
  if (session === undefined) return denyPublish(ctx, client, session, { type: 'publish.denied', code: 'FORBIDDEN', reason: 'no authenticated session' });
  const { deviceId, serial } = session.identity;
  if (ctx.sessions.isRevoked(deviceId, serial)) return denyPublish(ctx, client, session, { type: 'publish.denied', code: 'FORBIDDEN', reason: 'device revoked' });
  const decision = canPublish(deviceId, packet.topic);
  if (!decision.allowed) return denyPublish(ctx, client, session, { type: 'publish.denied', code: 'FORBIDDEN', reason: decision.reason, topic: packet.topic, qos: packet.qos });
  if (packet.qos === 2) return denyPublish(ctx, client, session, { type: 'publish.denied', code: 'VALIDATION_FAILED', reason: 'QoS 2 is not supported', qos: 2 });
  if (!ctx.rate.take(deviceId, ctx.clock.now())) return denyPublish(ctx, client, session, { type: 'publish.rate_limited', code: 'RATE_LIMITED', reason: 'message rate exceeded' });
  return undefined;
}

function inbound(ctx: BrokerContext, session: DeviceSession, packet: PublishPacket): InboundTelemetry {
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload, 'utf8') : Buffer.from(packet.payload);
  return {
    tenantId: session.identity.tenantId, deviceId: session.identity.deviceId, topic: packet.topic, payload,
    qos: packet.qos === 1 ? 1 : 0, receivedAt: ctx.clock.now(), dedupKey: dedupKeyFor(packet.topic, payload, packet.dup === true),
  };
}

/** Stores the message; calls back in arrival order once it (and every earlier one) is durable. */
function ingest(ctx: BrokerContext, client: Client, session: DeviceSession, packet: PublishPacket, callback: (err?: Error | null) => void): void {
  const message = inbound(ctx, session, packet);
  const settle = session.acks.take();
  ctx.sink.accept(message).then(
    () => settle(() => callback(null)),
    (err: unknown) => settle(() => {
      ctx.logger.error({ err, deviceId: session.identity.deviceId }, 'telemetry sink refused a message; closing without PUBACK');
      void ctx.audit({ type: 'ingest.failed', result: 'failure', code: 'STORAGE_UNAVAILABLE', deviceId: session.identity.deviceId, tenantId: session.identity.tenantId, source: sourceOf(client) });
      callback(new Error('telemetry could not be stored'));
    }),
  );
}

export function publishHook(ctx: BrokerContext): PublishHook {
  return (client, packet, callback) => {
    const session = ctx.sessions.session(client);
    const refused = refusalOf(ctx, client, session, packet);
    if (refused !== undefined || session === undefined || client === null) {
      callback(refused ?? new Error('publish refused'));
      return;
    }
    packet.retain = false;
    ingest(ctx, client, session, packet, callback);
  };
}
