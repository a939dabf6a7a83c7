/**
 * Revocation against a real hub over HTTPS on 127.0.0.1 with openssl and curl as independent
 * relying parties: the CRL (`openssl crl`, `openssl verify -crl_check`), the OCSP responder
 * (`openssl ocsp`, POST and the RFC 6960 §A.1 GET form), the owner revoke API with its attacks
 * (cross-tenant, repeat, re-enrollment of a revoked device, a live MQTT session closed by the revoke).
 * Checklist rows 44–47.
 * Children run asynchronously: the hub lives in this process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCsr, decodeCertsOnly, deviceIdFromCertificate, toPem } from '@fleetkey/protocol';
import { MosquittoSub, enrollDevice as enrollMqttDevice, mosquittoPub, run } from '../helpers/mqtt-peers.js';
import { startTestHub, type RawResponse, type TestHub, type TestOwner } from '../helpers/test-hub.js';

interface EnrolledDevice {
  readonly id: string;
  readonly keyPem: string;
  readonly certPem: string;
  readonly certPath: string;
  readonly serialHex: string;
}

function issued(r: RawResponse): Buffer {
  assert.equal(r.status, 200, r.text);
  return decodeCertsOnly(Buffer.from(r.text.replace(/\s+/g, ''), 'base64'))[0]!;
}

async function enroll(t: TestHub, owner: TestOwner, name: string, pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })): Promise<EnrolledDevice> {
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const csr = await buildCsr({ spki, subject: [['CN', name]], algorithm: 'p256', sign: async (d) => sign('sha256', d, pair.privateKey) });
  const claim = await t.claimToken(owner.token);
  const der = issued(await t.request('POST', '/.well-known/est/simpleenroll', {
    headers: { 'content-type': 'application/pkcs10', authorization: `Bearer ${claim.token}` }, body: csr.toString('base64'),
  }));
  const certPath = join(t.dir, `${name}.pem`);
  writeFileSync(certPath, toPem('CERTIFICATE', der));
  return {
    id: deviceIdFromCertificate(der), keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    certPem: toPem('CERTIFICATE', der), certPath, serialHex: new X509Certificate(der).serialNumber.toLowerCase(),
  };
}

describe('revocation: CRL and OCSP with openssl and curl against a real hub', () => {
  let t: TestHub;
  let a: TestOwner;
  let b: TestOwner;
  let device: EnrolledDevice;
  let caPath: string;
  let bundlePath: string;
  const events: Array<{ deviceId: string; serials: readonly string[] }> = [];

  before(async () => {
    t = await startTestHub();
    a = await t.owner('Revoke Org A');
    b = await t.owner('Revoke Org B');
    caPath = join(t.hub.config.dataDir, 'pki', 'device-ca.crt');
    bundlePath = join(t.dir, 'chain.pem');
    writeFileSync(bundlePath, readFileSync(caPath, 'utf8') + readFileSync(t.rootPemPath, 'utf8'));
    device = await enroll(t, a, 'dev1');
    t.hub.bus.subscribe('device.revoked', (e) => void events.push(e));
  });
  after(async () => t.stop());

  const fetchCrl = async (name: string): Promise<{ path: string; text: string; headers: Record<string, unknown> }> => {
    const path = join(t.dir, `${name}.crl`);
    const r = await run('curl', ['-sS', '--max-time', '20', '--cacert', t.rootPemPath, '-D', `${path}.headers`, '-o', path, `${t.hub.url}/crl`]);
    assert.equal(r.status, 0, r.stderr);
    const parsed = await run('openssl', ['crl', '-inform', 'DER', '-in', path, '-noout', '-text', '-CAfile', bundlePath]);
    assert.equal(parsed.status, 0, parsed.stderr);
    return { path, text: parsed.stdout + parsed.stderr, headers: { raw: readFileSync(`${path}.headers`, 'utf8') } };
  };
  const crlNumber = (text: string): number => Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text)?.[1]);
  const ocsp = (args: string[]) => run('openssl', ['ocsp', '-issuer', caPath, '-url', `${t.hub.url}/ocsp`, '-CAfile', t.rootPemPath, '-resp_text', '-timeout', '20', ...args]);

  test('device certificates carry the CRL distribution point and the AIA OCSP URL of the hub', async () => {
    const r = await run('openssl', ['x509', '-in', device.certPath, '-noout', '-ext', 'crlDistributionPoints,authorityInfoAccess']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`URI:${t.hub.url}/crl`));
    assert.match(r.stdout, new RegExp(`OCSP - URI:${t.hub.url}/ocsp`));
  });

  test('GET /crl: DER application/pkix-crl that openssl verifies against the device CA, with nextUpdate, number and AKI', async () => {
    const crl = await fetchCrl('first');
    assert.match(String(crl.headers.raw), /content-type: application\/pkix-crl/i);
    assert.match(String(crl.headers.raw), /cache-control: public, max-age=\d+/i);
    assert.match(crl.text, /verify OK/);
    assert.match(crl.text, /Version 2/);
    assert.match(crl.text, /Next Update: /);
    assert.match(crl.text, /X509v3 Authority Key Identifier/);
    assert.ok(crlNumber(crl.text) >= 1);
    assert.match(crl.text, /No Revoked Certificates/);
  });

  test('openssl ocsp (POST, with nonce): good, signed by the device CA, nonce echoed', async () => {
    const r = await ocsp(['-cert', device.certPath, '-nonce']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${device.certPath.replace(/[/.]/g, '\\$&')}: good`));
    assert.match(r.stderr + r.stdout, /Response verify OK/);
    assert.match(r.stdout, /OCSP Nonce/);
    assert.doesNotMatch(r.stderr + r.stdout, /nonce verify error|WARNING: no nonce/i);
    assert.match(r.stdout, /Next Update: /);
  });

  test('a serial this CA never issued is unknown, not good (openssl ocsp -serial)', async () => {
    const r = await ocsp(['-serial', '0x0123456789abcdef0123456789abcdef']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /0x0123456789ABCDEF0123456789ABCDEF: unknown/i);
  });

  test('cross-tenant revoke: another organisation revoking this device → 404 NOT_FOUND, nothing changed', async () => {
    const before = { device: await t.hub.store.devices.get(a.tenantId, device.id), certs: await t.hub.store.devices.certificates(a.tenantId, device.id), audit: await t.hub.store.audit.count() };
    const r = await t.api('POST', `/api/v1/devices/${device.id}/revoke`, { reason: 'keyCompromise' }, b.token);
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'NOT_FOUND');
    assert.deepEqual({ device: await t.hub.store.devices.get(a.tenantId, device.id), certs: await t.hub.store.devices.certificates(a.tenantId, device.id), audit: await t.hub.store.audit.count() }, before);
    assert.equal(events.length, 0, 'no device.revoked event');
    assert.match((await ocsp(['-cert', device.certPath])).stdout, /: good/);
  });

  test('a reason outside the allow-list (cACompromise) → 400 VALIDATION_FAILED, device stays active', async () => {
    const r = await t.api('POST', `/api/v1/devices/${device.id}/revoke`, { reason: 'cACompromise' }, a.token);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'VALIDATION_FAILED');
    assert.equal((await t.hub.store.devices.get(a.tenantId, device.id))?.status, 'active');
  });

  test('revoke → device.revoked event, OCSP revoked with reason, CRL re-signed with a higher number, openssl verify -crl_check refuses', async () => {
    const before = crlNumber((await fetchCrl('before')).text);
    const r = await t.api('POST', `/api/v1/devices/${device.id}/revoke`, { reason: 'keyCompromise' }, a.token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual([r.body.status, r.body.reason, r.body.alreadyRevoked, r.body.serials], ['revoked', 'keyCompromise', false, [device.serialHex]]);
    assert.deepEqual(events, [{ tenantId: a.tenantId, deviceId: device.id, serials: [device.serialHex] }]);
    const status = await ocsp(['-cert', device.certPath, '-nonce']);
    assert.match(status.stdout, /: revoked/);
    assert.match(status.stdout, /Reason: keyCompromise/);
    assert.match(status.stdout, /Revocation Time: /);
    const after = await fetchCrl('after');
    assert.ok(crlNumber(after.text) > before, `CRL number ${crlNumber(after.text)} after ${before}`);
    assert.match(after.text, new RegExp(`Serial Number: ${device.serialHex.toUpperCase()}[\\s\\S]*Key Compromise`));
    const crlPem = join(t.dir, 'after.crl.pem');
    const conv = await run('openssl', ['crl', '-inform', 'DER', '-in', after.path, '-out', crlPem]);
    assert.equal(conv.status, 0, conv.stderr);
    const verify = await run('openssl', ['verify', '-crl_check', '-CAfile', bundlePath, '-CRLfile', crlPem, device.certPath]);
    assert.notEqual(verify.status, 0);
    assert.match(verify.stdout + verify.stderr, /certificate revoked/);
  });

  test('revoking again is idempotent: 200, first time and reason kept, no new event', async () => {
    const first = await t.hub.store.devices.certificates(a.tenantId, device.id);
    const r = await t.api('POST', `/api/v1/devices/${device.id}/revoke`, { reason: 'superseded' }, a.token);
    assert.equal(r.status, 200);
    assert.equal(r.body.alreadyRevoked, true);
    assert.equal(r.body.reason, 'keyCompromise');
    assert.equal(r.body.revokedAt, new Date(first[0]!.revokedAt!).toISOString());
    assert.deepEqual(await t.hub.store.devices.certificates(a.tenantId, device.id), first);
    assert.equal(events.length, 1);
  });

  test('re-enrollment with a revoked device certificate (simplereenroll over mTLS) → 401 CERT_INVALID, nothing issued', async () => {
    const before = await t.hub.store.devices.certificates(a.tenantId, device.id);
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
    const csr = await buildCsr({ spki, subject: [['CN', 'x']], algorithm: 'p256', sign: async (d) => sign('sha256', d, pair.privateKey) });
    const r = await t.request('POST', '/.well-known/est/simplereenroll', {
      headers: { 'content-type': 'application/pkcs10' }, body: csr.toString('base64'), key: device.keyPem, cert: device.certPem,
    });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.body.error.code, 'CERT_INVALID');
    assert.deepEqual(await t.hub.store.devices.certificates(a.tenantId, device.id), before);
    assert.equal((await t.hub.store.devices.get(a.tenantId, device.id))?.status, 'revoked');
  });

  test('GET /ocsp/{request} (RFC 6960 §A.1): base64url and percent-encoded standard base64 both answer; garbage → malformedRequest', async () => {
    const reqPath = join(t.dir, 'req.der');
    const made = await run('openssl', ['ocsp', '-issuer', caPath, '-cert', device.certPath, '-no_nonce', '-reqout', reqPath]);
    assert.equal(made.status, 0, made.stderr);
    const req = readFileSync(reqPath);
    for (const [label, encoded] of [['base64url', req.toString('base64url')], ['std', encodeURIComponent(req.toString('base64'))]] as const) {
      const respPath = join(t.dir, `resp-${label}.der`);
      const got = await run('curl', ['-sS', '--max-time', '20', '--cacert', t.rootPemPath, '-o', respPath, '-w', '%{http_code} %{content_type}', `${t.hub.url}/ocsp/${encoded}`]);
      assert.equal(got.stdout, '200 application/ocsp-response', `${label}: ${got.stderr}`);
      const read = await run('openssl', ['ocsp', '-respin', respPath, '-issuer', caPath, '-cert', device.certPath, '-CAfile', t.rootPemPath, '-resp_text']);
      assert.match(read.stdout, /: revoked/, label);
      assert.match(read.stderr + read.stdout, /Response verify OK/, label);
    }
    for (const garbage of ['AAAA', 'not*base64!', 'MAA', '%2F%2F%2F%2F']) {
      const bad = await t.request('GET', `/ocsp/${garbage}`);
      assert.equal(bad.status, 200, garbage);
      assert.equal(bad.headers['content-type'], 'application/ocsp-response', garbage);
      assert.equal(bad.headers['cache-control'], 'no-store', garbage);
    }
  });

  test('end to end: the owner API revoke ends the device\'s live mosquitto_sub session within 1 s, and it cannot reconnect', async () => {
    const live = await enrollMqttDevice(t, a.token, 'live');
    const sub = new MosquittoSub(t, live, [`devices/${live.deviceId}/commands/#`], 15_000);
    try {
      assert.ok(await sub.waitFor(/SUBACK/, 5000), sub.lines.map((l) => l.text).join('\n'));
      const t0 = Date.now();
      const r = await t.api('POST', `/api/v1/devices/${live.deviceId}/revoke`, { reason: 'cessationOfOperation' }, a.token);
      assert.equal(r.status, 200);
      const lost = await sub.waitFor(/connection was lost|Connection error|closed/i, 2000);
      assert.ok(lost !== undefined && lost.at >= t0 && lost.at - t0 < 1000, `session closed after ${lost === undefined ? '>2000' : lost.at - t0} ms`);
    } finally {
      sub.stop();
    }
    const again = await mosquittoPub(t, live, `devices/${live.deviceId}/telemetry`, 'after revoke');
    assert.notEqual(again.status, 0, 'reconnect refused');
    assert.equal(await t.hub.store.telemetry.count(a.tenantId, live.deviceId), 0);
  });

  test("the revoked device's key cannot come back as a new device through a fresh claim token → 409 KEY_ALREADY_ENROLLED", async () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const victim = await enroll(t, a, 'dev2', pair);
    assert.equal((await t.api('POST', `/api/v1/devices/${victim.id}/revoke`, {}, a.token)).body.reason, 'unspecified');
    const devicesBefore = (await t.hub.store.devices.list(a.tenantId)).length;
    const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
    const csr = await buildCsr({ spki, subject: [['CN', 'again']], algorithm: 'p256', sign: async (d) => sign('sha256', d, pair.privateKey) });
    const claim = await t.claimToken(a.token);
    const r = await t.request('POST', '/.well-known/est/simpleenroll', {
      headers: { 'content-type': 'application/pkcs10', authorization: `Bearer ${claim.token}` }, body: csr.toString('base64'),
    });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.body.error.code, 'KEY_ALREADY_ENROLLED');
    assert.equal((await t.hub.store.devices.list(a.tenantId)).length, devicesBefore);
    // The refused enrollment spent nothing: the token still works for a new key.
    assert.equal((await t.hub.store.claimTokens.get(a.tenantId, claim.id))?.uses, 0, 'claim token not spent');
  });
});
