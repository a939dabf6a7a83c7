/**
 * Crash safety of batch jobs (issue 6, ADR 0014): the hub as the operator runs it (`fleetkey hub
 * start`, a child process) is killed with SIGKILL twice while a 2,000-identity hub-keys batch is
 * being signed, and restarted on the same data folder and ports each time. The job resumes by
 * itself at start-up and completes.
 *
 * Asserts afterwards (API, one read-only look at the SQLite file with the hub stopped, the bundle
 * read by the system `tar`, `fleetkey audit verify`):
 * - exactly `count` devices and `count` certificates exist for the batch, each device with
 *   exactly one certificate (its current serial) and each certificate with its device: nothing
 *   half-registered;
 * - no serial, public key or device id twice; every item marked done exactly once;
 * - the bundle has `count` device folders, each with its own certificate and key.
 * Children are spawned asynchronously only; only the pids started here are signalled.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import * as OTPAuth from 'otpauth';
import { apiCall, freePort, HubProcess, runCli, sleep, type HubAddress } from './crash-harness.js';

const COUNT = 2000;
const KILLS = 2;
const PASSWORD = 'batch crash password 2026';
const EMAIL = 'line@batch-kill9.example';

let root: string;
let dataDir: string;
let hub: HubProcess;
let address: HubAddress;

interface Owner { readonly token: string; readonly ca: string }
interface Progress { readonly status: string; readonly done: number; readonly total: number }

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'fleetkey-batch-kill9-'));
  dataDir = join(root, 'data');
  const mqttPort = await freePort();
  let apiPort = await freePort();
  while (apiPort === mqttPort) apiPort = await freePort();
  hub = new HubProcess({ dataDir, apiPort, mqttPort });
  address = await hub.start();
});

after(async () => {
  await hub.dispose();
  rmSync(root, { recursive: true, force: true });
});

async function ownerSession(): Promise<Owner> {
  const rootCert = await runCli(['hub', 'root-cert', '--data-dir', dataDir]);
  assert.equal(rootCert.code, 0, rootCert.stderr);
  const added = await runCli(['owner', 'add', '--data-dir', dataDir, '--org', 'Line Crash', '--email', EMAIL, '--json'], `${PASSWORD}\n`);
  assert.equal(added.code, 0, added.stderr);
  const totp = OTPAuth.URI.parse((JSON.parse(added.stdout) as { otpauthUri: string }).otpauthUri).generate();
  const login = await apiCall(address.url, rootCert.stdout, 'POST', '/api/v1/sessions', { email: EMAIL, password: PASSWORD, totp });
  assert.equal(login.status, 201, JSON.stringify(login.body));
  return { token: (login.body as { token: string }).token, ca: rootCert.stdout };
}

async function progress(owner: Owner, id: string): Promise<Progress> {
  const r = await apiCall(address.url, owner.ca, 'GET', `/api/v1/batches/${id}`, undefined, owner.token);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as Progress;
}

/** Polls (bounded) until `pred` holds; returns the progress that satisfied it. */
async function waitUntil(owner: Owner, id: string, pred: (p: Progress) => boolean, timeoutMs: number): Promise<Progress> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await progress(owner, id);
    if (pred(p)) return p;
    if (Date.now() > deadline) throw new Error(`batch ${id} did not get there in time: ${JSON.stringify(p)}`);
    await sleep(10);
  }
}

/** The bundle bytes (raw GET, trusting only the hub root). */
function download(owner: Owner, id: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(`${address.url}/api/v1/batches/${id}/bundle`, { ca: owner.ca, checkServerIdentity: () => undefined, agent: false, headers: { authorization: `Bearer ${owner.token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`bundle: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The system tar, asynchronously (the hub child keeps running meanwhile). */
function untar(file: string, dir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', ['-xzf', file, '-C', dir], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code ?? -1);
    });
  });
}

/** Downloads the bundle and unpacks it with the system tar: folders, distinct certs and keys. */
async function extractBundle(owner: Owner, id: string): Promise<{ folders: number; certs: number; keys: number }> {
  const file = join(root, 'bundle.tar.gz');
  writeFileSync(file, await download(owner, id));
  const out = join(root, 'bundle');
  mkdirSync(out);
  assert.equal(await untar(file, out), 0);
  const folders = readdirSync(out).filter((n) => n !== 'batch.json');
  const distinct = (name: string): number => new Set(folders.map((f) => readFileSync(join(out, f, name), 'utf8'))).size;
  return { folders: folders.length, certs: distinct('cert.pem'), keys: distinct('key.pem') };
}

interface SqlView {
  batch: { status: string; done: number; count: number };
  devices: number; distinctDeviceIds: number; certificates: number; distinctSerials: number; distinctKeys: number;
  devicesWithoutExactlyOneCert: number; currentSerialMismatch: number; orphanCertificates: number; itemsDone: number; itemsWithKey: number;
}

