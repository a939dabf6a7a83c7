// What every bench's hub child process shares (bench/{enroll,mqtt,batch}/hub-server.mjs):
// HTTPS calls to the hub trusting only its root, and a bounded, idempotent shutdown that also
// runs when the parent goes away. Invariants: 127.0.0.1 only (the hub's own URL); the temp
// folder is removed on every exit path; shutdown never takes longer than `shutdownMs`.
import { fork } from 'node:child_process';
import { rmSync } from 'node:fs';
import { request } from 'node:https';

/** One request; resolves { status, text, bytes, body } (`body`: the JSON, parsed on first use; bounded by `timeoutMs`). */
export function api(base, ca, method, path, body, token, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(`${base}${path}`, {
      method, ca, checkServerIdentity: () => undefined, agent: false, timeout: timeoutMs,
      headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        const text = bytes.toString('utf8');
        resolve({ status: res.statusCode, bytes, text, get body() { return text ? JSON.parse(text) : undefined; } });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Installs the child's shutdown: on 'disconnect' (parent gone) and SIGTERM, and returned for
 * the 'stop' message. `getHub()` is the running hub or undefined; `dir` the temp folder.
 */
export function childLifecycle(dir, getHub, shutdownMs = 10_000) {
  let stopping = false;
  async function stop(code = 0) {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => process.exit(code || 3), shutdownMs); // bounded shutdown
    try { const hub = getHub(); if (hub) await hub.close(); } catch { /* best effort */ }
    rmSync(dir, { recursive: true, force: true });
    clearTimeout(timer);
    process.exit(code);
  }
  process.on('disconnect', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  return stop;
}

/**
 * The parent side: forks a bench's hub-server.mjs with an IPC channel. `ask({type})` sends a
 * message and resolves with the child's reply of the same type (an `{type:'error'}` reply rejects
 * the oldest waiter), each wait bounded by `timeoutMs` (default `defaultTimeoutMs`); `stop()` asks
 * the child to stop and SIGKILLs it (by its own pid) after 15 s; `exited` resolves on exit.
 */
export function forkHubChild(script, { env = process.env, execArgv = [], defaultTimeoutMs = 60_000 } = {}) {
  const child = fork(script, [], { env, execArgv: ['--max-semi-space-size=64', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }); // as the launcher (ADR 0033)
  const waiters = new Map();
  child.on('message', (m) => {
    if (m.type === 'error') console.error(`hub child: ${m.message}`);
    const key = waiters.has(m.type) ? m.type : (m.type === 'error' ? waiters.keys().next().value : undefined);
    if (key === undefined) return;
    const w = waiters.get(key);
    waiters.delete(key);
    w(m);
  });
  const expect = (type, timeoutMs = defaultTimeoutMs) => new Promise((res, rej) => {
    const timer = setTimeout(() => { waiters.delete(type); rej(new Error(`hub child: no '${type}' in ${timeoutMs} ms`)); }, timeoutMs);
    waiters.set(type, (m) => { clearTimeout(timer); if (m.type === 'error') rej(new Error(m.message)); else res(m); });
  });
  const ask = (msg, timeoutMs) => { const p = expect(msg.type, timeoutMs); child.send(msg); return p; };
  const stop = () => new Promise((res) => {
    if (child.exitCode !== null) return res();
    const timer = setTimeout(() => { child.kill('SIGKILL'); res(); }, 15_000);
    child.once('exit', () => { clearTimeout(timer); res(); });
    child.send({ type: 'stop' });
  });
  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  return { child, pid: child.pid, ready: expect('ready'), ask, stop, exited };
}
