/**
 * A man in the middle for trust tests (ADR 0026): an HTTPS "hub" and a TLS "broker" on 127.0.0.1
 * presenting a chain-valid serverAuth certificate under a root of the attacker's choice — its own
 * root, or a stolen hub root — and serving forged trust bundles at the real paths. It records
 * every HTTP request and every byte sent to the broker port, so a test can assert that nothing
 * (no EST request, no token, no MQTT CONNECT) ever reached it.
 */
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { randomSerial } from '@fleetkey/hub';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import {
  caTemplate, parseCertificate, signCertificate, toPem, tlsServerTemplate, type BundleSigner, type CertificateSigner,
} from '@fleetkey/protocol';

const DAY = 86_400_000;

/** A root the test controls: a signer for certificates and for trust bundles. */
export interface AttackerRoot {
  readonly signer: CertificateSigner & BundleSigner;
  readonly certificate: Buffer;
}

export function p384Signer(key: KeyObject = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey): CertificateSigner & BundleSigner {
  return { algorithm: 'p384', spki: createPublicKey(key).export({ format: 'der', type: 'spki' }), sign: async (data: Buffer) => sign('sha384', data, key) };
}

/** A self-signed root of the attacker's own (same name shape as a hub root; another key). */
export async function attackerRoot(): Promise<AttackerRoot> {
  const signer = p384Signer();
  const now = Date.now();
  const certificate = await signCertificate(caTemplate({
    subject: [['O', 'fleetkey'], ['CN', 'fleetkey hub root']], spki: signer.spki, serial: randomSerial(),
    notBefore: new Date(now - DAY), notAfter: new Date(now + 365 * DAY),
  }), signer);
  return { signer, certificate };
}

/** A serverAuth leaf for 127.0.0.1 under `root` (chain-valid: any path check passes it). */
async function leafUnder(root: { signer: CertificateSigner & { spki: Buffer }; certificate: Buffer }): Promise<{ keyPem: string; chainPem: string }> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const issuer = parseCertificate(root.certificate);
  const now = Date.now();
  const leaf = await signCertificate(tlsServerTemplate({
    dnsNames: ['localhost'], ips: ['127.0.0.1'], spki: publicKey.export({ format: 'der', type: 'spki' }), serial: randomSerial(),
    notBefore: new Date(now - 60_000), notAfter: new Date(now + DAY), issuerName: issuer.subject, issuerSpki: root.signer.spki,
  }), root.signer);
  return { keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), chainPem: toPem('CERTIFICATE', leaf) + toPem('CERTIFICATE', root.certificate) };
}

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: boolean;
}

export interface AttackerHub {
  readonly url: string;
  readonly mqttPort: number;
  readonly requests: SeenRequest[];
  /** Application bytes the broker port received (an MQTT CONNECT would be > 0). */
  mqttBytes(): number;
  close(): Promise<void>;
}

const TRUST_PREFIX = '/.well-known/fleetkey/trust/';

/** Starts the attacker; `bundles` maps `latest` / a version to the bytes served for it. */
export async function startAttackerHub(root: { signer: CertificateSigner & { spki: Buffer }; certificate: Buffer }, bundles: ReadonlyMap<string, Buffer>): Promise<AttackerHub> {
  const { keyPem, chainPem } = await leafUnder(root);
  const requests: SeenRequest[] = [];
  let mqttBytes = 0;
  const https: HttpsServer = createHttpsServer({ key: keyPem, cert: chainPem }, (req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization !== undefined });
    const body = req.method === 'GET' && req.url?.startsWith(TRUST_PREFIX) === true ? bundles.get(req.url.slice(TRUST_PREFIX.length)) : undefined;
    req.resume();
    if (body === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  const broker: TlsServer = createTlsServer({ key: keyPem, cert: chainPem, ALPNProtocols: ['mqtt'] }, (socket) => {
    socket.on('data', (c: Buffer) => { mqttBytes += c.length; });
    socket.on('error', () => undefined);
  });
  https.on('tlsClientError', () => undefined);
  broker.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => broker.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(https.address() as AddressInfo).port}`,
    mqttPort: (broker.address() as AddressInfo).port,
    requests,
    mqttBytes: () => mqttBytes,
    close: async () => {
      https.closeAllConnections();
      await new Promise<void>((r) => https.close(() => r()));
      await new Promise<void>((r) => broker.close(() => r()));
    },
  };
}
