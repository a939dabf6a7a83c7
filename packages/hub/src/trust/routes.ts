/**
 * Trust bundles over HTTPS (ADR 0021): `GET /.well-known/fleetkey/trust/{version}` and
 * `GET /.well-known/fleetkey/trust/latest`, no authentication (bundles are public and
 * self-authenticating: a device trusts one only through the verifier, never through TLS).
 *
 * Invariants:
 * - The body is the stored canonical bytes, unchanged (application/json), so what a device
 *   verifies is byte-for-byte what the hub signed.
 * - A numbered version never changes: cached as immutable for a year. `latest` changes at a
 *   rotation: max-age LATEST_MAX_AGE_SECONDS, so devices see a new version within a minute.
 * - A version that is not a canonical positive decimal, or not stored, is 404 NOT_FOUND.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Store, StoredTrustBundle } from '../storage/types.js';

export const TRUST_PATH = '/.well-known/fleetkey/trust';
export const LATEST_MAX_AGE_SECONDS = 60;
const VERSION_RE = /^[1-9][0-9]{0,14}$/;

function send(reply: FastifyReply, bundle: StoredTrustBundle | undefined, cacheControl: string): FastifyReply {
  if (bundle === undefined) throw new FleetkeyError('NOT_FOUND');
  return reply
    .header('Content-Type', 'application/json')
    .header('Cache-Control', cacheControl)
    .header('ETag', `"trust-${bundle.version}"`)
    .send(bundle.bytes);
}

export function registerTrustRoutes(app: FastifyInstance, store: Store): void {
  app.get(`${TRUST_PATH}/latest`, async (_request, reply) =>
    send(reply, await store.trust.latest(), `public, max-age=${LATEST_MAX_AGE_SECONDS}`));
  app.get(`${TRUST_PATH}/:version`, async (request, reply) => {
    const { version } = request.params as { version: string };
    if (!VERSION_RE.test(version)) throw new FleetkeyError('NOT_FOUND');
    return send(reply, await store.trust.get(Number(version)), 'public, max-age=31536000, immutable');
  });
}
