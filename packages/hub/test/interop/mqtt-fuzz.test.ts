/**
 * A bounded MQTT fuzz campaign against the real hub's broker over mutual TLS (the full ≥ 200,000
 * packet campaign is `npm run fuzz:mqtt`, bench/mqtt/fuzz.mjs, same generator and runner).
 * Devices are enrolled through the hub's EST route; the hub keeps its real SQLite telemetry sink.
 *
 * Asserts (SECURITY-CHECKLIST rows 18 and 27): every malformed connection is closed by the broker,
 * no malformed CONNECT is accepted, authorised devices keep working (legal packets answered, probe
 * sessions acknowledged), the heap after GC stays bounded, and the store holds exactly the legal
 * messages — nothing from a malformed packet.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FUZZ_KINDS } from '../helpers/mqtt-fuzz-cases.js';
import { runFuzzCampaign, type FuzzDevice } from '../helpers/mqtt-fuzz-run.js';
import { enrollDevice } from '../helpers/mqtt-peers.js';
import { startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';

const PACKETS = Number(process.env.FLEETKEY_FUZZ_PACKETS ?? 6000);
const SEED = Number(process.env.FLEETKEY_FUZZ_SEED ?? 0x5eed);
const WORKERS = 8;
const MiB = 1024 * 1024;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function memory(): Promise<{ rss: number; heapUsed: number }> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed };
}

describe('MQTT fuzz campaign (bounded) against the broker over mutual TLS', () => {
  let t: TestHub;
  let owner: TestOwner;
  const devices: FuzzDevice[] = [];

  before(async () => {
    t = await startTestHub({ FLEETKEY_MQTT_RATE: '100000', FLEETKEY_MQTT_RATE_BURST: '1000000', FLEETKEY_MQTT_CONNECT_TIMEOUT: '2' });
    owner = await t.owner('Fuzz Org');
    for (let i = 0; i < WORKERS + 2; i++) {
      const d = await enrollDevice(t, owner.token, `fuzz-${i}`);
      devices.push({ deviceId: d.deviceId, certPem: readFileSync(d.certPath, 'utf8'), keyPem: readFileSync(d.keyPath, 'utf8') });
    }
  });
  after(async () => t.stop());

  test(`attack: ${PACKETS} generated malformed and boundary packets → every connection closed, 0 crashes, bounded heap, nothing stored from them`, async (ctx) => {
    const r = await runFuzzCampaign({
      port: t.hub.mqttPort, rootPem: t.hub.rootCertPem, devices, seed: SEED, packets: PACKETS, maxDurationMs: 60_000,
      closeTimeoutMs: 3000, stallTimeoutMs: 6000, probeEveryMs: 100, memoryEveryCases: 100, memory,
    });
    ctx.diagnostic(`${r.packets} packets (${r.attackPackets} attack) in ${r.cases} connections, ${(r.durationMs / 1000).toFixed(1)} s; probe ${r.probe.checks} checks, max ${r.probe.maxMs.toFixed(0)} ms`);
    assert.deepEqual(r.failures, {}, JSON.stringify(r.firstFailures, null, 1));
    assert.ok(r.packets >= PACKETS, `${r.packets} packets sent`);
    assert.equal(r.closedByBroker, r.cases, 'the broker closed every case connection');
    assert.ok(Object.keys(r.kinds).length >= FUZZ_KINDS.length - 3, `attack families covered: ${Object.keys(r.kinds).length}`);
    assert.equal(r.probe.failures, 0, 'the well-behaved probes were always answered');
    assert.ok(r.probe.checks > 0 && r.probe.maxMs < 5000, `probe max ${r.probe.maxMs.toFixed(0)} ms`);
    const warm = r.memory[1] ?? r.memory[0]!;
    const end = r.memory[r.memory.length - 1]!;
    assert.ok(end.heapUsed - warm.heapUsed < 16 * MiB, `heap after GC grew ${((end.heapUsed - warm.heapUsed) / MiB).toFixed(1)} MiB`);
    let stored = 0;
    for (const d of devices.slice(2)) stored += await t.hub.store.telemetry.count(owner.tenantId, d.deviceId);
    assert.equal(stored, r.legalAcked, 'exactly the legal prelude messages are stored');
    let probeStored = 0;
    for (const d of devices.slice(0, 2)) probeStored += await t.hub.store.telemetry.count(owner.tenantId, d.deviceId);
    assert.equal(probeStored, r.probe.acked, 'every acknowledged probe message is stored');
  });
});
