/**
 * The telemetry and command routes of a real hub over HTTPS on 127.0.0.1 (issue 3): paging with
 * cursors and ISO times, a live SSE stream, commands onto the EventBus, and the attacks: another
 * organisation's device on every route (BOLA, checklist row 15), a device certificate instead of
 * an owner session (row 14), hostile input (row 27). Each attack asserts the code, that nothing
 * was delivered or audited, and that stored telemetry did not change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { request } from 'node:https';
import { buildCsr, decodeCertsOnly, deviceIdFromCertificate, toPem } from '@fleetkey/protocol';
import type { HubEvents } from '../../src/events/bus.js';
import { dedupKeyFor, wrapEnvelope } from '../../src/telemetry/dedup.js';
import { startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';

interface EnrolledDevice { readonly id: string; readonly keyPem: string; readonly certPem: string }
interface SseEvent { readonly id?: string; readonly event?: string; readonly data: string }

async function enrollDevice(t: TestHub, ownerToken: string): Promise<EnrolledDevice> {
  const claim = await t.claimToken(ownerToken);
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const csr = await buildCsr({ spki, subject: [['CN', 'd']], algorithm: 'p256', sign: async (d) => sign('sha256', d, pair.privateKey) });
  const r = await t.request('POST', '/.well-known/est/simpleenroll', {
    headers: { 'content-type': 'application/pkcs10', authorization: `Bearer ${claim.token}` }, body: csr.toString('base64'),
  });
  assert.equal(r.status, 200, r.text);
  const der = decodeCertsOnly(Buffer.from(r.text.replace(/\s+/g, ''), 'base64'))[0]!;
  return { id: deviceIdFromCertificate(der), keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), certPem: toPem('CERTIFICATE', der) };
}

/** A minimal SSE client (WHATWG HTML §9.2.6 parsing, enough for these tests); bounded by `close()`. */
function openStream(t: TestHub, path: string, token: string, headers: Record<string, string> = {}) {
  const events: SseEvent[] = [];
  let raw = '';
  let status = 0;
  let ended = false;
  const req = request(`${t.hub.url}${path}`, { ca: t.hub.rootCertPem, checkServerIdentity: () => undefined, agent: false, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...headers } });
  const ready = new Promise<void>((resolve, reject) => {
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        let cut: number;
        while ((cut = raw.indexOf('\n\n')) >= 0) {
          const block = raw.slice(0, cut);
          raw = raw.slice(cut + 2);
          const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':') && l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trimStart()]));
          if (fields.data !== undefined) events.push({ id: fields.id, event: fields.event, data: fields.data });
        }
        resolve();
      });
      res.on('end', () => (ended = true));
      res.on('close', () => (ended = true));
    });
    req.on('error', reject);
  });
  req.end();
  const waitFor = async (pred: () => boolean, ms = 5000): Promise<void> => {
    const until = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > until) throw new Error(`timed out; events: ${JSON.stringify(events)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { events, ready, waitFor, status: () => status, ended: () => ended, close: () => req.destroy() };
}

describe('telemetry API over HTTPS', () => {
  let t: TestHub;
  let a: TestOwner;
  let b: TestOwner;
  let devA: EnrolledDevice;
  let devB: EnrolledDevice;
  const commands: HubEvents['device.command'][] = [];
  const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);

  const store = (dev: EnrolledDevice, tenantId: string, payload: Buffer, at: number, dup = false) => {
    const topic = `devices/${dev.id}/telemetry`;
    return t.hub.telemetry.accept({ tenantId, deviceId: dev.id, topic, payload, qos: 1, receivedAt: at, dedupKey: dedupKeyFor(topic, payload, dup) });
  };
  const snapshot = async () => ({
    a: await t.hub.store.telemetry.count(a.tenantId, devA.id), b: await t.hub.store.telemetry.count(b.tenantId, devB.id),
    audit: await t.hub.store.audit.count(), commands: commands.length,
  });

  before(async () => {
    t = await startTestHub({ FLEETKEY_MQTT_PORT: '0', FLEETKEY_SSE_HEARTBEAT: '1', FLEETKEY_COMMAND_MAX_PAYLOAD: '64' });
    a = await t.owner('Telemetry Org A');
    b = await t.owner('Telemetry Org B');
    devA = await enrollDevice(t, a.token);
    devB = await enrollDevice(t, b.token);
    t.hub.bus.subscribe('device.command', (e) => void commands.push(e));
  });
  after(async () => t.stop());

  test('paging: 25 messages come back oldest first in pages of 10, JSON parsed, binary as base64, ids from envelopes', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) {
      const id = randomUUID();
      ids.push(id);
      const body = i % 5 === 4 ? Buffer.from([0, 1, 2, i]) : Buffer.from(JSON.stringify({ i }));
      assert.equal((await store(devA, a.tenantId, wrapEnvelope(id, body), T0 + i * 1000)).duplicate, false);
    }
    await store(devA, a.tenantId, wrapEnvelope(ids[3]!, Buffer.from('{"i":3}')), T0 + 99_000); // a redelivery
    const seen: any[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await t.api('GET', `/api/v1/devices/${devA.id}/telemetry?limit=10${cursor ? `&cursor=${cursor}` : ''}`, undefined, a.token);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      seen.push(...r.body.items);
      cursor = r.body.next;
      pages++;
    } while (cursor !== null && pages < 10);
    assert.equal(pages, 3);
    assert.deepEqual(seen.map((m) => m.messageId), ids, 'order, completeness, duplicate stored once');
    assert.deepEqual(seen[0].json, { i: 0 });
    assert.equal(seen[4].json, undefined);
    assert.deepEqual(Buffer.from(seen[4].payload, 'base64'), Buffer.from([0, 1, 2, 4]));
    assert.equal(seen[7].receivedAt, new Date(T0 + 7000).toISOString());
    const since = new Date(T0 + 5000).toISOString();
    const until = new Date(T0 + 8000).toISOString().replace('Z', '+00:00');
    const w = await t.api('GET', `/api/v1/devices/${devA.id}/telemetry?since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}`, undefined, a.token);
    assert.deepEqual(w.body.items.map((m: any) => m.json?.i), [5, 6, 7]);
    assert.equal(w.body.next, null);
  });

  test('SSE: a message stored after subscribing arrives live; another organisation\'s message does not', async () => {
    const s = openStream(t, `/api/v1/devices/${devA.id}/telemetry/stream`, a.token);
    await s.ready;
    assert.equal(s.status(), 200);
    await store(devB, b.tenantId, Buffer.from('{"secret":"b"}'), Date.now());
    const mine = await store(devA, a.tenantId, wrapEnvelope(randomUUID(), Buffer.from('{"live":true}')), Date.now());
    await s.waitFor(() => s.events.length >= 1);
    s.close();
    assert.equal(s.events.length, 1, JSON.stringify(s.events));
    assert.equal(s.events[0]!.event, 'telemetry');
    assert.equal(s.events[0]!.id, String(mine.seq));
    assert.deepEqual(JSON.parse(s.events[0]!.data).json, { live: true });
  });

  test('SSE: Last-Event-ID replays what was missed, then continues live without gaps or repeats', async () => {
    const first = await store(devA, a.tenantId, Buffer.from('{"n":1}'), Date.now());
    const second = await store(devA, a.tenantId, Buffer.from('{"n":2}'), Date.now());
    const s = openStream(t, `/api/v1/devices/${devA.id}/telemetry/stream`, a.token, { 'last-event-id': String(first.seq) });
    await s.ready;
    const third = await store(devA, a.tenantId, Buffer.from('{"n":3}'), Date.now());
    await s.waitFor(() => s.events.some((e) => e.id === String(third.seq)));
    s.close();
    assert.deepEqual(s.events.map((e) => Number(e.id)), [second.seq, third.seq]);
  });

  test('SSE: the stream ends within a heartbeat of logout', async () => {
    const c = await t.owner('Telemetry Org C');
    const devC = await enrollDevice(t, c.token);
    const s = openStream(t, `/api/v1/devices/${devC.id}/telemetry/stream`, c.token);
    await s.ready;
    assert.equal((await t.api('DELETE', '/api/v1/sessions/current', undefined, c.token)).status, 204);
    await s.waitFor(() => s.ended(), 5000);
    assert.deepEqual(s.events.at(-1), { id: undefined, event: 'end', data: '{"code":"AUTH_REQUIRED"}' });
  });

  test('command: 202 with an id, one device.command event for that device, one audit record', async () => {
    const before = await snapshot();
    const r = await t.api('POST', `/api/v1/devices/${devA.id}/commands`, { topic: 'reboot/now', payload: 'please' }, a.token);
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.match(r.body.id, /^cmd_[A-Za-z0-9_-]+$/);
    assert.equal(r.body.topic, `devices/${devA.id}/commands/reboot/now`);
    assert.equal(commands.length, before.commands + 1);
    const e = commands.at(-1)!;
    assert.deepEqual({ ...e, payload: e.payload.toString() }, { tenantId: a.tenantId, deviceId: devA.id, topic: 'reboot/now', payload: 'please' });
    const rec = (await t.hub.store.audit.list({ afterSeq: 0, limit: 100_000 })).at(-1)!;
    assert.equal(rec.type, 'device.command');
    assert.equal(rec.details?.commandId, r.body.id);
    const bin = await t.api('POST', `/api/v1/devices/${devA.id}/commands`, { topic: 'raw', payloadBase64: Buffer.from([0, 255]).toString('base64') }, a.token);
    assert.equal(bin.status, 202);
    assert.deepEqual(commands.at(-1)!.payload, Buffer.from([0, 255]));
  });

  test("BOLA: another organisation's device is 404 NOT_FOUND on every telemetry and command route, and nothing happens", async () => {
    await store(devA, a.tenantId, Buffer.from('{"x":1}'), Date.now());
    const before = await snapshot();
    const routes: Array<[string, string, unknown]> = [
      ['GET', `/api/v1/devices/${devA.id}/telemetry`, undefined],
      ['GET', `/api/v1/devices/${devA.id}/telemetry?cursor=${Buffer.from('t1:0').toString('base64url')}`, undefined],
      ['GET', `/api/v1/devices/${devA.id}/telemetry/stream`, undefined],
      ['POST', `/api/v1/devices/${devA.id}/commands`, { topic: 'unlock', payload: 'x' }],
    ];
    for (const [method, path, body] of routes) {
      const r = await t.api(method, path, body, b.token);
      assert.equal(r.status, 404, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'NOT_FOUND');
      const missing = await t.api(method, path.replace(devA.id, 'dev_doesnotexist0000'), body, b.token);
      assert.deepEqual({ ...missing.body.error, requestId: '' }, { ...r.body.error, requestId: '' }, 'foreign and missing devices are indistinguishable');
    }
    assert.deepEqual(await snapshot(), before, 'a command was delivered or audited, or telemetry changed');
  });

  test('device identity: a device certificate without an owner session is 401 on every route', async () => {
    const before = await snapshot();
    for (const [method, path] of [['GET', `/api/v1/devices/${devA.id}/telemetry`], ['GET', `/api/v1/devices/${devA.id}/telemetry/stream`], ['POST', `/api/v1/devices/${devA.id}/commands`]] as const) {
      const r = await t.request(method, path, { key: devA.keyPem, cert: devA.certPem, headers: { 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{"topic":"x","payload":"y"}' } : {}) });
      assert.equal(r.status, 401, `${method} ${path}`);
      assert.equal(r.body.error.code, 'AUTH_REQUIRED');
    }
    assert.deepEqual(await snapshot(), before);
  });

  test('hostile input: coded 400 (or 413), nothing delivered, audited or stored', async () => {
    const before = await snapshot();
    const q = ['limit=0', 'limit=5000', 'limit=abc', 'cursor=bad!', `cursor=${Buffer.from('t1:-5').toString('base64url')}`, 'since=yesterday', 'until=1717200000', 'since=2026-06-01', 'extra=1'];
    for (const query of q) {
      const r = await t.api('GET', `/api/v1/devices/${devA.id}/telemetry?${query}`, undefined, a.token);
      assert.equal(r.status, 400, `${query}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'VALIDATION_FAILED', query);
    }
    const bodies: Array<[unknown, number]> = [
      [{ topic: '../x', payload: 'a' }, 400], [{ topic: 'a/+/b', payload: 'a' }, 400], [{ topic: '#', payload: 'a' }, 400],
      [{ topic: 'a//b', payload: 'a' }, 400], [{ topic: '', payload: 'a' }, 400], [{ topic: 'a/b/c/d/e/f/g/h/i', payload: 'a' }, 400],
      [{ topic: 'a\u0000b', payload: 'a' }, 400], [{ topic: '$SYS', payload: 'a' }, 400], [{ topic: 'x', payload: 'a', payloadBase64: 'YQ==' }, 400],
      [{ topic: 'x' }, 400], [{ topic: 'x', payloadBase64: 'YQ' }, 400], [{ topic: 'x', payloadBase64: 'Y!==' }, 400],
      [{ topic: 'x', payload: 'a', qos: 2 }, 400], [{ topic: 'x', payload: 'y'.repeat(65) }, 413],
    ];
    for (const [body, status] of bodies) {
      const r = await t.api('POST', `/api/v1/devices/${devA.id}/commands`, body, a.token);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, status === 413 ? 'BODY_TOO_LARGE' : 'VALIDATION_FAILED');
    }
    assert.deepEqual(await snapshot(), before);
  });
});
