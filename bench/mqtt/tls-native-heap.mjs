#!/usr/bin/env node
// Where the native memory of an idle mutual-TLS connection goes in a bare Node tls.Server (ADR 0029):
// the server runs under heaptrack (Debian `heaptrack`; `sh bench/mqtt/install-deps.sh`), holds N idle
// connections made by this process, and exits with them open; the allocations still live at that
// moment are grouped by the OpenSSL/Node frame that made them and printed per connection.
//
// Invariants: 127.0.0.1 only; bounded (BENCH_IDLE, default 1000, ≤ 5000; 120 s); certificates and the
// heaptrack file live in a temp folder removed at the end; only the processes started here are signalled.
// Usage: node bench/mqtt/tls-native-heap.mjs          (server mode: node tls-native-heap.mjs server <dir>)
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { constants } from 'node:crypto';
import tls from 'node:tls';

const N = Math.min(Number(process.env.BENCH_IDLE ?? 1000), 5000);
const sh = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Frames that identify an allocation's owner; the first one found in a stack (leaf side first) wins.
const OWNERS = [
  ['TLSWrap::OnStreamAlloc', 'encrypted input NodeBIO (libuv 64 KiB read suggestion)'],
  ['ssl3_setup_read_buffer', 'OpenSSL record read buffer'], ['ssl3_setup_write_buffer', 'OpenSSL record write buffer'],
  ['tls_process_client_certificate', 'client certificate + chain'], ['ssl_session_dup', 'TLS 1.3 ticket session copy'],
  ['NodeBIO::Write', 'encrypted output NodeBIO'], ['SSL_new', 'SSL object'], ['EVP_CipherInit', 'record cipher contexts'],
  ['TLSWrap::TLSWrap', 'TLSWrap'], ['AsyncWrap', 'TCPWrap/AsyncWrap'], ['v8::', 'V8 (JS objects are in the heap figure)'],
];

if (process.argv[2] === 'server') {
  const dir = process.argv[3];
  const r = (f) => readFileSync(join(dir, f));
  const s = tls.createServer({ key: r('c.key'), cert: r('c.pem'), ca: r('ca.pem'), minVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_TICKET, requestCert: true, rejectUnauthorized: true }, (sock) => sock.on('data', () => {}));
  s.listen(0, '127.0.0.1', () => {
    writeFileSync(join(dir, 'pid'), String(process.pid));
    writeFileSync(join(dir, 'port'), String(s.address().port));
  });
  process.on('SIGUSR2', () => process.exit(0)); // exit with the connections open: they are "leaked"
  setTimeout(() => process.exit(1), 120_000).unref();
} else {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-tls-heap-'));
  const r = (f) => readFileSync(join(dir, f));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await sh('openssl', ['req', '-x509', ...ec, '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-subj', '/CN=ca', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE']);
  await sh('openssl', ['req', ...ec, '-keyout', join(dir, 'c.key'), '-out', join(dir, 'c.csr'), '-subj', '/CN=dev']);
  await sh('openssl', ['x509', '-req', '-in', join(dir, 'c.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-out', join(dir, 'c.pem'), '-days', '2']);
  const child = spawn('heaptrack', ['-o', join(dir, 'ht'), process.execPath, new URL(import.meta.url).pathname, 'server', dir], { stdio: 'ignore' });
  const exited = new Promise((q) => child.once('exit', q));
  for (let i = 0; i < 300 && !existsSync(join(dir, 'port')); i++) await sleep(100);
  const port = Number(r('port'));
  const ctx = tls.createSecureContext({ key: r('c.key'), cert: r('c.pem'), ca: r('ca.pem') });
  const open = () => new Promise((q, j) => { const s = tls.connect({ host: '127.0.0.1', port, secureContext: ctx, checkServerIdentity: () => undefined }, () => { s.write(Buffer.from([0xc0, 0])); q(s); }); s.on('error', j); });
  const socks = [];
  for (let k = 0; k < N; k += 50) socks.push(...await Promise.all(Array.from({ length: Math.min(50, N - k) }, open)));
  await sleep(2000);
  process.kill(Number(r('pid')), 'SIGUSR2'); // the node process under heaptrack's wrapper shell
  await exited;
  for (const s of socks) s.destroy();
  const file = readdirSync(dir).find((f) => f.startsWith('ht'));
  const { stdout } = await sh('heaptrack_print', ['-f', join(dir, file), '--print-leaks=0', '--print-peaks=0', '--print-allocators=0', '--print-temporary=0', '-F', join(dir, 'stacks.txt'), '--flamegraph-cost-type', 'leaked'], { maxBuffer: 64 << 20 });
  const totals = new Map();
  for (const line of readFileSync(join(dir, 'stacks.txt'), 'utf8').split('\n')) {
    const at = line.lastIndexOf(' ');
    if (at < 0) continue;
    const frames = line.slice(0, at).split(';').reverse();
    const owner = OWNERS.find(([f]) => frames.some((x) => x.includes(f)))?.[1] ?? 'other';
    totals.set(owner, (totals.get(owner) ?? 0) + Number(line.slice(at + 1)));
  }
  console.log(`bare node tls.Server, ${socks.length} idle mTLS connections; ${stdout.match(/total memory leaked: .*/)?.[0] ?? ''}`);
  console.log('live native allocations per connection (allocated bytes; RSS counts only pages written):');
  for (const [k, v] of [...totals].sort((a, b) => b[1] - a[1])) console.log(`  ${(v / socks.length / 1024).toFixed(2).padStart(7)} KiB  ${k}`);
  rmSync(dir, { recursive: true, force: true });
}
