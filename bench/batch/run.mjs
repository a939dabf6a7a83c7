#!/usr/bin/env node
// Batch pre-provisioning throughput (issue 6, ADR 0014): a real hub in its own process
// (hub-server.mjs), the owner API over HTTPS, every identity durably recorded (device +
// certificate + item mark + progress in chunk units), bundle included.
//
// For each mode (hub-keys: the hub makes the P-256 keys; device-keys: N CSRs uploaded, made
// before the clock starts): POST /api/v1/batches {count N} → poll GET /api/v1/batches/{id} until
// done → GET the bundle (.tar.gz), whose folders are counted here. Prints identities/s over the
// whole (create → bundle in hand), the job and bundle phases, hub CPU-µs per identity, and the
// ratio to the node:crypto ceiling measured in this run on this machine (× cores):
//   device-keys: 1 / (1/sign + 1/verify)   (CA signature + CSR proof of possession)
//   hub-keys:    1 / (1/sign + 1/keygen)   (CA signature + P-256 key generation)
// each timed on one core, synchronously (bench/enroll/common.mjs).
//
// Usage:  npm run build && npm run bench:batch
// Env:    BENCH_COUNT (10000), BENCH_MODES (hub-keys,device-keys), BENCH_OUT (bench/results/
//         batch-<date>.json; '-' = none), BENCH_CPU_PROF (folder: hub child runs with --cpu-prof).
import { generateKeyPairSync } from 'node:crypto';
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { toPem } from '../../packages/protocol/dist/src/index.js';
import { makeCsrs, measureCeilings } from '../enroll/common.mjs';
import { api } from '../common/hub-child.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const COUNT = Number(process.env.BENCH_COUNT ?? 10_000);
const MODES = (process.env.BENCH_MODES ?? 'hub-keys,device-keys').split(',');
const TARGET = 1000;
const POLL_MS = 100;
const JOB_TIMEOUT_MS = 600_000;

if (!(Number.isInteger(COUNT) && COUNT >= 1 && COUNT <= 100_000)) throw new Error('BENCH_COUNT in [1, 100000]');
for (const m of MODES) if (m !== 'hub-keys' && m !== 'device-keys') throw new Error(`unknown mode ${m}`);

function startHubProcess() {
  const execArgv = ['--max-semi-space-size=64', ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', resolve(process.env.BENCH_CPU_PROF)] : [])]; // as the launcher (ADR 0033)
  const child = fork(join(here, 'hub-server.mjs'), [], {
    execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, FLEETKEY_BATCH_MAX_COUNT: String(Math.max(COUNT, 1)), FLEETKEY_LOG_LEVEL: 'warn' },
  });
  const waiters = new Map();
  const fail = (e) => { for (const w of waiters.values()) w.reject(e); waiters.clear(); };
  child.on('message', (msg) => {
    if (msg.type === 'error') return fail(new Error(`hub child: ${msg.message}`));
    const w = waiters.get(msg.type);
    if (w) { waiters.delete(msg.type); w.resolve(msg); }
  });
  child.on('exit', (code) => fail(new Error(`hub child exited (${code})`)));
  const expect = (type, timeoutMs = 60_000) => new Promise((res, rej) => {
    const timer = setTimeout(() => { waiters.delete(type); rej(new Error(`hub child: no '${type}' in ${timeoutMs} ms`)); }, timeoutMs);
    waiters.set(type, { resolve: (m) => { clearTimeout(timer); res(m); }, reject: (e) => { clearTimeout(timer); rej(e); } });
  });
  const cpu = async () => { const p = expect('cpu'); child.send({ type: 'cpu' }); const m = await p; return m.user + m.system; };
  const stop = () => new Promise((res) => {
    if (child.exitCode !== null) return res();
    const timer = setTimeout(() => { child.kill('SIGKILL'); res(); }, 20_000); // only the child we forked
    child.once('exit', () => { clearTimeout(timer); res(); });
    child.send({ type: 'stop' });
  });
  return { ready: expect('ready'), cpu, stop };
}

/** Key generations per second on this thread (P-256), bounded in time. */
function keygenRate(seconds = 1.5) {
  for (let i = 0; i < 50; i++) generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < seconds * 1000) {
    for (let i = 0; i < 20; i++) generateKeyPairSync('ec', { namedCurve: 'P-256' });
    n += 20;
  }
  return n / ((performance.now() - start) / 1000);
}

/** Device folders in a ustar archive (IEEE 1003.1): entries named <folder>/cert.pem and /device.json. */
function countFolders(tarGz) {
  const tar = gunzipSync(tarGz);
  const certs = new Set();
  const infos = new Set();
  for (let off = 0; off + 512 <= tar.length;) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a, l) => h.subarray(a, a + l).toString('ascii').replace(/\0.*$/s, '');
    const name = [str(345, 155), str(0, 100)].filter(Boolean).join('/');
    const size = parseInt(str(124, 12), 8) || 0;
    if (name.endsWith('/cert.pem')) certs.add(tar.subarray(off + 512, off + 512 + size).toString());
    if (name.endsWith('/device.json')) infos.add(name);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return { certificates: certs.size, folders: infos.size };
}

