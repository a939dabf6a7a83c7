/**
 * Automatic renewal end to end (ADR 0025): a real hub, the SDK device enrolled over EST and
 * connected over pinned mutual TLS, the AutoRenewal of the device agent with an injected clock,
 * fake timers and seeded jitter (no waiting for real lifetimes), mosquitto_pub as a third party.
 *
 * Checks: the scheduled renewal at two thirds of the lifetime switches the live MQTT session to the
 * new certificate without losing one queued message; the old certificate is retired (superseded)
 * only after the new session is up — mosquitto_pub with it is refused afterwards, with the new one
 * it works; the owner's early-renew command makes the agent renew again, a repeat within the
 * hub's interval is RATE_LIMITED and publishes nothing; another organisation cannot ask.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { ManualClock } from '@fleetkey/protocol';
import { connect, enroll, loadIdentity, seededRandom, startAutoRenewal, status, type AutoRenewalEvent, type Timers } from '@fleetkey/device';
import { loadConfig, openAdminContext, startHub, type RunningHub } from '@fleetkey/hub';
import { apiCall } from '../helpers/api.js';

const HOUR = 3_600_000;
let dir: string;
let hub: RunningHub;
let rootFile: string;

const api = async (method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }> =>
  apiCall(hub.url, hub.rootCertPem, method, path, body, token);

async function owner(org: string, email: string): Promise<{ token: string; tenantId: string }> {
  const admin = await openAdminContext(hub.config);
  const created = await admin.createOrganisationWithOwner({ orgName: org, email, password: 'renewal e2e password' });
  await admin.close();
  const r = await api('POST', '/api/v1/sessions', { email, password: 'renewal e2e password', totp: OTPAuth.URI.parse(created.otpauthUri).generate() });
  assert.equal(r.status, 201);
  return { token: r.body.token as string, tenantId: created.tenantId };
}

/** Timers on the manual clock: `advance` moves it and runs what fell due. */
class FakeTimers implements Timers {
  readonly #pending = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  constructor(readonly clock: ManualClock) {}
  setTimeout(fn: () => void, ms: number): unknown {
    this.#pending.set(this.#next, { at: this.clock.now() + ms, fn });
    return this.#next++;
  }
  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }
  advance(ms: number): void {
    this.clock.advance(ms);
    for (const [id, t] of [...this.#pending]) if (t.at <= this.clock.now()) { this.#pending.delete(id); t.fn(); }
  }
}

function mosquittoPub(deviceId: string, certPath: string, keyPath: string, message: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(hub.mqttPort), '--cafile', rootFile, '--cert', certPath, '--key', keyPath,
      '-i', deviceId, '-t', `devices/${deviceId}/telemetry`, '-m', message, '-q', '1'], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve(code ?? -1); });
  });
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetkey-renew-'));
  hub = await startHub({ config: loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, { FLEETKEY_DEVICE_CERT_VALIDITY_DAYS: '1' }), logger: pino({ level: process.env.DEBUG_RENEW ? 'info' : 'silent' }) });
  rootFile = join(dir, 'root.pem');
  writeFileSync(rootFile, hub.rootCertPem);
});
after(async () => {
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
});

