// The fleetkey hub under test for bench:rotation, in its own process (forked by run.mjs, IPC).
// A hub on 127.0.0.1 (ephemeral ports, temp data folder, trust check every second so a rotation
// written to the store is applied within ~1 s), an owner and a many-use claim token. It performs
// the operator's steps on request: rotate-root (the same store write as `fleetkey hub rotate-root`, from its own process),
// waiting for the end of the overlap, and a restart on the same ports and data folder.
//
// Invariants: 127.0.0.1 only; temp folder removed on every exit; bounded shutdown (common).
// Messages in:  {type:'rotate', overlapMs} | {type:'overlapOver'} | {type:'restart'} | {type:'ids', deviceIds} | {type:'stop'}
// Messages out: {type:'ready', url, mqttPort, pin, claimToken} | {type:'rotate', version, pin, appliedMs}
//               | {type:'overlapOver', ms} | {type:'restart', downMs, pin, trustVersion} | {type:'ids', ids} | {type:'error', message}
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const OTPAuth = await import('otpauth');
const { default: pino } = await import('pino');
const { loadConfig, startHub, openAdminContext } = await import('../../packages/hub/dist/src/index.js');
const { api, childLifecycle } = await import('../common/hub-child.mjs');

const here = dirname(fileURLToPath(import.meta.url));
const PASSWORD = 'bench rotation battery staple 42';
const dir = mkdtempSync(join(tmpdir(), 'fleetkey-bench-rotation-'));
const env = { ...process.env, FLEETKEY_TLS_RENEW_CHECK: '1', FLEETKEY_CLAIM_TOKEN_MAX_USES: '1000000' };
let hub;
let tenantId;
const stop = childLifecycle(dir, () => hub);
const boot = (apiPort, mqttPort) => startHub({
  config: loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': String(apiPort), 'mqtt-port': String(mqttPort) }, env),
  logger: pino({ level: process.env.BENCH_HUB_LOG ?? 'warn' }),
});
/** rotate-root in a child process (rotate-child.mjs), as the operator's CLI runs it; bounded. */
const rotateInOwnProcess = (dataDir, overlapMs, algorithm) => new Promise((resolve, reject) => {
  const child = spawn(process.execPath, [join(here, 'rotate-child.mjs'), dataDir, String(overlapMs), algorithm], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => { err += c; });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  child.on('exit', (code) => { clearTimeout(timer); code === 0 ? resolve() : reject(new Error(`rotate-root child exited ${code}: ${err.slice(0, 2000)}`)); });
});
const until = async (cond, timeoutMs, what) => {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`hub child: ${what} not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

async function handle(msg) {
  if (msg.type === 'rotate') {
    const t0 = performance.now();
    const next = hub.trustVersion + 1;
    await rotateInOwnProcess(hub.config.dataDir, msg.overlapMs, hub.config.rootKeyAlgorithm);
    await until(() => hub.trustVersion === next, 30_000, 'rotation applied');
    return { version: next, pin: hub.pin, appliedMs: performance.now() - t0 };
  }
  if (msg.type === 'overlapOver') {
    const t0 = performance.now();
    await until(() => hub.deviceCaCerts.length === 1, 120_000, 'overlap end'); // the old root's device CA is dropped
    return { ms: performance.now() - t0 };
  }
  if (msg.type === 'restart') {
    const t0 = performance.now();
    const { port, mqttPort } = hub;
    await hub.close();
    hub = await boot(port, mqttPort);
    return { downMs: performance.now() - t0, pin: hub.pin, trustVersion: hub.trustVersion };
  }
  if (msg.type === 'ids') {
    const ids = {};
    for (const id of msg.deviceIds) {
      const keys = [];
      for (let after = 0; ;) {
        const page = await hub.store.telemetry.list(tenantId, id, { afterSeq: after, limit: 1000 });
        for (const r of page) keys.push(r.dedupKey);
        if (page.length < 1000) break;
        after = page[page.length - 1].seq;
      }
      ids[id] = keys;
    }
    return { ids };
  }
  if (msg.type === 'stop') {
    await stop(0);
  }
  return undefined;
}

process.on('message', async (msg) => {
  try {
    const out = await handle(msg);
    if (out !== undefined) process.send({ type: msg.type, ...out });
  } catch (err) {
    process.send({ type: 'error', message: String(err?.stack ?? err) });
  }
});

try {
  hub = await boot(0, 0);
  const accounts = await openAdminContext(hub.config);
  const created = await accounts.createOrganisationWithOwner({ orgName: 'Bench', email: 'bench@bench.example', password: PASSWORD });
  await accounts.close();
  tenantId = created.tenantId;
  const login = await api(hub.url, hub.rootCertPem, 'POST', '/api/v1/sessions', { email: 'bench@bench.example', password: PASSWORD, totp: OTPAuth.URI.parse(created.otpauthUri).generate() });
  if (login.status !== 201) throw new Error(`login: ${login.status} ${login.text}`);
  const token = await api(hub.url, hub.rootCertPem, 'POST', '/api/v1/claim-tokens', { maxUses: 1_000_000, ttlSeconds: 86400, label: 'bench-rotation' }, login.body.token);
  if (token.status !== 201) throw new Error(`claim token: ${token.status} ${token.text}`);
  process.send({ type: 'ready', url: hub.url, mqttPort: hub.mqttPort, pin: hub.pin, claimToken: token.body.token });
} catch (err) {
  process.send({ type: 'error', message: String(err?.stack ?? err) });
  await stop(1);
}
