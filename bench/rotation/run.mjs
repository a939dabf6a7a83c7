#!/usr/bin/env node
// bench:rotation — root rotation with a connected fleet (issue 4, ADR 0026). One load-generator
// process runs BENCH_DEVICES real SDK devices (`connect()`: pinned mutual TLS, trust follower,
// durable outbox) publishing QoS 1 telemetry to a hub in a child process. Then:
//   1. rotate-root (overlap BENCH_OVERLAP_MS): time until the hub serves v2, and until every
//      device has received the retained $fleetkey/trust v2 (its trust.json is checked at the end);
//   2. at the end of the overlap the hub retires the old root and closes the sessions it served
//      under it, spread over BENCH_SPREAD_S (retiredRootSessionSpreadSeconds, ADR 0026): time
//      from that retirement until every device is connected again under the new root (whose
//      handshake verifies only through the new pin), and the retries — no hub restart;
//   3. telemetry: every message a device saw acknowledged must be in the hub's store (dedup keys),
//      none stored twice. Target (issue 4): all reconnected within 60 s, zero acknowledged lost.
// The reference measured in the same run: the same fleet reconnecting after a plain hub restart
// (no rotation), so the ratio shows what the rotation itself costs on this machine.
//
// Usage:  npm run build && npm run bench:rotation
// Env:    BENCH_DEVICES (1000), BENCH_INTERVAL_MS (5000 per device), BENCH_OVERLAP_MS (10000),
//         BENCH_WARM_S (10), BENCH_AFTER_S (10), BENCH_SPREAD_S (30, the hub default),
//         BENCH_DEADLINE_S (1800, whole run),
//         BENCH_OUT (bench/results/rotation-<date>.json; '-' = none).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { connect, enroll, loadTrustBundle } = await import('../../packages/device/dist/src/index.js');
const { activePins, decodeCandidate } = await import('../../packages/protocol/dist/src/index.js');
const { procCpuUs } = await import('../mqtt/peers.mjs');
const { forkHubChild } = await import('../common/hub-child.mjs');

const num = (v, d) => (v === undefined || v === '' ? d : Number(v));
const DEVICES = num(process.env.BENCH_DEVICES, 1000);
const INTERVAL_MS = num(process.env.BENCH_INTERVAL_MS, 5000);
const OVERLAP_MS = num(process.env.BENCH_OVERLAP_MS, 10_000);
const WARM_S = num(process.env.BENCH_WARM_S, 10);
const AFTER_S = num(process.env.BENCH_AFTER_S, 10);
const DEADLINE_S = num(process.env.BENCH_DEADLINE_S, 1800);
const SPREAD_S = num(process.env.BENCH_SPREAD_S, 30);
for (const [k, v, min, max] of [['BENCH_DEVICES', DEVICES, 1, 2000], ['BENCH_INTERVAL_MS', INTERVAL_MS, 100, 60_000], ['BENCH_OVERLAP_MS', OVERLAP_MS, 1000, 600_000], ['BENCH_WARM_S', WARM_S, 1, 300], ['BENCH_AFTER_S', AFTER_S, 1, 300], ['BENCH_SPREAD_S', SPREAD_S, 0, 3600], ['BENCH_DEADLINE_S', DEADLINE_S, 60, 3600]]) {
  if (!(Number.isFinite(v) && v >= min && v <= max)) throw new Error(`${k} must be in [${min}, ${max}]`);
}
const deadline = setTimeout(() => { console.error(`bench:rotation: over BENCH_DEADLINE_S=${DEADLINE_S}`); process.exit(2); }, DEADLINE_S * 1000);
deadline.unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const s = (ms) => Math.round(ms) / 1000;
async function until(cond, timeoutMs, what) {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(25);
  }
  return performance.now() - t0;
}

function startHub() {
  return forkHubChild(join(here, 'hub-server.mjs'), { env: { ...process.env, FLEETKEY_RETIRED_ROOT_SESSION_SPREAD: String(SPREAD_S) }, defaultTimeoutMs: 120_000 });
}

async function enrollFleet(hub, dir) {
  const devices = [];
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < DEVICES) {
      const i = next++;
      const stateDir = join(dir, `d${i}`);
      const id = await enroll({ hubUrl: hub.url, pin: hub.pin, token: hub.claimToken, stateDir });
      devices.push({ i, stateDir, deviceId: id.deviceId, acked: new Set(), connections: 0, connectedAt: [], attemptsAfter: 0, trustV2At: undefined });
    }
  }));
  return devices.sort((a, b) => a.i - b.i);
}

