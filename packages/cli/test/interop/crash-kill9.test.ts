/**
 * Crash safety (issue 3): the hub, as the operator runs it (`fleetkey hub start`, a child
 * process), is killed with SIGKILL 20 times at random moments while two devices publish QoS 1:
 * the SDK (`connect()`, durable outbox, envelope ids per ADR 0010) at ~400 msg/s and a plain
 * MQTT.js client (own envelopes, resends its unacknowledged in-flight messages) at ~200 msg/s.
 * Each restart reuses the data folder and the ports, so both devices reconnect by themselves.
 *
 * Asserts afterwards (API pages, one direct read-only SQL count, `fleetkey audit verify`):
 * - every id a publisher saw PUBACKed is stored (0 lost) — the broker acknowledges only after
 *   the durable COMMIT (ADR 0012);
 * - every stored id is stored exactly once, although messages committed but not yet
 *   acknowledged at a kill were sent again (ADR 0010 dedup by message id);
 * - nothing was dropped by the outbox, nothing unknown was stored, the audit chain verifies.
 *
 * The kill moments come from a seeded PRNG (FLEETKEY_CRASH_SEED reproduces a run; the seed is
 * printed). Rate limits are raised for this hub only: the test is about crashes, not the bucket.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as OTPAuth from 'otpauth';
import { seededRandom, toPem } from '@fleetkey/protocol';
import { connect, enroll, hasTlsKeyCapability, loadIdentity, openKeyStore, type DeviceClient } from '@fleetkey/device';
import { apiCall, freePort, HubProcess, RawPublisher, runCli, sleep, type HubAddress } from './crash-harness.js';

const CYCLES = 20;
const PASSWORD = 'correct horse battery staple 42';
const EMAIL = 'crash@kill9.example';

let root: string;
let dataDir: string;
let hub: HubProcess;
let address: HubAddress;
let mqttPort: number;
/** Device clients still open when a test fails: closed in `after`, so nothing keeps running. */
const cleanups: Array<() => Promise<void> | void> = [];

/** mulberry32 (`seededRandom`): a failure is reproducible from its seed. */
const prng = seededRandom;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'fleetkey-kill9-'));
  dataDir = join(root, 'data');
  mqttPort = await freePort();
  let apiPort = await freePort();
  while (apiPort === mqttPort) apiPort = await freePort();
  hub = new HubProcess({ dataDir, apiPort, mqttPort, env: { FLEETKEY_MQTT_RATE: '20000', FLEETKEY_MQTT_RATE_BURST: '100000' } });
  address = await hub.start();
});

after(async () => {
  for (const cleanup of cleanups) await cleanup();
  await hub.dispose();
  rmSync(root, { recursive: true, force: true });
});

interface Owner {
  readonly token: string;
  readonly ca: string;
}

async function ownerSession(): Promise<Owner> {
  const rootCert = await runCli(['hub', 'root-cert', '--data-dir', dataDir]);
  assert.equal(rootCert.code, 0, rootCert.stderr);
  const added = await runCli(['owner', 'add', '--data-dir', dataDir, '--org', 'Crash Test', '--email', EMAIL, '--json'], `${PASSWORD}\n`);
  assert.equal(added.code, 0, added.stderr);
  const { otpauthUri } = JSON.parse(added.stdout) as { otpauthUri: string };
  const totp = OTPAuth.URI.parse(otpauthUri).generate();
  const login = await apiCall(address.url, rootCert.stdout, 'POST', '/api/v1/sessions', { email: EMAIL, password: PASSWORD, totp });
  assert.equal(login.status, 201, JSON.stringify(login.body));
  return { token: (login.body as { token: string }).token, ca: rootCert.stdout };
}

async function enrollDevice(owner: Owner, name: string): Promise<{ deviceId: string; stateDir: string }> {
  const claim = await apiCall(address.url, owner.ca, 'POST', '/api/v1/claim-tokens', {}, owner.token);
  assert.equal(claim.status, 201, JSON.stringify(claim.body));
  const stateDir = join(root, name);
  const identity = await enroll({ hubUrl: address.url, pin: address.pin, token: (claim.body as { token: string }).token, stateDir });
  return { deviceId: identity.deviceId, stateDir };
}

/** The raw client's TLS material, read from the SDK's state folder. */
async function rawPublisher(stateDir: string, deviceId: string): Promise<RawPublisher> {
  const stored = await loadIdentity(stateDir);
  const key = await openKeyStore(stored.identity.keyStore.kind, { stateDir }).open(stored.identity.keyStore.label);
  assert.ok(hasTlsKeyCapability(key));
  const tlsKey = key.tlsKeyOptions();
  assert.ok('key' in tlsKey, 'file key store: a PEM key');
  const pem = (der: Uint8Array): string => toPem('CERTIFICATE', der);
  const cert = [stored.certificateDer, ...stored.chainDers.slice(0, -1)].map(pem).join('');
  const ca = pem(stored.chainDers[stored.chainDers.length - 1]!);
  return new RawPublisher({ port: mqttPort, deviceId, key: String(tlsKey.key), cert, ca, maxInflight: 32 });
}

