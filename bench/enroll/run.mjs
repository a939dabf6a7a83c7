#!/usr/bin/env node
// EST simpleenroll throughput: a real hub in its own process (hub-server.mjs), HTTPS keep-alive,
// pre-generated CSRs (one fresh key per enrollment), every certificate durably recorded
// (SQLite WAL, synchronous=FULL, group commit) before its response.
//
// For each device key type (P-256, P-384, P-521, Ed25519) and concurrency (1, 16, 64): warm-up,
// then a timed phase. Prints enrollments/s, latency percentiles, hub CPU-µs per enrollment and the
// ratio to the node:crypto ceiling measured in this run: 1 / (1/sign + 1/verify), where sign is
// the device CA's key type (P-256 by default: every device key type is signed by that CA) and
// verify is the device key type (the CSR's proof of possession), each timed on one core,
// synchronously, with pre-imported keys.
//
// Usage:  npm run build && npm run bench:enroll
// Env:    BENCH_SECONDS (8) per timed phase, BENCH_WARMUP_SECONDS (1.5), BENCH_CONCURRENCY (1,16,64),
//         BENCH_KEYS (p256,p384,p521,ed25519), BENCH_OUT (bench/results/enroll-<date>.json; '-' = none),
//         BENCH_CPU_PROF (folder: run the hub child with --cpu-prof into it), BENCH_MAX_CSRS (60000),
//         BENCH_HUB_NODE_OPTIONS (extra node flags for the hub child, e.g. --perf-basic-prof for perf),
//         BENCH_SYNC_PREPARE=1 (A/B: verify CSRs on the event loop, the route before prepareAsync).
import { X509Certificate } from 'node:crypto';
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeCertsOnly } from '../../packages/protocol/dist/src/index.js';
import { HASH, LABEL, makeCsrs, measureCeilings } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const num = (v, d) => (v === undefined || v === '' ? d : Number(v));
const SECONDS = num(process.env.BENCH_SECONDS, 8);
const WARMUP = num(process.env.BENCH_WARMUP_SECONDS, 1.5);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,16,64').split(',').map(Number);
const KEYS = (process.env.BENCH_KEYS ?? 'p256,p384,p521,ed25519').split(',');
const MAX_CSRS = num(process.env.BENCH_MAX_CSRS, 60_000);
const GEN_BUDGET_S = Math.max(6, SECONDS); // CSR generation per phase is bounded in time as well
const REQUEST_TIMEOUT_MS = 10_000;
const SAMPLE_EVERY = 97; // responses fully checked per phase: 1 in 97, plus the first
const TARGET = 1500;

if (!(SECONDS > 0 && SECONDS <= 120) || !(WARMUP >= 0 && WARMUP <= 30)) throw new Error('BENCH_SECONDS in (0,120], BENCH_WARMUP_SECONDS in [0,30]');
for (const k of KEYS) if (!(k in HASH)) throw new Error(`unknown key type ${k}`);
for (const c of CONCURRENCY) if (!(Number.isInteger(c) && c >= 1 && c <= 1024)) throw new Error(`bad concurrency ${c}`);

// ---------------------------------------------------------------- hub child process

function startHubProcess() {
  const execArgv = ['--max-semi-space-size=64', ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', resolve(process.env.BENCH_CPU_PROF)] : [])]; // as the launcher (ADR 0033)
  if (process.env.BENCH_HUB_NODE_OPTIONS) execArgv.push(...process.env.BENCH_HUB_NODE_OPTIONS.split(' ').filter(Boolean)); // e.g. --perf-basic-prof
  const child = fork(join(here, 'hub-server.mjs'), [], {
    execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, FLEETKEY_CLAIM_TOKEN_MAX_USES: '1000000', FLEETKEY_LOG_LEVEL: 'warn' },
  });
  const waiters = new Map();
  child.on('message', (msg) => {
    if (msg.type === 'error') {
      console.error(`hub child: ${msg.message}`);
      for (const w of waiters.values()) w.reject(new Error(msg.message));
      waiters.clear();
      return;
    }
    const w = waiters.get(msg.type);
    if (w) { waiters.delete(msg.type); w.resolve(msg); }
  });
  child.on('exit', (code) => {
    for (const w of waiters.values()) w.reject(new Error(`hub child exited (${code})`));
    waiters.clear();
  });
  const expect = (type, timeoutMs = 30_000) => new Promise((res, rej) => {
    const timer = setTimeout(() => { waiters.delete(type); rej(new Error(`hub child: no '${type}' in ${timeoutMs} ms`)); }, timeoutMs);
    waiters.set(type, { resolve: (m) => { clearTimeout(timer); res(m); }, reject: (e) => { clearTimeout(timer); rej(e); } });
  });
  const ask = (msg, type = msg.type) => { const p = expect(type); child.send(msg); return p; };
  const cpu = async () => { const m = await ask({ type: 'cpu' }); return { us: m.user + m.system, idle: m.eluIdle, active: m.eluActive, mainUs: m.mainUs }; };
  const stop = () => new Promise((res) => {
    if (child.exitCode !== null) return res();
    const timer = setTimeout(() => { child.kill('SIGKILL'); res(); }, 15_000);
    child.once('exit', () => { clearTimeout(timer); res(); });
    child.send({ type: 'stop' });
  });
  return { child, ready: expect('ready', 60_000), ask, cpu, stop };
}

