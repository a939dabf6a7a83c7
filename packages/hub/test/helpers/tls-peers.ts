/**
 * TLS peers for the live-reload tests: `openssl s_client` as an independent client that reports
 * which server certificate a new handshake gets, and a node:https keep-alive client whose one
 * socket must survive a certificate renewal. openssl is spawned asynchronously (a hub lives in
 * the test process) and bounded in time by `run`.
 */
import { X509Certificate } from 'node:crypto';
import { Agent, request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { run } from './mqtt-peers.js';

export interface ServedCertificate {
  /** Lower-case hex serial of the leaf the server presented. */
  readonly serial: string;
  /** openssl's chain verification against `caFile` (0 = ok). */
  readonly verifyCode: number;
  readonly output: string;
}

/** One full handshake with `openssl s_client`; the leaf is parsed from its `-showcerts` output. */
export async function opensslServedCertificate(port: number, o: { caFile: string; certPath?: string; keyPath?: string }): Promise<ServedCertificate> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', o.caFile, '-showcerts', '-no_ticket'];
  if (o.certPath !== undefined && o.keyPath !== undefined) args.push('-cert', o.certPath, '-key', o.keyPath);
  const r = await run('openssl', args, 10_000);
  const output = r.stdout + r.stderr;
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
  if (pem === undefined) throw new Error(`openssl s_client showed no certificate:\n${output}`);
  const code = /Verify return code: (\d+)/.exec(r.stdout)?.[1];
  return { serial: new X509Certificate(pem).serialNumber.toLowerCase(), verifyCode: code === undefined ? -1 : Number(code), output };
}

/** An HTTPS client with exactly one keep-alive socket to the hub. */
export class KeepAliveClient {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
  readonly #base: string;
  readonly #ca: string;

  constructor(baseUrl: string, caPem: string) {
    this.#base = baseUrl;
    this.#ca = caPem;
  }

  /** GET `path`; resolves the status, whether the socket was reused, and that socket's peer serial. */
  get(path: string): Promise<{ status: number; reused: boolean; serial: string; localPort: number }> {
    return new Promise((resolve, reject) => {
      const req = request(`${this.#base}${path}`, { agent: this.#agent, ca: this.#ca, checkServerIdentity: () => undefined, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => {
          const socket = req.socket as TLSSocket;
          resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, serial: socket.getPeerCertificate().serialNumber.toLowerCase(), localPort: socket.localPort ?? 0 });
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