/** Read-only counts straight from the SQLite file (hub stopped). */
function sqlView(batchId: string): SqlView {
  const db = new Database(join(dataDir, 'fleetkey.db'), { readonly: true, fileMustExist: true });
  const one = (sql: string): number => (db.prepare(sql).get(batchId) as { n: number }).n;
  try {
    return {
      batch: db.prepare('SELECT status, done, count FROM batches WHERE id = ?').get(batchId) as SqlView['batch'],
      devices: one('SELECT COUNT(*) AS n FROM devices WHERE batch_id = ?'),
      distinctDeviceIds: one('SELECT COUNT(DISTINCT id) AS n FROM devices WHERE batch_id = ?'),
      certificates: one('SELECT COUNT(*) AS n FROM certificates WHERE device_id IN (SELECT device_id FROM batch_items WHERE batch_id = ?)'),
      distinctSerials: one('SELECT COUNT(DISTINCT serial) AS n FROM certificates WHERE device_id IN (SELECT device_id FROM batch_items WHERE batch_id = ?)'),
      distinctKeys: one('SELECT COUNT(DISTINCT spki_sha256) AS n FROM certificates WHERE device_id IN (SELECT device_id FROM batch_items WHERE batch_id = ?)'),
      devicesWithoutExactlyOneCert: one('SELECT COUNT(*) AS n FROM devices d WHERE d.batch_id = ? AND (SELECT COUNT(*) FROM certificates c WHERE c.device_id = d.id) <> 1'),
      currentSerialMismatch: one('SELECT COUNT(*) AS n FROM devices d WHERE d.batch_id = ? AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.serial = d.current_serial AND c.device_id = d.id)'),
      orphanCertificates: one("SELECT COUNT(*) AS n FROM certificates c WHERE c.device_id LIKE ? || '-%' AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = c.device_id)"),
      itemsDone: one('SELECT COUNT(*) AS n FROM batch_items WHERE batch_id = ? AND done = 1'),
      itemsWithKey: one('SELECT COUNT(*) AS n FROM batch_items WHERE batch_id = ? AND key_sealed IS NOT NULL'),
    };
  } finally {
    db.close();
  }
}

/** Kills the hub KILLS times mid-job (after at least one more chunk each time), restarting it. */
async function killDuringJob(owner: Owner, id: string): Promise<number[]> {
  const atKill: number[] = [];
  let last = 0;
  for (let k = 0; k < KILLS; k++) {
    const p = await waitUntil(owner, id, (x) => x.done > last || x.status !== 'running', 120_000);
    assert.equal(p.status, 'running', `kill ${k + 1} must land while the job runs (done ${p.done}/${p.total})`);
    await sleep(Math.floor(Math.random() * 40)); // somewhere inside the next chunk
    await hub.kill9();
    atKill.push(p.done);
    address = await hub.start();
    last = (await progress(owner, id)).done;
    assert.ok(last < COUNT, 'restarted before the job could finish');
  }
  return atKill;
}

test(`kill -9 the hub ${KILLS}× during a ${COUNT}-identity hub-keys batch: the job resumes; exactly ${COUNT} devices, no duplicates, none half-registered`, { timeout: 280_000 }, async (t) => {
  const owner = await ownerSession();
  const created = await apiCall(address.url, owner.ca, 'POST', '/api/v1/batches', { count: COUNT, keyAlg: 'p256', mode: 'hub-keys', label: 'crash line' }, owner.token);
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = (created.body as { id: string }).id;
  const atKill = await killDuringJob(owner, id);
  const done = await waitUntil(owner, id, (p) => p.status !== 'running', 200_000);
  assert.deepEqual([done.status, done.done, done.total], ['done', COUNT, COUNT]);

  const bundle = await extractBundle(owner, id);

  assert.equal(await hub.stop(), 0, 'clean stop after the crashes');
  const sql = sqlView(id);
  const audit = await runCli(['audit', 'verify', '--data-dir', dataDir, '--json']);
  t.diagnostic(`killed at done ${atKill.join(', ')} of ${COUNT}; ${hub.starts - 1} restarts; audit ${audit.stdout.trim()}`);

  assert.deepEqual(sql.batch, { status: 'done', done: COUNT, count: COUNT });
  assert.deepEqual(
    [sql.devices, sql.distinctDeviceIds, sql.certificates, sql.distinctSerials, sql.distinctKeys, sql.itemsDone],
    [COUNT, COUNT, COUNT, COUNT, COUNT, COUNT], 'exactly count devices, certificates, serials, keys and done items',
  );
  assert.deepEqual([sql.devicesWithoutExactlyOneCert, sql.currentSerialMismatch, sql.orphanCertificates], [0, 0, 0], 'nothing half-registered');
  assert.equal(sql.itemsWithKey, 0, 'hub-made keys erased with the (only) download');
  assert.equal(bundle.folders, COUNT, 'one bundle folder per device');
  assert.deepEqual([bundle.certs, bundle.keys], [COUNT, COUNT], 'every folder has its own certificate and key');
  assert.equal(audit.code, 0, audit.stderr);
});
