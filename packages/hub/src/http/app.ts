/**
 * Builds the HTTPS application (owner API + EST) from explicit dependencies; no globals.
 * TLS: the hub's short-lived server certificate (chain to the hub root); client certificates are
 * requested but optional, so EST simplereenroll can use mutual TLS on the same port.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import { FleetkeyError } from '@fleetkey/protocol';
import { installErrorHandlers } from './errors.js';
import { openApiDocument } from './openapi.js';
import { registerOwnerRoutes, type OwnerRouteDeps } from './owner-routes.js';
import { registerTelemetryRoutes, type TelemetryRouteDeps } from './telemetry-routes.js';
import { registerEstRoutes, type EstDeps, type PreparedCsr } from '../est/routes.js';
import { createEstFastPath, type EstFastPath } from '../est/fast-path.js';
import { registerRevocationRoutes, type RevocationRouteDeps } from './revocation-routes.js';
import { registerBatchRoutes, type BatchRouteDeps } from './batch-routes.js';

export interface HttpTls {
  readonly key: string;
  /** PEM chain: leaf then hub root. */
  readonly cert: string;
  /** PEM device CA certificate(s), to verify client certificates. */
  readonly ca: string;
}

export interface AppDeps<P extends PreparedCsr> {
  readonly tls?: HttpTls;
  readonly logger: Logger;
  readonly maxJsonBodyBytes: number;
  readonly owner: OwnerRouteDeps;
  /** Telemetry, live stream and commands (absent in tools that serve no devices). */
  readonly telemetry?: TelemetryRouteDeps;
  readonly est: EstDeps<P>;
  /** Device revocation, CRL and OCSP (ADR 0011; absent in tools that serve no devices). */
  readonly revocation?: RevocationRouteDeps;
  /** Batches and factory kits (ADRs 0014, 0015; absent in tools that serve no devices). */
  readonly batch?: BatchRouteDeps;
}

/**
 * The HTTPS listener's secure-context options: used to create the server and, unchanged in
 * shape, by `server.setSecureContext` on a live certificate or trust change (tls/live-trust.ts).
 */
export function httpsContextOptions(tls: HttpTls): SecureContextOptions {
  return {
    key: tls.key,
    cert: tls.cert,
    ca: tls.ca,
    minVersion: 'TLSv1.2',
    // AEAD + forward secrecy only (checklist row 26); TLS 1.3 suites are AEAD by definition.
    ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384',
  };
}

export function buildApp<P extends PreparedCsr>(deps: AppDeps<P>): FastifyInstance {
  const https = deps.tls && { ...httpsContextOptions(deps.tls), requestCert: true, rejectUnauthorized: false };
  const est = createEstFastPath(deps.est, deps.logger);
  const app = Fastify({
    // EST enrollment POSTs are answered before fastify routes anything (est/fast-path.ts, ADR 0019).
    serverFactory: (handler, options) => serverWithFastPath(https, est, handler, options),
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request lines are off: the error handler logs failures with their code and request id.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.maxJsonBodyBytes,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Closing is answered with the coded SHUTTING_DOWN below, not fastify's uncoded 503 body.
    return503OnClosing: false,
    // Requests that fail HTTP parsing still get the one error shape (checklist row 30).
    clientErrorHandler: (err, socket) => {
      if (!socket.writable) return socket.destroy(err);
      const body = JSON.stringify({ error: new FleetkeyError('BAD_REQUEST').toJSON() });
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    genReqId: () => crypto.randomUUID(),
  }) as unknown as FastifyInstance;
  installErrorHandlers(app);
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    est.close();
    done();
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (closing) void reply.header('Connection', 'close');
    if (closing) throw new FleetkeyError('SHUTTING_DOWN');
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    void reply.header('X-Content-Type-Options', 'nosniff');
    return payload;
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  // The API version, not the software version: nothing discloses the build before login (row 41).
  const openapi = openApiDocument('1');
  app.get('/api/v1/openapi.json', async () => openapi);
  registerOwnerRoutes(app, deps.owner);
  if (deps.telemetry !== undefined) registerTelemetryRoutes(app, deps.telemetry);
  registerEstRoutes(app, deps.est);
  if (deps.revocation !== undefined) registerRevocationRoutes(app, deps.revocation);
  if (deps.batch !== undefined) registerBatchRoutes(app, deps.batch);
  return app;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** The HTTP(S) server fastify would build, with the EST fast path in front of fastify's handler. */
function serverWithFastPath(https: object | undefined, est: EstFastPath, handler: Handler, options: FastifyServerOptions): Server {
  const route: Handler = (req, res) => {
    if (!est.handle(req, res)) handler(req, res);
  };
  const server: Server = https === undefined ? createHttpServer(route) : createHttpsServer(https, route);
  // What fastify sets on a server it creates itself (lib/server.js getServerInstance).
  if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout;
  if (options.requestTimeout !== undefined) server.requestTimeout = options.requestTimeout;
  return server;
}
