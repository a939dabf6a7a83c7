#!/usr/bin/env node
// bench:mqtt — fleetkey's embedded MQTT broker (aedes on its own mTLS listener, ADR 0012) side by
// side with Mosquitto in the same run: same hub-issued device certificates (EST), same server
// chain and client trust, same raw-TLS client harness (client.mjs), broker CPU from /proc.
//
// Phases (each on both brokers, Mosquitto first): 1. new mTLS connections/s (CONNECT, CONNACK,
// DISCONNECT); 2. QoS 1 publish throughput (fleetkey stores durably before PUBACK, Mosquitto acks
// from memory); 3. memory per idle authenticated connection; 4. (fleetkey only) revoke via the API
// → client socket closed, latency percentiles.
//
// Usage:  npm run build && npm run bench:mqtt
// Env:    BENCH_CONNECTIONS (2000), BENCH_CONN_CONCURRENCY (32), BENCH_PUB_DEVICES (20),
//         BENCH_PUB_WINDOW (100 unacknowledged per device), BENCH_SECONDS (8), BENCH_IDLE (5000),
//         BENCH_IDLE_BUDGET_S (60 per broker to open them), BENCH_REVOKES (50), BENCH_ROUNDS (2:
//         connection-churn and publish rounds per broker, interleaved; each broker's best counts),
//         BENCH_HEAP_SNAPSHOT (file: heap snapshot of the hub with the idle connections open),
//         BENCH_OUT (bench/results/mqtt-<date>.json; '-' = none).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeSession, openSession, publishLoop, secureContextFor } from './client.mjs';
import { apiPost, enrollDevices, procCpuUs, procRssBytes, setAgent, startHubProcess, startMosquitto } from './peers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const num = (v, d) => (v === undefined || v === '' ? d : Number(v));
const CONNECTIONS = num(process.env.BENCH_CONNECTIONS, 2000);
const CONN_C = num(process.env.BENCH_CONN_CONCURRENCY, 32);
const PUB_DEVICES = num(process.env.BENCH_PUB_DEVICES, 20);
const PUB_WINDOW = num(process.env.BENCH_PUB_WINDOW, 100);
const SECONDS = num(process.env.BENCH_SECONDS, 8);
const IDLE = num(process.env.BENCH_IDLE, 5000);
const IDLE_BUDGET_S = num(process.env.BENCH_IDLE_BUDGET_S, 60);
const REVOKES = num(process.env.BENCH_REVOKES, 50);
const ROUNDS = num(process.env.BENCH_ROUNDS, 2);
const IDLE_C = 64;
for (const [k, v, max] of [['BENCH_CONNECTIONS', CONNECTIONS, 100_000], ['BENCH_CONN_CONCURRENCY', CONN_C, 512], ['BENCH_PUB_DEVICES', PUB_DEVICES, 1000], ['BENCH_PUB_WINDOW', PUB_WINDOW, 10_000], ['BENCH_SECONDS', SECONDS, 120], ['BENCH_IDLE', IDLE, 15_000], ['BENCH_REVOKES', REVOKES, 1000], ['BENCH_ROUNDS', ROUNDS, 10]]) {
  if (!(Number.isFinite(v) && v >= 1 && v <= max)) throw new Error(`${k} must be in [1, ${max}]`);
}

