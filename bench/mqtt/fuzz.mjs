#!/usr/bin/env node
// fuzz:mqtt — the full MQTT fuzz campaign (≥ 200,000 packets; SECURITY-CHECKLIST rows 18, 27)
// against the real hub in its own process: the seeded generator and TLS runner of the interop
// test (packages/hub/test/helpers/mqtt-fuzz-*.ts, compiled), devices enrolled through EST, the
// hub's real SQLite telemetry sink. A hub exit during the campaign is a crash.
//
// Prints packets/s, connections closed by the broker, crashes, failures by attack, probe
// latency, and RSS/heap of the hub after GC (first sample after warm-up → last); writes JSON to
// bench/results/mqtt-fuzz-<date>.json. Exit code 1 on any crash, failure, unbounded growth
// (heap after GC > FUZZ_MAX_HEAP_GROWTH_MB, RSS > FUZZ_MAX_RSS_GROWTH_MB), or a stored count that
// differs from the legal messages sent.
//
// Usage:  npm run build && npm run fuzz:mqtt
// Env:    FUZZ_PACKETS (200000), FUZZ_SEED (0x5eed), FUZZ_WORKERS (16), FUZZ_MAX_MINUTES (40),
//         FUZZ_MAX_HEAP_GROWTH_MB (16), FUZZ_MAX_RSS_GROWTH_MB (64), FUZZ_OUT (path, '-' = none),
//         FUZZ_COUNT (all | attack: count only the malformed packet that ends each connection).
// Invariants: 127.0.0.1 only, ephemeral ports, temp data folder (hub-server.mjs), bounded in
// packets and minutes; only our own child is stopped or killed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { enrollDevices, startHubProcess } from './peers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { runFuzzCampaign } = await import('../../packages/hub/dist/test/helpers/mqtt-fuzz-run.js');
const num = (v, d) => (v === undefined || v === '' ? d : Number(v));
const PACKETS = num(process.env.FUZZ_PACKETS, 200_000);
const SEED = num(process.env.FUZZ_SEED, 0x5eed);
const WORKERS = num(process.env.FUZZ_WORKERS, 16);
const MAX_MINUTES = num(process.env.FUZZ_MAX_MINUTES, 40);
const MAX_HEAP_MB = num(process.env.FUZZ_MAX_HEAP_GROWTH_MB, 16);
const MAX_RSS_MB = num(process.env.FUZZ_MAX_RSS_GROWTH_MB, 64);
const ATTACKS_ONLY = process.env.FUZZ_COUNT === 'attack';
if (!(PACKETS >= 1 && PACKETS <= 10_000_000 && WORKERS >= 1 && WORKERS <= 128 && MAX_MINUTES > 0 && MAX_MINUTES <= 240)) throw new Error('FUZZ_* out of range');
const MiB = 1024 * 1024;
const mb = (b) => (b / MiB).toFixed(1);

const hub = startHubProcess({ BENCH_HUB_LOG: process.env.BENCH_HUB_LOG ?? 'error', FLEETKEY_MQTT_RATE: '100000', FLEETKEY_MQTT_RATE_BURST: '1000000', FLEETKEY_MQTT_CONNECT_TIMEOUT: '2' });
let crashed;
hub.exited.then((e) => { crashed ??= e; });
const load0 = loadavg()[0];
try {
  const ready = await hub.ready;
  console.log(`hub pid ${ready.pid}, MQTT 127.0.0.1:${ready.mqttPort}; enrolling ${WORKERS + 2} devices…`);
  const devices = await enrollDevices({ url: ready.url, rootCertPem: ready.rootCertPem, claimToken: ready.claimToken, n: WORKERS + 2, concurrency: 8 });
  let lastPrint = 0;
  const r = await runFuzzCampaign({
    port: ready.mqttPort, rootPem: ready.rootCertPem, devices, seed: SEED, packets: PACKETS, countAttacksOnly: ATTACKS_ONLY, maxDurationMs: MAX_MINUTES * 60_000,
    closeTimeoutMs: 5000, stallTimeoutMs: 8000, probeEveryMs: 200, memoryEveryCases: 1000,
    memory: async () => {
      if (crashed !== undefined) throw new Error(`hub exited during the campaign: ${JSON.stringify(crashed)}`);
      const m = await hub.ask({ type: 'mem', gc: true }, 60_000);
      return { rss: m.rss, heapUsed: m.heapUsed };
    },
    onProgress: (p) => {
      if (performance.now() - lastPrint < 15_000) return;
      lastPrint = performance.now();
      const m = p.memory[p.memory.length - 1];
      console.log(`  ${p.packets} packets, ${p.cases} connections, ${Object.values(p.failures).reduce((a, b) => a + b, 0)} failures, hub RSS ${mb(m.rss)} MiB heap ${mb(m.heapUsed)} MiB`);
    },
  });
  const stored = (await hub.ask({ type: 'count', deviceIds: devices.slice(2).map((d) => d.deviceId) })).total;
  const probeStored = (await hub.ask({ type: 'count', deviceIds: devices.slice(0, 2).map((d) => d.deviceId) })).total;
  report(r, stored, probeStored);
} finally {
  await hub.stop();
}