test('scheduled renewal and early renew: live session switched, nothing queued lost, old certificate retired after the switch', async () => {
  const orgA = await owner('Renew A', 'a@renew.example');
  const orgB = await owner('Renew B', 'b@renew.example');
  const claim = await api('POST', '/api/v1/claim-tokens', {}, orgA.token);
  const stateDir = join(dir, 'device');
  const device = await enroll({ hubUrl: hub.url, pin: hub.pin, token: claim.body.token, stateDir });
  const clock = new ManualClock(Date.now());
  const timers = new FakeTimers(clock);
  const client = await connect({ stateDir, mqttHost: '127.0.0.1', mqttPort: hub.mqttPort, clock });
  let connects = 0;
  let subscriptions = 0;
  client.on('connected', () => { connects += 1; });
  client.on('subscribed', () => { subscriptions += 1; });
  await until('first connection', () => (connects > 0 ? true : undefined));
  const events: AutoRenewalEvent[] = [];
  const auto = await startAutoRenewal({ stateDir, client, clock, timers, random: seededRandom(3), onEvent: (e) => { events.push(e); if (process.env.DEBUG_RENEW) console.log(JSON.stringify(e, (k, v) => (k === 'error' ? { code: v.code, cause: String(v.cause), causeCause: String(v.cause?.cause) } : v))); } });
  try {
    const window = (await status({ stateDir, clock })).renewalWindow;
    const dueAt = auto.scheduler.dueAt!.getTime();
    assert.ok(dueAt >= window.earliest.getTime() && dueAt <= window.latest.getTime(), 'due inside the status window');
    const old = await loadIdentity(stateDir);
    const oldCertPath = join(dir, 'old.pem');
    writeFileSync(oldCertPath, new X509Certificate(old.certificateDer).toString());
    const oldKeyPath = join(stateDir, 'keys', `${old.identity.keyStore.label}.key.pem`);
    assert.equal(await mosquittoPub(device.deviceId, oldCertPath, oldKeyPath, 'before'), 0, 'the old certificate works before the renewal');

    const topic = `devices/${device.deviceId}/telemetry`;
    for (let i = 0; i < 20; i++) await client.publish(topic, JSON.stringify({ i }));
    timers.advance(dueAt - clock.now()); // two thirds of the lifetime (± jitter) have passed
    for (let i = 20; i < 40; i++) await client.publish(topic, JSON.stringify({ i }));
    await until('renewal', () => events.find((e) => e.type === 'renewed'));
    const retired = await until('retirement', () => events.find((e) => e.type === 'retired'));
    assert.equal(await client.flush(20_000), true, 'every queued message acknowledged');
    assert.ok(connects >= 2, 'the live session was replaced');

    const renewed = await loadIdentity(stateDir);
    const oldSerial = new X509Certificate(old.certificateDer).serialNumber.toLowerCase();
    const newSerial = new X509Certificate(renewed.certificateDer).serialNumber.toLowerCase();
    assert.notEqual(newSerial, oldSerial);
    assert.deepEqual(retired.type === 'retired' && retired.serials, [oldSerial]);
    const stored = await hub.store.devices.certificates(orgA.tenantId, device.deviceId);
    assert.equal(stored.find((c) => c.serial === oldSerial)?.revocationReason, 'superseded');
    assert.equal(stored.find((c) => c.serial === newSerial)?.revokedAt, null);
    assert.equal(await hub.store.telemetry.count(orgA.tenantId, device.deviceId), 41, '40 from the agent + 1 from mosquitto_pub, none lost, none twice');

    const newKeyPath = join(stateDir, 'keys', `${renewed.identity.keyStore.label}.key.pem`);
    assert.notEqual(await mosquittoPub(device.deviceId, oldCertPath, oldKeyPath, 'retired'), 0, 'the retired certificate is refused');
    assert.equal(await mosquittoPub(device.deviceId, join(stateDir, 'cert.pem'), newKeyPath, 'renewed'), 0, 'the renewed certificate works');

    // mosquitto_pub used the device's client id: the hub handed it the session (takeover,
    // [MQTT-3.1.4-2]); the agent reconnects and subscribes again before the command is sent.
    const subscribedBefore = subscriptions;
    await until('the agent back on its commands topic', () => (client.connected && subscriptions > subscribedBefore ? true : undefined));
    // Early renewal, e.g. after a device-CA rotation: the hub asks through the commands topic.
    const other = await api('POST', `/api/v1/devices/${device.deviceId}/renew`, { reason: 'device-ca-rotation' }, orgB.token);
    assert.equal(other.status, 404, "another organisation's owner cannot ask");
    const asked = await api('POST', `/api/v1/devices/${device.deviceId}/renew`, { reason: 'device-ca-rotation' }, orgA.token);
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    assert.equal(asked.body.topic, `devices/${device.deviceId}/commands/fleetkey/renew`);
    await until('command renewal', () => events.find((e) => e.type === 'renewed' && e.trigger === 'command'));
    const third = await loadIdentity(stateDir);
    assert.notEqual(new X509Certificate(third.certificateDer).serialNumber.toLowerCase(), newSerial);
    const audits = await hub.store.audit.count();
    const again = await api('POST', `/api/v1/devices/${device.deviceId}/renew`, {}, orgA.token);
    assert.equal(again.status, 429);
    assert.equal(again.body.error.code, 'RATE_LIMITED');
    const bulk = await api('POST', '/api/v1/devices/renew', {}, orgA.token);
    assert.deepEqual(bulk.body, { requested: 0, rateLimited: 1 });
    assert.equal(await hub.store.audit.count(), audits, 'refused requests publish and audit nothing');
    assert.equal(await client.flush(10_000), true);
    assert.ok(readFileSync(join(stateDir, 'identity.json'), 'utf8').includes(third.identity.certificateSha256));
  } finally {
    auto.stop();
    await client.close();
  }
});