// ---------------------------------------------------------------- load generator

function post(url, agent, headers, body) {
  return new Promise((resolveReq) => {
    const t0 = performance.now();
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length }, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolveReq({ status: res.statusCode, text: Buffer.concat(chunks).toString('latin1'), ms: performance.now() - t0 }));
      res.on('error', (e) => resolveReq({ status: 0, text: String(e), ms: performance.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolveReq({ status: 0, text: String(e), ms: performance.now() - t0 }));
    req.end(body);
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function checkSample(sample, caCerts) {
  let bad = 0;
  for (const { text, spki } of sample) {
    try {
      const certs = decodeCertsOnly(Buffer.from(text.replace(/\s+/g, ''), 'base64'));
      if (certs.length !== 1) throw new Error('expected one certificate');
      const leaf = new X509Certificate(certs[0]);
      if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(spki)) throw new Error('wrong key');
      if (!caCerts.some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey))) throw new Error('not signed by the device CA');
    } catch {
      bad++;
    }
  }
  return bad;
}

async function runPhase({ url, rootCertPem, hubProc, token, type, concurrency, pool, caCerts }) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, ca: rootCertPem, checkServerIdentity: () => undefined });
  const headers = { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from(`bench:${token}`).toString('base64')}` };
  const target = `${url}/.well-known/est/simpleenroll`;
  let next = 0;
  const errors = { count: 0, statuses: {} };
  const noteError = (r) => { errors.count++; const k = String(r.status); errors.statuses[k] = (errors.statuses[k] ?? 0) + 1; if (errors.count <= 3) console.error(`  error ${r.status}: ${r.text.slice(0, 200)}`); };

  // Warm-up: connections, JIT, SQLite cache. Not counted.
  let warmOk = 0;
  const warmEnd = performance.now() + WARMUP * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < warmEnd && next < pool.length) {
      const r = await post(target, agent, headers, pool[next++].body);
      if (r.status === 200) warmOk++; else noteError(r);
    }
  }));
  const warmErrors = errors.count;

  const latencies = new Float64Array(pool.length);
  let done = 0;
  const sample = [];
  const hubCpu0 = await hubProc.cpu();
  const genCpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end && next < pool.length) {
      const csr = pool[next++];
      const r = await post(target, agent, headers, csr.body);
      if (r.status !== 200) { noteError(r); continue; }
      if (done % SAMPLE_EVERY === 0) sample.push({ text: r.text, spki: csr.spki });
      latencies[done++] = r.ms;
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const genCpu = process.cpuUsage(genCpu0);
  const hubCpu1 = await hubProc.cpu();
  const hubCpuUs = hubCpu1.us - hubCpu0.us;
  const eluActive = hubCpu1.active - hubCpu0.active;
  const hubLoopUtilization = eluActive / (eluActive + hubCpu1.idle - hubCpu0.idle);
  const hubMainCpuUs = hubCpu1.mainUs - hubCpu0.mainUs;
  agent.destroy();
  const sorted = latencies.subarray(0, done).sort();
  const badSamples = checkSample(sample, caCerts);
  return {
    keyType: type, concurrency, enrollments: done, seconds: elapsed, enrollmentsPerS: done / elapsed,
    latencyMs: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN },
    errors: errors.count, errorStatuses: errors.statuses, warmupEnrollments: warmOk, warmupErrors: warmErrors,
    csrsExhausted: next >= pool.length && elapsed < SECONDS - 0.05,
    hubCpuUsPerEnrollment: hubCpuUs / Math.max(done, 1), hubCpuCores: hubCpuUs / 1e6 / elapsed, hubLoopUtilization, hubLoopActiveUsPerEnrollment: (eluActive * 1000) / Math.max(done, 1),
    hubMainThreadCpuUsPerEnrollment: hubMainCpuUs / Math.max(done, 1),
    loadgenCpuUsPerEnrollment: (genCpu.user + genCpu.system) / Math.max(done, 1),
    sampledResponses: sample.length, badSamples,
  };
}

// ---------------------------------------------------------------- main

const cores = availableParallelism();
const date = new Date().toISOString().slice(0, 10);
const loadAtStart = loadavg(); // other processes on the machine skew every figure: recorded with the result
console.log(`fleetkey bench:enroll — node ${process.version}, OpenSSL ${process.versions.openssl}, ${cores} cores (${cpus()[0]?.model ?? '?'})`);
console.log(`${SECONDS}s per phase after ${WARMUP}s warm-up; concurrency ${CONCURRENCY.join('/')}; HTTPS keep-alive; SQLite synchronous=FULL`);

const hubProc = startHubProcess();
let exitCode = 0;
try {
  const ready = await hubProc.ready;
  const caAlg = ready.deviceCaAlgorithm;
  console.log(`hub pid ${ready.pid} at ${ready.url}, device CA ${LABEL[caAlg]} (signs every device key type)`);

  // Device CA certificate(s) for response checks.
  const caRes = await new Promise((res, rej) => {
    const req = request(`${ready.url}/.well-known/est/cacerts`, { ca: ready.rootCertPem, checkServerIdentity: () => undefined, agent: false, timeout: REQUEST_TIMEOUT_MS }, (r) => {
      const chunks = []; r.on('data', (c) => chunks.push(c)); r.on('end', () => res(Buffer.concat(chunks).toString('latin1')));
    });
    req.on('timeout', () => req.destroy(new Error('timeout'))); req.on('error', rej); req.end();
  });
  const caCerts = decodeCertsOnly(Buffer.from(caRes.replace(/\s+/g, ''), 'base64')).map((d) => new X509Certificate(d));

  // Crypto ceiling, same run, while the hub is idle.
  const { crypto, ceilings } = measureCeilings(caAlg, KEYS, cores);
  console.log('\ncrypto ceiling (node:crypto, one core, sync, pre-imported keys; 1/(1/sign_CA + 1/verify_device)):');
  for (const t of KEYS) {
    const c = ceilings[t];
    console.log(`  ${LABEL[t].padEnd(8)} sign(${LABEL[caAlg]}) ${c.signPerS.toFixed(0).padStart(6)}/s  verify(${LABEL[t]}) ${c.verifyPerS.toFixed(0).padStart(6)}/s  ceiling ${c.perCore.toFixed(0).padStart(6)}/s per core`);
  }

  const durable0 = (await hubProc.ask({ type: 'count' })).audit;
  const phases = [];
  let okResponses = 0;
  for (const type of KEYS) {
    const { tokens: [token] } = await hubProc.ask({ type: 'tokens', count: 1, maxUses: 1_000_000 });
    let prevRate;
    for (const concurrency of CONCURRENCY) {
      const cap = Math.min(2 * ceilings[type].machine, 6000);
      const guess = prevRate === undefined ? cap : Math.min(cap, Math.max(prevRate * 4, 1500));
      const n = Math.min(MAX_CSRS, Math.ceil(guess * (SECONDS + WARMUP) * 1.2) + concurrency * 2);
      const g0 = performance.now();
      const pool = (await makeCsrs(type, n, GEN_BUDGET_S)).map((c) => ({ body: Buffer.from(c.der.toString('base64'), 'latin1'), spki: c.spki }));
      const genS = (performance.now() - g0) / 1000;
      const r = await runPhase({ url: ready.url, rootCertPem: ready.rootCertPem, hubProc, token, type, concurrency, pool, caCerts });
      r.csrsGenerated = pool.length;
      r.csrGenerationSeconds = genS;
      r.ceilingPerCore = ceilings[type].perCore;
      r.ratioToCeiling = r.enrollmentsPerS / ceilings[type].perCore;
      r.ratioToMachineCeiling = r.enrollmentsPerS / ceilings[type].machine;
      // What the measured CPU costs allow on this machine when nothing else runs: the event loop
      // is one thread; hub (all threads) and load generator share the cores.
      r.cpuBoundPerS = Math.min(1e6 / r.hubMainThreadCpuUsPerEnrollment, (cores * 1e6) / (r.hubCpuUsPerEnrollment + r.loadgenCpuUsPerEnrollment));
      prevRate = r.enrollmentsPerS;
      okResponses += r.enrollments + r.warmupEnrollments;
      phases.push(r);
      console.log(`  ${LABEL[type].padEnd(8)} c=${String(concurrency).padEnd(3)} ${r.enrollmentsPerS.toFixed(0).padStart(6)} enroll/s  p50 ${r.latencyMs.p50.toFixed(2)} ms  p99 ${r.latencyMs.p99.toFixed(2)} ms  ` +
        `hub ${r.hubCpuUsPerEnrollment.toFixed(0)} µs/enroll (main ${r.hubMainThreadCpuUsPerEnrollment.toFixed(0)}; ${r.hubCpuCores.toFixed(2)} cores, loop ${(100 * r.hubLoopUtilization).toFixed(0)}% busy)  gen ${r.loadgenCpuUsPerEnrollment.toFixed(0)} µs  cpu-bound ${r.cpuBoundPerS.toFixed(0)}/s  ratio ${r.ratioToCeiling.toFixed(3)}  errors ${r.errors}` +
        (r.csrsExhausted ? `  [CSR pool of ${pool.length} used up after ${r.seconds.toFixed(1)} s]` : ''));
    }
  }
  // Minus the one claim_token.create audit event per key type.
  const durable = (await hubProc.ask({ type: "count" })).audit - durable0 - KEYS.length;

  const head = phases.filter((p) => p.keyType === 'p256');
  const best = head.reduce((a, p) => (p.enrollmentsPerS > (a?.enrollmentsPerS ?? -1) ? p : a), undefined);
  const errorsTotal = phases.reduce((s, p) => s + p.errors + p.warmupErrors + p.badSamples, 0);

  console.log('\n| key type | concurrency | enrollments/s | p50 ms | p99 ms | hub CPU µs/enroll | hub cores | ceiling/s (1 core) | ratio | errors |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const p of phases) {
    console.log(`| ${LABEL[p.keyType]} | ${p.concurrency} | ${p.enrollmentsPerS.toFixed(0)} | ${p.latencyMs.p50.toFixed(2)} | ${p.latencyMs.p99.toFixed(2)} | ` +
      `${p.hubCpuUsPerEnrollment.toFixed(0)} | ${p.hubCpuCores.toFixed(2)} | ${p.ceilingPerCore.toFixed(0)} | ${p.ratioToCeiling.toFixed(3)} | ${p.errors} |`);
  }
  console.log(`\ndurably recorded: ${durable} certificate audit units for ${okResponses} 200 responses (${durable === okResponses ? 'match' : 'MISMATCH'})`);
  if (best) console.log(`P-256 best: ${best.enrollmentsPerS.toFixed(0)}/s at c=${best.concurrency} — target ${TARGET}/s ${best.enrollmentsPerS >= TARGET ? 'met' : 'NOT met'}; ratio to 1-core ceiling ${best.ratioToCeiling.toFixed(3)}`);
  if (errorsTotal > 0 || durable !== okResponses) exitCode = 1;

  const result = {
    benchmark: 'enroll', date: new Date().toISOString(), node: process.version, openssl: process.versions.openssl,
    cores, cpuModel: cpus()[0]?.model, platform: `${process.platform}-${process.arch}`, loadAverage: { start: loadAtStart, end: loadavg() },
    settings: { secondsPerPhase: SECONDS, warmupSeconds: WARMUP, concurrency: CONCURRENCY, keyTypes: KEYS, transport: 'HTTPS keep-alive (node:https Agent, maxSockets = concurrency)', storage: 'SQLite WAL synchronous=FULL, group commit', hubProcess: 'separate node process beside the load generator', cpuProfile: Boolean(process.env.BENCH_CPU_PROF), syncPrepare: process.env.BENCH_SYNC_PREPARE === '1' },
    deviceCaAlgorithm: caAlg,
    ceilingDefinition: '1 / (1/sign + 1/verify): sign with the device CA key type (P-256 signs every device key type), verify with the device key type; node:crypto, one core, synchronous, pre-imported KeyObjects, 450-byte message',
    crypto, ceilings, phases,
    durablyRecorded: durable, okResponses, errorsTotal,
    target: { keyType: 'p256', enrollmentsPerS: TARGET, best: best?.enrollmentsPerS, met: (best?.enrollmentsPerS ?? 0) >= TARGET },
  };
  const out = process.env.BENCH_OUT ?? join(root, 'bench/results', `enroll-${date}.json`);
  if (out !== '-') {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    console.log(`wrote ${out}`);
  }
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  await hubProc.stop();
}
process.exit(exitCode);