function report(r, stored, probeStored) {
  const warm = r.memory[1] ?? r.memory[0];
  const end = r.memory[r.memory.length - 1];
  const peakRss = Math.max(...r.memory.map((m) => m.rss));
  const failures = Object.values(r.failures).reduce((a, b) => a + b, 0);
  const crashes = crashed === undefined ? 0 : 1;
  const growth = { heapAfterGcMiB: (end.heapUsed - warm.heapUsed) / MiB, rssMiB: (end.rss - warm.rss) / MiB, peakRssMiB: peakRss / MiB };
  const out = {
    date: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavgStart: load0, loadavgEnd: loadavg()[0], shared: true },
    seed: SEED, workers: WORKERS, packets: r.packets, attackPackets: r.attackPackets, connections: r.cases, closedByBroker: r.closedByBroker,
    seconds: r.durationMs / 1000, packetsPerSecond: r.packets / (r.durationMs / 1000), crashes, failures: r.failures, firstFailures: r.firstFailures,
    kinds: r.kinds, legalAcked: r.legalAcked, stored, probe: r.probe, probeStored, memory: { warm, end, growth, samples: r.memory.length },
  };
  console.log(`\n${r.packets} packets (${r.attackPackets} malformed/boundary) in ${r.cases} connections, ${out.seconds.toFixed(0)} s: ${out.packetsPerSecond.toFixed(0)} packets/s`);
  console.log(`closed by the broker: ${r.closedByBroker}/${r.cases}; crashes=${crashes}; failures=${failures} ${failures ? JSON.stringify(r.failures) : ''}`);
  console.log(`attack families: ${Object.keys(r.kinds).length}; probe: ${r.probe.checks} checks, ${r.probe.failures} failed, max ${r.probe.maxMs.toFixed(0)} ms`);
  console.log(`stored: ${stored} of ${r.legalAcked} legal messages; probe ${probeStored} of ${r.probe.acked}`);
  console.log(`hub after GC, warm → end: RSS ${mb(warm.rss)} → ${mb(end.rss)} MiB (${growth.rssMiB.toFixed(1)}), heap ${mb(warm.heapUsed)} → ${mb(end.heapUsed)} MiB (${growth.heapAfterGcMiB.toFixed(1)}); peak RSS ${growth.peakRssMiB.toFixed(1)} MiB`);
  const outPath = process.env.FUZZ_OUT ?? join(root, 'bench', 'results', `mqtt-fuzz-${out.date.slice(0, 10)}.json`);
  if (outPath !== '-') {
    mkdirSync(dirname(outPath), { recursive: true });
    writeFileSync(outPath, `${JSON.stringify(out, null, 2)}\n`);
    console.log(`wrote ${outPath}`);
  }
  const ok = crashes === 0 && failures === 0 && r.probe.failures === 0 && r.closedByBroker === r.cases && (ATTACKS_ONLY ? r.attackPackets : r.packets) >= PACKETS
    && stored === r.legalAcked && probeStored === r.probe.acked && growth.heapAfterGcMiB < MAX_HEAP_MB && growth.rssMiB < MAX_RSS_MB;
  if (!ok) {
    console.error('FUZZ CAMPAIGN FAILED');
    process.exitCode = 1;
  }
}
