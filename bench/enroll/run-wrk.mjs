#!/usr/bin/env node
// EST simpleenroll throughput with wrk as the load generator (bench/enroll/enroll.lua): a C client
// that costs far less CPU per request than the node:https generator of run.mjs, so the hub keeps
// more of this machine's cores. The hub is the same child process (hub-server.mjs, fork + IPC).
//
// Invariants:
//  * One fresh P-256/P-384/Ed25519 key per enrollment: a pool of distinct CSRs per wrk run, each
//    wrk thread owning a disjoint slice (enroll.lua); no CSR is sent twice.
//  * Durability: for every wrk run, the hub's audit units added (certificate issuances, after the hub
//    has drained) lie in [200 responses, 200 responses + requests wrk left unanswered at its stop].
//    Anything else, any non-200, socket error or overrun fails the run (exit code 1).
//  * wrk does NOT verify the hub's certificate (TLS still runs; benchmark only, 127.0.0.1).
//  * Everything is bounded: wrk runs -d seconds (+ timeout), the hub child is stopped at the end.
//
// Usage:  sh bench/enroll/install-deps.sh && npm run build && npm run bench:enroll:wrk
// Env:    BENCH_SECONDS (8), BENCH_WARMUP_SECONDS (1, integer, 0 = none), BENCH_CONCURRENCY (16,64),
//         BENCH_THREADS (2), BENCH_KEYS (p256; also p384, ed25519), BENCH_RATE_GUESS (3000/s: sizes
//         the CSR pools), BENCH_OUT (bench/results/enroll-wrk-<date>.json; '-' = none),
//         BENCH_HUB_NODE_OPTIONS (extra node flags for the hub child, e.g. --perf-basic-prof-only-functions).
import { fork, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LABEL, makeCsrs, measureCeilings } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const num = (v, d) => (v === undefined || v === '' ? d : Number(v));
const SECONDS = num(process.env.BENCH_SECONDS, 8);
const WARMUP = num(process.env.BENCH_WARMUP_SECONDS, 1);
const THREADS = num(process.env.BENCH_THREADS, 2);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '16,64').split(',').map(Number);
const KEYS = (process.env.BENCH_KEYS ?? 'p256').split(',');
const RATE_GUESS = num(process.env.BENCH_RATE_GUESS, 3000);
const TARGET = 1500;
const TIMEOUT_S = 10;
const CLK_TCK = 100; // Linux USER_HZ: /proc stat times are in 1/100 s

if (!(Number.isInteger(SECONDS) && SECONDS > 0 && SECONDS <= 120)) throw new Error('BENCH_SECONDS: integer in (0,120]');
if (!(Number.isInteger(WARMUP) && WARMUP >= 0 && WARMUP <= 30)) throw new Error('BENCH_WARMUP_SECONDS: integer in [0,30]');
for (const k of KEYS) if (!(k in LABEL)) throw new Error(`unknown key type ${k}`);
for (const c of CONCURRENCY) if (!(Number.isInteger(c) && c >= THREADS && c <= 1024)) throw new Error(`bad concurrency ${c}`);

const round = (x, d = 0) => (Number.isFinite(x) ? Number(x.toFixed(d)) : null);
const load = () => loadavg().map((x) => round(x, 2));

// ---------------------------------------------------------------- hub child (as run.mjs)

function startHubProcess() {
  const execArgv = ['--max-semi-space-size=64', ...process.execArgv]; // as the fleetkey launcher (ADR 0033)
  if (process.env.BENCH_HUB_NODE_OPTIONS) execArgv.push(...process.env.BENCH_HUB_NODE_OPTIONS.split(' ').filter(Boolean)); // e.g. --perf-basic-prof
  const child = fork(join(here, 'hub-server.mjs'), [], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, FLEETKEY_CLAIM_TOKEN_MAX_USES: '1000000', FLEETKEY_LOG_LEVEL: 'warn' },
  });
  const waiters = new Map();
  const failAll = (e) => { for (const w of waiters.values()) w.reject(e); waiters.clear(); };
  child.on('message', (msg) => {
    if (msg.type === 'error') { console.error(`hub child: ${msg.message}`); failAll(new Error(msg.message)); return; }
    const w = waiters.get(msg.type);
    if (w) { waiters.delete(msg.type); w.resolve(msg); }
  });
  child.on('exit', (code) => failAll(new Error(`hub child exited (${code})`)));
  const expect = (type, timeoutMs = 30_000) => new Promise((res, rej) => {
    const timer = setTimeout(() => { waiters.delete(type); rej(new Error(`hub child: no '${type}' in ${timeoutMs} ms`)); }, timeoutMs);
    waiters.set(type, { resolve: (m) => { clearTimeout(timer); res(m); }, reject: (e) => { clearTimeout(timer); rej(e); } });
  });
  const ask = (msg) => { const p = expect(msg.type); child.send(msg); return p; };
  const cpu = async () => { const m = await ask({ type: 'cpu' }); return { us: m.user + m.system, mainUs: m.mainUs, eluActive: m.eluActive, eluIdle: m.eluIdle }; };
  const count = async () => (await ask({ type: 'count' })).audit;
  const stop = () => new Promise((res) => {
    if (child.exitCode !== null) return res();
    const timer = setTimeout(() => { child.kill('SIGKILL'); res(); }, 15_000);
    child.once('exit', () => { clearTimeout(timer); res(); });
    child.send({ type: 'stop' });
  });
  return { ready: expect('ready', 60_000), ask, cpu, count, stop };
}

