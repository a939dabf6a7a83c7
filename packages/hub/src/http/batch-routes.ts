/**
 * Batch pre-provisioning over HTTP (ADRs 0014, 0015), owner bearer session, tenant-scoped:
 * - `POST /api/v1/batches` → 202 and the batch (the job runs in the background)
 * - `GET /api/v1/batches/{id}` → progress (done/total, status)
 * - `GET /api/v1/batches/{id}/bundle` → `application/gzip`, counted and audited
 * - `POST /api/v1/batches/{id}/revoke` → revokes never-connected identities together
 * - `POST /api/v1/factory-kits` (factory sub-CA for a CSR) and `POST /api/v1/batches/import`
 *
 * Invariants: the bearer is checked in `onRequest`, before a (large) body is parsed; bodies of
 * the batch and import routes are bounded by `batchMaxBodyBytes`; responses never carry a
 * passphrase or a private key except the bundle itself (Cache-Control: no-store).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FleetkeyError } from '@fleetkey/protocol';
import type { LoginService } from '../accounts/index.js';
import type { BatchService, CreateBatchInput } from '../batch/service.js';
import type { FactoryService } from '../batch/factory-kits.js';
import type { OwnerContext } from '../provisioning/claim-token/service.js';
import type { Batch } from '../storage/types.js';
import { batchSchemas } from './batch-schemas.js';
import { schemas } from './schemas.js';

export interface BatchRouteDeps {
  readonly login: LoginService;
  readonly batches: BatchService;
  readonly factory: FactoryService;
  readonly maxBodyBytes: number;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function batchView(b: Batch): Record<string, unknown> {
  return {
    id: b.id, label: b.label, mode: b.mode, keyAlg: b.keyAlgorithm, status: b.status, done: b.done, total: b.count,
    failureCode: b.failureCode, createdAt: iso(b.createdAt), completedAt: iso(b.completedAt), downloads: b.downloads,
    encrypted: b.passphraseSealed !== null,
  };
}

function ownerOf(request: FastifyRequest): OwnerContext {
  const o = request.owner;
  if (o === undefined) throw new FleetkeyError('AUTH_REQUIRED');
  return { tenantId: o.tenantId, ownerId: o.ownerId, session: o.sessionId, source: request.ip };
}

export function registerBatchRoutes(app: FastifyInstance, deps: BatchRouteDeps): void {
  const { login, batches, factory } = deps;
  const requireOwner = async (request: FastifyRequest): Promise<void> => {
    request.owner = await login.authenticate(request.headers.authorization);
  };
  const err = { '4xx': schemas.errorBody };
  const big = { onRequest: requireOwner, bodyLimit: deps.maxBodyBytes };

  app.post('/api/v1/batches', { ...big, schema: { body: batchSchemas.createBody, response: { 202: batchSchemas.batch, ...err } } }, async (request, reply) => {
    const batch = await batches.create(ownerOf(request), request.body as CreateBatchInput);
    return reply.code(202).header('Location', `/api/v1/batches/${batch.id}`).send(batchView(batch));
  });

  app.get('/api/v1/batches/:id', { onRequest: requireOwner, schema: { params: schemas.idParam, response: { 200: batchSchemas.batch, ...err } } }, async (request) =>
    batchView(await batches.get(ownerOf(request), (request.params as { id: string }).id)));

  app.get('/api/v1/batches/:id/bundle', { onRequest: requireOwner, schema: { params: schemas.idParam } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const bundle = await batches.bundle(ownerOf(request), id);
    return reply
      .header('Content-Type', 'application/gzip')
      .header('Content-Disposition', `attachment; filename="${id}.tar.gz"`)
      .header('Cache-Control', 'no-store')
      .send(bundle);
  });

  app.post('/api/v1/batches/:id/revoke', { onRequest: requireOwner, schema: { params: schemas.idParam, body: batchSchemas.revokeBody, response: { 200: batchSchemas.revocation, ...err } } }, async (request) => {
    const { id } = request.params as { id: string };
    const reason = ((request.body ?? {}) as { reason?: string }).reason;
    const r = await batches.revokeUnused(ownerOf(request), id, reason);
    return { id: r.id, revoked: r.devices.length, cancelled: r.cancelled, devices: r.devices.map((d) => d.deviceId) };
  });

  app.post('/api/v1/factory-kits', { onRequest: requireOwner, schema: { body: batchSchemas.kitBody, response: { 201: batchSchemas.kit, ...err } } }, async (request, reply) => {
    const kit = await factory.createKit(ownerOf(request), request.body as { orgName: string; count: number; validForSeconds: number; csr: string });
    return reply.code(201).header('Cache-Control', 'no-store').send(kit);
  });

  app.post('/api/v1/batches/import', { ...big, schema: { body: batchSchemas.importBody, response: { 200: batchSchemas.imported, ...err } } }, async (request) =>
    factory.importManifest(ownerOf(request), request.body));
}
