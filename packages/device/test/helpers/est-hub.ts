/**
 * A small EST hub for tests: node:https on 127.0.0.1 with openssl as its CA. openssl verifies
 * every CSR the SDK sends (`openssl req -verify`) and signs it (`openssl ca`), and openssl builds
 * the certs-only PKCS#7 (`crl2pkcs7`), so the SDK is checked against an independent peer.
 * `override` lets a test make the hub answer wrongly. It also answers the renewal proof
 * (`GET /.well-known/fleetkey/device`) and retirement like the fleetkey hub (ADR 0025).
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { openssl, type OpensslPki, type TestCert } from './pki.js';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  readonly clientCertificate?: Buffer;
}

export interface HubAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string | Buffer;
}

export interface EstHubOptions {
  readonly pki: OpensslPki;
  readonly tlsLeaf: TestCert;
  readonly tlsChain: readonly TestCert[];
  /** Issues device certificates. */
  readonly deviceCa: TestCert;
  /** Returned by cacerts (device CA, hub root). */
  readonly caCertificates: readonly TestCert[];
  readonly token: string;
}

export interface EstHub {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Replace the next answers (per path suffix) to simulate a misbehaving hub. */
  override: ((request: RecordedRequest) => HubAnswer | undefined) | undefined;
  /** Bytes received on all TLS connections, including ones no request completed on. */
  bytesReceived(): number;
  close(): Promise<void>;
}

let issued = 0;

export function pkcs7Base64(pki: OpensslPki, certs: readonly Buffer[]): string {
  issued += 1;
  const file = join(pki.dir, `p7-${issued}.pem`);
  writeFileSync(file, certs.map((der) => new X509Certificate(der).toString()).join(''));
  return openssl(['crl2pkcs7', '-nocrl', '-certfile', file, '-outform', 'DER']).toString('base64').replace(/.{64}/g, '$&\r\n');
}

export function hubError(status: number, code: string, message = 'hub says no'): HubAnswer {
  return { status, contentType: 'application/json', body: JSON.stringify({ error: { code, message } }) };
}

/** Verifies the CSR with openssl and issues a device certificate for `deviceId`. */
export function issueFromCsr(options: EstHubOptions, csrBase64: string, deviceId: string): Buffer {
  issued += 1;
  const der = join(options.pki.dir, `est-${issued}.csr.der`);
  const pem = join(options.pki.dir, `est-${issued}.csr`);
  writeFileSync(der, Buffer.from(csrBase64.replace(/\s+/g, ''), 'base64'));
  openssl(['req', '-inform', 'DER', '-in', der, '-verify', '-noout']); // throws when the CSR signature is bad
  openssl(['req', '-inform', 'DER', '-in', der, '-out', pem]);
  const cert = options.pki.signCsr(options.deviceCa, pem, {
    name: `est-${issued}`,
    subject: `/CN=${deviceId}`,
    extensions: ['basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = clientAuth', `subjectAltName = URI:urn:fleetkey:device:${deviceId}`],
  });
  return cert.der;
}

function answer(response: ServerResponse, a: HubAnswer): void {
  response.writeHead(a.status, { 'content-type': a.contentType }).end(a.body);
}

function defaultAnswer(options: EstHubOptions, request: RecordedRequest): HubAnswer {
  const p7 = (certs: readonly Buffer[]): HubAnswer => ({ status: 200, contentType: 'application/pkcs7-mime; smime-type=certs-only', body: pkcs7Base64(options.pki, certs) });
  if (request.method === 'GET' && request.path === '/.well-known/est/cacerts') return p7(options.caCertificates.map((c) => c.der));
  if (request.method === 'POST' && request.path === '/.well-known/est/simpleenroll') {
    if (request.headers.authorization !== `Basic ${Buffer.from(`device:${options.token}`).toString('base64')}`) return hubError(401, 'CLAIM_TOKEN_INVALID');
    return p7([issueFromCsr(options, request.body, `dev-${issued + 1}`)]);
  }
  if (request.method === 'POST' && request.path === '/.well-known/est/simplereenroll') {
    if (request.clientCertificate === undefined) return hubError(401, 'CERT_REQUIRED');
    const cn = /CN=([a-z0-9-]+)/.exec(new X509Certificate(request.clientCertificate).subject)?.[1] ?? 'unknown';
    return p7([issueFromCsr(options, request.body, cn)]);
  }
  // The two-phase swap's proof and retirement (ADR 0025): only a current device certificate of our CA.
  if (request.path === '/.well-known/fleetkey/device' || request.path === '/.well-known/fleetkey/device/retire-previous') {
    if (request.clientCertificate === undefined) return hubError(401, 'CERT_REQUIRED');
    const cert = new X509Certificate(request.clientCertificate);
    const ca = new X509Certificate(options.deviceCa.der);
    const now = Date.now();
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey) || now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) return hubError(401, 'CERT_INVALID');
    const cn = /CN=([a-z0-9-]+)/.exec(cert.subject)?.[1] ?? 'unknown';
    const body = request.method === 'GET' ? { deviceId: cn, serial: cert.serialNumber.toLowerCase() } : { retired: [] };
    return { status: 200, contentType: 'application/json', body: JSON.stringify(body) };
  }
  return hubError(404, 'NOT_FOUND');
}

export async function startEstHub(options: EstHubOptions): Promise<EstHub> {
  let bytes = 0;
  const requests: RecordedRequest[] = [];
  const server: Server = createServer({
    key: options.tlsLeaf.keyPem,
    cert: [options.tlsLeaf, ...options.tlsChain].map((c) => c.certPem).join(''),
    requestCert: true,
    rejectUnauthorized: false,
  });
  server.on('secureConnection', (socket: TLSSocket) => socket.on('data', (chunk: Buffer) => { bytes += chunk.length; }));
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  const hub: EstHub = { url: '', requests, override: undefined, bytesReceived: () => bytes, close: async () => undefined };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      const recorded: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('latin1'), ...(peer.raw === undefined ? {} : { clientCertificate: peer.raw }) };
      requests.push(recorded);
      answer(res, hub.override?.(recorded) ?? defaultAnswer(options, recorded));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(hub, {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  });
}
