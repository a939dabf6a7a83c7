// The other processes and peers of bench:mqtt and fuzz:mqtt: the forked hub (hub-server.mjs),
// Mosquitto 2.0.11 (spawned asynchronously, killed by its pid), /proc readings of a broker process, and device enrollment through the fleetkey
// hub's EST route (so both brokers see the same hub-issued device certificates).
//
// Invariants: Mosquitto listens on 127.0.0.1 only, with mutual TLS (require_certificate,
// use_identity_as_username), the hub's server chain and key, cafile = device CA + root, no
// persistence (its QoS 1 is in memory); every wait is bounded; only our own child is killed.
import { generateKeyPair, sign } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect as tcpConnect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { forkHubChild } from '../common/hub-child.mjs';
import { buildCsr, decodeCertsOnly, deviceIdFromCertificate, toPem } from '../../packages/protocol/dist/src/index.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';
const TICK_US = 10_000; // Linux USER_HZ = 100

/** utime + stime of a whole process (all threads), µs, from /proc/<pid>/stat fields 14–15. */
export function procCpuUs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

/** Resident set size of a process, bytes (/proc/<pid>/status VmRSS). */
export function procRssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

export async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

async function waitForPort(port, child, deadlineMs = 5000) {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}`);
    const ok = await new Promise((res) => {
      const s = tcpConnect(port, '127.0.0.1', () => { s.destroy(); res(true); });
      s.on('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('mosquitto did not start listening');
}

export async function startMosquitto(dir, material) {
  const port = await freePort();
  const file = (name, text) => { const p = join(dir, name); writeFileSync(p, text, { mode: 0o600 }); return p; };
  const acl = file('acl', 'pattern readwrite devices/%u/#\n');
  const conf = file('mosquitto.conf', [
    ...(process.getuid?.() === 0 ? ['user root'] : []), 'per_listener_settings false', 'persistence false',
    'log_dest none', 'allow_anonymous false', `acl_file ${acl}`, 'max_keepalive 300',
    `listener ${port} 127.0.0.1`,
    `cafile ${file('client-cas.pem', material.clientCaPem)}`,
    `certfile ${file('server-chain.pem', material.chainPem)}`,
    `keyfile ${file('server-key.pem', material.keyPem)}`,
    'require_certificate true', 'use_identity_as_username true', '',
  ].join('\n'));
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, child);
  const version = await new Promise((res) => {
    const v = spawn(MOSQUITTO, ['-h'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    v.stdout.on('data', (c) => { out += c; });
    v.on('close', () => res(/mosquitto version (\S+)/.exec(out)?.[1] ?? 'unknown'));
  });
  const stop = () => new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res();
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, 5000);
    child.once('exit', () => { clearTimeout(timer); res(); });
    child.kill('SIGTERM');
  });
  return { port, pid: child.pid, version, stop };
}

// ---------------------------------------------------------------- EST enrollment

function post(url, ca, headers, body) {
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', ca, checkServerIdentity: () => undefined, agent: postAgent, headers: { ...headers, 'content-length': body.length }, timeout: 15_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('latin1') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, text: String(e) }));
    req.end(body);
  });
}
let postAgent;

export function setAgent(agent) { postAgent = agent; }

export function apiPost(url, ca, token, body) {
  const b = Buffer.from(JSON.stringify(body));
  return post(url, ca, { 'content-type': 'application/json', authorization: `Bearer ${token}` }, b);
}

const genKey = () => new Promise((res, rej) => generateKeyPair('ec', { namedCurve: 'P-256' }, (e, publicKey, privateKey) => (e ? rej(e) : res({ publicKey, privateKey }))));
const signAsync = (data, key) => new Promise((res, rej) => sign('sha256', data, key, (e, s) => (e ? rej(e) : res(s))));

/** Enrolls `n` P-256 devices via EST simpleenroll (RFC 7030 §4.2.1), `concurrency` at a time. */
export async function enrollDevices({ url, rootCertPem, claimToken, n, concurrency = 32, deadlineMs = 120_000 }) {
  const devices = [];
  const headers = { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from(`bench:${claimToken}`).toString('base64')}` };
  const until = performance.now() + deadlineMs;
  let started = 0, errors = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (started < n && performance.now() < until && errors < 20) {
      started++;
      const { publicKey, privateKey } = await genKey();
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      const der = await buildCsr({ spki, subject: [['CN', 'bench-device']], algorithm: 'p256', sign: (d) => signAsync(d, privateKey) });
      const r = await post(`${url}/.well-known/est/simpleenroll`, rootCertPem, headers, Buffer.from(der.toString('base64'), 'latin1'));
      if (r.status !== 200) { errors++; console.error(`  enroll ${r.status}: ${r.text.slice(0, 160)}`); continue; }
      const [leaf] = decodeCertsOnly(Buffer.from(r.text.replace(/\s+/g, ''), 'base64'));
      devices.push({ deviceId: deviceIdFromCertificate(leaf), certPem: toPem('CERTIFICATE', leaf), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) });
    }
  }));
  if (devices.length < n) throw new Error(`enrolled ${devices.length} of ${n} devices (${errors} errors)`);
  return devices;
}

/**
 * Forks the hub under test (hub-server.mjs, --expose-gc + `execArgv`, e.g. --cpu-prof, IPC). `env` adds settings; `exited`
 * resolves with the exit code if the hub dies (a crash, when nobody asked it to stop).
 */
export function startHubProcess(env = {}, execArgv = []) {
  return forkHubChild(join(dirname(fileURLToPath(import.meta.url)), 'hub-server.mjs'), {
    execArgv: ['--expose-gc', '--max-semi-space-size=64', ...execArgv], // as the fleetkey launcher (ADR 0033)
    env: { ...process.env, FLEETKEY_CLAIM_TOKEN_MAX_USES: '1000000', FLEETKEY_LOG_LEVEL: 'warn', ...env },
  });
}
