/**
 * EST (RFC 7030) on the API port: /.well-known/est/{cacerts, csrattrs, simpleenroll, simplereenroll}.
 *
 * Invariants:
 * - Requests and responses are base64 DER (`Content-Transfer-Encoding: base64`, RFC 7030 §4).
 * - simpleenroll is authorised by a claim token as HTTP Basic password (any username) or Bearer;
 *   simplereenroll by the TLS client certificate of this connection (RFC 7030 §3.3.2).
 * - The CSR is parsed and its signature verified *before* any credential is spent, so a broken
 *   CSR never burns a single-use token. Only the CA decides what gets signed.
 * - A 401 carries `WWW-Authenticate: Basic realm="fleetkey"` (http/errors.ts, est/fast-path.ts).
 * - The two enrollment POSTs run in est/fast-path.ts, before fastify (ADR 0019); this module
 *   holds the GET routes and the helpers both share.
 */
import type { FastifyInstance } from 'fastify';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Grant } from '../ca/grant.js';
import type { ProvisioningRegistry } from '../provisioning/registry.js';

export interface PreparedCsr {
  readonly spkiSha256Hex: string;
}

export interface IssuedForEst {
  readonly der: Buffer;
}

/** What EST needs of the CA (ca/issuance.ts implements it). */
export interface EstCa<P extends PreparedCsr = PreparedCsr> {
  prepare(csrDer: Buffer): P | Promise<P>;
  /** Same checks as `prepare`, verifying off the event loop; preferred when present. */
  prepareAsync?(csrDer: Buffer): Promise<P>;
  issue(grant: Grant, csr: P): Promise<IssuedForEst>;
}

export interface EstDeps<P extends PreparedCsr> {
  readonly ca: EstCa<P>;
  readonly provisioning: ProvisioningRegistry;
  /** certs-only PKCS#7 (DER) of the device CA chain, computed once. */
  readonly caCertsPkcs7: () => Buffer;
  /** certs-only PKCS#7 builder for the issued certificate. */
  readonly certsOnly: (certs: Buffer[]) => Buffer;
  readonly maxCsrBytes: number;
}

const BASE64_BODY = /^[A-Za-z0-9+/\r\n\t =]*$/;

/** Strict base64 (RFC 4648 alphabet, whitespace allowed between characters as RFC 2045 does). */
export function decodeBase64Body(body: unknown): Buffer {
  if (typeof body !== 'string' || body.length === 0 || !BASE64_BODY.test(body)) throw new FleetkeyError('CSR_MALFORMED');
  const compact = body.replace(/[\r\n\t ]/g, '');
  if (compact.length % 4 !== 0 || /=[^=]/.test(compact)) throw new FleetkeyError('CSR_MALFORMED');
  const der = Buffer.from(compact, 'base64');
  if (der.length === 0 || der.toString('base64') !== compact) throw new FleetkeyError('CSR_MALFORMED');
  return der;
}

export function encodeBase64Body(der: Buffer): string {
  return (der.toString('base64').match(/.{1,64}/g) ?? []).join('\r\n') + '\r\n';
}

/** Claim token from `Authorization: Basic base64(user:token)` or `Bearer token`. */
export function secretFromAuthorization(header: string | undefined): string | undefined {
  if (header === undefined || header.length > 4096) return undefined;
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 ? decoded.slice(colon + 1) : undefined;
  }
  const bearer = /^Bearer\s+(\S+)$/i.exec(header);
  return bearer ? bearer[1] : undefined;
}

const PKCS7_HEADERS = {
  'Content-Type': 'application/pkcs7-mime; smime-type=certs-only',
  'Content-Transfer-Encoding': 'base64',
  'Cache-Control': 'no-store',
} as const;

export function registerEstRoutes<P extends PreparedCsr>(app: FastifyInstance, deps: EstDeps<P>): void {
  app.get('/.well-known/est/cacerts', async (_request, reply) =>
    reply.headers({ ...PKCS7_HEADERS, 'Cache-Control': 'public, max-age=300' }).send(encodeBase64Body(deps.caCertsPkcs7())),
  );

  // RFC 7030 §4.5.2: 204 when the server has no particular attributes to ask for.
  app.get('/.well-known/est/csrattrs', async (_request, reply) => reply.code(204).send());

  // simpleenroll and simplereenroll are served before fastify: est/fast-path.ts (ADR 0019).
}
