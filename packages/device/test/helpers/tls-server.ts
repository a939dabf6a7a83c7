/**
 * TLS servers for tests on 127.0.0.1 port 0 that record every application byte they receive,
 * so that a test can assert that nothing (no claim token) reached an untrusted server.
 */
import { createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import type { TestCert } from './pki.js';

export interface RecordingServer {
  readonly port: number;
  /** Bytes received after the handshake, over all connections. */
  received(): Buffer;
  /** Completed TLS handshakes. */
  readonly handshakes: () => number;
  /** Client certificates seen (DER), for mutual TLS tests. */
  readonly clientCertificates: Buffer[];
  /** Resolves once every connection accepted so far has closed. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface RecordingServerOptions {
  /** The certificate the server presents, then the chain it sends after it. */
  readonly leaf: TestCert;
  readonly chain?: readonly TestCert[];
  readonly requestCert?: boolean;
  /** Called with each verified connection (e.g. to answer HTTP). */
  readonly onConnection?: (socket: TLSSocket) => void;
}

export async function startRecordingServer(options: RecordingServerOptions): Promise<RecordingServer> {
  const chunks: Buffer[] = [];
  const clientCertificates: Buffer[] = [];
  const open = new Set<Promise<void>>();
  let handshakes = 0;
  const server = createServer({
    key: options.leaf.keyPem,
    cert: [options.leaf.certPem, ...(options.chain ?? []).map((c) => c.certPem)].join(''),
    requestCert: options.requestCert ?? false,
    rejectUnauthorized: false,
  });
  server.on('secureConnection', (socket) => {
    handshakes += 1;
    const peer = socket.getPeerCertificate();
    if (peer.raw !== undefined) clientCertificates.push(peer.raw);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    options.onConnection?.(socket);
  });
  // TCP accept precedes any handshake, so idle() also waits for connections still in handshake.
  server.on('connection', (raw: Socket) => {
    open.add(new Promise((resolve) => raw.once('close', () => resolve())));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received: () => Buffer.concat(chunks),
    handshakes: () => handshakes,
    clientCertificates,
    idle: async () => {
      await Promise.all([...open]);
      await new Promise((resolve) => setImmediate(resolve));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
