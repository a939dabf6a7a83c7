/**
 * The hub's CA keys in a PKCS#11 token (SoftHSM2, `--ca-signer pkcs11:URI`, ADR 0028) with
 * openssl as the independent relying party: the root and device CA keys are generated inside
 * the token at first start (pki/ holds references, no sealed keys), and an issued chain passes
 * `openssl verify`, the OCSP responder's answers pass `openssl ocsp` (good, then revoked), and
 * the CRL passes `openssl crl -verify`. rotate-root is refused with a coded error and changes
 * nothing. A restart reopens the same token keys; a reference to a key the token lacks stops
 * the start. Children run asynchronously: the hub lives in this process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCsr, decodeCertsOnly, deviceIdFromCertificate, FleetkeyError, toPem } from '@fleetkey/protocol';
import pino from 'pino';
import { startHub } from '../../src/hub.js';
import { openTrustAdmin } from '../../src/trust/admin.js';
import { recoverRoot, rotateRoot } from '../../src/trust/bundles.js';
import { run } from '../helpers/mqtt-peers.js';
import { startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';

const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const PIN = '8080-hub-hsm';

describe('hub CA keys in SoftHSM2: issuance, OCSP and CRL signed by the token, checked by openssl', () => {
  let hsmDir: string;
  let t: TestHub;
  let owner: TestOwner;
  let devicePath: string;
  let serialHex: string;
  let deviceId: string;
  let caPath: string;

  before(async () => {
    hsmDir = await mkdtemp(join(tmpdir(), 'fleetkey-hub-hsm-'));
    await writeFile(join(hsmDir, 'softhsm2.conf'), `directories.tokendir = ${hsmDir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    process.env.SOFTHSM2_CONF = join(hsmDir, 'softhsm2.conf');
    const init = await run('/usr/bin/softhsm2-util', ['--init-token', '--free', '--label', 'hub-hsm', '--so-pin', '33334444', '--pin', PIN]);
    assert.equal(init.status, 0, init.stderr);
    await writeFile(join(hsmDir, 'pin'), PIN, { mode: 0o600 });
    const uri = `pkcs11:token=hub-hsm?module-path=${SOFTHSM_MODULE}&pin-source=file:${join(hsmDir, 'pin')}`;
    t = await startTestHub({ FLEETKEY_CA_SIGNER: uri });
    owner = await t.owner('HSM Org');
    caPath = join(t.hub.config.dataDir, 'pki', 'device-ca.crt');
  });
  let closed = false;
  after(async () => {
    if (closed) await rm(t.dir, { recursive: true, force: true });
    else await t.stop();
    await rm(hsmDir, { recursive: true, force: true });
  });

  test('first start generates the root and device CA keys in the token: pki/ holds references, no key material', () => {
    const pki = join(t.hub.config.dataDir, 'pki');
    assert.ok(existsSync(join(pki, 'root.key.ref')) && existsSync(join(pki, 'device-ca.key.ref')));
    assert.ok(!existsSync(join(pki, 'root.key.sealed')) && !existsSync(join(pki, 'device-ca.key.sealed')));
    for (const name of readdirSync(pki)) {
      const text = readFileSync(join(pki, name), 'utf8');
      assert.doesNotMatch(text, /PRIVATE KEY/, name);
      assert.ok(!text.includes(PIN), `${name} holds no PIN`);
    }
    const ref = JSON.parse(readFileSync(join(pki, 'device-ca.key.ref'), 'utf8')) as { uri: string; label: string };
    assert.match(ref.label, /^fleetkey-device-ca-[0-9a-f]{16}$/);
  });

  test('a certificate issued through the token passes openssl verify -x509_strict up to the root', async () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
    const csr = await buildCsr({ spki, subject: [['CN', 'hsm-dev']], algorithm: 'p256', sign: async (d) => sign('sha256', d, pair.privateKey) });
    const claim = await t.claimToken(owner.token);
    const r = await t.request('POST', '/.well-known/est/simpleenroll', {
      headers: { 'content-type': 'application/pkcs10', authorization: `Bearer ${claim.token}` }, body: csr.toString('base64'),
    });
    assert.equal(r.status, 200, r.text);
    const der = decodeCertsOnly(Buffer.from(r.text.replace(/\s+/g, ''), 'base64'))[0]!;
    devicePath = join(t.dir, 'hsm-dev.pem');
    writeFileSync(devicePath, toPem('CERTIFICATE', der));
    serialHex = new X509Certificate(der).serialNumber.toLowerCase();
    deviceId = deviceIdFromCertificate(der);
    const verified = await run('openssl', ['verify', '-x509_strict', '-CAfile', t.rootPemPath, '-untrusted', caPath, devicePath]);
    assert.equal(verified.status, 0, verified.stderr);
    assert.match(verified.stdout, /: OK/);
  });

  const ocsp = () => run('openssl', ['ocsp', '-issuer', caPath, '-cert', devicePath, '-url', `${t.hub.url}/ocsp`, '-CAfile', t.rootPemPath, '-VAfile', caPath, '-timeout', '20']);

  test('OCSP answers signed by the token pass openssl ocsp: good, then revoked after the owner revokes', async () => {
    const good = await ocsp();
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout + good.stderr, /Response verify OK/);
    assert.match(good.stdout, /: good/);
    const revoke = await t.api('POST', `/api/v1/devices/${deviceId}/revoke`, { reason: 'keyCompromise' }, owner.token);
    assert.equal(revoke.status, 200, JSON.stringify(revoke.body));
    const revoked = await ocsp();
    assert.match(revoked.stdout + revoked.stderr, /Response verify OK/);
    assert.match(revoked.stdout, /: revoked/);
  });

  test('the CRL signed by the token passes openssl crl -verify and lists the revoked serial', async () => {
    const path = join(t.dir, 'hsm.crl');
    const got = await run('curl', ['-sS', '--max-time', '20', '--cacert', t.rootPemPath, '-o', path, `${t.hub.url}/crl`]);
    assert.equal(got.status, 0, got.stderr);
    const checked = await run('openssl', ['crl', '-inform', 'DER', '-in', path, '-noout', '-text', '-CAfile', caPath, '-verify']);
    assert.equal(checked.status, 0, checked.stderr);
    assert.match(checked.stderr + checked.stdout, /verify OK/);
    assert.ok((checked.stdout.replace(/\s/g, '').toLowerCase()).includes(`serialnumber:${serialHex}`), checked.stdout);
  });

  test('rotate-root and recover with a pkcs11 CA signer are refused with CONFIG_INVALID and publish nothing', async () => {
    const admin = await openTrustAdmin(t.hub.config);
    try {
      const before = await admin.store.trust.latest();
      const refused = (err: unknown): boolean => err instanceof FleetkeyError && err.code === 'CONFIG_INVALID';
      await assert.rejects(rotateRoot(admin.context, { overlapMs: 86_400_000, algorithm: 'p384' }), refused);
      let saved = 0;
      const recoveryKeyPem = readFileSync(join(t.hub.config.dataDir, 'RECOVERY-KEY-MOVE-OFFLINE.pem'), 'utf8');
      await assert.rejects(recoverRoot(admin.context, { recoveryKeyPem, algorithm: 'p384', saveRecoveryKey: async () => void saved++ }), refused);
      assert.equal(saved, 0, 'no new recovery key was handed out');
      assert.equal((await admin.store.trust.latest())?.version, before?.version, 'no bundle was published');
    } finally {
      await admin.close();
    }
  });

  test('restart reopens the token keys (same pin, CRL still verifies); a key reference the token lacks stops the start and changes nothing', async () => {
    const config = t.hub.config;
    const pin = t.hub.pin;
    await t.hub.close();
    closed = true;
    const again = await startHub({ config, logger: pino({ level: 'silent' }) });
    try {
      assert.equal(again.pin, pin, 'the same root key, from the token');
      const path = join(t.dir, 'restart.crl');
      assert.equal((await run('curl', ['-sS', '--max-time', '20', '--cacert', t.rootPemPath, '-o', path, `${again.url}/crl`])).status, 0);
      const checked = await run('openssl', ['crl', '-inform', 'DER', '-in', path, '-noout', '-CAfile', caPath, '-verify']);
      assert.match(checked.stderr + checked.stdout, /verify OK/);
    } finally {
      await again.close();
    }
    const refPath = join(config.dataDir, 'pki', 'device-ca.key.ref');
    const ref = JSON.parse(readFileSync(refPath, 'utf8')) as { uri: string; label: string };
    writeFileSync(refPath, JSON.stringify({ uri: ref.uri, label: 'fleetkey-device-ca-0000000000000000' }));
    const pkiBefore = readdirSync(join(config.dataDir, 'pki')).map((n) => [n, readFileSync(join(config.dataDir, 'pki', n), 'utf8')]);
    await assert.rejects(startHub({ config, logger: pino({ level: 'silent' }) }), (err: unknown) => err instanceof FleetkeyError && err.code === 'CONFIG_INVALID');
    assert.deepEqual(readdirSync(join(config.dataDir, 'pki')).map((n) => [n, readFileSync(join(config.dataDir, 'pki', n), 'utf8')]), pkiBefore, 'pki/ unchanged');
  });
});