async function waitDone(hub, id) {
  const deadline = Date.now() + JOB_TIMEOUT_MS;
  for (;;) {
    const r = await api(hub.url, hub.rootCertPem, 'GET', `/api/v1/batches/${id}`, undefined, hub.token);
    const b = JSON.parse(r.text);
    if (r.status !== 200) throw new Error(`status ${r.status} ${r.text}`);
    if (b.status !== 'running') return b;
    if (Date.now() > deadline) throw new Error(`batch ${id} still running: ${r.text}`);
    await new Promise((res) => setTimeout(res, POLL_MS));
  }
}

async function runMode(hub, cpu, mode) {
  const body = { count: COUNT, keyAlg: 'p256', mode, label: `bench ${mode}` };
  if (mode === 'device-keys') body.csrsPem = (await makeCsrs('p256', COUNT, 120)).map((c) => toPem('CERTIFICATE REQUEST', c.der)).join('');
  const cpu0 = await cpu();
  const t0 = performance.now();
  const created = await api(hub.url, hub.rootCertPem, 'POST', '/api/v1/batches', body, hub.token);
  if (created.status !== 202) throw new Error(`create: ${created.status} ${created.text.slice(0, 300)}`);
  const t1 = performance.now();
  const done = await waitDone(hub, JSON.parse(created.text).id);
  const t2 = performance.now();
  const bundle = await api(hub.url, hub.rootCertPem, 'GET', `/api/v1/batches/${done.id}/bundle`, undefined, hub.token);
  const t3 = performance.now();
  const cpuUs = (await cpu()) - cpu0;
  if (bundle.status !== 200) throw new Error(`bundle: ${bundle.status}`);
  const counted = countFolders(bundle.bytes);
  if (done.status !== 'done' || done.done !== COUNT || counted.folders !== COUNT || counted.certificates !== COUNT) {
    throw new Error(`incomplete: ${JSON.stringify({ status: done.status, done: done.done, ...counted })}`);
  }
  const s = (ms) => ms / 1000;
  return {
    mode, count: COUNT, createS: s(t1 - t0), jobS: s(t2 - t1), bundleS: s(t3 - t2), totalS: s(t3 - t0),
    identitiesPerS: COUNT / s(t3 - t0), jobPerS: COUNT / s(t2 - t0), bundleBytes: bundle.bytes.length, ...counted,
    hubCpuUsPerIdentity: cpuUs / COUNT, uploadBytes: mode === 'device-keys' ? Buffer.byteLength(body.csrsPem) : 0,
  };
}

const cores = availableParallelism();
const loadBefore = loadavg();
console.log(`bench:batch — ${COUNT} P-256 identities per mode, ${cores} cores (${cpus()[0]?.model ?? '?'}), load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
const { crypto, ceilings } = measureCeilings('p256', ['p256'], cores);
const keygenPerS = keygenRate();
const ceiling = {
  'device-keys': { perCore: ceilings.p256.perCore, machine: ceilings.p256.machine },
  'hub-keys': { perCore: 1 / (1 / crypto.p256.signPerS + 1 / keygenPerS), machine: cores / (1 / crypto.p256.signPerS + 1 / keygenPerS) },
};
console.log(`crypto (one core): sign ${crypto.p256.signPerS.toFixed(0)}/s, verify ${crypto.p256.verifyPerS.toFixed(0)}/s, keygen ${keygenPerS.toFixed(0)}/s`);

const proc = startHubProcess();
const hub = await proc.ready;
const results = [];
try {
  for (const mode of MODES) {
    const r = await runMode(hub, proc.cpu, mode);
    r.ceilingMachinePerS = ceiling[mode].machine;
    r.ratioToCeiling = r.identitiesPerS / ceiling[mode].machine;
    results.push(r);
    console.log(`${mode.padEnd(11)} ${r.identitiesPerS.toFixed(0).padStart(6)} identities/s (target ≥ ${TARGET}: ${r.identitiesPerS >= TARGET ? 'met' : 'NOT met'}) — create ${r.createS.toFixed(2)} s, job ${r.jobS.toFixed(2)} s, bundle ${r.bundleS.toFixed(2)} s (${(r.bundleBytes / 1e6).toFixed(1)} MB, ${r.folders} folders); hub ${r.hubCpuUsPerIdentity.toFixed(0)} CPU-µs/identity; ceiling ${r.ceilingMachinePerS.toFixed(0)}/s (× ${cores}), ratio ${(r.ratioToCeiling * 100).toFixed(0)} %`);
  }
} finally {
  await proc.stop();
}
const loadAfter = loadavg();
console.log(`load after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`);
const out = process.env.BENCH_OUT ?? join(root, 'bench/results', `batch-${new Date().toISOString().slice(0, 10)}.json`);
if (out !== '-') {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, cores, cpu: cpus()[0]?.model, loadBefore, loadAfter, crypto: { ...crypto.p256, keygenPerS }, ceiling, target: TARGET, results }, null, 2) + '\n');
  console.log(`written ${out}`);
}
