/**
 * Online batches (ADR 0014) against real peers: the bundle read by the system `tar`, every
 * certificate checked by `openssl verify`, an encrypted key.pem opened by `openssl pkey -passin`,
 * a bundle identity connecting and publishing with mosquitto_pub (pre-provisioned → active),
 * batch revoke of the unused identities, the all-or-none CSR policy and the download policy.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { dbPath } from '../../src/datadir.js';
import { fetchAndExtract, lineCsrs, readText, waitForBatch } from '../helpers/batch.js';
import { mosquittoPub, run } from '../helpers/mqtt-peers.js';
import { startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';

const PASSPHRASE = 'line-7 passphrase 2024!';

describe('online batches', () => {
  let t: TestHub;
  let owner: TestOwner;
  let other: TestOwner;
  const db = () => new Database(dbPath(t.hub.config.dataDir), { readonly: true });

  before(async () => {
    t = await startTestHub();
    owner = await t.owner('Batch Works');
    other = await t.owner('Other Org');
  });
  after(async () => t.stop());

  test('hub-keys batch: progress, bundle verified by openssl, encrypted key.pem, download once, keys erased', async () => {
    const created = await t.api('POST', '/api/v1/batches', { count: 40, keyAlg: 'p256', mode: 'hub-keys', label: 'line 7', passphrase: PASSPHRASE }, owner.token);
    assert.equal(created.status, 202, JSON.stringify(created.body));
    assert.equal(created.body.total, 40);
    const done = await waitForBatch(t, owner.token, created.body.id);
    assert.deepEqual([done.status, done.done, done.total], ['done', 40, 40]);
    const devices = (await t.api('GET', '/api/v1/devices?limit=1000', undefined, owner.token)).body.items.filter((d: { id: string }) => d.id.startsWith(created.body.id));
    assert.equal(devices.length, 40);
    assert.ok(devices.every((d: { status: string }) => d.status === 'pre-provisioned'));

    const { dir, folders } = await fetchAndExtract(t, owner.token, created.body.id);
    assert.equal(folders.length, 40);
    for (const f of folders.slice(0, 4)) {
      const v = await run('openssl', ['verify', '-CAfile', join(dir, f, 'hub-root.pem'), '-untrusted', join(dir, f, 'chain.pem'), join(dir, f, 'cert.pem')]);
      assert.equal(v.status, 0, v.stderr + v.stdout);
      assert.match(readText(dir, f, 'key.pem'), /BEGIN ENCRYPTED PRIVATE KEY/);
      const fromKey = await run('openssl', ['pkey', '-in', join(dir, f, 'key.pem'), '-passin', `pass:${PASSPHRASE}`, '-pubout']);
      const fromCert = await run('openssl', ['x509', '-in', join(dir, f, 'cert.pem'), '-pubkey', '-noout']);
      assert.equal(fromKey.status, 0, fromKey.stderr);
      assert.equal(fromKey.stdout, fromCert.stdout);
      const info = JSON.parse(readText(dir, f, 'device.json'));
      assert.equal(info.deviceId, f);
      assert.equal(info.keyOrigin, 'hub-generated');
      assert.equal(readText(dir, f, 'pin').trim(), t.hub.pin);
    }
    const again = await t.api('GET', `/api/v1/batches/${created.body.id}/bundle`, undefined, owner.token);
    assert.equal(again.status, 410);
    assert.equal(again.body.error.code, 'BUNDLE_GONE');
    const conn = db();
    const left = conn.prepare('SELECT COUNT(*) AS n FROM batch_items WHERE batch_id = ? AND key_sealed IS NOT NULL').get(created.body.id) as { n: number };
    conn.close();
    assert.equal(left.n, 0, 'sealed keys are erased with the last download');
    assert.equal(readFileSync(dbPath(t.hub.config.dataDir)).includes(Buffer.from(PASSPHRASE)), false, 'passphrase never in the database in clear');
  });

  test('device-keys batch: a bundle identity connects with mosquitto_pub and becomes active; revoke takes the unused ones', async () => {
    const csrs = await lineCsrs(5);
    const created = await t.api('POST', '/api/v1/batches', { count: 5, keyAlg: 'p256', mode: 'device-keys', csrsPem: csrs.map((c) => c.pem).join('\n') }, owner.token);
    assert.equal(created.status, 202, JSON.stringify(created.body));
    assert.equal((await waitForBatch(t, owner.token, created.body.id)).status, 'done');
    const { dir, folders } = await fetchAndExtract(t, owner.token, created.body.id);
    assert.equal(folders.length, 5);
    const first = folders[0]!;
    assert.throws(() => readText(dir, first, 'key.pem'), 'device-keys bundles carry no key');
    writeFileSync(join(dir, first, 'key.pem'), csrs[0]!.keyPem, { mode: 0o600 });
    const pub = await mosquittoPub(t, { deviceId: first, certPath: join(dir, first, 'cert.pem'), keyPath: join(dir, first, 'key.pem') }, `devices/${first}/telemetry`, '{"boot":1}');
    assert.equal(pub.status, 0, pub.stderr);
    assert.equal((await t.api('GET', `/api/v1/devices/${first}`, undefined, owner.token)).body.status, 'active');
    assert.equal(await t.hub.store.telemetry.count(owner.tenantId, first), 1);

    const revoked = await t.api('POST', `/api/v1/batches/${created.body.id}/revoke`, { reason: 'cessationOfOperation' }, owner.token);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body.revoked, 4);
    assert.equal((await t.api('GET', `/api/v1/devices/${first}`, undefined, owner.token)).body.status, 'active', 'a connected device is not unused');
    assert.equal((await t.api('GET', `/api/v1/devices/${folders[1]}`, undefined, owner.token)).body.status, 'revoked');
    const listed = new Set((await t.hub.store.revocation.listRevoked({ notAfterFrom: 0 })).map((r) => r.serial));
    for (const f of folders.slice(1)) {
      const certs = await t.hub.store.devices.certificates(owner.tenantId, f);
      assert.ok(certs.every((c) => listed.has(c.serial)), `${f} is on the CRL list`);
    }
  });

  test('attack: one bad CSR in a batch → CSR_SIGNATURE_INVALID names it, none registered (all-or-none)', async () => {
    const csrs = await lineCsrs(4);
    const bad = Buffer.from(csrs[2]!.der);
    bad[bad.length - 5] = bad[bad.length - 5]! ^ 0x01; // inside the signature
    const before = (await t.hub.store.devices.list(owner.tenantId, { limit: 1000 })).length;
    const r = await t.api('POST', '/api/v1/batches', { count: 4, keyAlg: 'p256', mode: 'device-keys', csrs: [csrs[0]!.pem, csrs[1]!.pem, bad.toString('base64'), csrs[3]!.pem] }, owner.token);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'CSR_SIGNATURE_INVALID');
    assert.equal(r.body.error.details.index, 3);
    assert.equal((await t.hub.store.devices.list(owner.tenantId, { limit: 1000 })).length, before);
  });

  test('attack: a key repeated in a batch → KEY_ALREADY_ENROLLED, nothing stored', async () => {
    const csrs = await lineCsrs(2);
    const before = (await t.hub.store.devices.list(owner.tenantId, { limit: 1000 })).length;
    const r = await t.api('POST', '/api/v1/batches', { count: 3, keyAlg: 'p256', mode: 'device-keys', csrs: [csrs[0]!.pem, csrs[1]!.pem, csrs[0]!.pem] }, owner.token);
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'KEY_ALREADY_ENROLLED');
    assert.equal(r.body.error.details.index, 3);
    assert.equal((await t.hub.store.devices.list(owner.tenantId, { limit: 1000 })).length, before);
  });

  test('attack: another organisation reads, downloads or revokes a batch → NOT_FOUND, nothing changes', async () => {
    const created = await t.api('POST', '/api/v1/batches', { count: 2, keyAlg: 'p256', mode: 'hub-keys' }, owner.token);
    await waitForBatch(t, owner.token, created.body.id);
    for (const [m, p] of [['GET', ''], ['GET', '/bundle'], ['POST', '/revoke']] as const) {
      const r = await t.api(m, `/api/v1/batches/${created.body.id}${p}`, m === 'POST' ? {} : undefined, other.token);
      assert.equal(r.status, 404, `${m} ${p}`);
    }
    const b = (await t.api('GET', `/api/v1/batches/${created.body.id}`, undefined, owner.token)).body;
    assert.deepEqual([b.downloads, b.status], [0, 'done']);
  });

  test('validation: count above batchMaxCount and passphrase on device-keys are refused', async () => {
    const big = await t.api('POST', '/api/v1/batches', { count: 100001, keyAlg: 'p256', mode: 'hub-keys' }, owner.token);
    assert.equal(big.body.error.code, 'VALIDATION_FAILED');
    const pass = await t.api('POST', '/api/v1/batches', { count: 1, keyAlg: 'p256', mode: 'device-keys', csrs: [], passphrase: PASSPHRASE }, owner.token);
    assert.equal(pass.body.error.code, 'VALIDATION_FAILED');
  });
});
