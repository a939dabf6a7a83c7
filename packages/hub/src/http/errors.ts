/**
 * Maps everything thrown in a request to the one public error shape:
 *   { "error": { "code": "…", "message": "…", "details"?: {…}, "requestId": "…" } }
 * The cause is logged with the request id; it never reaches the client (checklist row 30).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FleetkeyError, toFleetkeyError, type ErrorCode } from '@fleetkey/protocol';

const FASTIFY_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_VALIDATION: 'VALIDATION_FAILED',
};

export function asFleetkeyError(err: unknown): FleetkeyError {
  if (err instanceof FleetkeyError) return err;
  const fe = err as Partial<FastifyError> & { validation?: Array<{ instancePath?: string; params?: Record<string, unknown> }> };
  if (Array.isArray(fe.validation)) {
    const first = fe.validation[0];
    const missing = first?.params?.missingProperty;
    const extra = first?.params?.additionalProperty;
    const field = typeof missing === 'string' ? missing : typeof extra === 'string' ? extra : (first?.instancePath ?? '').replace(/^\//, '');
    return new FleetkeyError('VALIDATION_FAILED', { cause: err, details: { field: field || 'body' } });
  }
  if (typeof fe.code === 'string' && FASTIFY_CODES[fe.code] !== undefined) {
    return new FleetkeyError(FASTIFY_CODES[fe.code]!, { cause: err });
  }
  if (err instanceof SyntaxError) return new FleetkeyError('BAD_REQUEST', { cause: err });
  if (fe.statusCode === 400) return new FleetkeyError('BAD_REQUEST', { cause: err });
  return toFleetkeyError(err);
}

export function sendError(request: FastifyRequest, reply: FastifyReply, err: FleetkeyError): FastifyReply {
  if (err.status === 401 && request.url.startsWith('/.well-known/est/')) {
    // RFC 7030 §3.2.3 clients (e.g. libest) send credentials only after this challenge.
    void reply.header('WWW-Authenticate', 'Basic realm="fleetkey"');
  }
  return reply
    .code(err.status)
    .header('Content-Type', 'application/json; charset=utf-8')
    .header('Cache-Control', 'no-store')
    .send({ error: { ...err.toJSON(), requestId: request.id } });
}

/**
 * What of the cause may be logged. Parser errors quote the request body (which may hold a password
 * or token), so for client errors from outside our code only the error's name and code are kept.
 */
export function describeCause(err: FleetkeyError, raw: unknown): unknown {
  if (err.status >= 500) return err.cause ?? raw;
  const cause = raw instanceof FleetkeyError ? raw.cause : raw;
  if (cause instanceof FleetkeyError) return { code: cause.code };
  if (raw instanceof FleetkeyError && cause instanceof Error && cause.constructor === Error) return cause.message;
  const e = cause as { name?: unknown; code?: unknown };
  return { name: typeof e?.name === 'string' ? e.name : 'unknown', code: typeof e?.code === 'string' ? e.code : undefined };
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((raw, request, reply) => {
    const err = asFleetkeyError(raw);
    request.log[err.status >= 500 ? 'error' : 'info']({ code: err.code, cause: describeCause(err, raw) }, 'request failed');
    return sendError(request, reply, err);
  });
  app.setNotFoundHandler((request, reply) => sendError(request, reply, new FleetkeyError('NOT_FOUND')));
}
