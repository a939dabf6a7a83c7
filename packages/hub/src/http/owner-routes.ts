/**
 * The owner API (`/api/v1`): sessions, claim tokens, devices. Every route except login requires
 * a bearer session, and every lookup is scoped to the session's organisation: another tenant's
 * object is 404, exactly like one that does not exist.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FleetkeyError } from '@fleetkey/protocol';
import type { AuthContext, LoginService } from '../accounts/index.js';
import type { ClaimTokenService, OwnerContext } from '../provisioning/claim-token/service.js';
import type { CertificateRecord, Device, Store } from '../storage/types.js';
import { schemas } from './schemas.js';

export interface OwnerRouteDeps {
  readonly store: Store;
  readonly login: LoginService;
  readonly claimTokens: ClaimTokenService;
}

declare module 'fastify' {
  interface FastifyRequest {
    owner?: AuthContext;
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();

function ownerContext(request: FastifyRequest): OwnerContext {
  const owner = request.owner;
  if (owner === undefined) throw new FleetkeyError('AUTH_REQUIRED');
  return { tenantId: owner.tenantId, ownerId: owner.ownerId, session: owner.sessionId, source: request.ip };
}

function deviceView(d: Device, cert: CertificateRecord | undefined): Record<string, unknown> {
  return {
    id: d.id,
    status: d.status,
    label: d.label,
    createdAt: iso(d.createdAt),
    enrolledVia: d.enrolledVia,
    // ADR 0027: `tpm-attested` / `se-attested` were proven; `file`, `pkcs11`, `tpm` are device-reported.
    keyProtection: d.keyProtection ?? 'file',
    certificate:
      cert === undefined
        ? null
        : { serial: cert.serial, notBefore: iso(cert.notBefore), notAfter: iso(cert.notAfter), keyAlgorithm: cert.keyAlgorithm, spkiSha256: cert.spkiSha256 },
  };
}

export function registerOwnerRoutes(app: FastifyInstance, deps: OwnerRouteDeps): void {
  const { store, login, claimTokens } = deps;
  // An `onRequest` hook: the bearer is checked before the body is parsed or validated, so an
  // unauthenticated caller gets AUTH_REQUIRED and never a validation answer about the schema.
  const requireOwner = async (request: FastifyRequest): Promise<void> => {
    request.owner = await login.authenticate(request.headers.authorization);
  };
  const err = { '4xx': schemas.errorBody };

  app.post('/api/v1/sessions', { schema: { body: schemas.loginBody, response: { 201: schemas.session, ...err } } }, async (request, reply) => {
    const body = request.body as { email: string; password: string; totp: string };
    const session = await login.login({ ...body, source: request.ip });
    return reply.code(201).header('Cache-Control', 'no-store').send({ token: session.token, expiresAt: iso(session.expiresAt) });
  });

  app.delete('/api/v1/sessions/current', { onRequest: requireOwner }, async (request, reply) => {
    await login.logout(request.headers.authorization, request.ip);
    return reply.code(204).send();
  });

  app.post('/api/v1/claim-tokens', { onRequest: requireOwner, schema: { body: schemas.createClaimTokenBody, response: { 201: schemas.createdClaimToken, ...err } } }, async (request, reply) => {
    const body = (request.body ?? {}) as { ttlSeconds?: number; maxUses?: number; label?: string };
    const created = await claimTokens.create(ownerContext(request), body);
    return reply.code(201).header('Cache-Control', 'no-store').send(created);
  });

  app.get('/api/v1/claim-tokens', { onRequest: requireOwner, schema: { response: { 200: { type: 'object', properties: { items: { type: 'array', items: schemas.claimToken } } }, ...err } } }, async (request) => ({
    items: await claimTokens.list(ownerContext(request)),
  }));

  app.delete('/api/v1/claim-tokens/:id', { onRequest: requireOwner, schema: { params: schemas.idParam } }, async (request, reply) => {
    await claimTokens.revoke(ownerContext(request), (request.params as { id: string }).id);
    return reply.code(204).send();
  });

  app.get('/api/v1/devices', { onRequest: requireOwner, schema: { querystring: schemas.listQuery, response: { 200: { type: 'object', properties: { items: { type: 'array', items: schemas.device }, next: { type: ['string', 'null'] } } }, ...err } } }, async (request) => {
    const q = request.query as { limit?: number; after?: string };
    const limit = q.limit ?? 100;
    const devices = await store.devices.list(ownerContext(request).tenantId, { limit, ...(q.after ? { after: q.after } : {}) });
    const items = await Promise.all(devices.map(async (d) => deviceView(d, await currentCert(store, d))));
    return { items, next: devices.length === limit ? (devices.at(-1)?.id ?? null) : null };
  });

  app.get('/api/v1/devices/:id', { onRequest: requireOwner, schema: { params: schemas.idParam, response: { 200: schemas.device, ...err } } }, async (request) => {
    const device = await store.devices.get(ownerContext(request).tenantId, (request.params as { id: string }).id);
    if (device === undefined) throw new FleetkeyError('NOT_FOUND');
    return deviceView(device, await currentCert(store, device));
  });
}

async function currentCert(store: Store, d: Device): Promise<CertificateRecord | undefined> {
  return d.currentSerial === null ? undefined : store.devices.certificateBySerial(d.currentSerial);
}