/** Audit count once the hub has finished the requests wrk left in flight: two equal reads 300 ms apart. */
async function settledCount(hub) {
  let prev = await hub.count();
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 300));
    const now = await hub.count();
    if (now === prev) return now;
    prev = now;
  }
  return prev;
}

// ---------------------------------------------------------------- wrk child

/**
 * Runs wrk under `sh`, which prints its own /proc stat after wrk exits: fields cutime/cstime then
 * hold wrk's whole CPU time (all threads, start-up included), exactly, in clock ticks.
 */
function runWrk({ url, seconds, connections, poolFile, poolCount, auths }) {
  const args = ['-t', String(THREADS), '-c', String(connections), '-d', `${seconds}s`, '--timeout', `${TIMEOUT_S}s`, '--latency', '-s', join(here, 'enroll.lua'), url];
  const script = 'wrk "$@"; rc=$?; printf "FLEETKEY_WRK_SH_STAT %s\\n" "$(cat /proc/$$/stat)"; exit $rc';
  const env = { ...process.env, FLEETKEY_WRK_CSRS: poolFile, FLEETKEY_WRK_CSR_COUNT: String(poolCount), FLEETKEY_WRK_THREADS: String(THREADS), FLEETKEY_WRK_CONNECTIONS: String(connections), FLEETKEY_WRK_AUTH: auths.join(',') };
  return new Promise((res, rej) => {
    const child = spawn('sh', ['-c', script, 'wrk', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + TIMEOUT_S + 30) * 1000);
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', (e) => { clearTimeout(killer); rej(e); });
    child.on('close', (code) => {
      clearTimeout(killer);
      const line = out.split('\n').find((l) => l.startsWith('FLEETKEY_WRK_RESULT '));
      const statLine = out.split('\n').find((l) => l.startsWith('FLEETKEY_WRK_SH_STAT '));
      if (code !== 0 || !line || !statLine) return rej(new Error(`wrk failed (exit ${code}): ${err.slice(0, 500)}${out.slice(0, 500)}`));
      const stat = statLine.slice(statLine.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
      const wrkCpuUs = ((Number(stat[13]) + Number(stat[14])) * 1e6) / CLK_TCK; // cutime + cstime (#16, #17)
      res({ ...JSON.parse(line.slice('FLEETKEY_WRK_RESULT '.length)), wrkCpuUs, stderr: err.trim() });
    });
  });
}

async function writePool(dir, name, type, n) {
  const t0 = performance.now();
  const pool = await makeCsrs(type, n);
  const file = join(dir, `${name}.b64`);
  writeFileSync(file, pool.map((c) => c.der.toString('base64')).join('\n') + '\n');
  return { file, count: pool.length, seconds: (performance.now() - t0) / 1000 };
}

/** One wrk run with its own CSR pool, and the durability check of that run. */
async function wrkRun(ctx, { type, connections, seconds, n, name }) {
  const pool = await writePool(ctx.dir, name, type, n);
  const audit0 = await settledCount(ctx.hub);
  const cpu0 = await ctx.hub.cpu();
  const w = await runWrk({ url: ctx.url, seconds, connections, poolFile: pool.file, poolCount: pool.count, auths: ctx.auths });
  const audit1 = await settledCount(ctx.hub);
  const cpu1 = await ctx.hub.cpu();
  rmSync(pool.file, { force: true });
  const recorded = audit1 - audit0;
  const unanswered = w.sent - w.responses;
  const socketErrors = Object.values(w.socketErrors).reduce((a, b) => a + b, 0);
  const durableOk = recorded >= w.ok && recorded <= w.ok + unanswered;
  return { w, pool, recorded, unanswered, socketErrors, durableOk, hubCpuUs: cpu1.us - cpu0.us, hubMainUs: cpu1.mainUs - cpu0.mainUs,
    hubElu: (cpu1.eluActive - cpu0.eluActive) / (cpu1.eluActive - cpu0.eluActive + cpu1.eluIdle - cpu0.eluIdle) };
}

function phaseResult(r, { type, connections, ceiling, cores, loadStart }) {
  const { w } = r;
  const seconds = w.durationUs / 1e6;
  const perS = w.ok / seconds;
  const hubUs = r.hubCpuUs / Math.max(r.recorded, 1);
  const mainUs = r.hubMainUs / Math.max(r.recorded, 1);
  const genUs = w.wrkCpuUs / Math.max(w.responses, 1);
  const errors = w.responses - w.ok + r.socketErrors + w.overrun;
  return {
    keyType: type, concurrency: connections, threads: THREADS, seconds, enrollments: w.ok, enrollmentsPerS: perS,
    latencyMs: { p50: w.latencyUs.p50 / 1000, p90: w.latencyUs.p90 / 1000, p99: w.latencyUs.p99 / 1000, max: w.latencyUs.max / 1000, mean: w.latencyUs.mean / 1000 },
    errors, statuses: w.statuses, socketErrors: w.socketErrors, overrun: w.overrun,
    csrsGenerated: r.pool.count, csrGenerationSeconds: r.pool.seconds, csrsExhausted: w.exhaustedThreads > 0,
    sent: w.sent, unanswered: r.unanswered, durablyRecorded: r.recorded, durableOk: r.durableOk,
    hubCpuUsPerEnrollment: hubUs, hubMainThreadCpuUsPerEnrollment: mainUs, hubCpuCores: r.hubCpuUs / 1e6 / seconds,
    hubEventLoopUtilisation: r.hubElu,
    loadgenCpuUsPerEnrollment: genUs, loadgenCpuCores: w.wrkCpuUs / 1e6 / seconds,
    cpuBoundPerS: Math.min(1e6 / mainUs, (cores * 1e6) / (hubUs + genUs)),
    ceilingPerCore: ceiling.perCore, ratioToCeiling: perS / ceiling.perCore, ratioToMachineCeiling: perS / ceiling.machine,
    loadAverage: { start: loadStart, end: load() },
  };
}

function printPhase(p) {
  console.log(`  ${LABEL[p.keyType].padEnd(8)} c=${String(p.concurrency).padEnd(3)} ${p.enrollmentsPerS.toFixed(0).padStart(5)} enroll/s  p50 ${p.latencyMs.p50.toFixed(2)} ms  p99 ${p.latencyMs.p99.toFixed(2)} ms  ` +
    `hub ${p.hubCpuUsPerEnrollment.toFixed(0)} µs (main ${p.hubMainThreadCpuUsPerEnrollment.toFixed(0)}, ${p.hubCpuCores.toFixed(2)} cores, loop busy ${(p.hubEventLoopUtilisation * 100).toFixed(0)} %)  wrk ${p.loadgenCpuUsPerEnrollment.toFixed(0)} µs (${p.loadgenCpuCores.toFixed(2)} cores)  ` +
    `cpu-bound ${p.cpuBoundPerS.toFixed(0)}/s  ratio ${p.ratioToCeiling.toFixed(3)}  errors ${p.errors}  durable ${p.durablyRecorded}/${p.enrollments}+≤${p.unanswered} ${p.durableOk ? 'ok' : 'MISMATCH'}  load ${p.loadAverage.start[0]}→${p.loadAverage.end[0]}` +
    (p.csrsExhausted ? `  [CSR pool of ${p.csrsGenerated} used up: rate is a lower bound]` : ''));
}

async function runPhases(ctx, ceilings, cores) {
  const phases = [];
  let failures = 0;
  for (const type of KEYS) {
    const { tokens } = await ctx.hub.ask({ type: 'tokens', count: THREADS, maxUses: 1_000_000 });
    ctx.auths = tokens.map((t) => `Basic ${Buffer.from(`bench:${t}`).toString('base64')}`);
    const guess = Math.min(RATE_GUESS, 2 * ceilings[type].machine);
    for (const connections of CONCURRENCY) {
      if (WARMUP > 0) {
        const wu = await wrkRun(ctx, { type, connections, seconds: WARMUP, n: Math.ceil(guess * WARMUP * 1.2), name: 'warmup' });
        if (!wu.durableOk || wu.w.responses !== wu.w.ok || wu.socketErrors) { failures++; console.error(`  warm-up failed: ${JSON.stringify(wu.w)}`); }
      }
      const loadStart = load();
      const r = await wrkRun(ctx, { type, connections, seconds: SECONDS, n: Math.ceil(guess * SECONDS * 1.2) + connections * 2, name: 'phase' });
      const p = phaseResult(r, { type, connections, ceiling: ceilings[type], cores, loadStart });
      if (p.errors > 0 || !p.durableOk) failures++;
      if (r.w.stderr) console.error(`  wrk stderr: ${r.w.stderr.slice(0, 300)}`);
      printPhase(p);
      phases.push(p);
    }
  }
  return { phases, failures };
}

function printTable(phases) {
  console.log('\n| key type | c | enrollments/s | p50 ms | p99 ms | hub CPU µs/enroll | of which event loop | wrk CPU µs/enroll | ceiling/s (1 core) | ratio | errors | load avg (1 min) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const p of phases) {
    console.log(`| ${LABEL[p.keyType]} | ${p.concurrency} | ${p.enrollmentsPerS.toFixed(0)} | ${p.latencyMs.p50.toFixed(2)} | ${p.latencyMs.p99.toFixed(2)} | ` +
      `${p.hubCpuUsPerEnrollment.toFixed(0)} | ${p.hubMainThreadCpuUsPerEnrollment.toFixed(0)} | ${p.loadgenCpuUsPerEnrollment.toFixed(0)} | ${p.ceilingPerCore.toFixed(0)} | ${p.ratioToCeiling.toFixed(3)} | ${p.errors} | ${p.loadAverage.start[0]}→${p.loadAverage.end[0]} |`);
  }
}

// ---------------------------------------------------------------- main

const cores = availableParallelism();
const date = new Date().toISOString().slice(0, 10);
const loadAtStart = load();
console.log(`fleetkey bench:enroll:wrk — node ${process.version}, OpenSSL ${process.versions.openssl}, ${cores} cores (${cpus()[0]?.model ?? '?'}), load average ${loadAtStart.join(' ')}`);
console.log(`wrk -t${THREADS} -c${CONCURRENCY.join('/')} -d${SECONDS}s --latency (after ${WARMUP}s warm-up); HTTPS keep-alive, wrk does NOT verify the hub certificate (benchmark only); SQLite synchronous=FULL`);

const hub = startHubProcess();
const dir = mkdtempSync(join(tmpdir(), 'fleetkey-wrk-'));
let exitCode = 0;
try {
  const ready = await hub.ready;
  console.log(`hub pid ${ready.pid} at ${ready.url}, device CA ${LABEL[ready.deviceCaAlgorithm]}`);
  const { crypto, ceilings } = measureCeilings(ready.deviceCaAlgorithm, KEYS, cores);
  for (const t of KEYS) console.log(`  crypto ceiling ${LABEL[t].padEnd(8)} ${ceilings[t].perCore.toFixed(0)}/s per core (sign ${ceilings[t].signPerS.toFixed(0)}/s, verify ${ceilings[t].verifyPerS.toFixed(0)}/s)`);
  const { phases, failures } = await runPhases({ hub, url: ready.url, dir }, ceilings, cores);
  printTable(phases);
  const best = phases.filter((p) => p.keyType === 'p256').reduce((a, p) => (p.enrollmentsPerS > (a?.enrollmentsPerS ?? -1) ? p : a), undefined);
  if (best) console.log(`\nP-256 best: ${best.enrollmentsPerS.toFixed(0)}/s at c=${best.concurrency} — target ${TARGET}/s ${best.enrollmentsPerS >= TARGET ? 'met' : 'NOT met'}; ratio to 1-core ceiling ${best.ratioToCeiling.toFixed(3)}`);
  console.log(`durability: ${phases.every((p) => p.durableOk) ? 'every phase ok' : 'MISMATCH'}; errors ${phases.reduce((s, p) => s + p.errors, 0)}; load average at end ${load().join(' ')}`);
  if (failures > 0) exitCode = 1;
  const result = {
    benchmark: 'enroll-wrk', date: new Date().toISOString(), node: process.version, openssl: process.versions.openssl,
    cores, cpuModel: cpus()[0]?.model, platform: `${process.platform}-${process.arch}`, loadAverage: { start: loadAtStart, end: load() },
    settings: { secondsPerPhase: SECONDS, warmupSeconds: WARMUP, threads: THREADS, concurrency: CONCURRENCY, keyTypes: KEYS, loadGenerator: 'wrk 4.1 (Debian), bench/enroll/enroll.lua', transport: 'HTTPS keep-alive; wrk does not verify the server certificate', storage: 'SQLite WAL synchronous=FULL, group commit', hubProcess: 'separate node process beside wrk' },
    latencyNote: "wrk's latency percentiles, including its correction for requests queued behind slow ones",
    deviceCaAlgorithm: ready.deviceCaAlgorithm, crypto, ceilings, phases,
    target: { keyType: 'p256', enrollmentsPerS: TARGET, best: best?.enrollmentsPerS, met: (best?.enrollmentsPerS ?? 0) >= TARGET },
  };
  const out = process.env.BENCH_OUT ?? join(root, 'bench/results', `enroll-wrk-${date}.json`);
  if (out !== '-') {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    console.log(`wrote ${out}`);
  }
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  await hub.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
