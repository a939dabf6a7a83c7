/**
 * Owner API for attestation (ADR 0027), under `/api/v1/attestation/`: vendor roots, owned chips,
 * policy. Bearer session required (checked before the body, as every owner route); tenant-scoped.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FleetkeyError } from '@fleetkey/protocol';
import type { LoginService } from '../accounts/index.js';
import type { OwnerContext } from '../provisioning/claim-token/service.js';
import { schemas } from '../http/schemas.js';
import { MAX_CHIPS_PER_CALL, type AttestationOwnerService, type OwnedChipInput } from './owner-service.js';

const BASE = '/api/v1/attestation';

function ownerContext(request: FastifyRequest): OwnerContext {
  const owner = request.owner;
  if (owner === undefined) throw new FleetkeyError('AUTH_REQUIRED');
  return { tenantId: owner.tenantId, ownerId: owner.ownerId, session: owner.sessionId, source: request.ip };
}

const vendorRootBody = {
  type: 'object', additionalProperties: false, required: ['kind', 'pem'],
  properties: { kind: { enum: ['tpm', 'se'] }, pem: { type: 'string', minLength: 1, maxLength: 65_536 }, label: { type: 'string', maxLength: 200 } },
};
const ownedChipsBody = {
  type: 'object', additionalProperties: false,
  properties: {
    entries: {
      type: 'array', maxItems: MAX_CHIPS_PER_CALL,
      items: { type: 'object', additionalProperties: false, required: ['match', 'value'], properties: { match: { enum: ['sha256', 'serial'] }, value: { type: 'string', maxLength: 200 }, label: { type: 'string', maxLength: 200 } } },
    },
    manifestPem: { type: 'string', maxLength: 4 * 1024 * 1024 },
  },
};
const policyBody = { type: 'object', additionalProperties: false, required: ['requireAttestation'], properties: { requireAttestation: { type: 'boolean' } } };

export function registerAttestationOwnerRoutes(app: FastifyInstance, deps: { login: LoginService; service: AttestationOwnerService }): void {
  const { login, service } = deps;
  const requireOwner = async (request: FastifyRequest): Promise<void> => {
    request.owner = await login.authenticate(request.headers.authorization);
  };
  app.get(`${BASE}/vendor-roots`, { onRequest: requireOwner }, async (request) => ({ items: await service.listVendorRoots(ownerContext(request)) }));
  app.post(`${BASE}/vendor-roots`, { onRequest: requireOwner, schema: { body: vendorRootBody } }, async (request, reply) =>
    reply.code(201).send(await service.addVendorRoot(ownerContext(request), request.body as { kind: 'tpm' | 'se'; pem: string; label?: string })),
  );
  app.delete(`${BASE}/vendor-roots/:id`, { onRequest: requireOwner, schema: { params: schemas.idParam } }, async (request, reply) => {
    await service.deleteVendorRoot(ownerContext(request), (request.params as { id: string }).id);
    return reply.code(204).send();
  });
  app.get(`${BASE}/owned-chips`, { onRequest: requireOwner, schema: { querystring: schemas.listQuery } }, async (request) => ({
    items: await service.listOwnedChips(ownerContext(request), request.query as { limit?: number; after?: string }),
  }));
  app.post(`${BASE}/owned-chips`, { onRequest: requireOwner, bodyLimit: 5 * 1024 * 1024, schema: { body: ownedChipsBody } }, async (request, reply) =>
    reply.code(201).send(await service.addOwnedChips(ownerContext(request), request.body as { entries?: OwnedChipInput[]; manifestPem?: string })),
  );
  app.delete(`${BASE}/owned-chips/:id`, { onRequest: requireOwner, schema: { params: schemas.idParam } }, async (request, reply) => {
    await service.deleteOwnedChip(ownerContext(request), (request.params as { id: string }).id);
    return reply.code(204).send();
  });
  app.get(`${BASE}/policy`, { onRequest: requireOwner }, async (request) => service.getPolicy(ownerContext(request)));
  app.put(`${BASE}/policy`, { onRequest: requireOwner, schema: { body: policyBody } }, async (request) =>
    service.setPolicy(ownerContext(request), (request.body as { requireAttestation: boolean }).requireAttestation),
  );
}
