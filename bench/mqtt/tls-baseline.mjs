#!/usr/bin/env node
// Isolation experiment for bench:mqtt phase 3: memory per idle mutual-TLS connection of a *bare*
// Node tls.Server (no aedes, no fleetkey), P-256 certificates made with the openssl CLI in a temp
// folder. The server runs in a forked child (--expose-gc); the RSS delta after GC / N is printed.
// Invariants: 127.0.0.1 only, bounded count (BENCH_IDLE, default 1000), only our child is killed.
// Usage: node bench/mqtt/tls-baseline.mjs
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import tls from 'node:tls'; import { fork } from 'node:child_process'; import { readFileSync } from 'node:fs';
const N = Math.min(Number(process.env.BENCH_IDLE ?? 1000), 10_000);
const dir = process.argv[3] ?? mkdtempSync(join(tmpdir(), 'fleetkey-tls-baseline-'));
const r = (f) => readFileSync(join(dir, f));
if (process.argv[2] === 'server') {
  const s = tls.createServer({ key: r('c.key'), cert: r('c.pem'), ca: r('ca.pem'), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (sock) => { sock.on('data', () => {}); });
  s.listen(0, '127.0.0.1', () => process.send({ port: s.address().port }));
  process.on('message', async () => { for (let i = 0; i < 3; i++) { gc(); await new Promise((q) => setTimeout(q, 100)); } process.send({ rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed }); });
} else {
  const sh = promisify(execFile);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await sh('openssl', ['req', '-x509', ...ec, '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-subj', '/CN=ca', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE']);
  await sh('openssl', ['req', ...ec, '-keyout', join(dir, 'c.key'), '-out', join(dir, 'c.csr'), '-subj', '/CN=dev']);
  await sh('openssl', ['x509', '-req', '-in', join(dir, 'c.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-out', join(dir, 'c.pem'), '-days', '2']);
  const c = fork(new URL(import.meta.url).pathname, ['server', dir], { execArgv: ['--expose-gc'] });
  const next = () => new Promise((q) => c.once('message', q));
  const { port } = await next();
  const ctx = tls.createSecureContext({ key: r('c.key'), cert: r('c.pem'), ca: r('ca.pem') });
  for (let i = 0; i < 50; i++) await new Promise((q) => { const s = tls.connect({ host: '127.0.0.1', port, secureContext: ctx, checkServerIdentity: () => undefined }, () => { s.write('x'); s.destroy(); q(); }); });
  await new Promise((q) => setTimeout(q, 300));
  c.send('m'); const a = await next();
  const socks = [];
  for (let k = 0; k < N; k += 50) await Promise.all(Array.from({ length: 50 }, () => new Promise((q) => { const s = tls.connect({ host: '127.0.0.1', port, secureContext: ctx, checkServerIdentity: () => undefined }, () => { s.write(Buffer.from([0x10, 0])); socks.push(s); q(); }); })));
  await new Promise((q) => setTimeout(q, 2000));
  c.send('m'); const b = await next();
  console.log(`bare node tls.Server, ${N} idle mTLS connections: RSS ${((b.rss - a.rss) / N / 1024).toFixed(1)} KiB/conn, heap ${((b.heap - a.heap) / N / 1024).toFixed(1)} KiB/conn`);
  for (const s of socks) s.destroy(); c.kill(); rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
