// The hub under test for bench/batch, in its own process (forked by run.mjs with an IPC channel),
// after bench/enroll/hub-server.mjs: 127.0.0.1, ephemeral ports, a temp data folder; creates an
// owner and logs in; answers CPU-usage queries; cleans up on 'stop' or when the parent goes away.
// Messages in:  {type:'cpu'} | {type:'stop'}
// Messages out: {type:'ready', url, rootCertPem, token, pid} | {type:'cpu', user, system, eluIdle, eluActive}
//               | {type:'error', message}
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { loadConfig, startHub, openAdminContext } from '../../packages/hub/dist/src/index.js';
import { api, childLifecycle } from '../common/hub-child.mjs';

const PASSWORD = 'bench batch staple horse 42';
const dir = mkdtempSync(join(tmpdir(), 'fleetkey-bench-batch-'));
let hub;

const stop = childLifecycle(dir, () => hub, 15_000);
process.on('message', async (msg) => {
  try {
    if (msg.type === 'cpu') {
      const u = process.cpuUsage();
      const elu = performance.eventLoopUtilization();
      process.send({ type: 'cpu', user: u.user, system: u.system, eluIdle: elu.idle, eluActive: elu.active });
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
  const admin = await openAdminContext(hub.config);
  const created = await admin.createOrganisationWithOwner({ orgName: 'Bench Line', email: 'line@bench.example', password: PASSWORD });
  await admin.close();
  const totp = OTPAuth.URI.parse(created.otpauthUri).generate();
  const login = await api(hub.url, hub.rootCertPem, 'POST', '/api/v1/sessions', { email: 'line@bench.example', password: PASSWORD, totp });
  if (login.status !== 201) throw new Error(`login: ${login.status} ${login.text}`);
  process.send({ type: 'ready', url: hub.url, rootCertPem: hub.rootCertPem, token: JSON.parse(login.text).token, pid: process.pid });
} catch (err) {
  process.send({ type: 'error', message: String(err?.stack ?? err) });
  await stop(1);
}
