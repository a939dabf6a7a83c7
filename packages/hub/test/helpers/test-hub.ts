/**
 * Test harness: a real hub (HTTPS on 127.0.0.1, ephemeral port, temp data folder, silent logs)
 * plus helpers that act as an owner over real HTTPS trusting only the hub root.
 *
 * Options: an injected `clock` (the hub, the admin context and the owner's TOTP codes all read
 * it, so expiry and lockout are testable without sleeping) and `captureLogs`, which keeps every
 * pino line (at `logLevel`, default debug) in `logs` for tests that assert what is never logged.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { systemClock, type Clock } from '@fleetkey/protocol';
import { loadConfig } from '../../src/config/load.js';
import { startHub, type RunningHub } from '../../src/hub.js';
import { openAdminContext } from '../../src/admin.js';

export interface RawResponse {
  readonly status: number;
  /** Parsed JSON when the body is JSON, else the text. */
  readonly body: any;
  readonly text: string;
  readonly headers: Record<string, unknown>;
}

export interface RawRequestOptions {
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
  /** PEM client key and certificate (chain) for mutual TLS. */
  readonly key?: string;
  readonly cert?: string;
}

export interface TestHubOptions {
  /** Injected into the hub (and the admin context); default the system clock. */
  readonly clock?: Clock;
  /** Keep every log line in `TestHub.logs`. */
  readonly captureLogs?: boolean;
  /** pino level; default `debug` when capturing, else FLEETKEY_TEST_LOG or `silent`. */
  readonly logLevel?: string;
}

export interface TestOwner {
  readonly token: string;
  readonly tenantId: string;
  readonly ownerId: string;
  readonly email: string;
  /** Holds the TOTP seed: tests use it to make fresh codes and to look for the seed at rest. */
  readonly otpauthUri: string;
}

export interface TestHub {
  readonly hub: RunningHub;
  readonly dir: string;
  readonly rootPemPath: string;
  readonly clock: Clock;
  /** Raw JSON log lines, when started with `captureLogs`. */
  readonly logs: string[];
  api(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  /** Any HTTPS request to the hub (raw body, own headers, optional client certificate). */
  request(method: string, path: string, options?: RawRequestOptions): Promise<RawResponse>;
  /** A TOTP code for `otpauthUri` at the hub's current time. */
  totp(otpauthUri: string): string;
  /** Creates an organisation + owner and logs in; returns the bearer token. */
  owner(org: string, email?: string): Promise<TestOwner>;
  claimToken(ownerToken: string, body?: Record<string, unknown>): Promise<{ id: string; token: string; claimUri: string }>;
  stop(): Promise<void>;
}

export const OWNER_PASSWORD = 'correct horse battery staple 42';

export async function startTestHub(env: Record<string, string> = {}, options: TestHubOptions = {}): Promise<TestHub> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-hub-'));
  const config = loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, env);
  const clock = options.clock ?? systemClock;
  const logs: string[] = [];
  const level = options.logLevel ?? (options.captureLogs === true ? 'debug' : (process.env.FLEETKEY_TEST_LOG ?? 'silent'));
  const logger = options.captureLogs === true
    ? pino({ level }, { write: (line: string) => void logs.push(line) })
    : pino({ level });
  const hub = await startHub({ config, clock, logger });
  const rootPemPath = join(dir, 'root.pem');
  writeFileSync(rootPemPath, hub.rootCertPem);
  const send: TestHub['request'] = (method, path, o = {}) =>
    new Promise((resolve, reject) => {
      const req = request(
        `${hub.url}${path}`,
        {
          method, ca: hub.rootCertPem, checkServerIdentity: () => undefined, agent: false,
          // Explicit framing: node sends a DELETE body without Content-Length otherwise.
          headers: { ...(o.body !== undefined ? { 'content-length': String(Buffer.byteLength(o.body)) } : {}), ...o.headers },
          ...(o.key !== undefined ? { key: o.key } : {}), ...(o.cert !== undefined ? { cert: o.cert } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
            resolve({ status: res.statusCode ?? 0, body: parsed, text, headers: res.headers as Record<string, unknown> });
          });
        },
      );
      req.on('error', reject);
      req.end(o.body);
    });
  const api: TestHub['api'] = async (method, path, body, token) => {
    const r = await send(method, path, {
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body !== undefined ? { body: Buffer.from(JSON.stringify(body)) } : {}),
    });
    return { status: r.status, body: r.body, headers: r.headers };
  };
  const totp: TestHub['totp'] = (uri) => OTPAuth.URI.parse(uri).generate({ timestamp: clock.now() });
  let ownerCount = 0;
  const owner: TestHub['owner'] = async (org, email = `owner${++ownerCount}@${org.toLowerCase().replace(/[^a-z0-9]/g, '')}.example`) => {
    const admin = await openAdminContext(hub.config, clock);
    const created = await admin.createOrganisationWithOwner({ orgName: org, email, password: OWNER_PASSWORD });
    await admin.close();
    const r = await api('POST', '/api/v1/sessions', { email, password: OWNER_PASSWORD, totp: totp(created.otpauthUri) });
    if (r.status !== 201) throw new Error(`login failed: ${r.status} ${JSON.stringify(r.body)}`);
    return { token: r.body.token as string, tenantId: created.tenantId, ownerId: created.ownerId, email, otpauthUri: created.otpauthUri };
  };
  const claimToken: TestHub['claimToken'] = async (ownerToken, body = {}) => {
    const r = await api('POST', '/api/v1/claim-tokens', body, ownerToken);
    if (r.status !== 201) throw new Error(`claim token failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  return {
    hub, dir, rootPemPath, clock, logs, api, request: send, totp, owner, claimToken,
    stop: async () => {
      await hub.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
