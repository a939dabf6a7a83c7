/**
 * The real `fleetkey` binary for batches and the air-gapped factory (ADRs 0014, 0015): `batch
 * create --wait|status|download|revoke`, `factory init` against the hub, `factory issue|export`
 * with no hub at all, `batch import`, and the manifest attacks that need the real line output:
 * replay into another organisation and a tampered body — each refused with its code, nothing
 * imported. Forged manifests (duplicates, stale/forked counters, beyond the kit's count or window,
 * altered signature): packages/hub/test/interop/factory-import-attacks.test.ts. Children run
 * asynchronously.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { loadConfig, openAdminContext, startHub, type RunningHub } from '@fleetkey/hub';
import { apiCall } from '../helpers/api.js';
import { runCli } from '../helpers/cli.js';

const PASSWORD = 'factory cli password 2026';
const KIT_PASS = 'kit passphrase for line 3';

interface Org { token: string; tenantId: string; env: Record<string, string> }

describe('fleetkey batch and factory commands', () => {
  let hub: RunningHub;
  let dir: string;
  let acme: Org;
  let rival: Org;

  const login = async (name: string): Promise<Org> => {
    const admin = await openAdminContext(hub.config);
    const email = `${name.toLowerCase()}@example.com`;
    const created = await admin.createOrganisationWithOwner({ orgName: name, email, password: PASSWORD });
    await admin.close();
    const totp = OTPAuth.URI.parse(created.otpauthUri).generate();
    const r = await apiCall(hub.url, hub.rootCertPem, 'POST', '/api/v1/sessions', { email, password: PASSWORD, totp });
    const token = (r.body as { token: string }).token;
    const file = join(dir, `${name}.session.json`);
    writeFileSync(file, JSON.stringify({ hub: hub.url, pin: hub.pin, token, expiresAt: '2099-01-01T00:00:00Z' }), { mode: 0o600 });
    return { token, tenantId: created.tenantId, env: { FLEETKEY_SESSION_FILE: file } };
  };
  const deviceCount = async (tenantId: string): Promise<number> => (await hub.store.devices.list(tenantId, { limit: 1000 })).length;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetkey-factory-'));
    hub = await startHub({ config: loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }), logger: pino({ level: 'silent' }) });
    acme = await login('Acme');
    rival = await login('Rival');
  });
  after(async () => {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('batch create --wait, status, download (once), revoke through the binary', async () => {
    const c = await runCli(['batch', 'create', '--count', '12', '--mode', 'hub-keys', '--label', 'cli', '--wait', '--json'], '', acme.env);
    assert.equal(c.code, 0, c.stderr);
    const b = JSON.parse(c.stdout) as { id: string; status: string; done: number };
    assert.deepEqual([b.status, b.done], ['done', 12]);
    const st = await runCli(['batch', 'status', b.id], '', acme.env);
    assert.match(st.stdout, /done 12\/12/);
    const out = join(dir, 'bundle.tar.gz');
    const d = await runCli(['batch', 'download', b.id, '--out', out], '', acme.env);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(readFileSync(out).subarray(0, 2).toString('hex'), '1f8b', 'gzip magic');
    const again = await runCli(['batch', 'download', b.id, '--out', out], '', acme.env);
    assert.match(again.stderr, /error BUNDLE_GONE/);
    const rv = await runCli(['batch', 'revoke', b.id, '--json'], '', acme.env);
    assert.equal((JSON.parse(rv.stdout) as { revoked: number }).revoked, 12);
  });

  test('factory init → issue (offline) → export → import; re-import is idempotent; every manifest attack is refused', async () => {
    const kit = join(dir, 'kit.json');
    const init = await runCli(['factory', 'init', '--org', 'Acme', '--count', '5', '--valid-for', '14d', '--kit', kit, '--json'], KIT_PASS + '\n', acme.env);
    assert.equal(init.code, 0, init.stderr);
    assert.doesNotMatch(readFileSync(kit, 'utf8'), /BEGIN PRIVATE KEY/);
    const state = join(dir, 'line-state');
    const devices = join(dir, 'line-devices');
    const offline = { FLEETKEY_SESSION_FILE: join(dir, 'no-such-session') };
    const issue = await runCli(['factory', 'issue', '--kit', kit, '--state-dir', state, '--count', '3', '--out', devices], KIT_PASS + '\n', offline);
    assert.equal(issue.code, 0, issue.stderr);
    const over = await runCli(['factory', 'issue', '--kit', kit, '--state-dir', state, '--count', '3', '--out', devices], KIT_PASS + '\n', offline);
    assert.match(over.stderr, /error FACTORY_LIMIT_EXCEEDED/, 'the line refuses beyond the count');
    const manifest = join(dir, 'manifest.json');
    assert.equal((await runCli(['factory', 'export', '--kit', kit, '--state-dir', state, '--out', manifest], KIT_PASS + '\n', offline)).code, 0);
    const signed = JSON.parse(readFileSync(manifest, 'utf8')) as { body: string; signature: string; signerCertificate: string; format: string };

    // Attack: replayed into another organisation.
    const beforeRival = await deviceCount(rival.tenantId);
    const replay = await runCli(['batch', 'import', manifest], '', rival.env);
    assert.match(replay.stderr, /error MANIFEST_OTHER_ORGANISATION/);
    assert.equal(await deviceCount(rival.tenantId), beforeRival);

    // Attack: tampered (one entry's device id changed; the signature no longer covers it).
    const body = JSON.parse(Buffer.from(signed.body, 'base64').toString()) as { entries: Array<{ deviceId: string; serial: string }>; counter: number };
    const tampered = { ...signed, body: Buffer.from(JSON.stringify({ ...body, entries: body.entries.map((e, i) => (i === 0 ? { ...e, deviceId: 'victim-device' } : e)) })).toString('base64') };
    const beforeAcme = await deviceCount(acme.tenantId);
    const t1 = await apiCall(hub.url, hub.rootCertPem, 'POST', '/api/v1/batches/import', tampered, acme.token);
    assert.equal((t1.body as { error: { code: string } }).error.code, 'MANIFEST_INVALID');
    assert.equal(await deviceCount(acme.tenantId), beforeAcme);

    const ok = await runCli(['batch', 'import', manifest, '--json'], '', acme.env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), { kitId: (JSON.parse(init.stdout) as { kitId: string }).kitId, counter: 3, imported: 3, total: 3, alreadyImported: false });
    assert.equal(await deviceCount(acme.tenantId), beforeAcme + 3);
    const again = await runCli(['batch', 'import', manifest, '--json'], '', acme.env);
    assert.equal((JSON.parse(again.stdout) as { imported: number; alreadyImported: boolean }).alreadyImported, true);
    assert.equal(await deviceCount(acme.tenantId), beforeAcme + 3, 're-import changes nothing');
    for (const id of readdirSync(devices)) assert.equal((await hub.store.devices.get(acme.tenantId, id))?.status, 'pre-provisioned');
  });

  test('a line-made device folder, once imported, starts `fleetkey device run --state-dir <folder>` (kit → root chain, pinned) and publishes', async () => {
    const kit = join(dir, 'kit-run.json');
    assert.equal((await runCli(['factory', 'init', '--org', 'Acme', '--count', '1', '--valid-for', '1d', '--kit', kit], KIT_PASS + '\n', acme.env)).code, 0);
    const line = { state: join(dir, 'run-state'), out: join(dir, 'run-devices'), manifest: join(dir, 'run-manifest.json') };
    assert.equal((await runCli(['factory', 'issue', '--kit', kit, '--state-dir', line.state, '--count', '1', '--out', line.out], KIT_PASS + '\n')).code, 0);
    assert.equal((await runCli(['factory', 'export', '--kit', kit, '--state-dir', line.state, '--out', line.manifest], KIT_PASS + '\n')).code, 0);
    assert.equal((await runCli(['batch', 'import', line.manifest], '', acme.env)).code, 0);
    const [id] = readdirSync(line.out);
    const run = await runCli(['device', 'run', '--state-dir', join(line.out, id!), '--hub-mqtt', `127.0.0.1:${hub.mqttPort}`, '--stdin'], '{"first":true}\n');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await hub.store.telemetry.count(acme.tenantId, id!), 1);
    assert.equal((await hub.store.devices.get(acme.tenantId, id!))?.status, 'active');
  });
});