async function connectFleet(hub, devices, marks) {
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < devices.length) {
      const d = devices[next++];
      d.client = await connect({ stateDir: d.stateDir, mqttHost: '127.0.0.1', mqttPort: hub.mqttPort });
      d.client.on('connected', () => { d.connections++; d.connectedAt.push(performance.now()); });
      d.client.on('acked', (m) => d.acked.add(`id:${m.id}`));
      d.client.on('reconnecting', () => { if (marks.restartAt !== undefined) d.attemptsAfter++; });
      d.client.on('trust', ({ payload }) => {
        try { if (d.trustV2At === undefined && decodeCandidate(payload).content.version === 2) d.trustV2At = performance.now(); } catch { /* not a bundle */ }
      });
    }
  }));
}

/** Waits for the end of the overlap; the hub then moves every session off the retired root. */
async function retireAndMeasure(hubProc, devices, marks) {
  for (const d of devices) d.attemptsAfter = 0;
  marks.restartAt = performance.now();
  const hub0 = procCpuUs(hubProc.pid), gen0 = process.cpuUsage();
  const over = await hubProc.ask({ type: 'overlapOver' }, OVERLAP_MS + 120_000);
  const retiredAt = performance.now();
  await until(() => devices.every((d) => d.connectedAt.some((t) => t > marks.restartAt)), 240_000, 'every device under the new root');
  const gen = process.cpuUsage(gen0);
  const cpuUsPerDevice = { hub: Math.round((procCpuUs(hubProc.pid) - hub0) / devices.length), devices: Math.round((gen.user + gen.system) / devices.length) };
  const allMs = Math.max(...devices.map((d) => d.connectedAt.find((t) => t > marks.restartAt))) - retiredAt;
  const attempts = devices.map((d) => d.attemptsAfter).sort((a, b) => a - b);
  return { waitedMs: over.ms, allMs, cpuUsPerDevice, retries: { p50: attempts[attempts.length >> 1], p99: attempts[Math.floor(attempts.length * 0.99)], max: attempts.at(-1) } };
}

/** Restarts the hub and waits until every device connected again; the reconnect figures. */
async function restartAndMeasure(hubProc, devices, marks) {
  for (const d of devices) d.attemptsAfter = 0;
  marks.restartAt = performance.now();
  const restarted = await hubProc.ask({ type: 'restart' });
  // CPU of both processes while the fleet reconnects (load-independent, unlike wall time).
  const hub0 = procCpuUs(hubProc.pid), gen0 = process.cpuUsage();
  await until(() => devices.every((d) => d.connectedAt.some((t) => t > marks.restartAt)), 240_000, 'reconnect after the restart');
  const gen = process.cpuUsage(gen0);
  const cpuUsPerDevice = { hub: Math.round((procCpuUs(hubProc.pid) - hub0) / devices.length), devices: Math.round((gen.user + gen.system) / devices.length) };
  const allMs = Math.max(...devices.map((d) => d.connectedAt.find((t) => t > marks.restartAt))) - marks.restartAt;
  const attempts = devices.map((d) => d.attemptsAfter).sort((a, b) => a - b);
  return { restarted, allMs, cpuUsPerDevice, retries: { p50: attempts[attempts.length >> 1], p99: attempts[Math.floor(attempts.length * 0.99)], max: attempts.at(-1) } };
}

function startPublishing(devices, state) {
  return devices.map(async (d) => {
    await sleep(Math.random() * INTERVAL_MS); // spread the fleet over the interval
    for (let n = 0; state.publishing; n++) {
      await d.client.publish(`devices/${d.deviceId}/telemetry`, JSON.stringify({ n, t: 20 + (n % 10) }));
      await sleep(INTERVAL_MS);
    }
  });
}

