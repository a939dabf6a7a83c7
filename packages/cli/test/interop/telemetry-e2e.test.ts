/**
 * The whole trusted-telemetry path with the real parts: a device enrolled by the SDK over EST,
 * connected by the SDK over pinned mutual TLS to the hub's broker, publishing through its durable
 * outbox; the owner reads exactly those messages back through the API — and another
 * organisation's owner sees none of them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { connect, enroll } from '@fleetkey/device';
import { loadConfig, openAdminContext, startHub, type RunningHub } from '@fleetkey/hub';
import { apiCall } from '../helpers/api.js';

let dir: string;
let hub: RunningHub;

const api = async (method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }> =>
  apiCall(hub.url, hub.rootCertPem, method, path, body, token);

async function owner(org: string, email: string): Promise<string> {
  const admin = await openAdminContext(hub.config);
  const created = await admin.createOrganisationWithOwner({ orgName: org, email, password: 'telemetry e2e password' });
  await admin.close();
  const r = await api('POST', '/api/v1/sessions', { email, password: 'telemetry e2e password', totp: OTPAuth.URI.parse(created.otpauthUri).generate() });
  assert.equal(r.status, 201);
  return r.body.token as string;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetkey-tele-'));
  hub = await startHub({ config: loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, {}), logger: pino({ level: 'silent' }) });
});
after(async () => {
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
});

test('SDK device → hub broker → durable store → owner API: every acknowledged message is readable once, by its owner only', async () => {
  const ownerA = await owner('Telemetry A', 'a@tele.example');
  const ownerB = await owner('Telemetry B', 'b@tele.example');
  const claim = await api('POST', '/api/v1/claim-tokens', {}, ownerA);
  const stateDir = join(dir, 'device');
  const identity = await enroll({ hubUrl: hub.url, pin: hub.pin, token: claim.body.token, stateDir });
  const client = await connect({ stateDir, mqttHost: '127.0.0.1', mqttPort: hub.mqttPort });
  const acked = new Set<string>();
  client.on('acked', (m) => acked.add(m.id));
  const sent: string[] = [];
  for (let i = 0; i < 40; i++) {
    const r = await client.publish(`devices/${identity.deviceId}/telemetry`, JSON.stringify({ i, temperature: 20 + i / 10 }));
    sent.push(r.id);
  }
  assert.equal(await client.flush(15_000), true, 'the outbox drained: every message acknowledged');
  await client.close();
  assert.equal(acked.size, 40);

  const rows: unknown[] = [];
  let cursor: string | undefined;
  do {
    const q = `/api/v1/devices/${identity.deviceId}/telemetry?limit=15${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await api('GET', q, undefined, ownerA);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    rows.push(...page.body.items);
    cursor = page.body.next ?? page.body.cursor ?? undefined;
  } while (cursor);
  assert.equal(rows.length, 40, 'each acknowledged message stored exactly once');

  const other = await api('GET', `/api/v1/devices/${identity.deviceId}/telemetry`, undefined, ownerB);
  assert.equal(other.status, 404, "another organisation cannot read this device's data");
  assert.equal(other.body.error.code, 'NOT_FOUND');
});
