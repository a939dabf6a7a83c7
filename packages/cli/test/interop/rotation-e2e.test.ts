/**
 * Root rotation end to end (ADR 0026), with the real hub, the SDK and the `fleetkey` agent binary:
 * connected devices follow a rotation without losing an acknowledged message, and a device that
 * slept through two rotations catches up through exactly the signed versions, renews, connects
 * and publishes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { get } from 'node:https';
import { activePins, computePin, fromPemAll, verifyChain, verifyInitial } from '@fleetkey/protocol';
import { TRUST_FILE, connect, loadTrustBundle, type DeviceClient } from '@fleetkey/device';
import { runCli } from '../helpers/cli.js';
import { startRotationHub, waitUntil, type RotationHub } from '../helpers/rotation-hub.js';

/**
 * Long enough that the hub applies the rotation inside the overlap on a loaded machine: the writer
 * runs in a child process and the follower polls every second — 1.2 s alone, 2.7–4.3 s with three
 * suites at once. Were the overlap over first, the material would list the new root alone and the
 * rotation itself would rightly move the sessions (the 2 s overlap used before did that under load).
 */
const OVERLAP_MS = 10_000;
/** The raw bytes the hub serves for a bundle version (trusting its current root). */
const bundleAt = (h: RotationHub, v: number): Promise<Buffer> => new Promise((resolve, reject) => {
  get(`${h.hub.url}/.well-known/fleetkey/trust/${v}`, { ca: h.hub.rootCertPem, checkServerIdentity: () => undefined, agent: false }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
  }).on('error', reject);
});

describe('root rotation end to end', () => {
  let h: RotationHub;
  let sleeper: { stateDir: string; deviceId: string };
  let firstPin: string;

  before(async () => {
    h = await startRotationHub('rotation-e2e');
    firstPin = h.hub.pin;
    sleeper = await h.enrollDevice('sleeper');
  });
  after(async () => h.stop());

  test('connected devices move to the new root without losing telemetry: every acknowledged message is stored once', async () => {
    const devices = await Promise.all([1, 2, 3].map((i) => h.enrollDevice(`live-${i}`)));
    const acked = devices.map(() => new Set<string>());
    const connections = devices.map(() => 0);
    const clients: DeviceClient[] = [];
    for (const [i, d] of devices.entries()) {
      const c = await connect({ stateDir: d.stateDir, mqttHost: '127.0.0.1', mqttPort: h.hub.mqttPort, backoff: { initialMs: 200, maxMs: 1000 } });
      c.on('acked', (m) => acked[i]!.add(`id:${m.id}`));
      c.on('connected', () => { connections[i]! += 1; });
      clients.push(c);
    }
    let publishing = true;
    const publishers = clients.map(async (c, i) => {
      for (let n = 0; publishing; n++) {
        await c.publish(`devices/${devices[i]!.deviceId}/telemetry`, JSON.stringify({ n }));
        await new Promise((r) => setTimeout(r, 40));
      }
    });
    await waitUntil(() => acked.every((a) => a.size >= 5), 20_000, 'telemetry before the rotation');
    const appliedAfterMs = await h.rotate(OVERLAP_MS);
    assert.ok(appliedAfterMs < OVERLAP_MS, `precondition: the hub applied the rotation inside the overlap (after ${appliedAfterMs} ms)`);
    // The retained $fleetkey/trust reaches every connected device: each stores v2 (both pins during the overlap).
    await waitUntil(async () => (await Promise.all(devices.map((d) => loadTrustBundle(d.stateDir)))).every((b) => b?.content.version === 2), 15_000, 'v2 on every device');
    const before = connections.slice();
    assert.deepEqual(await h.sessionsMoved(), [0], 'the rotation itself moves no session (both roots are in service)');
    await h.overlapOver(); // only the new root's chain is served now
    // No restart: the hub closes the sessions it served under the retired root (spread over
    // FLEETKEY_RETIRED_ROOT_SESSION_SPREAD), and the devices reconnect; the new handshake verifies
    // only through the new pin (the old one is no longer active on the devices either).
    await waitUntil(() => connections.every((n, i) => n > before[i]!), 30_000, 'every device reconnected under the new root');
    assert.equal((await h.sessionsMoved()).at(-1), devices.length, 'the hub moved exactly the sessions served under the retired root');
    const counts = acked.map((a) => a.size);
    await waitUntil(() => acked.every((a, i) => a.size >= counts[i]! + 5), 20_000, 'telemetry after the rotation');
    publishing = false;
    await Promise.all(publishers);
    for (const c of clients) assert.equal(await c.flush(20_000), true, 'the outbox drained');
    await Promise.all(clients.map((c) => c.close()));
    for (const [i, d] of devices.entries()) {
      const stored = await h.storedIds(d.deviceId);
      const lost = [...acked[i]!].filter((id) => !stored.has(id));
      assert.deepEqual(lost, [], `device ${i}: no acknowledged message lost`);
      assert.equal(stored.size, acked[i]!.size, `device ${i}: nothing stored that was not acknowledged, nothing twice`);
      const trust = await loadTrustBundle(d.stateDir);
      assert.deepEqual(activePins(trust!, Date.now()), [h.hub.pin], 'the device now pins the new root only');
    }
  });

  test('a device that slept through two rotations catches up through exactly the signed versions, renews, connects and publishes; a half-written bundle from a power loss is never used', async () => {
    await h.rotate(OVERLAP_MS);
    await h.overlapOver();
    assert.equal(h.hub.trustVersion, 3);
    assert.notEqual(h.hub.pin, firstPin);
    // Power loss during an earlier bundle update: a partial temporary beside no trust.json (ADR 0022).
    const v2 = await bundleAt(h, 2);
    writeFileSync(join(sleeper.stateDir, `${TRUST_FILE}.5eed0f1a2b3c.tmp`), v2.subarray(0, v2.length >> 1));
    assert.equal(await loadTrustBundle(sleeper.stateDir), undefined, 'the temporary is not the trust state');
    const renewed = await runCli(['device', 'renew', '--state-dir', sleeper.stateDir, '--json']);
    assert.equal(renewed.code, 0, renewed.stderr);
    // Its trust state is exactly the hub's v3, reached from the claim pin through v1 and v2.
    const expected = verifyChain(verifyInitial([firstPin], await bundleAt(h, 1), Date.now()), [await bundleAt(h, 2), await bundleAt(h, 3)], Date.now());
    assert.ok(readFileSync(join(sleeper.stateDir, TRUST_FILE)).equals(expected.bytes), 'trust.json is the verified v3, byte for byte');
    assert.deepEqual(activePins(expected, Date.now()), [h.hub.pin]);
    assert.deepEqual(readdirSync(sleeper.stateDir).filter((f) => f.endsWith('.tmp')), [], 'the stale temporary was removed by the save');
    // The renewed certificate chains to the new root (chain.pem: device CA as root 3 certifies it, root 3).
    const chain = fromPemAll(readFileSync(join(sleeper.stateDir, 'chain.pem'), 'utf8'), 'CERTIFICATE').map((d) => new X509Certificate(d));
    assert.equal(computePin(chain.at(-1)!.publicKey.export({ type: 'spki', format: 'der' })), h.hub.pin);
    const run = await runCli(['device', 'run', '--state-dir', sleeper.stateDir, '--stdin', '--hub-mqtt', `127.0.0.1:${h.hub.mqttPort}`], '{"woke":1}\n{"woke":2}\n');
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await h.storedIds(sleeper.deviceId)).size, 2, 'both messages stored');
  });
});
