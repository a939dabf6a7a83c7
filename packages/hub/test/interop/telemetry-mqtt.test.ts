/**
 * Telemetry end to end with an independent MQTT peer (mosquitto_pub, Debian mosquitto-clients):
 * the fleetkey envelope deduplicates resends across sessions, plain payloads are never merged,
 * an oversized payload is not acknowledged and not stored, and a published message reaches the
 * owner's live stream. Children are spawned asynchronously and killed by pid (helpers).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request } from 'node:https';
import { enrollDevice, mosquittoPub } from '../helpers/mqtt-peers.js';
import { startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';

const LIMIT = 1024;

describe('telemetry over MQTT (mosquitto_pub) into the owner API', () => {
  let t: TestHub;
  let owner: TestOwner;
  let dev: Awaited<ReturnType<typeof enrollDevice>>;
  const topic = (): string => `devices/${dev.deviceId}/telemetry`;
  const items = async (): Promise<Array<{ seq: number; messageId: string | null; payload: string; json?: unknown }>> =>
    (await t.api('GET', `/api/v1/devices/${dev.deviceId}/telemetry?limit=1000`, undefined, owner.token)).body.items;

  before(async () => {
    t = await startTestHub({ FLEETKEY_TELEMETRY_MAX_PAYLOAD: String(LIMIT) });
    owner = await t.owner('Telemetry Mqtt Org');
    dev = await enrollDevice(t, owner.token, 'sensor');
  });
  after(async () => t.stop());

  test('the same enveloped message from two sessions is acknowledged twice and stored once', async () => {
    const id = randomUUID();
    const message = `FK1 ${id}\n{"temp":21.5}`;
    for (let i = 0; i < 2; i++) {
      const r = await mosquittoPub(t, dev, topic(), message);
      assert.equal(r.status, 0, `publish ${i + 1} not acknowledged: ${r.stderr}`);
    }
    const mine = (await items()).filter((m) => m.messageId === id);
    assert.equal(mine.length, 1);
    assert.deepEqual(mine[0]!.json, { temp: 21.5 });
    assert.equal(Buffer.from(mine[0]!.payload, 'base64').toString(), '{"temp":21.5}', 'the envelope is not part of the payload');
  });

  test('identical plain payloads are two messages (no envelope, no DUP: never merged)', async () => {
    const before = (await items()).length;
    for (let i = 0; i < 2; i++) assert.equal((await mosquittoPub(t, dev, topic(), 'on')).status, 0);
    assert.equal((await items()).length, before + 2);
  });

  test('attack: payload over telemetryMaxPayloadBytes → no PUBACK, nothing stored', async () => {
    const before = await t.hub.store.telemetry.count(owner.tenantId, dev.deviceId);
    const r = await mosquittoPub(t, dev, topic(), 'x'.repeat(LIMIT + 1));
    assert.notEqual(r.status, 0, 'an oversized message was acknowledged');
    assert.equal(await t.hub.store.telemetry.count(owner.tenantId, dev.deviceId), before);
  });

  test('a message published after the owner subscribed arrives on the live stream', async () => {
    let raw = '';
    const req = request(`${t.hub.url}/api/v1/devices/${dev.deviceId}/telemetry/stream`, {
      ca: t.hub.rootCertPem, checkServerIdentity: () => undefined, agent: false, headers: { authorization: `Bearer ${owner.token}` },
    });
    const connected = new Promise<void>((resolve) => req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        raw += c;
        resolve();
      });
    }));
    req.on('error', () => undefined);
    req.end();
    await connected;
    const id = randomUUID();
    assert.equal((await mosquittoPub(t, dev, topic(), `FK1 ${id}\n{"live":1}`)).status, 0);
    const until = Date.now() + 5000;
    while (!raw.includes(id) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    req.destroy();
    assert.ok(raw.includes(`"messageId":"${id}"`), raw);
  });
});
