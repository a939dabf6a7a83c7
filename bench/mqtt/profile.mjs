#!/usr/bin/env node
// CPU profile of the hub under one bench:mqtt phase (ADR 0023 work): forks the hub with
// `--cpu-prof`, enrolls a few devices, runs the connection churn or the QoS 1 publish load with
// the same client harness as run.mjs, stops the hub (the profile is written at exit) and prints
// self time grouped by package and the top functions, per operation.
//
// Invariants: 127.0.0.1 only; bounded counts and time; only our hub child is stopped.
// Usage: node bench/mqtt/profile.mjs publish|connect [dir]   (PROFILE_SECONDS=8, PROFILE_CONNECTIONS=1500)
//        PROFILE_PERF=1: instead of --cpu-prof, `perf record -F 999 -g` of the hub process during the
//        measured run (hub started with --perf-basic-prof-only-functions); writes <dir>/perf.data.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeSession, openSession, publishLoop, secureContextFor } from './client.mjs';
import { enrollDevices, procCpuUs, setAgent, startHubProcess } from './peers.mjs';

const phase = process.argv[2] ?? 'publish';
const dir = process.argv[3] ?? mkdtempSync(join(tmpdir(), 'fleetkey-prof-'));
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.PROFILE_CONNECTIONS ?? 1500);

async function publish(port, devices) {
  const sessions = await Promise.all(devices.map((d) => openSession({ port, secureContext: d.ctx, clientId: d.deviceId })));
  const endAt = performance.now() + SECONDS * 1000;
  const r = await Promise.all(sessions.map((s, i) => publishLoop(s, { topic: `devices/${devices[i].deviceId}/telemetry`, window: 100, endAt })));
  await Promise.all(sessions.map((s) => closeSession(s)));
  return r.reduce((a, x) => a + x.acked, 0);
}

async function churn(port, devices) {
  let next = 0;
  await Promise.all(devices.map(async (d) => {
    while (next++ < CONNECTIONS) await closeSession(await openSession({ port, secureContext: d.ctx, clientId: d.deviceId }));
  }));
  return CONNECTIONS;
}

/** Self time (µs) by group and by function from a .cpuprofile. */
function summarise(file, ops) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const groups = new Map(), fns = new Map();
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? (url.includes('/packages/') ? `fleetkey ${/packages\/(\w+)/.exec(url)[1]}` : url.startsWith('node:') ? 'node core' : functionName.startsWith('(') ? functionName : 'native');
    add(groups, pkg, us);
    add(fns, `${functionName || '(anonymous)'} ${url.replace(/.*\//, '')}:${lineNumber + 1}`, us);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const print = (title, m, n) => {
    console.log(`\n${title} (µs per op, % of samples)`);
    for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`  ${(us / ops).toFixed(2).padStart(8)}  ${((100 * us) / total).toFixed(1).padStart(5)} %  ${k}`);
  };
  console.log(`profile ${file}: ${(total / 1e6).toFixed(2)} s sampled, ${ops} ops, ${(total / ops).toFixed(1)} µs/op sampled`);
  print('by package', groups, 20);
  print('top functions (self)', fns, Number(process.env.PROFILE_TOP ?? 40));
}

const PERF = process.env.PROFILE_PERF === '1';
const flags = PERF ? ['--perf-basic-prof-only-functions'] : ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=200'];
const hub = startHubProcess({ FLEETKEY_MQTT_RATE: '100000', FLEETKEY_MQTT_RATE_BURST: '1000000' }, flags);

/** perf record of the hub (all its threads) until the returned stop() (SIGINT, by pid). */
function perfRecord(pid) {
  const p = spawn('perf', ['record', '-F', '999', '-g', '-e', 'cpu-clock', '-p', String(pid), '-o', join(dir, 'perf.data')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((r) => p.once('exit', r));
  return async () => { p.kill('SIGINT'); await exited; };
}
try {
  const h = await hub.ready;
  setAgent(new Agent({ keepAlive: true, maxSockets: 32 }));
  const devices = await enrollDevices({ url: h.url, rootCertPem: h.rootCertPem, claimToken: h.claimToken, n: phase === 'publish' ? 20 : 32 });
  for (const d of devices) d.ctx = secureContextFor(d, h.rootCertPem);
  const run = phase === 'publish' ? () => publish(h.mqttPort, devices) : () => churn(h.mqttPort, devices);
  await run(); // warm-up (JIT); profiled too, so ops below count both runs
  const stopPerf = PERF ? perfRecord(h.pid) : undefined;
  const c0 = procCpuUs(h.pid), t0 = performance.now();
  const ops = await run();
  const cpu = procCpuUs(h.pid) - c0, s = (performance.now() - t0) / 1000;
  await stopPerf?.();
  console.log(`${phase}: ${ops} ops in ${s.toFixed(1)} s = ${(ops / s).toFixed(0)}/s, hub CPU ${(cpu / ops).toFixed(1)} µs/op (profiler on)`);
  await hub.stop();
  if (PERF) process.exit(0); // perf report -i <dir>/perf.data
  const file = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f))[0];
  if (file === undefined) throw new Error('no profile written');
  summarise(file, ops * 2);
} finally {
  await hub.stop();
}
