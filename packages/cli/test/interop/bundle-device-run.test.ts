/**
 * A device starting from an unpacked bundle folder (issue 6, ADR 0016): `fleetkey device run
 * --state-dir <folder>` on a folder of a hub-keys bundle (key.pem encrypted with the batch
 * passphrase, from FLEETKEY_BUNDLE_PASSPHRASE) connects with the bundle's MQTT address, publishes,
 * and the device turns active; the SDK's `connect()` does the same for a device-keys folder once
 * the device's own key is put at key.pem. A folder whose certificate is not for its key, or whose
 * pin is not the hub's, is refused and left as it was. Children run asynchronously, bounded.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { buildCsr, toPem } from '@fleetkey/protocol';
import { connect } from '@fleetkey/device';
import { loadConfig, openAdminContext, startHub, type RunningHub } from '@fleetkey/hub';
import { apiCall } from '../helpers/api.js';
import { runCli, type CliRun } from '../helpers/cli.js';

const PASSWORD = 'bundle agent password 2026';
const BATCH_PASS = 'bundle passphrase line 9';

/** The CLI with a hard time limit (killed by its own pid). */
const fleetkey = (args: string[], stdin: string, env: Record<string, string>, timeoutMs = 30_000): Promise<CliRun> => runCli(args, stdin, env, timeoutMs);

describe('device agent from an unpacked bundle folder', () => {
  let hub: RunningHub;
  let dir: string;
  let token: string;
  let tenantId: string;
  const api = (method: string, path: string, body?: unknown) => apiCall(hub.url, hub.rootCertPem, method, path, body, token);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetkey-bundle-run-'));
    hub = await startHub({ config: loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }), logger: pino({ level: 'silent' }) });
    const admin = await openAdminContext(hub.config);
    const created = await admin.createOrganisationWithOwner({ orgName: 'Bundle Org', email: 'bundle@example.com', password: PASSWORD });
    await admin.close();
    const r = await api('POST', '/api/v1/sessions', { email: 'bundle@example.com', password: PASSWORD, totp: OTPAuth.URI.parse(created.otpauthUri).generate() });
    token = (r.body as { token: string }).token;
    tenantId = created.tenantId;
  });
  after(async () => {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Creates a batch, waits for it (bounded), downloads and unpacks its bundle; the folders. */
  async function unpackedBatch(body: Record<string, unknown>, name: string): Promise<string[]> {
    const created = await api('POST', '/api/v1/batches', body);
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const id = (created.body as { id: string }).id;
    await hub.batchJobs.settled(id);
    const out = join(dir, name);
    mkdirSync(out);
    writeFileSync(join(out, 'b.tar.gz'), await bundleBytes(id));
    const tar = await new Promise<number>((resolve) => spawn('tar', ['-xzf', join(out, 'b.tar.gz'), '-C', out]).on('close', (c) => resolve(c ?? -1)));
    assert.equal(tar, 0);
    return readdirSync(out).filter((f) => f.startsWith(id)).sort().map((f) => join(out, f));
  }

  function bundleBytes(id: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const req = request(`${hub.url}/api/v1/batches/${id}/bundle`, { ca: hub.rootCertPem, checkServerIdentity: () => undefined, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`bundle ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end();
    });
  }

  const deviceIdOf = (folder: string): string => (JSON.parse(readFileSync(join(folder, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;

  test('hub-keys bundle, encrypted key: `fleetkey device run --state-dir <folder> --stdin` connects, publishes, the device becomes active', async () => {
    const [folder] = await unpackedBatch({ count: 2, keyAlg: 'p256', mode: 'hub-keys', passphrase: BATCH_PASS }, 'hub-keys');
    const deviceId = deviceIdOf(folder!);
    const run = await fleetkey(['device', 'run', '--state-dir', folder!, '--stdin'], '{"boot":1}\n{"boot":2}\n', { FLEETKEY_BUNDLE_PASSPHRASE: BATCH_PASS });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await hub.store.telemetry.count(tenantId, deviceId), 2);
    assert.equal(((await api('GET', `/api/v1/devices/${deviceId}`)).body as { status: string }).status, 'active');
    assert.equal(existsSync(join(folder!, 'identity.json')), true, 'the folder became a state directory');
    assert.equal(existsSync(join(folder!, 'key.pem')), false, 'the key moved into the key store');
    const [keyFile] = readdirSync(join(folder!, 'keys'));
    assert.equal(statSync(join(folder!, 'keys', keyFile!)).mode & 0o777, 0o600);
    const again = await fleetkey(['device', 'run', '--state-dir', folder!, '--stdin'], '{"boot":3}\n', {});
    assert.equal(again.code, 0, `a second start uses the adopted identity, no passphrase needed: ${again.stderr}`);
  });

  test('device-keys bundle: the SDK connect() starts from the folder with the device\'s own key at key.pem', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = await buildCsr({ spki: publicKey.export({ type: 'spki', format: 'der' }), subject: [['CN', 'line']], algorithm: 'p256', sign: async (d) => sign('sha256', d, privateKey) });
    const [folder] = await unpackedBatch({ count: 1, keyAlg: 'p256', mode: 'device-keys', csrs: [toPem('CERTIFICATE REQUEST', csr)] }, 'device-keys');
    writeFileSync(join(folder!, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const client = await connect({ stateDir: folder!, timeoutMs: 5000 });
    try {
      await client.publish(`devices/${client.deviceId}/telemetry`, '{"t":21.5}');
      assert.equal(await client.flush(10_000), true);
    } finally {
      await client.close();
    }
    assert.equal(await hub.store.telemetry.count(tenantId, deviceIdOf(folder!)), 1);
  });

  test('attack: a bundle folder whose cert.pem is another device\'s, or whose pin is not the hub\'s → refused, folder unchanged, nothing published', async () => {
    const [a, b, c] = await unpackedBatch({ count: 3, keyAlg: 'p256', mode: 'hub-keys' }, 'attacks');
    writeFileSync(join(a!, 'cert.pem'), readFileSync(join(b!, 'cert.pem')));
    const info = JSON.parse(readFileSync(join(c!, 'device.json'), 'utf8')) as { pins: string[] };
    writeFileSync(join(c!, 'device.json'), JSON.stringify({ ...info, pins: [`sha256//${Buffer.alloc(32, 7).toString('base64')}`] }));
    for (const folder of [a!, c!]) {
      const before = readdirSync(folder).sort();
      const run = await fleetkey(['device', 'run', '--state-dir', folder, '--stdin'], '{"x":1}\n', {});
      assert.match(run.stderr, /error DEVICE_NOT_ENROLLED/);
      assert.deepEqual(readdirSync(folder).sort(), before, 'nothing adopted: no identity.json, key.pem still there');
      assert.equal(await hub.store.telemetry.count(tenantId, deviceIdOf(folder)), 0);
    }
  });
});
