/**
 * The EST enrollment POSTs run on the raw HTTPS request before fastify (est/fast-path.ts,
 * ADR 0019). These tests pin what that path must do by itself that fastify used to do for it:
 * body limits without a Content-Length, the headers every response carries, the query string,
 * and a coded answer while the hub shuts down. Real hub over TLS on 127.0.0.1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Agent, request } from 'node:https';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildCsr, decodeCertsOnly, systemClock } from '@fleetkey/protocol';
import { dbPath } from '../../src/datadir.js';
import { openSqliteStore } from '../../src/storage/sqlite/index.js';
import type { Store } from '../../src/storage/types.js';
import { startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

/** Reads a whole response into an Answer. */
function collect(res: IncomingMessage, resolve: (a: Answer) => void): void {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => (text += c));
  res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
}

async function csrBase64(): Promise<string> {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const der = await buildCsr({ spki, subject: [['CN', 'x']], algorithm: 'p256', sign: async (d) => sign('sha256', d, pair.privateKey) });
  return der.toString('base64');
}

/** One request; `chunks` are written one by one with chunked transfer encoding (no Content-Length). */
function send(t: TestHub, path: string, token: string, chunks: string[], agent: Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${t.hub.url}${path}`, {
      method: 'POST', ca: t.hub.rootCertPem, checkServerIdentity: () => undefined, agent,
      headers: { 'content-type': 'application/pkcs10', authorization: `Bearer ${token}`, 'transfer-encoding': 'chunked' },
    }, (res) => collect(res, resolve));
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

async function uses(t: TestHub, owner: TestOwner, id: string): Promise<number> {
  const row = (await t.hub.store.claimTokens.get(owner.tenantId, id))!;
  return row.uses;
}

describe('EST fast path', () => {
  let t: TestHub;
  let owner: TestOwner;

  before(async () => {
    t = await startTestHub();
    owner = await t.owner('FastPath');
  });
  after(async () => t?.stop());

  test('a chunked CSR body over maxCsrBytes, without Content-Length, is refused with BODY_TOO_LARGE and the token is not spent', async () => {
    const claim = await t.claimToken(owner.token);
    const chunk = 'A'.repeat(4096);
    const r = await send(t, '/.well-known/est/simpleenroll', claim.token, [chunk, chunk, chunk, chunk, chunk]);
    assert.equal(r.status, 413, r.text);
    assert.equal(JSON.parse(r.text).error.code, 'BODY_TOO_LARGE');
    assert.equal(await uses(t, owner, claim.id), 0);
    assert.equal((await t.hub.store.devices.list(owner.tenantId)).length, 0, 'no device was created');
  });

  test('a CSR sent in many small chunks enrolls; the answer carries PKCS#7, nosniff and no-store', async () => {
    const claim = await t.claimToken(owner.token);
    const csr = await csrBase64();
    const pieces = csr.match(/.{1,17}/g)!;
    const r = await send(t, '/.well-known/est/simpleenroll?label=ignored', claim.token, pieces);
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers['content-type']), /^application\/pkcs7-mime; smime-type=certs-only/);
    assert.equal(r.headers['content-transfer-encoding'], 'base64');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(decodeCertsOnly(Buffer.from(r.text, 'base64')).length, 1);
    assert.equal(await uses(t, owner, claim.id), 1);
  });

  test('an EST error answer has the one error shape with a request id, nosniff and no-store', async () => {
    const r = await send(t, '/.well-known/est/simpleenroll', 'fkct_not-a-real-token', ['%%%']);
    assert.equal(r.status, 400, r.text);
    const body = JSON.parse(r.text) as { error: { code: string; message: string; requestId: string } };
    assert.equal(body.error.code, 'CSR_MALFORMED');
    assert.match(body.error.requestId, /^[0-9a-f-]{36}$/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.match(String(r.headers['content-type']), /^application\/json/);
  });

  test('GET on an enrollment path is not served by the fast path (fastify answers with a coded error)', async () => {
    const r = await t.request('GET', '/.well-known/est/simpleenroll');
    assert.equal(r.status, 404, r.text);
    assert.equal(r.body.error.code, 'NOT_FOUND');
  });
});

/**
 * Starts closing the hub while one enrollment on a kept-alive connection is in flight (its body is
 * withheld, so closing cannot reap the connection), then sends `next` on that same connection.
 */
async function duringClose(t: TestHub, firstToken: string, next: (agent: Agent) => Promise<Answer>): Promise<{ first: Answer; next: Answer }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let closing: Promise<void> = Promise.resolve();
  try {
    const first = await new Promise<Answer>((resolve, reject) => {
      const req = request(`${t.hub.url}/.well-known/est/simpleenroll`, {
        method: 'POST', ca: t.hub.rootCertPem, checkServerIdentity: () => undefined, agent,
        headers: { 'content-type': 'application/pkcs10', authorization: `Bearer ${firstToken}`, 'transfer-encoding': 'chunked' },
      }, (res) => collect(res, resolve));
      req.on('error', reject);
      req.flushHeaders();
      setTimeout(() => {
        closing = t.hub.close();
        void csrBase64().then((csr) => req.end(csr));
      }, 200);
    });
    return { first, next: await next(agent) };
  } finally {
    await closing;
    agent.destroy();
  }
}

async function reopenStore(t: TestHub): Promise<Store> {
  return openSqliteStore({ path: dbPath(join(t.dir, 'data')), clock: systemClock });
}

describe('the API while the hub shuts down', () => {
  test('an enrollment sent on a kept-alive connection after close began gets SHUTTING_DOWN and spends no token', async () => {
    const t = await startTestHub();
    const owner = await t.owner('Closing');
    const first = await t.claimToken(owner.token);
    const second = await t.claimToken(owner.token);
    const csr = await csrBase64();
    const r = await duringClose(t, first.token, (agent) => send(t, '/.well-known/est/simpleenroll', second.token, [csr], agent));
    assert.equal(r.first.status, 200, `the enrollment accepted before close finishes: ${r.first.text}`);
    assert.equal(r.next.status, 503, r.next.text);
    assert.equal(JSON.parse(r.next.text).error.code, 'SHUTTING_DOWN');
    assert.equal(r.next.headers['connection'], 'close');
    const store = await reopenStore(t);
    try {
      assert.equal((await store.claimTokens.get(owner.tenantId, second.id))!.uses, 0, 'second token not spent');
      assert.equal((await store.claimTokens.get(owner.tenantId, first.id))!.uses, 1);
    } finally {
      await store.close();
      rmSync(t.dir, { recursive: true, force: true });
    }
  });

  test('an owner API request after close began gets the coded SHUTTING_DOWN, not an uncoded 503', async () => {
    const t = await startTestHub();
    const owner = await t.owner('Closing');
    const first = await t.claimToken(owner.token);
    const r = await duringClose(t, first.token, (agent) => new Promise<Answer>((resolve, reject) => {
      const req = request(`${t.hub.url}/api/v1/claim-tokens`, {
        method: 'POST', ca: t.hub.rootCertPem, checkServerIdentity: () => undefined, agent,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${owner.token}` },
      }, (res) => collect(res, resolve));
      req.on('error', reject);
      req.end('{}');
    }));
    assert.equal(r.next.status, 503, r.next.text);
    assert.equal(JSON.parse(r.next.text).error.code, 'SHUTTING_DOWN');
    const store = await reopenStore(t);
    try {
      assert.equal((await store.claimTokens.list(owner.tenantId)).length, 1, 'no claim token was created');
    } finally {
      await store.close();
      rmSync(t.dir, { recursive: true, force: true });
    }
  });
});