const pct = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]);
const lat = (arr) => { const s = Float64Array.from(arr).sort(); return { p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), max: s[s.length - 1] ?? NaN, n: s.length }; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` and returns its result with wall seconds, broker CPU µs and load-generator CPU µs. */
async function measured(pid, fn) {
  const c0 = procCpuUs(pid), g0 = process.cpuUsage(), t0 = performance.now();
  const result = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const g = process.cpuUsage(g0);
  return { result, seconds, brokerCpuUs: procCpuUs(pid) - c0, loadgenCpuUs: g.user + g.system };
}

// ---------------------------------------------------------------- 1. new mTLS connections/s

async function connectionChurn(port, devices, count) {
  let next = 0, errors = 0;
  const ms = [];
  await Promise.all(devices.slice(0, CONN_C).map(async (d) => {
    while (next < count) {
      next++;
      const t0 = performance.now();
      try {
        const s = await openSession({ port, secureContext: d.ctx, clientId: d.deviceId });
        ms.push(performance.now() - t0);
        await closeSession(s);
      } catch (e) {
        if (++errors <= 3) console.error(`  connect error: ${e.message}`);
      }
    }
  }));
  return { ok: ms.length, errors, latencyMs: lat(ms) };
}

async function phaseConnections(broker, devices) {
  await connectionChurn(broker.port, devices, Math.min(200, CONNECTIONS)); // warm-up: JIT, caches
  const m = await measured(broker.pid, () => connectionChurn(broker.port, devices, CONNECTIONS));
  const r = m.result;
  return { connections: r.ok, errors: r.errors, seconds: m.seconds, perS: r.ok / m.seconds, connectLatencyMs: r.latencyMs, brokerCpuUsPerConnection: m.brokerCpuUs / Math.max(r.ok, 1), brokerCores: m.brokerCpuUs / 1e6 / m.seconds, loadgenCpuUsPerConnection: m.loadgenCpuUs / Math.max(r.ok, 1) };
}

// ---------------------------------------------------------------- 2. QoS 1 publish throughput

async function publishRun(port, devices, seconds) {
  const sessions = await Promise.all(devices.map((d) => openSession({ port, secureContext: d.ctx, clientId: d.deviceId })));
  const endAt = performance.now() + seconds * 1000;
  const results = await Promise.all(sessions.map((s, i) => publishLoop(s, { topic: `devices/${devices[i].deviceId}/telemetry`, window: PUB_WINDOW, endAt })));
  await Promise.all(sessions.map((s) => closeSession(s)));
  const errors = results.filter((r) => r.error !== undefined).map((r) => r.error);
  return { sent: results.reduce((a, r) => a + r.sent, 0), acked: results.reduce((a, r) => a + r.acked, 0), errors };
}

async function phasePublish(broker, devices) {
  await publishRun(broker.port, devices, 1); // warm-up
  const m = await measured(broker.pid, () => publishRun(broker.port, devices, SECONDS));
  const r = m.result;
  if (r.errors.length > 0) console.error(`  publish errors: ${r.errors.slice(0, 3).join(', ')}`);
  return { devices: devices.length, window: PUB_WINDOW, sent: r.sent, acked: r.acked, errors: r.errors.length, seconds: m.seconds, ackedPerS: r.acked / m.seconds, brokerCpuUsPerMessage: m.brokerCpuUs / Math.max(r.acked, 1), brokerCores: m.brokerCpuUs / 1e6 / m.seconds, loadgenCpuUsPerMessage: m.loadgenCpuUs / Math.max(r.acked, 1) };
}

// ---------------------------------------------------------------- 3. memory per idle connection

async function phaseMemory(broker, devices, hubMem, snapshot) {
  const before = hubMem ? await hubMem() : { rss: procRssBytes(broker.pid) };
  const open = [];
  let next = 0, errors = 0;
  const until = performance.now() + IDLE_BUDGET_S * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IDLE_C }, async () => {
    while (next < devices.length && performance.now() < until && errors < 50) {
      const d = devices[next++];
      try { open.push(await openSession({ port: broker.port, secureContext: d.ctx, clientId: d.deviceId })); } catch (e) { if (++errors <= 3) console.error(`  idle connect: ${e.message}`); }
    }
  }));
  const setupSeconds = (performance.now() - t0) / 1000;
  await sleep(2000); // settle: handshake buffers released, timers armed
  const after = hubMem ? await hubMem() : { rss: procRssBytes(broker.pid) };
  const alive = open.filter((s) => !s.socket.destroyed).length;
  const snap = snapshot ? await snapshot() : undefined;
  for (const s of open) s.socket.destroy();
  await sleep(500);
  const per = (k) => (after[k] - before[k]) / Math.max(alive, 1);
  const out = { connections: alive, requested: devices.length, errors, setupSeconds, rssBefore: before.rss, rssAfter: after.rss, rssBytesPerConnection: per('rss') };
  if (hubMem) Object.assign(out, { heapUsedBytesPerConnection: per('heapUsed'), externalBytesPerConnection: per('external'), arrayBuffersBytesPerConnection: per('arrayBuffers'), heapSnapshot: snap });
  return out;
}

// ---------------------------------------------------------------- 4. revoke → disconnect

async function phaseRevoke(hub, port, devices) {
  const closeMs = [], apiMs = [];
  let errors = 0;
  for (const d of devices) {
    const s = await openSession({ port, secureContext: d.ctx, clientId: d.deviceId });
    const closed = new Promise((res) => { const t = setTimeout(() => res(undefined), 5000); s.socket.once('close', () => { clearTimeout(t); res(performance.now()); }); });
    const t0 = performance.now();
    const r = await apiPost(`${hub.url}/api/v1/devices/${d.deviceId}/revoke`, hub.rootCertPem, hub.ownerToken, { reason: 'keyCompromise' });
    apiMs.push(performance.now() - t0);
    const at = await closed;
    if (r.status !== 200 || at === undefined) { errors++; console.error(`  revoke ${d.deviceId}: HTTP ${r.status}, closed ${at !== undefined}`); s.socket.destroy(); continue; }
    closeMs.push(at - t0);
  }
  return { runs: devices.length, errors, revokeToCloseMs: lat(closeMs), apiResponseMs: lat(apiMs) };
}

// ---------------------------------------------------------------- main

const cores = availableParallelism();
const loadAtStart = loadavg();
console.log(`fleetkey bench:mqtt — node ${process.version}, OpenSSL ${process.versions.openssl}, ${cores} cores (${cpus()[0]?.model ?? '?'}), load ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}`);
const hubProc = startHubProcess({ FLEETKEY_MQTT_RATE: '100000', FLEETKEY_MQTT_RATE_BURST: '1000000' });
const work = mkdtempSync(join(tmpdir(), 'fleetkey-bench-mosq-'));
let mosq;
let exitCode = 0;
try {
  const hub = await hubProc.ready;
  setAgent(new Agent({ keepAlive: true, maxSockets: 32 }));
  // Same certificates. fleetkey's anchors are its device CAs (partial chains, ADR 0032); Mosquitto
  // 2.0 has no partial-chain option, so its cafile adds the self-signed root above them.
  mosq = await startMosquitto(work, { ...hub.tls, clientCaPem: hub.tls.clientCaPem + hub.rootCertPem });
  const brokers = { mosquitto: { port: mosq.port, pid: mosq.pid }, fleetkey: { port: hub.mqttPort, pid: hub.pid } };
  console.log(`hub pid ${hub.pid} (MQTT :${hub.mqttPort}), mosquitto ${mosq.version} pid ${mosq.pid} (:${mosq.port}); same server chain; fleetkey trusts the device CA (partial chains), mosquitto's cafile = device CA + root`);

  const total = Math.max(IDLE, CONN_C, PUB_DEVICES) + REVOKES;
  const e0 = performance.now();
  const devices = await enrollDevices({ url: hub.url, rootCertPem: hub.rootCertPem, claimToken: hub.claimToken, n: total });
  for (const d of devices) d.ctx = secureContextFor(d, hub.rootCertPem);
  console.log(`enrolled ${devices.length} P-256 devices through the hub's EST in ${((performance.now() - e0) / 1000).toFixed(1)} s; one client TLS context each`);
  const revokeDevices = devices.slice(devices.length - REVOKES);
  const pool = devices.slice(0, devices.length - REVOKES);

  const res = { connections: {}, publish: {}, memory: {} };
  // Connection churn and QoS 1 publishing are exposed to the host's drift (±15 % minutes apart):
  // each runs ROUNDS times per broker, interleaved and in alternating order (M F, F M, …); each
  // broker's figure is its best round, and every round is printed and kept in the JSON.
  const connectionRuns = { mosquitto: [], fleetkey: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = Object.entries(brokers);
    for (const [name, b] of round % 2 === 0 ? order : order.reverse()) {
      const c = await phaseConnections(b, pool);
      connectionRuns[name].push(c);
      console.log(`1. ${name.padEnd(9)} ${c.perS.toFixed(0).padStart(6)} conn/s  p50 ${c.connectLatencyMs.p50.toFixed(1)} ms  p99 ${c.connectLatencyMs.p99.toFixed(1)} ms  broker ${c.brokerCpuUsPerConnection.toFixed(0)} µs/conn (${c.brokerCores.toFixed(2)} cores)  gen ${c.loadgenCpuUsPerConnection.toFixed(0)} µs  errors ${c.errors}  (round ${round + 1})`);
    }
  }
  for (const [name, runs] of Object.entries(connectionRuns)) {
    const best = runs.reduce((a, c) => (c.perS > a.perS ? c : a));
    res.connections[name] = { ...best, errors: runs.reduce((a, c) => a + c.errors, 0), rounds: runs };
  }
  const publishRuns = { mosquitto: [], fleetkey: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = Object.entries(brokers);
    for (const [name, b] of round % 2 === 0 ? order : order.reverse()) {
      const p = await phasePublish(b, pool.slice(0, PUB_DEVICES));
      publishRuns[name].push(p);
      console.log(`2. ${name.padEnd(9)} ${p.ackedPerS.toFixed(0).padStart(6)} QoS1 msg/s  broker ${p.brokerCpuUsPerMessage.toFixed(1)} µs/msg (${p.brokerCores.toFixed(2)} cores)  gen ${p.loadgenCpuUsPerMessage.toFixed(1)} µs  acked ${p.acked}/${p.sent}  errors ${p.errors}  (round ${round + 1})`);
    }
  }
  for (const [name, runs] of Object.entries(publishRuns)) {
    const best = runs.reduce((a, p) => (p.ackedPerS > a.ackedPerS ? p : a));
    res.publish[name] = { ...best, errors: runs.reduce((a, p) => a + p.errors, 0), rounds: runs };
  }
  const hubMem = () => hubProc.ask({ type: 'mem', gc: true });
  const snapshot = process.env.BENCH_HEAP_SNAPSHOT ? async () => (await hubProc.ask({ type: 'snapshot', path: resolve(process.env.BENCH_HEAP_SNAPSHOT) }, 300_000)).path : undefined;
  for (const [name, b] of Object.entries(brokers)) {
    res.memory[name] = await phaseMemory(b, pool.slice(0, IDLE), name === 'fleetkey' ? hubMem : undefined, name === 'fleetkey' ? snapshot : undefined);
    const m = res.memory[name];
    console.log(`3. ${name.padEnd(9)} ${m.connections} idle connections (opened in ${m.setupSeconds.toFixed(1)} s): ${(m.rssBytesPerConnection / 1024).toFixed(1)} KiB RSS each` +
      (m.heapUsedBytesPerConnection !== undefined ? `  (JS heap ${(m.heapUsedBytesPerConnection / 1024).toFixed(1)} KiB, external ${(m.externalBytesPerConnection / 1024).toFixed(1)} KiB)` : ''));
  }
  res.revoke = await phaseRevoke(hub, hub.mqttPort, revokeDevices);
  const rv = res.revoke.revokeToCloseMs;
  console.log(`4. fleetkey  revoke → socket closed: p50 ${rv.p50.toFixed(1)} ms  p99 ${rv.p99.toFixed(1)} ms  max ${rv.max.toFixed(1)} ms (${rv.n} runs, ${res.revoke.errors} errors; API response p50 ${res.revoke.apiResponseMs.p50.toFixed(1)} ms)`);

  const ratios = {
    connectionsPerS: { value: res.connections.fleetkey.perS / res.connections.mosquitto.perS, target: '>= 1.0' },
    qos1PublishPerS: { value: res.publish.fleetkey.ackedPerS / res.publish.mosquitto.ackedPerS, target: '>= 1.0' },
    memoryPerIdleConnection: { value: res.memory.fleetkey.rssBytesPerConnection / res.memory.mosquitto.rssBytesPerConnection, target: '<= 1.5' },
    revokeP99Ms: { value: rv.p99, target: '< 1000' },
  };
  ratios.connectionsPerS.met = ratios.connectionsPerS.value >= 1;
  ratios.qos1PublishPerS.met = ratios.qos1PublishPerS.value >= 1;
  ratios.memoryPerIdleConnection.met = ratios.memoryPerIdleConnection.value <= 1.5;
  ratios.revokeP99Ms.met = rv.p99 < 1000 && res.revoke.errors === 0;
  console.log('\nfleetkey / Mosquitto:');
  for (const [k, r] of Object.entries(ratios)) console.log(`  ${k.padEnd(24)} ${r.value.toFixed(k === 'revokeP99Ms' ? 1 : 3).padStart(8)}  target ${r.target}  ${r.met ? 'met' : 'NOT met'}`);
  const errorsTotal = Object.values(res.connections).reduce((a, c) => a + c.errors, 0) + Object.values(res.publish).reduce((a, p) => a + p.errors, 0) + res.revoke.errors;
  if (errorsTotal > 0) exitCode = 1;

  const result = {
    benchmark: 'mqtt', date: new Date().toISOString(), node: process.version, openssl: process.versions.openssl, mosquitto: mosq.version,
    cores, cpuModel: cpus()[0]?.model, loadAverage: { start: loadAtStart, end: loadavg() },
    settings: { connections: CONNECTIONS, connectionRounds: ROUNDS, connectionConcurrency: CONN_C, publishDevices: PUB_DEVICES, publishWindow: PUB_WINDOW, publishSeconds: SECONDS, idleConnections: IDLE, idleBudgetSeconds: IDLE_BUDGET_S, revokes: REVOKES, deviceKeys: 'P-256 via the hub EST', fleetkeyRate: 'FLEETKEY_MQTT_RATE=100000, FLEETKEY_MQTT_RATE_BURST=1000000', mosquittoConfig: 'persistence false, log_dest none, acl pattern devices/%u/#, require_certificate, use_identity_as_username' },
    ...res, ratios, errorsTotal,
  };
  const out = process.env.BENCH_OUT ?? join(root, 'bench/results', `mqtt-${new Date().toISOString().slice(0, 10)}.json`);
  if (out !== '-') { mkdirSync(dirname(out), { recursive: true }); writeFileSync(out, JSON.stringify(result, null, 2) + '\n'); console.log(`wrote ${out}`); }
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  await mosq?.stop();
  await hubProc.stop();
  rmSync(work, { recursive: true, force: true });
}
process.exit(exitCode);
