/**
 * EST wire formats (RFC 7030, RFC 8951): base64 bodies, media types, hub error bodies.
 *
 * Invariants:
 * - Bodies are base64 (RFC 8951 §3: regardless of Content-Transfer-Encoding); whitespace and
 *   line breaks are allowed, any other non-base64 character is HUB_PROTOCOL_ERROR.
 * - A hub error body `{ "error": { "code", "message" } }` becomes a FleetkeyError with that code
 *   when the code is in ERROR_TABLE, else HUB_PROTOCOL_ERROR. The hub's message goes to the
 *   cause only, and with the claim token redacted, in case a hub ever echoes it.
 * - The claim token appears only inside the Authorization header value built here.
 */
import { FleetkeyError, isErrorCode } from '@fleetkey/protocol';
import type { HttpResponse } from './http-over-socket.js';

export const MEDIA_PKCS10 = 'application/pkcs10';
export const MEDIA_PKCS7 = 'application/pkcs7-mime';
const BASE64_LINE = 64;
const MAX_TOKEN_LENGTH = 512;

/** base64 with line breaks every 64 characters (RFC 7468 §2 style; RFC 7030 §4.2.1 body). */
export function toBase64Lines(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let at = 0; at < b64.length; at += BASE64_LINE) lines.push(b64.slice(at, at + BASE64_LINE));
  return lines.join('\r\n') + '\r\n';
}

/** Strict base64 decode that tolerates whitespace only. */
export function fromBase64Body(body: Buffer): Buffer {
  const text = body.toString('latin1').replace(/[\r\n\t ]/g, '');
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error('response body is not base64') });
  }
  return Buffer.from(text, 'base64');
}

/** Checks a claim token's shape before it is used (printable ASCII, bounded). */
export function checkClaimToken(token: string): void {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) {
    throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'token' } });
  }
}

/** RFC 7617 Basic credentials; RFC 7030 §3.2.3 allows HTTP Basic, the password is the token. */
export function basicAuthorization(token: string): string {
  return `Basic ${Buffer.from(`device:${token}`, 'utf8').toString('base64')}`;
}

function mediaType(response: HttpResponse): string {
  return (response.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function redact(text: string, secret: string | undefined): string {
  return secret === undefined || secret === '' ? text : text.split(secret).join('[redacted]');
}

function hubErrorCode(body: Buffer): { code: string; message: string } | undefined {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (typeof error?.code !== 'string') return undefined;
    return { code: error.code, message: typeof error.message === 'string' ? error.message : '' };
  } catch {
    return undefined;
  }
}

/** Turns a non-success response into the FleetkeyError the hub meant. */
export function errorFromResponse(what: string, response: HttpResponse, secret?: string): FleetkeyError {
  const hub = mediaType(response) === 'application/json' ? hubErrorCode(response.body) : undefined;
  const reason = `${what}: HTTP ${response.status}${hub === undefined ? '' : ` ${hub.code}: ${hub.message}`}`;
  const cause = new Error(redact(reason, secret));
  if (hub !== undefined && isErrorCode(hub.code)) return new FleetkeyError(hub.code, { cause });
  return new FleetkeyError('HUB_PROTOCOL_ERROR', { cause });
}

/** The DER payload of a successful `application/pkcs7-mime` response. */
export function pkcs7Body(what: string, response: HttpResponse, secret?: string): Buffer {
  if (response.status === 202) {
    // RFC 7030 §4.2.3: manual approval with Retry-After — not offered by the fleetkey hub yet.
    throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error(`${what}: HTTP 202 (deferred enrollment) is not supported`) });
  }
  if (response.status !== 200) throw errorFromResponse(what, response, secret);
  if (mediaType(response) !== MEDIA_PKCS7) {
    throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error(`${what}: content type is not ${MEDIA_PKCS7}`) });
  }
  return fromBase64Body(response.body);
}
