/**
 * EST enrollment POSTs (RFC 7030 §4.2 simpleenroll, §4.2.2 simplereenroll) served on the raw
 * `node:https` request, before fastify sees it (ADR 0019). Enrollment is the hub's hottest route,
 * and fastify's routing, hooks, child loggers and reply machinery cost about a quarter of the event
 * loop per enrollment (docs/benchmarks.md); this handler does only what the route needs.
 *
 * Invariants (the same as the fastify routes had; test/interop/est-*.test.ts pin them):
 * - Only `POST /.well-known/est/simpleenroll` and `…/simplereenroll` (query ignored) are taken;
 *   everything else goes to fastify unchanged.
 * - Order of checks: shutting down (503) → media type `application/pkcs10` (415) → body size
 *   (413, before reading more than the limit) → credential (401 + `WWW-Authenticate`) → strict
 *   base64 → CSR parse and proof of possession → authorise (spends the credential) → issue.
 *   A broken CSR therefore never burns a single-use token.
 * - Every error leaves as the one public shape `{error:{code,message,details?,requestId}}` with the
 *   status of its code; causes are logged with the request id, never sent (checklist row 30).
 * - Responses carry `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`, as every
 *   fastify response does.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { FleetkeyError, toFleetkeyError } from '@fleetkey/protocol';
import { describeCause } from '../http/errors.js';
import type { EnrollmentCredential, EnrollmentRequest } from '../provisioning/method.js';
import { decodeBase64Body, encodeBase64Body, secretFromAuthorization, type EstDeps, type PreparedCsr } from './routes.js';

export interface EstFastPath {
  /** Serves the request and returns true when it is an EST enrollment POST; false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** From now on enrollment requests get SHUTTING_DOWN (the server is closing). */
  close(): void;
}

const OPERATIONS: ReadonlyMap<string, EnrollmentRequest['operation']> = new Map([
  ['/.well-known/est/simpleenroll', 'simpleenroll'],
  ['/.well-known/est/simplereenroll', 'simplereenroll'],
]);

const PKCS7_HEADERS = {
  'Content-Type': 'application/pkcs7-mime; smime-type=certs-only',
  'Content-Transfer-Encoding': 'base64',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
} as const;

export function createEstFastPath<P extends PreparedCsr>(deps: EstDeps<P>, logger: Logger): EstFastPath {
  let closing = false;
  return {
    handle(req, res) {
      if (req.method !== 'POST') return false;
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const operation = OPERATIONS.get(q < 0 ? url : url.slice(0, q));
      if (operation === undefined) return false;
      const requestId = randomUUID();
      enroll(deps, operation, req, closing)
        .then((body) => respond(res, 200, PKCS7_HEADERS, body))
        .catch((raw: unknown) => fail(logger, req, res, requestId, raw));
      return true;
    },
    close() {
      closing = true;
    },
  };
}

async function enroll<P extends PreparedCsr>(
  deps: EstDeps<P>, operation: EnrollmentRequest['operation'], req: IncomingMessage, closing: boolean,
): Promise<string> {
  if (closing) throw new FleetkeyError('SHUTTING_DOWN');
  // RFC 7030 §4.2.1: the request is `application/pkcs10`.
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType !== 'application/pkcs10') throw new FleetkeyError('UNSUPPORTED_MEDIA_TYPE');
  const body = await readBody(req, deps.maxCsrBytes);
  const credential = credentialFor(operation, req);
  const der = decodeBase64Body(body);
  const csr = await (deps.ca.prepareAsync ? deps.ca.prepareAsync(der) : deps.ca.prepare(der));
  const source = req.socket.remoteAddress ?? 'unknown';
  const reportedKeyProtection = reportedProtection(req);
  const grant = await deps.provisioning.authorize({ credential, source, csrSpkiSha256: csr.spkiSha256Hex, operation, ...(reportedKeyProtection ? { reportedKeyProtection } : {}) });
  const issued = await deps.ca.issue(grant, csr);
  return encodeBase64Body(deps.certsOnly([issued.der]));
}

const REPORTED = new Set(['file', 'pkcs11', 'tpm']);

/** `Fleetkey-Key-Protection`: what the device says holds its key (ADR 0027; not verified). */
function reportedProtection(req: IncomingMessage): EnrollmentRequest['reportedKeyProtection'] {
  const value = req.headers['fleetkey-key-protection'];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !REPORTED.has(value)) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'Fleetkey-Key-Protection' } });
  return value as EnrollmentRequest['reportedKeyProtection'];
}

/** The body as text, refusing (413) as soon as it would exceed `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(new FleetkeyError('BODY_TOO_LARGE'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new FleetkeyError('BODY_TOO_LARGE'));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks, size).toString('latin1')));
    req.once('error', (cause) => reject(new FleetkeyError('BAD_REQUEST', { cause })));
  });
}

function credentialFor(operation: EnrollmentRequest['operation'], req: IncomingMessage): EnrollmentCredential {
  if (operation === 'simplereenroll') {
    // RFC 7030 §3.3.2: the current certificate, presented in this TLS handshake.
    const socket = req.socket as TLSSocket;
    const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false) : undefined;
    if (peer?.raw === undefined || peer.raw.length === 0) throw new FleetkeyError('CERT_REQUIRED');
    return { kind: 'certificate', der: peer.raw };
  }
  const secret = secretFromAuthorization(req.headers.authorization);
  if (secret === undefined || secret.length === 0) throw new FleetkeyError('AUTH_REQUIRED');
  return { kind: 'secret', secret };
}

function fail(logger: Logger, req: IncomingMessage, res: ServerResponse, requestId: string, raw: unknown): void {
  const err = raw instanceof FleetkeyError ? raw : toFleetkeyError(raw);
  logger[err.status >= 500 ? 'error' : 'info']({ reqId: requestId, code: err.code, cause: describeCause(err, raw) }, 'request failed');
  const headers: Record<string, string> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  };
  // RFC 7030 §3.2.3: clients such as libest send credentials only after this challenge.
  if (err.status === 401) headers['WWW-Authenticate'] = 'Basic realm="fleetkey"';
  // A body left unread (415, 413, shutting down) would be parsed as the next request.
  if (!req.complete) headers['Connection'] = 'close';
  respond(res, err.status, headers, JSON.stringify({ error: { ...err.toJSON(), requestId } }));
}

function respond(res: ServerResponse, status: number, headers: Readonly<Record<string, string>>, body: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { ...headers, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
