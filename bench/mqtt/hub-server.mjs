// The fleetkey hub under test for bench:mqtt, in its own process (forked by run.mjs, IPC channel).
// Starts a hub (API + embedded MQTT broker) on 127.0.0.1, ephemeral ports, temp data folder;
// creates an owner, logs in, makes a claim token. It captures the MQTT listener's TLS material
// (key, server chain, client CA list) by wrapping node:tls createServer before the hub is loaded,
// so Mosquitto can be started with exactly the same server chain and client trust.
//
// Invariants: listens on 127.0.0.1 only; the temp folder is removed on stop / parent exit;
// shutdown is bounded (10 s) and the process exits on its own when the parent goes away.
// Messages in:  {type:'mem', gc} | {type:'snapshot', path} | {type:'count', deviceIds} | {type:'stop'}
// Messages out: {type:'ready', pid, url, mqttPort, rootCertPem, ownerToken, claimToken, tls:{keyPem, chainPem, clientCaPem}}
//               | {type:'mem', rss, heapUsed, heapTotal, external, arrayBuffers, liveSessions} | {type:'snapshot', path}
//               | {type:'count', total} (stored telemetry rows of those devices)
//               | {type:'error', message}
import { mkdtempSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { writeHeapSnapshot } from 'node:v8';

// Capture the TLS options of the MQTT listener (the only tls.createServer with requestCert).
let mqttTls;
const realCreateServer = tls.createServer;
tls.createServer = function createServerSpy(options, listener) {
  if (options?.requestCert === true && mqttTls === undefined) {
    mqttTls = { keyPem: String(options.key), chainPem: String(options.cert), clientCaPem: String(options.ca) };
  }
  return realCreateServer.call(this, options, listener);
};
syncBuiltinESMExports(); // named ESM imports of node:tls now see the spy

const OTPAuth = await import('otpauth');
const { default: pino } = await import('pino');
const { loadConfig, startHub, openAdminContext } = await import('../../packages/hub/dist/src/index.js');
const { api, childLifecycle } = await import('../common/hub-child.mjs');

const PASSWORD = 'bench horse battery staple 42';
const dir = mkdtempSync(join(tmpdir(), 'fleetkey-bench-mqtt-'));
let hub;
let tenantId;

const stop = childLifecycle(dir, () => hub);

async function settleGc() {
  if (typeof globalThis.gc !== 'function') return;
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 100));
  }
}

process.on('message', async (msg) => {
  try {
    if (msg.type === 'mem') {
      if (msg.gc) await settleGc();
      const m = process.memoryUsage();
      process.send({ type: 'mem', rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers });
    } else if (msg.type === 'snapshot') {
      await settleGc();
      process.send({ type: 'snapshot', path: writeHeapSnapshot(msg.path) });
    } else if (msg.type === 'count') {
      let total = 0;
      for (const id of msg.deviceIds) total += await hub.store.telemetry.count(tenantId, id);
      process.send({ type: 'count', total });
    } else if (msg.type === 'stop') {
      await stop(0);
    }
  } catch (err) {
    process.send({ type: 'error', message: String(err?.stack ?? err) });
  }
});

try {
  const config = loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, process.env);
  hub = await startHub({ config, logger: pino({ level: process.env.BENCH_HUB_LOG ?? 'warn' }) });
  if (mqttTls === undefined) throw new Error('MQTT TLS material was not captured');
  const admin = await openAdminContext(hub.config);
  const created = await admin.createOrganisationWithOwner({ orgName: 'Bench', email: 'bench@bench.example', password: PASSWORD });
  await admin.close();
  tenantId = created.tenantId;
  const totp = OTPAuth.URI.parse(created.otpauthUri).generate();
  const login = await api(hub.url, hub.rootCertPem, 'POST', '/api/v1/sessions', { email: 'bench@bench.example', password: PASSWORD, totp });
  if (login.status !== 201) throw new Error(`login: ${login.status} ${JSON.stringify(login.body)}`);
  const token = await api(hub.url, hub.rootCertPem, 'POST', '/api/v1/claim-tokens', { maxUses: 1_000_000, ttlSeconds: 86400, label: 'bench-mqtt' }, login.body.token);
  if (token.status !== 201) throw new Error(`claim token: ${token.status} ${JSON.stringify(token.body)}`);
  process.send({
    type: 'ready', pid: process.pid, url: hub.url, mqttPort: hub.mqttPort, rootCertPem: hub.rootCertPem,
    ownerToken: login.body.token, claimToken: token.body.token, tls: mqttTls,
  });
} catch (err) {
  process.send({ type: 'error', message: String(err?.stack ?? err) });
  await stop(1);
}
