/**
 * Revocation over HTTP (ADR 0011):
 * - `POST /api/v1/devices/{id}/revoke {reason?}` — owner bearer session, tenant-scoped (another
 *   organisation's device is 404), idempotent (a repeat is 200 with the first revocation).
 * - `GET /crl` — the device CA CRL, DER, `application/pkix-crl` (RFC 5280 §4.2.1.13 for HTTP URIs).
 * - `POST /ocsp` (`application/ocsp-request`) and `GET /ocsp/{base64 request}` (RFC 6960 §A.1).
 *
 * Invariants:
 * - OCSP answers are always HTTP 200 `application/ocsp-response`, including malformedRequest for
 *   any undecodable request or path; only a wrong media type or oversized body gets the JSON error.
 * - Cache lifetimes never exceed nextUpdate − now (RFC 5019 §6.2); error answers are not cached.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FleetkeyError, ocspErrorResponse } from '@fleetkey/protocol';
import type { LoginService } from '../accounts/index.js';
import { REVOCATION_REASONS, type Revocation, type RevocationReason } from '../revocation/index.js';
import { schemas } from './schemas.js';

export interface RevocationRouteDeps {
  readonly login: LoginService;
  readonly revocation: Revocation;
}

/** An OCSP request is a few hundred bytes; MAX_OCSP_REQUESTS CertIDs fit easily. */
export const MAX_OCSP_REQUEST_BYTES = 16_384;
/** How long an HTTP cache may keep the CRL: new revocations re-sign it at once. */
export const CRL_MAX_AGE_SECONDS = 300;

export const revocationSchemas = {
  revokeBody: {
    type: 'object',
    additionalProperties: false,
    properties: { reason: { type: 'string', enum: [...REVOCATION_REASONS], description: 'RFC 5280 §5.3.1 CRLReason; default unspecified' } },
  },
  revocation: {
    type: 'object',
    required: ['id', 'status', 'reason', 'revokedAt', 'serials', 'alreadyRevoked'],
    properties: {
      id: { type: 'string' },
      status: { type: 'string', enum: ['revoked'] },
      reason: { type: 'string' },
      revokedAt: { type: 'string', format: 'date-time' },
      serials: { type: 'array', items: { type: 'string' } },
      alreadyRevoked: { type: 'boolean' },
    },
  },
} as const;

const OCSP_PREFIX = '/ocsp/';

/** The DER request from a GET path: URL-decoded, then base64 or base64url, canonical only. */
export function ocspRequestFromPath(rawUrl: string): Buffer | undefined {
  const path = rawUrl.split('?')[0] ?? '';
  if (!path.startsWith(OCSP_PREFIX)) return undefined;
  let text: string;
  try {
    text = decodeURIComponent(path.slice(OCSP_PREFIX.length));
  } catch {
    return undefined;
  }
  const std = text.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (std.length === 0 || !/^[A-Za-z0-9+/]+$/.test(std) || std.length % 4 === 1) return undefined;
  const der = Buffer.from(std, 'base64');
  return der.toString('base64').replace(/=+$/, '') === std ? der : undefined;
}

function sendOcsp(reply: FastifyReply, der: Buffer, maxAgeSeconds: number): FastifyReply {
  return reply
    .header('Content-Type', 'application/ocsp-response')
    .header('Cache-Control', maxAgeSeconds > 0 ? `public, max-age=${maxAgeSeconds}, no-transform, must-revalidate` : 'no-store')
    .send(der);
}

export function registerRevocationRoutes(app: FastifyInstance, deps: RevocationRouteDeps): void {
  const { login, revocation } = deps;
  const requireOwner = async (request: FastifyRequest): Promise<void> => {
    request.owner = await login.authenticate(request.headers.authorization);
  };
  app.addContentTypeParser('application/ocsp-request', { parseAs: 'buffer', bodyLimit: MAX_OCSP_REQUEST_BYTES }, (_req, body, done) => done(null, body));

  app.post('/api/v1/devices/:id/revoke', {
    onRequest: requireOwner,
    schema: { params: schemas.idParam, body: revocationSchemas.revokeBody, response: { 200: revocationSchemas.revocation, '4xx': schemas.errorBody } },
  }, async (request) => {
    const owner = request.owner;
    if (owner === undefined) throw new FleetkeyError('AUTH_REQUIRED');
    const { id } = request.params as { id: string };
    const reason = ((request.body ?? {}) as { reason?: RevocationReason }).reason ?? 'unspecified';
    const actor = { tenantId: owner.tenantId, ownerId: owner.ownerId, session: owner.sessionId, source: request.ip };
    const r = await revocation.service.revokeDevice(actor, id, reason);
    return { id, status: 'revoked', reason: r.reason, revokedAt: new Date(r.revokedAt).toISOString(), serials: r.serials, alreadyRevoked: r.alreadyRevoked };
  });

  app.get('/crl', async (_request, reply) => {
    const crl = await revocation.crl.current();
    // A served CRL has at least half of its lifetime left (crl-publisher.ts), so this is ≤ nextUpdate − now.
    const halfLife = Math.floor((crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 2000);
    return reply
      .header('Content-Type', 'application/pkix-crl')
      .header('Cache-Control', `public, max-age=${Math.min(CRL_MAX_AGE_SECONDS, halfLife)}`)
      .header('Last-Modified', crl.thisUpdate.toUTCString())
      .header('ETag', `"crl-${crl.crlNumber}"`)
      .send(crl.der);
  });

  app.post('/ocsp', async (request, reply) => {
    const mediaType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (mediaType !== 'application/ocsp-request' || !Buffer.isBuffer(request.body)) throw new FleetkeyError('UNSUPPORTED_MEDIA_TYPE');
    const answer = await revocation.ocsp.respond(request.body);
    return sendOcsp(reply, answer.der, answer.maxAgeSeconds);
  });

  app.get('/ocsp/*', async (request, reply) => {
    const der = ocspRequestFromPath(request.raw.url ?? '');
    if (der === undefined) return sendOcsp(reply, ocspErrorResponse('malformedRequest'), 0);
    const answer = await revocation.ocsp.respond(der);
    return sendOcsp(reply, answer.der, answer.maxAgeSeconds);
  });
}
