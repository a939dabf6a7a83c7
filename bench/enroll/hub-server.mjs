// The hub under test, in its own process (forked by run.mjs with an IPC channel).
// Starts a hub on 127.0.0.1, ephemeral port, in a temp data folder; creates an owner, logs in and
// makes claim tokens; answers CPU-usage queries; cleans up on 'stop' or when the parent goes away.
// Messages in:  {type:'tokens', count, maxUses} | {type:'cpu'} | {type:'count'} | {type:'stop'}
// Messages out: {type:'ready', url, rootCertPem, deviceCaAlgorithm} | {type:'tokens', tokens}
//               | {type:'cpu', user, system, eluIdle, eluActive, mainUs} | {type:'count', audit} | {type:'error', message}
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { loadConfig, startHub, openAdminContext } from '../../packages/hub/dist/src/index.js';
import { CertificateAuthority } from '../../packages/hub/dist/src/ca/issuance.js';
import { api, childLifecycle } from '../common/hub-child.mjs';

// A/B switch for the bench only: BENCH_SYNC_PREPARE=1 makes the EST route fall back to the
// synchronous `prepare` (CSR signature verified on the event loop), as before prepareAsync.
if (process.env.BENCH_SYNC_PREPARE === '1') delete CertificateAuthority.prototype.prepareAsync;

const PASSWORD = 'bench horse battery staple 42';
const dir = mkdtempSync(join(tmpdir(), 'fleetkey-bench-'));
let hub;

const stop = childLifecycle(dir, () => hub);

/** CPU time of the main (event-loop) thread alone, µs: Linux /proc, clock ticks of 10 ms. */
function mainThreadCpuUs() {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
    return (Number(fields[11]) + Number(fields[12])) * 10_000; // utime + stime (#14, #15)
  } catch {
    return NaN;
  }
}

let ownerToken;
process.on('message', async (msg) => {
  try {
    if (msg.type === 'cpu') {
      const u = process.cpuUsage();
      const elu = performance.eventLoopUtilization(); // main thread: cumulative idle/active ms
      process.send({ type: 'cpu', user: u.user, system: u.system, eluIdle: elu.idle, eluActive: elu.active, mainUs: mainThreadCpuUs() });
    } else if (msg.type === 'tokens') {
      const tokens = [];
      for (let i = 0; i < Math.min(msg.count, 100); i++) {
        const r = await api(hub.url, hub.rootCertPem, 'POST', '/api/v1/claim-tokens', { maxUses: msg.maxUses, ttlSeconds: 86400, label: `bench-${i}` }, ownerToken);
        if (r.status !== 201) throw new Error(`claim token: ${r.status} ${JSON.stringify(r.body)}`);
        tokens.push(r.body.token);
      }
      process.send({ type: 'tokens', tokens });
    } else if (msg.type === 'count') {
      // Every enrollment writes device + certificate + audit event as one durable unit.
      process.send({ type: 'count', audit: await hub.store.audit.count() });
    } else if (msg.type === 'stop') {
      await stop(0);
    }
  } catch (err) {
    process.send({ type: 'error', message: String(err?.stack ?? err) });
  }
});

try {
  const config = loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0' }, process.env);
  hub = await startHub({ config, logger: pino({ level: process.env.BENCH_HUB_LOG ?? 'warn' }) });
  const admin = await openAdminContext(hub.config);
  const created = await admin.createOrganisationWithOwner({ orgName: 'Bench', email: 'bench@bench.example', password: PASSWORD });
  await admin.close();
  const totp = OTPAuth.URI.parse(created.otpauthUri).generate();
  const login = await api(hub.url, hub.rootCertPem, 'POST', '/api/v1/sessions', { email: 'bench@bench.example', password: PASSWORD, totp });
  if (login.status !== 201) throw new Error(`login: ${login.status} ${JSON.stringify(login.body)}`);
  ownerToken = login.body.token;
  process.send({ type: 'ready', url: hub.url, rootCertPem: hub.rootCertPem, deviceCaAlgorithm: hub.config.deviceCaKeyAlgorithm, pid: process.pid });
} catch (err) {
  process.send({ type: 'error', message: String(err?.stack ?? err) });
  await stop(1);
}