async function main() {
  const load = { before: loadavg() };
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-bench-rotation-devices-'));
  const hubProc = startHub();
  try {
    const hub = await hubProc.ready;
    console.log(`bench:rotation — ${DEVICES} SDK devices, QoS 1 every ${INTERVAL_MS} ms each, overlap ${OVERLAP_MS} ms; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    let t0 = performance.now();
    const devices = await enrollFleet(hub, dir);
    const enrollS = s(performance.now() - t0);
    console.log(`  enrolled ${devices.length} devices in ${enrollS} s`);
    const marks = {};
    t0 = performance.now();
    await connectFleet(hub, devices, marks);
    await until(() => devices.every((d) => d.connections >= 1), 180_000, 'initial connect');
    const initialConnectMs = performance.now() - t0;
    console.log(`  all connected (initial): ${s(initialConnectMs)} s`);
    const state = { publishing: true };
    const publishers = startPublishing(devices, state);
    await sleep(WARM_S * 1000);
    const ackedBefore = devices.reduce((n, d) => n + d.acked.size, 0);

    // The reference, measured in the same run: the same fleet reconnecting after a plain restart.
    const plain = await restartAndMeasure(hubProc, devices, marks);
    console.log(`  reference — plain hub restart (down ${s(plain.restarted.downMs)} s): all reconnected in ${s(plain.allMs)} s; retries p50 ${plain.retries.p50}, max ${plain.retries.max}; CPU-µs per device: hub ${plain.cpuUsPerDevice.hub}, devices ${plain.cpuUsPerDevice.devices}`);
    await sleep(WARM_S * 1000);

    const rotateAt = performance.now();
    const rotated = await hubProc.ask({ type: 'rotate', overlapMs: OVERLAP_MS });
    await until(() => devices.every((d) => d.trustV2At !== undefined), 120_000, 'v2 on every device');
    const allV2Ms = Math.max(...devices.map((d) => d.trustV2At)) - rotateAt;
    console.log(`  rotate-root → hub serves v${rotated.version}: ${s(rotated.appliedMs)} s; every device received v2: ${s(allV2Ms)} s`);
    const rot = await retireAndMeasure(hubProc, devices, marks);
    const allReconnectedMs = rot.allMs;
    console.log(`  overlap over (old root retired, no restart): every device connected under the new root ${s(allReconnectedMs)} s after the retirement (sessions closed over ${SPREAD_S} s); retries p50 ${rot.retries.p50}, max ${rot.retries.max}; CPU-µs per device: hub ${rot.cpuUsPerDevice.hub}, devices ${rot.cpuUsPerDevice.devices}`);
    await sleep(AFTER_S * 1000);
    state.publishing = false;
    await Promise.all(publishers);
    const drained = (await Promise.all(devices.map((d) => d.client.flush(60_000)))).filter(Boolean).length;
    await Promise.all(devices.map((d) => d.client.close()));

    const { ids } = await hubProc.ask({ type: 'ids', deviceIds: devices.map((d) => d.deviceId) }, 300_000);
    let acked = 0, lost = 0, duplicates = 0, unacknowledgedStored = 0, v2Devices = 0;
    for (const d of devices) {
      const stored = ids[d.deviceId] ?? [];
      const set = new Set(stored);
      duplicates += stored.length - set.size;
      acked += d.acked.size;
      for (const id of d.acked) if (!set.has(id)) lost++;
      for (const id of set) if (!d.acked.has(id)) unacknowledgedStored++;
      const trust = await loadTrustBundle(d.stateDir);
      if (trust?.content.version === 2 && activePins(trust, Date.now()).join() === rotated.pin) v2Devices++;
    }
    load.after = loadavg();
    const result = {
      date: new Date().toISOString(), machine: { cpus: availableParallelism(), model: cpus()[0]?.model, node: process.version }, load,
      params: { devices: DEVICES, intervalMs: INTERVAL_MS, overlapMs: OVERLAP_MS, warmS: WARM_S, afterS: AFTER_S, spreadS: SPREAD_S },
      enrollS, initialConnectS: s(initialConnectMs),
      rotation: { appliedS: s(rotated.appliedMs), allDevicesHoldV2S: s(allV2Ms) },
      reference: { plainRestartDownS: s(plain.restarted.downMs), allReconnectedS: s(plain.allMs), retries: plain.retries, cpuUsPerDevice: plain.cpuUsPerDevice },
      retirement: { allUnderNewRootS: s(allReconnectedMs), cpuUsPerDevice: rot.cpuUsPerDevice, ratioToPlainRestart: +(allReconnectedMs / plain.allMs).toFixed(2), ratioToTarget60s: +(allReconnectedMs / 60_000).toFixed(3), retries: rot.retries },
      telemetry: { ackedBeforeRotation: ackedBefore, acked, lost, duplicates, storedButNotAcked: unacknowledgedStored, devicesDrained: drained },
      trust: { devicesOnV2WithOnlyNewPin: v2Devices },
      pass: allReconnectedMs <= 60_000 && lost === 0 && duplicates === 0 && v2Devices === DEVICES,
    };
    console.log(`  telemetry: ${acked} acknowledged, ${lost} lost, ${duplicates} stored twice, ${unacknowledgedStored} stored without an ack seen; ${drained}/${DEVICES} outboxes drained`);
    console.log(`  trust: ${v2Devices}/${DEVICES} devices hold v2 with only the new pin active`);
    console.log(`  all under the new root ${s(allReconnectedMs)} s after the retirement = ${result.retirement.ratioToPlainRestart}× the plain restart, ${result.retirement.ratioToTarget60s}× the 60 s target → ${result.pass ? 'PASS' : 'FAIL'}; load after ${load.after.map((x) => x.toFixed(2)).join(' ')}`);
    const out = process.env.BENCH_OUT ?? join(root, 'bench', 'results', `rotation-${result.date.slice(0, 10)}.json`);
    if (out !== '-') {
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
      console.log(`  wrote ${out}`);
    }
    return result.pass ? 0 : 1;
  } finally {
    await hubProc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
