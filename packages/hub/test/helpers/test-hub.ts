/**
 * Test harness: a real hub (HTTPS on 127.0.0.1, ephemeral port, temp data folder, silent logs)
 * plus helpers that act as an owner over real HTTPS trusting only the hub root.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { startHub, type RunningHub } from '../../src/hub.js';
import { openAdminContext } from '../../src/admin.js';

export interface TestHub {
  readonly hub: RunningHub;
  readonly dir: string;
  readonly rootPemPath: string;
  api(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  /** Creates an organisation + owner and logs in; returns the bearer token. */
  owner(org: string, email?: string): Promise<{ token: string; tenantId: string }>;
  claimToken(ownerToken: string, body?: Record<string, unknown>): Promise<{ id: string; token: string; claimUri: string }>;
  stop(): Promise<void>;
}

export const OWNER_PASSWORD = 'correct horse battery staple 42';

export async function startTestHub(env: Record<string, string> = {}): Promise<TestHub> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-hub-'));
  const config = loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0' }, env);
  const hub = await startHub({ config, logger: pino({ level: process.env.FLEETKEY_TEST_LOG ?? 'silent' }) });
  const rootPemPath = join(dir, 'root.pem');
  writeFileSync(rootPemPath, hub.rootCertPem);
  const api: TestHub['api'] = (method, path, body, token) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        `${hub.url}${path}`,
        {
          method, ca: hub.rootCertPem, checkServerIdentity: () => undefined, agent: false,
          headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
            resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers as Record<string, unknown> });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  let ownerCount = 0;
  const owner: TestHub['owner'] = async (org, email = `owner${++ownerCount}@${org.toLowerCase().replace(/[^a-z0-9]/g, '')}.example`) => {
    const admin = await openAdminContext(hub.config);
    const created = await admin.createOrganisationWithOwner({ orgName: org, email, password: OWNER_PASSWORD });
    await admin.close();
    const totp = OTPAuth.URI.parse(created.otpauthUri).generate();
    const r = await api('POST', '/api/v1/sessions', { email, password: OWNER_PASSWORD, totp });
    if (r.status !== 201) throw new Error(`login failed: ${r.status} ${JSON.stringify(r.body)}`);
    return { token: r.body.token as string, tenantId: created.tenantId };
  };
  const claimToken: TestHub['claimToken'] = async (ownerToken, body = {}) => {
    const r = await api('POST', '/api/v1/claim-tokens', body, ownerToken);
    if (r.status !== 201) throw new Error(`claim token failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  return {
    hub, dir, rootPemPath, api, owner, claimToken,
    stop: async () => {
      await hub.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