/** Every stored message id of a device, through the API, 1000 a page. */
async function storedIds(owner: Owner, deviceId: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const q = `/api/v1/devices/${deviceId}/telemetry?limit=1000${cursor !== null ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await apiCall(address.url, owner.ca, 'GET', q, undefined, owner.token);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    const body = page.body as { items: Array<{ messageId: string | null }>; next: string | null };
    for (const item of body.items) ids.push(item.messageId ?? '<no id>');
    cursor = body.next;
  } while (cursor !== null);
  return ids;
}

function missing(acked: Set<string>, stored: Set<string>): string[] {
  return [...acked].filter((id) => !stored.has(id));
}

/** Row counts straight from the SQLite file (read-only, hub stopped): rows vs distinct keys. */
function sqlCounts(deviceIds: string[]): Array<{ rows: number; keys: number }> {
  const db = new Database(join(dataDir, 'fleetkey.db'), { readonly: true, fileMustExist: true });
  try {
    const q = db.prepare('SELECT count(*) AS rows, count(DISTINCT dedup_key) AS keys FROM telemetry WHERE device_id = ?');
    return deviceIds.map((id) => q.get(id) as { rows: number; keys: number });
  } finally {
    db.close();
  }
}

/** The SDK publisher under load: what it queued (fsynced), what it saw acknowledged, its sessions. */
class SdkLoad {
  readonly acked = new Set<string>();
  readonly queued = new Set<string>();
  readonly errors: unknown[] = [];
  readonly #publishing = new Set<Promise<void>>();
  dropped = 0;
  sessions = 0;
  pendingAtLoss = 0;
  #up = false;
  #n = 0;

  constructor(readonly client: DeviceClient, readonly topic: string) {
    client.on('acked', (m) => this.acked.add(m.id));
    client.on('dropped', () => this.dropped++);
    client.on('connected', () => { this.sessions++; this.#up = true; });
    client.on('disconnected', () => {
      // Unacknowledged when the session died: sent again with DUP=1, or for the first time.
      if (this.#up) this.pendingAtLoss += client.pendingCount;
      this.#up = false;
    });
  }

  publish(count: number): void {
    for (let k = 0; k < count; k++) {
      const p: Promise<void> = this.client.publish(this.topic, JSON.stringify({ n: this.#n++, t: 20 })).then(
        (r) => { this.queued.add(r.id); },
        (err: unknown) => { this.errors.push(err); },
      ).finally(() => this.#publishing.delete(p));
      this.#publishing.add(p);
    }
  }

  /** Every publish resolved "queued" (fsynced): only then is flush() meaningful. */
  async settled(): Promise<void> {
    await Promise.all([...this.#publishing]);
  }
}

/** Load on both devices (SDK 4, raw 2 messages per 10 ms) while the hub is killed CYCLES times. */
async function crashUnderLoad(sdk: SdkLoad, raw: RawPublisher, random: () => number): Promise<number> {
  const load = setInterval(() => {
    sdk.publish(4);
    raw.enqueue(2);
  }, 10);
  const start = Date.now();
  try {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      await sleep(300 + Math.floor(random() * 1200));
      await hub.kill9();
      address = await hub.start(); // rejects with the child's stderr after 20 s
    }
    await sleep(500);
  } finally {
    clearInterval(load);
  }
  return Date.now() - start;
}

interface Stored {
  readonly ids: string[];
  readonly set: Set<string>;
  readonly sql: { rows: number; keys: number } | undefined;
}

/** API pages while the hub runs, then a clean stop, the SQL counts and the audit chain. */
async function readBack(owner: Owner, deviceIds: [string, string]): Promise<{ sdk: Stored; raw: Stored; stopCode: number | null; audit: { code: number; stdout: string; stderr: string } }> {
  const ids = [await storedIds(owner, deviceIds[0]), await storedIds(owner, deviceIds[1])];
  const stopCode = await hub.stop();
  const sql = sqlCounts(deviceIds);
  const audit = await runCli(['audit', 'verify', '--data-dir', dataDir, '--json']);
  const stored = (i: 0 | 1): Stored => ({ ids: ids[i]!, set: new Set(ids[i]), sql: sql[i] });
  return { sdk: stored(0), raw: stored(1), stopCode, audit };
}

/** acked ⊆ stored (0 lost); each id once; stored = everything published (nothing unknown). */
function assertExactlyOnce(name: string, acked: Set<string>, published: Set<string>, stored: Stored): void {
  assert.deepEqual(missing(acked, stored.set), [], `${name}: every acknowledged message is stored`);
  assert.equal(stored.set.size, stored.ids.length, `${name}: no message id stored twice`);
  assert.deepEqual(missing(stored.set, published), [], `${name}: nothing stored that was not published`);
  assert.equal(stored.ids.length, published.size, `${name}: after the drain every published message is stored`);
  assert.deepEqual(stored.sql, { rows: stored.ids.length, keys: stored.ids.length }, `${name}: SQL agrees with the API`);
}

test(`kill -9 the hub ${CYCLES}× under QoS 1 load: every acknowledged message is stored, each exactly once`, { timeout: 240_000 }, async (t) => {
  const t0 = Date.now();
  const seed = Number(process.env.FLEETKEY_CRASH_SEED ?? Date.now() % 2 ** 31);
  const owner = await ownerSession();
  const sdkDevice = await enrollDevice(owner, 'device-sdk');
  const rawDevice = await enrollDevice(owner, 'device-raw');
  const client = await connect({
    stateDir: sdkDevice.stateDir, mqttHost: '127.0.0.1', mqttPort, timeoutMs: 5000,
    backoff: { initialMs: 100, minMs: 20, maxMs: 400 }, // reconnect within the 0.3–1.5 s up-times
    // Room for a slow CI disk's backlog: an overflow drop would be a test artefact, not a loss.
    outbox: { maxMessages: 100_000 },
  });
  const sdk = new SdkLoad(client, `devices/${sdkDevice.deviceId}/telemetry`);
  const raw = await rawPublisher(rawDevice.stateDir, rawDevice.deviceId);
  cleanups.push(() => client.close(), () => raw.close());
  raw.start();

  const loadMs = await crashUnderLoad(sdk, raw, prng(seed));
  await sdk.settled();
  const backlog = { sdk: client.pendingCount, raw: raw.outstanding, t: Date.now() };
  assert.equal(await client.flush(30_000), true, `SDK outbox did not drain: ${client.pendingCount} pending`);
  assert.equal(await raw.drain(30_000), true, `raw publisher did not drain: ${raw.outstanding} outstanding`);
  const drainMs = Date.now() - backlog.t;
  // Deterministic duplicates on top of the crash-made ones: ids acknowledged before earlier kills.
  const replayed = [...raw.acked].slice(0, 200);
  raw.replay(replayed);
  assert.equal(await raw.drain(10_000), true, 'replayed duplicates are acknowledged');
  await client.close();
  raw.close();
  const r = await readBack(owner, [sdkDevice.deviceId, rawDevice.deviceId]);

  const ready = hub.readyMs.slice(1).sort((a, b) => a - b);
  t.diagnostic(`seed ${seed}; restarts ${hub.starts - 1} (ready in median ${ready[ready.length >> 1]} ms, max ${ready[ready.length - 1]} ms); load ${(loadMs / 1000).toFixed(1)} s; backlog after load sdk ${backlog.sdk} raw ${backlog.raw}, drained in ${drainMs} ms; total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  t.diagnostic(`SDK: queued ${sdk.queued.size} (${Math.round(sdk.queued.size / (loadMs / 1000))} msg/s), acked ${sdk.acked.size}, stored ${r.sdk.ids.length}, sessions ${sdk.sessions}, pending at session losses ${sdk.pendingAtLoss}, dropped ${sdk.dropped}`);
  t.diagnostic(`raw MQTT.js: enqueued ${raw.enqueued.size}, PUBACKed ${raw.acked.size}, stored ${r.raw.ids.length}, in-flight resent after kills ${raw.resends}, acked ids replayed ${replayed.length}, sessions ${raw.sessions}`);
  t.diagnostic(`SQL rows/distinct ids: sdk ${r.sdk.sql?.rows}/${r.sdk.sql?.keys}, raw ${r.raw.sql?.rows}/${r.raw.sql?.keys}; audit ${r.audit.stdout.trim()}`);

  assert.equal(hub.starts - 1, CYCLES);
  assert.deepEqual(sdk.errors, []);
  assert.equal(sdk.dropped, 0, 'the outbox never overflowed');
  assert.ok(sdk.queued.size > 2000 && raw.acked.size > 1000, 'the load really ran');
  assert.equal(sdk.acked.size, sdk.queued.size, 'SDK: every queued message was acknowledged in the end');
  assertExactlyOnce('SDK', sdk.acked, sdk.queued, r.sdk);
  assertExactlyOnce('raw', raw.acked, raw.enqueued, r.raw);
  assert.equal(r.stopCode, 0, 'the hub stops cleanly after the crashes');
  assert.equal(r.audit.code, 0, `audit verify: ${r.audit.stdout} ${r.audit.stderr}`);
  assert.equal((JSON.parse(r.audit.stdout) as { ok: boolean }).ok, true);
});
