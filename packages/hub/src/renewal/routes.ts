/**
 * Renewal over HTTPS (ADR 0025).
 *
 * Owner (bearer session, tenant-scoped):
 *   GET  /api/v1/organisation/renewal        → {graceDays, source, updatedAt}
 *   PUT  /api/v1/organisation/renewal        {graceDays 0–365} → the same view (audited)
 *   POST /api/v1/devices/{id}/renew          {reason?} → 202 {deviceId, commandId, topic, requestedAt}
 *   POST /api/v1/devices/renew               {reason?} → 202 {requested, rateLimited} (whole organisation)
 * Device (mutual TLS with the device certificate, the two steps of the SDK's two-phase swap):
 *   GET  /.well-known/fleetkey/device                   → 200 {deviceId, serial, notAfter}: the proof
 *   POST /.well-known/fleetkey/device/retire-previous   → 200 {retired: [serials]}
 *
 * Invariants:
 * - A device route answers only for a certificate that passed the TLS stack's own chain and
 *   validity check (`socket.authorized`, real time, like the MQTT listener's
 *   `rejectUnauthorized`) AND the hub's DeviceAuthenticator (device CA signature, validity on the
 *   hub clock, clientAuth, recorded, not revoked, device active). An expired certificate, which
 *   the listener lets through only for `simplereenroll`, is CERT_INVALID here.
 * - Every refusal is the one public CERT_INVALID (401); the reason goes to the log.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FleetkeyError, fail } from '@fleetkey/protocol';
import type { AuthContext, LoginService } from '../accounts/index.js';
import type { DeviceAuthenticator, DeviceIdentity } from '../mqtt/device-auth.js';
import { schemas } from '../http/schemas.js';
import { MAX_GRACE_DAYS, type RenewalActor, type RenewalService } from './service.js';

export const DEVICE_PATH = '/.well-known/fleetkey/device';

export interface RenewalRouteDeps {
  readonly login: LoginService;
  readonly renewal: RenewalService;
  readonly devices: DeviceAuthenticator;
}

const reasonBody = {
  type: 'object', additionalProperties: false,
  properties: { reason: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[\\x20-\\x7e]+$', description: 'Free text carried in the command, e.g. device-ca-rotation' } },
} as const;
const graceBody = {
  type: 'object', additionalProperties: false, required: ['graceDays'],
  properties: { graceDays: { type: 'integer', minimum: 0, maximum: MAX_GRACE_DAYS, description: 'Days after expiry in which a same-key renewal is accepted; 0 = none' } },
} as const;

function actorOf(request: FastifyRequest): RenewalActor {
  const owner: AuthContext | undefined = request.owner;
  if (owner === undefined) throw new FleetkeyError('AUTH_REQUIRED');
  return { tenantId: owner.tenantId, actor: `owner:${owner.ownerId}`, session: owner.sessionId, source: request.ip };
}

const reasonOf = (request: FastifyRequest): string => ((request.body ?? {}) as { reason?: string }).reason ?? 'owner-request';

async function provenDevice(deps: RenewalRouteDeps, request: FastifyRequest): Promise<DeviceIdentity> {
  const socket = request.raw.socket as TLSSocket;
  const peer = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
  if (peer === undefined) throw new FleetkeyError('CERT_REQUIRED');
  // The TLS stack's verdict first (chain to the device CA, validity in real time).
  if (!socket.authorized) throw new FleetkeyError('CERT_INVALID', { cause: new Error(`TLS: ${String(socket.authorizationError)}`) });
  const result = await deps.devices.authenticate(peer);
  if (!result.ok) throw new FleetkeyError('CERT_INVALID', { cause: new Error(result.reason) });
  return result.identity;
}

export function registerRenewalRoutes(app: FastifyInstance, deps: RenewalRouteDeps): void {
  const requireOwner = async (request: FastifyRequest): Promise<void> => {
    request.owner = await deps.login.authenticate(request.headers.authorization);
  };
  const err = { '4xx': schemas.errorBody };

  app.get('/api/v1/organisation/renewal', { onRequest: requireOwner, schema: { response: err } }, async (request) =>
    deps.renewal.policy(actorOf(request).tenantId));
  app.put('/api/v1/organisation/renewal', { onRequest: requireOwner, schema: { body: graceBody, response: err } }, async (request) =>
    deps.renewal.setGraceDays(actorOf(request), (request.body as { graceDays: number }).graceDays));
  app.post('/api/v1/devices/:id/renew', { onRequest: requireOwner, schema: { params: schemas.idParam, body: reasonBody, response: err } }, async (request, reply) => {
    const r = await deps.renewal.requestRenewal(actorOf(request), (request.params as { id: string }).id, reasonOf(request));
    return reply.code(202).header('Cache-Control', 'no-store').send(r);
  });
  app.post('/api/v1/devices/renew', { onRequest: requireOwner, schema: { body: reasonBody, response: err } }, async (request, reply) => {
    const r = await deps.renewal.requestRenewalAll(actorOf(request), reasonOf(request));
    return reply.code(202).header('Cache-Control', 'no-store').send(r);
  });

  // The device is authenticated in onRequest, before any body is read (like requireOwner).
  const proven = new WeakMap<FastifyRequest, DeviceIdentity>();
  const requireDevice = async (request: FastifyRequest): Promise<void> => {
    proven.set(request, await provenDevice(deps, request));
  };
  const deviceOf = (request: FastifyRequest): DeviceIdentity => proven.get(request) ?? fail('CERT_REQUIRED');
  app.get(DEVICE_PATH, { onRequest: requireDevice }, async (request, reply) => {
    const identity = deviceOf(request);
    const cert = (request.raw.socket as TLSSocket).getPeerX509Certificate();
    return reply.header('Cache-Control', 'no-store').send({ deviceId: identity.deviceId, serial: identity.serial, notAfter: new Date(cert?.validTo ?? 0).toISOString() });
  });
  app.post(`${DEVICE_PATH}/retire-previous`, { onRequest: requireDevice }, async (request, reply) => {
    const identity = deviceOf(request);
    const retired = await deps.renewal.retirePrevious(identity, request.ip);
    return reply.header('Cache-Control', 'no-store').send({ retired });
  });
}
