/**
 * Test helpers for batches (ADR 0014): CSRs made like a production line makes them (fresh P-256
 * keys, PKCS#10 signed with them), a bounded wait for a batch job, and bundle extraction with the
 * system `tar` (an independent reader of our ustar writer), spawned asynchronously.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCsr, toPem } from '@fleetkey/protocol';
import type { TestHub } from './test-hub.js';
import { run } from './mqtt-peers.js';

export interface LineCsr {
  readonly pem: string;
  readonly der: Buffer;
  readonly keyPem: string;
}

export async function lineCsrs(n: number): Promise<LineCsr[]> {
  const out: LineCsr[] = [];
  for (let i = 0; i < n; i++) {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = await buildCsr({ spki: publicKey.export({ type: 'spki', format: 'der' }), subject: [['CN', `line-${i}`]], algorithm: 'p256', sign: async (d) => sign('sha256', d, privateKey) });
    out.push({ der, pem: toPem('CERTIFICATE REQUEST', der), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
  }
  return out;
}

/** Polls GET /api/v1/batches/{id} until it is no longer running (bounded). */
export async function waitForBatch(t: TestHub, token: string, id: string, timeoutMs = 60_000): Promise<{ status: string; done: number; total: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await t.api('GET', `/api/v1/batches/${id}`, undefined, token);
    if (r.status !== 200) throw new Error(`batch status ${r.status} ${JSON.stringify(r.body)}`);
    if (r.body.status !== 'running') return r.body;
    if (Date.now() > deadline) throw new Error(`batch ${id} still running: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** GET of the bundle as bytes, extracted with the system tar. */
export async function fetchAndExtract(t: TestHub, token: string, id: string): Promise<{ dir: string; folders: string[]; bytes: Buffer }> {
  const bytes = await rawGet(t, `/api/v1/batches/${id}/bundle`, token);
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-bundle-'));
  const file = join(dir, 'bundle.tar.gz');
  writeFileSync(file, bytes);
  const r = await run('tar', ['-xzf', file, '-C', dir]);
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  const folders = readdirSync(dir).filter((n) => n !== 'bundle.tar.gz' && n !== 'batch.json').sort();
  return { dir, folders, bytes };
}

/** A GET whose body is kept as raw bytes. */
export async function rawGet(t: TestHub, path: string, token: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(`${t.hub.url}${path}`, { method: 'GET', ca: t.hub.rootCertPem, checkServerIdentity: () => undefined, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`GET ${path}: ${res.statusCode} ${Buffer.concat(chunks).toString()}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

export const readText = (dir: string, ...parts: string[]): string => readFileSync(join(dir, ...parts), 'utf8');
