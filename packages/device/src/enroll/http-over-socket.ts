/**
 * One HTTP/1.1 request over an already-verified TLS socket (node:http with createConnection).
 *
 * Invariants:
 * - The request is written only to the socket it is given; node:http never opens a connection
 *   of its own here (no agent), so pin verification cannot be bypassed by a redirect or retry.
 * - Redirects are not followed (RFC 7030 §3.2.1 allows them; a pinned device has no use for them).
 * - Response bodies larger than MAX_RESPONSE_BYTES are cut off and rejected (HUB_PROTOCOL_ERROR).
 * - One request per connection (`Connection: close`); the socket is destroyed afterwards.
 * - Errors carry the method, path and status in their cause, never header values.
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { FleetkeyError } from '@fleetkey/protocol';

export const MAX_RESPONSE_BYTES = 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** The Host header value (`name:port`). */
  readonly host: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  readonly timeoutMs?: number;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

function protocolError(reason: string, cause?: unknown): FleetkeyError {
  return new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error(reason, cause === undefined ? undefined : { cause }) });
}

/**
 * Sends `req` over `socket` and reads the whole (bounded) response.
 *
 * @example
 * const socket = await connectPinned({ host, port, pins });
 * const res = await requestOverSocket(socket, { method: 'GET', host: `${host}:${port}`, path: '/health', headers: {} });
 */
export function requestOverSocket(socket: TLSSocket, req: HttpRequest): Promise<HttpResponse> {
  const where = `${req.method} ${req.path}`;
  return new Promise((resolve, reject) => {
    const outgoing = request({
      method: req.method,
      path: req.path,
      headers: { ...req.headers, host: req.host, connection: 'close', ...(req.body === undefined ? {} : { 'content-length': String(req.body.length) }) },
      createConnection: () => socket,
      timeout: req.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    });
    const fail = (err: FleetkeyError): void => {
      outgoing.destroy();
      socket.destroy();
      reject(err);
    };
    outgoing.on('timeout', () => fail(new FleetkeyError('HUB_UNREACHABLE', { cause: new Error(`${where}: no response in time`) })));
    outgoing.on('error', (cause) => fail(new FleetkeyError('HUB_UNREACHABLE', { cause: new Error(`${where}: ${cause.message}`) })));
    outgoing.on('response', (incoming) => {
      const chunks: Buffer[] = [];
      let size = 0;
      incoming.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) fail(protocolError(`${where}: response body over ${MAX_RESPONSE_BYTES} bytes`));
        else chunks.push(chunk);
      });
      incoming.on('error', (cause) => fail(protocolError(`${where}: response aborted`, cause)));
      incoming.on('end', () => {
        socket.destroy();
        resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, body: Buffer.concat(chunks) });
      });
    });
    outgoing.end(req.body);
  });
}
