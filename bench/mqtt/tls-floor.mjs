#!/usr/bin/env node
// What Node 20's own TLS layer costs per mTLS connection, against Mosquitto in the same run: the
// floor under bench:mqtt's connection and idle-memory targets (issue 3), with no aedes and no
// fleetkey code at all.
//
// Two servers, the same certificates in fleetkey's PKI shape (made here with the openssl CLI: P-384
// root, P-256 device CA, P-256 leaves), same client harness:
//  * node-bare: a forked `node --expose-gc` child running a bare tls.Server with the options the
//    fleetkey broker uses (client certificate required and verified, SSL_OP_NO_TICKET, contexts
//    built once). Per connection it answers the MQTT CONNECT with a CONNACK (4 bytes) and keeps
//    the socket: the least an MQTT broker on node:tls can do.
//  * mosquitto 2.0.x with require_certificate + use_identity_as_username (as bench:mqtt).
// Phase 1: N_CONN connections (CONNECT → CONNACK → close), CONC at a time; the server's own CPU
// per connection (/proc/<pid>/stat) and the wall rate. Phase 2: N_IDLE idle sessions; the server's
// RSS delta ÷ N (the node child after GC). Ratios node-bare ÷ mosquitto are printed beside the
// bench:mqtt targets (connections/s ≥ 1.0×, memory ≤ 1.5×).
//
// Invariants: 127.0.0.1 and ephemeral ports only; bounded counts and a time budget per phase;
// only the children started here are stopped. Usage: node bench/mqtt/tls-floor.mjs
// Env: BENCH_PARTIAL=1 (instead: the bare server with a full vs a partial client chain, i.e. trust
// ending at the device CA via allowPartialTrustChain), BENCH_CONNECTIONS (1000), BENCH_CONN_CONCURRENCY (32), BENCH_IDLE (2000), BENCH_OUT
// (bench/results/mqtt-tls-floor-<date>.json; '-' = none).
import { execFile, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import tls from 'node:tls';
import { constants } from 'node:crypto';
import { connectPacket } from './client.mjs';
import { procCpuUs, procRssBytes, startMosquitto } from './peers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const int = (v, d, max) => { const n = v === undefined || v === '' ? d : Number(v); if (!(Number.isInteger(n) && n > 0 && n <= max)) throw new Error(`bad count ${v}`); return n; };
const N_CONN = int(process.env.BENCH_CONNECTIONS, 1000, 20_000);
const CONC = int(process.env.BENCH_CONN_CONCURRENCY, 32, 256);
const N_IDLE = int(process.env.BENCH_IDLE, 2000, 10_000);
const PHASE_BUDGET_MS = 120_000;
/** BENCH_SERVER_ENV='NAME=VALUE …': extra environment for the node server child only (e.g. GLIBC_TUNABLES). */
const SERVER_ENV = Object.fromEntries((process.env.BENCH_SERVER_ENV ?? '').split(/\s+/).filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
let sessionNo = 0; // client ids dev1-<n>

if (process.argv[2] === 'server') {
  // ---------------------------------------------------------------- the bare node server (child)
  const dir = process.argv[3];
  const r = (f) => readFileSync(join(dir, f));
  const sessions = new Set();
  const server = tls.createServer({
    key: r('server.key'), cert: r('chain.pem'), ca: r('ca.pem'), requestCert: true, rejectUnauthorized: true,
    minVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_TICKET,
  }, (socket) => {
    sessions.add(socket);
    socket.once('data', () => socket.write(CONNACK)); // the CONNECT: answer it, keep the socket
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sessions.delete(socket));
  });
  if (process.argv[4] === 'partial') {
    // Experiment: end the client chain at the device CA (Node 20.18+ allowPartialTrustChain), which
    // tls.Server's own options drop: replace the server's context through its internal _sharedCreds.
    server._sharedCreds = tls.createSecureContext({ key: r('server.key'), cert: r('chain.pem'), ca: r('deviceca.pem'),
      minVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_TICKET, allowPartialTrustChain: true });
  }
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', async (m) => {
    if (m === 'stop') { for (const s of sessions) s.destroy(); server.close(); process.exit(0); }
    for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((q) => setTimeout(q, 100)); }
    process.send({ rss: process.memoryUsage().rss });
  });
} else {
  await main();
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-tls-floor-'));
  try {
    await makeCerts(dir);
    const r = (f) => readFileSync(join(dir, f), 'utf8');
    const ctx = tls.createSecureContext({ key: r('client.key'), cert: r('client.pem'), ca: r('root.pem') });
    console.log(`fleetkey tls-floor — node ${process.version}, OpenSSL ${process.versions.openssl}, ${cpus().length} cores, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    const results = {};
    const order = process.env.BENCH_PARTIAL === '1' ? ['node-bare', 'node-partial', 'node-bare ', 'node-partial '] : ['mosquitto', 'node-bare', 'mosquitto ', 'node-bare '];
    for (const name of order) { // interleaved, twice
      const key = name.trim();
      const srv = key === 'mosquitto' ? await mosquitto(dir, r) : await nodeBare(dir, key === 'node-partial' ? 'partial' : 'full');
      try {
        const conn = await connections(srv, ctx);
        const idle = await idleMemory(srv, ctx);
        (results[key] ??= []).push({ ...conn, ...idle });
        console.log(`  ${key.padEnd(10)} ${conn.perSecond.toFixed(0).padStart(5)} conn/s, ${conn.cpuUsPerConnection.toFixed(0).padStart(5)} µs server CPU/conn (${conn.cores.toFixed(2)} cores); ` +
          `${idle.opened} idle sessions: ${(idle.rssBytesPerConnection / 1024).toFixed(1)} KiB RSS each`);
      } finally {
        await srv.stop();
      }
    }
    const best = (k, f, pick) => pick(...results[k].map(f));
    if (process.env.BENCH_PARTIAL === '1') {
      const cpu = (k) => best(k, (x) => x.cpuUsPerConnection, Math.min);
      console.log(`\npartial chain (trust ends at the device CA) ÷ full chain, server CPU per connection: ${(cpu('node-partial') / cpu('node-bare')).toFixed(2)}× (${cpu('node-partial').toFixed(0)} vs ${cpu('node-bare').toFixed(0)} µs)`);
      return;
    }
    const summary = {
      cpuPerConnection: { node: best('node-bare', (x) => x.cpuUsPerConnection, Math.min), mosquitto: best('mosquitto', (x) => x.cpuUsPerConnection, Math.min) },
      rate: { node: best('node-bare', (x) => x.perSecond, Math.max), mosquitto: best('mosquitto', (x) => x.perSecond, Math.max) },
      rss: { node: best('node-bare', (x) => x.rssBytesPerConnection, Math.min), mosquitto: best('mosquitto', (x) => x.rssBytesPerConnection, Math.min) },
    };
    const ratios = {
      connectionsPerSecond: summary.rate.node / summary.rate.mosquitto,
      cpuPerConnection: summary.cpuPerConnection.node / summary.cpuPerConnection.mosquitto,
      memoryPerIdleConnection: summary.rss.node / summary.rss.mosquitto,
    };
    console.log(`\nbest of two, bare node:tls ÷ mosquitto (whole broker):`);
    console.log(`  connections/s ${ratios.connectionsPerSecond.toFixed(2)}× (bench:mqtt target for fleetkey ≥ 1.0×); server CPU per connection ${ratios.cpuPerConnection.toFixed(2)}×`);
    console.log(`  RSS per idle connection ${ratios.memoryPerIdleConnection.toFixed(2)}× (${(summary.rss.node / 1024).toFixed(1)} vs ${(summary.rss.mosquitto / 1024).toFixed(1)} KiB; target for fleetkey ≤ 1.5× = ${(1.5 * summary.rss.mosquitto / 1024).toFixed(1)} KiB)`);
    const out = process.env.BENCH_OUT ?? join(resolve(here, '../results'), `mqtt-tls-floor-${new Date().toISOString().slice(0, 10)}.json`);
    if (out !== '-') {
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, JSON.stringify({ node: process.version, openssl: process.versions.openssl, cores: cpus().length, load: loadavg(), N_CONN, CONC, N_IDLE, results, summary, ratios }, null, 2) + '\n');
      console.log(`wrote ${out}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * fleetkey's PKI shape (ADR 0002/0015): a P-384 root, a P-256 device CA under it (pathlen 0), the
 * server's P-256 serverAuth leaf from the root, the device's P-256 clientAuth leaf from the
 * device CA. Servers trust device CA + root (OpenSSL needs the self-signed anchor) and send
 * leaf + root, exactly what the hub's broker and bench:mqtt's Mosquitto get.
 */
async function makeCerts(dir) {
  const sh = promisify(execFile);
  const key = (curve) => ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-nodes'];
  const p = (f) => join(dir, f);
  await sh('openssl', ['req', '-x509', ...key('P-384'), '-keyout', p('root.key'), '-out', p('root.pem'), '-subj', '/CN=floor root', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const issue = async (name, cn, curve, issuer, ext) => {
    writeFileSync(p(`${name}.ext`), ext);
    await sh('openssl', ['req', ...key(curve), '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${cn}`]);
    await sh('openssl', ['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${issuer}.pem`), '-CAkey', p(`${issuer}.key`), '-CAcreateserial', '-out', p(`${name}.pem`), '-days', '2', '-extfile', p(`${name}.ext`)]);
  };
  await issue('deviceca', 'floor device CA', 'P-256', 'root', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
  await issue('server', '127.0.0.1', 'P-256', 'root', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  await issue('client', 'dev1', 'P-256', 'deviceca', 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  writeFileSync(p('ca.pem'), readFileSync(p('deviceca.pem'), 'utf8') + readFileSync(p('root.pem'), 'utf8')); // what servers trust
  writeFileSync(p('chain.pem'), readFileSync(p('server.pem'), 'utf8') + readFileSync(p('root.pem'), 'utf8')); // what servers send
}

async function nodeBare(dir, variant = 'full') {
  const child = fork(fileURLToPath(import.meta.url), ['server', dir, variant], { execArgv: ['--expose-gc'], env: { ...process.env, ...SERVER_ENV }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = () => new Promise((q, j) => { child.once('message', q); child.once('exit', (c) => j(new Error(`server exited ${c}`))); });
  const { port } = await next();
  return {
    port, pid: child.pid,
    rss: async () => { child.send('m'); return (await next()).rss; },
    stop: () => new Promise((q) => { if (child.exitCode !== null) return q(); child.once('exit', q); child.send('stop'); setTimeout(() => child.kill('SIGKILL'), 5000).unref(); }),
  };
}

async function mosquitto(dir, r) {
  const m = await startMosquitto(mkdtempSync(join(dir, 'mq-')), { clientCaPem: r('ca.pem'), chainPem: r('chain.pem'), keyPem: r('server.key') });
  const settle = () => new Promise((q) => setTimeout(q, 300));
  return { ...m, rss: async () => { await settle(); return procRssBytes(m.pid); } };
}

/** One session: TLS handshake, CONNECT, wait for CONNACK. Resolves the socket. */
function session(port, ctx) {
  const clientId = `dev1-${++sessionNo}`; // unique: Mosquitto would take over a session of the same id
  return new Promise((res, rej) => {
    const s = tls.connect({ host: '127.0.0.1', port, secureContext: ctx, servername: undefined, checkServerIdentity: () => undefined });
    const timer = setTimeout(() => { s.destroy(); rej(new Error('session timeout')); }, 10_000);
    s.once('secureConnect', () => s.write(connectPacket(clientId)));
    s.once('data', (d) => { clearTimeout(timer); if (d[0] === 0x20 && d[3] === 0) res(s); else { s.destroy(); rej(new Error(`no CONNACK 0 (${d.subarray(0, 4).toString('hex')})`)); } });
    s.once('error', (e) => { clearTimeout(timer); rej(e); });
  });
}

async function connections(srv, ctx) {
  for (let i = 0; i < 32; i++) (await session(srv.port, ctx)).destroy(); // warm-up
  const cpu0 = procCpuUs(srv.pid);
  const t0 = performance.now();
  const deadline = t0 + PHASE_BUDGET_MS;
  let done = 0;
  let started = 0;
  await Promise.all(Array.from({ length: CONC }, async () => {
    while (started < N_CONN && performance.now() < deadline) {
      started++;
      const s = await session(srv.port, ctx);
      await new Promise((q) => { s.once('close', q); s.end(); });
      done++;
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  const cpuUs = procCpuUs(srv.pid) - cpu0;
  return { connections: done, perSecond: done / seconds, cpuUsPerConnection: cpuUs / done, cores: cpuUs / 1e6 / seconds };
}

async function idleMemory(srv, ctx) {
  const before = await srv.rss();
  const open = [];
  const deadline = performance.now() + PHASE_BUDGET_MS;
  while (open.length < N_IDLE && performance.now() < deadline) {
    const n = Math.min(64, N_IDLE - open.length);
    open.push(...await Promise.all(Array.from({ length: n }, () => session(srv.port, ctx))));
  }
  await new Promise((q) => setTimeout(q, 2000));
  const after = await srv.rss();
  for (const s of open) s.destroy();
  await new Promise((q) => setTimeout(q, 500));
  return { opened: open.length, rssBytesPerConnection: (after - before) / open.length };
}
