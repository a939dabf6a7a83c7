/**
 * The owner's view of device telemetry and the command channel (issue 3):
 *   GET  /api/v1/devices/{id}/telemetry          paged, oldest first, opaque cursor
 *   GET  /api/v1/devices/{id}/telemetry/stream   server-sent events, live from the EventBus
 *   POST /api/v1/devices/{id}/commands           → `device.command` on the bus, 202 + audit
 *
 * Invariants:
 * - Owner sessions only (bearer, checked in `onRequest` before the body is parsed); a device's
 *   TLS client certificate authenticates nothing here (checklist row 14).
 * - Tenant scoping: the device is looked up with the session's tenant first; another
 *   organisation's device is NOT_FOUND exactly like a missing one (checklist row 15), on every
 *   route, before any query, subscription, audit record or bus event.
 * - A command is audited (durably) before it is published; a refused command leaves neither an
 *   audit record nor a bus event. Commands are not queued: delivered if a session is live.
 * - Streams are ended at `preClose`, so a hub shutdown never waits for an open stream.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FleetkeyError, type Clock } from '@fleetkey/protocol';
import type { AuthContext, LoginService } from '../accounts/index.js';
import type { EventBus } from '../events/bus.js';
import type { Device, Store } from '../storage/types.js';
import { decodeCursor, encodeCursor, parseIsoTime } from '../telemetry/cursor.js';
import { LiveStream, messageView, REPLAY_LIMIT } from '../telemetry/live-stream.js';
import { schemas } from './schemas.js';

export interface TelemetryRouteDeps {
  readonly store: Store;
  readonly login: LoginService;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly commandMaxPayloadBytes: number;
  readonly sseHeartbeatMs: number;
}

interface TelemetryQueryString { since?: string; until?: string; limit?: number; cursor?: string }
interface CommandBody { topic: string; payload?: string; payloadBase64?: string }

function owner(request: FastifyRequest): AuthContext {
  if (request.owner === undefined) throw new FleetkeyError('AUTH_REQUIRED');
  return request.owner;
}

async function deviceOfTenant(store: Store, request: FastifyRequest): Promise<Device> {
  const device = await store.devices.get(owner(request).tenantId, (request.params as { id: string }).id);
  if (device === undefined) throw new FleetkeyError('NOT_FOUND');
  return device;
}

function pageQuery(q: TelemetryQueryString): { since?: number; until?: number; afterSeq?: number; limit: number } {
  return {
    limit: q.limit ?? 100,
    ...(q.since !== undefined ? { since: parseIsoTime(q.since, 'since') } : {}),
    ...(q.until !== undefined ? { until: parseIsoTime(q.until, 'until') } : {}),
    ...(q.cursor !== undefined ? { afterSeq: decodeCursor(q.cursor) } : {}),
  };
}

/** The command payload bytes: exactly one of `payload` (UTF-8) and `payloadBase64`. */
export function commandPayload(body: CommandBody, maxBytes: number): Buffer {
  if ((body.payload === undefined) === (body.payloadBase64 === undefined)) {
    throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'payload', problem: 'exactly one of payload, payloadBase64' } });
  }
  let bytes: Buffer;
  if (body.payload !== undefined) bytes = Buffer.from(body.payload, 'utf8');
  else {
    const b64 = body.payloadBase64!;
    bytes = Buffer.from(b64, 'base64');
    // RFC 4648 §4 canonical form only: re-encoding must give the input back.
    if (b64.length % 4 !== 0 || bytes.toString('base64') !== b64) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'payloadBase64' } });
  }
  if (bytes.length > maxBytes) throw new FleetkeyError('BODY_TOO_LARGE', { details: { field: 'payload', limit: maxBytes } });
  return bytes;
}

function lastEventId(request: FastifyRequest): number | undefined {
  const raw = request.headers['last-event-id'];
  return typeof raw === 'string' && /^[0-9]{1,15}$/.test(raw) ? Number(raw) : undefined;
}

export function registerTelemetryRoutes(app: FastifyInstance, deps: TelemetryRouteDeps): void {
  const { store, login, bus } = deps;
  const requireOwner = async (request: FastifyRequest): Promise<void> => {
    request.owner = await login.authenticate(request.headers.authorization);
  };
  const err = { '4xx': schemas.errorBody };
  const streams = new Set<LiveStream>();
  app.addHook('preClose', async () => {
    for (const s of streams) s.close();
  });

  app.get('/api/v1/devices/:id/telemetry', { onRequest: requireOwner, schema: { params: schemas.idParam, querystring: schemas.telemetryQuery, response: { 200: { type: 'object', properties: { items: { type: 'array', items: schemas.telemetryMessage }, next: { type: ['string', 'null'] } } }, ...err } } }, async (request) => {
    const device = await deviceOfTenant(store, request);
    const q = pageQuery(request.query as TelemetryQueryString);
    const rows = await store.telemetry.list(device.tenantId, device.id, q);
    const last = rows.at(-1);
    return { items: rows.map(messageView), next: rows.length === q.limit && last !== undefined ? encodeCursor(last.seq) : null };
  });

  app.get('/api/v1/devices/:id/telemetry/stream', { onRequest: requireOwner, schema: { params: schemas.idParam, ...{ response: err } } }, async (request, reply) => {
    const device = await deviceOfTenant(store, request);
    const after = lastEventId(request);
    const authorization = request.headers.authorization;
    const stream = new LiveStream(reply.raw, {
      tenantId: device.tenantId, deviceId: device.id, bus, heartbeatMs: deps.sseHeartbeatMs,
      checkSession: async () => void (await login.authenticate(authorization)),
      ...(after !== undefined ? { replay: () => store.telemetry.list(device.tenantId, device.id, { afterSeq: after, limit: REPLAY_LIMIT }) } : {}),
    });
    streams.add(stream);
    reply.raw.on('close', () => streams.delete(stream));
    void reply.hijack();
    await stream.start();
  });

  app.post('/api/v1/devices/:id/commands', { onRequest: requireOwner, schema: { params: schemas.idParam, body: schemas.commandBody, response: { 202: schemas.commandAccepted, ...err } } }, async (request, reply) => sendCommand(deps, request, reply));
}

async function sendCommand(deps: TelemetryRouteDeps, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const device = await deviceOfTenant(deps.store, request);
  const body = request.body as CommandBody;
  const payload = commandPayload(body, deps.commandMaxPayloadBytes);
  if (device.status !== 'active') throw new FleetkeyError('FORBIDDEN', { details: { reason: 'device revoked' } });
  const ctx = owner(request);
  const id = `cmd_${randomBytes(12).toString('base64url')}`;
  const acceptedAt = deps.clock.now();
  await deps.store.audit.append({
    category: 'owner', type: 'device.command', result: 'success', actor: `owner:${ctx.ownerId}`, source: request.ip,
    tenantId: device.tenantId, session: ctx.sessionId, details: { deviceId: device.id, commandId: id, topic: body.topic, bytes: payload.length },
  });
  await deps.bus.publish('device.command', { tenantId: device.tenantId, deviceId: device.id, topic: body.topic, payload });
  return reply.code(202).header('Cache-Control', 'no-store').send({ id, topic: `devices/${device.id}/commands/${body.topic}`, acceptedAt: new Date(acceptedAt).toISOString() });
}
