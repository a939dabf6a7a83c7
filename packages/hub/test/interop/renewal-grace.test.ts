/**
 * Device certificate renewal after expiry (ADR 0025) against a real hub over HTTPS and MQTT, with
 * curl, openssl and mosquitto_pub as independent peers. The certificates here are expired for
 * real — issued while the hub clock stood six days back, with a five-day validity — so the TLS
 * stacks (OpenSSL's own, in real time) and the hub (its injected clock, moved to now) agree.
 *
 * Attacks, each asserting the code, that nothing was issued and that stored state did not change:
 * renewal of a revoked certificate, renewal with another tenant's certificate, renewal after
 * expiry outside the grace period, renewal inside the grace period with a different key; and the
 * control: inside the grace with the same key is accepted. MQTT and the proof endpoint still
 * refuse an expired certificate — only simplereenroll lets it through.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ManualClock, RENEW_COMMAND, caTemplate, decodeCertsOnly, parseRenewCommand, deviceLeafTemplate, parseCertificate, signCertificate, toPem, type CertificateSigner,
} from '@fleetkey/protocol';
import { OWNER_PASSWORD, startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';
import { enrollDevice, mosquittoPub, run } from '../helpers/mqtt-peers.js';

const DAY_MS = 86_400_000;
type Device = Awaited<ReturnType<typeof enrollDevice>>;

let t: TestHub;
const clock = new ManualClock(Date.now() - 6 * DAY_MS);
let orgA: TestOwner;
let orgB: TestOwner;
let orgStrict: TestOwner;
const devices: Record<'graceOk' | 'revoked' | 'strict' | 'otherTenant', Device> = {} as never;

async function relogin(o: TestOwner): Promise<TestOwner> {
  const r = await t.api('POST', '/api/v1/sessions', { email: o.email, password: OWNER_PASSWORD, totp: t.totp(o.otpauthUri) });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { ...o, token: r.body.token as string };
}

/** A base64 DER CSR file made by openssl for an existing key file. */
async function csrFor(keyPath: string, name: string): Promise<string> {
  const der = join(t.dir, `${name}.csr.der`);
  const r = await run('openssl', ['req', '-new', '-key', keyPath, '-subj', '/CN=ignored-by-the-hub', '-outform', 'DER', '-out', der]);
  assert.equal(r.status, 0, r.stderr);
  const b64 = join(t.dir, `${name}.csr.b64`);
  writeFileSync(b64, readFileSync(der).toString('base64'));
  return b64;
}

async function newKeyFile(name: string): Promise<string> {
  const path = join(t.dir, `${name}.key`);
  const r = await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
  assert.equal(r.status, 0, r.stderr);
  return path;
}

/** curl as the EST client: simplereenroll with `--cert/--key` (RFC 7030 §4.2.2). */
async function curlReenroll(certPath: string, keyPath: string, csrB64Path: string): Promise<{ status: number; body: string }> {
  const r = await run('curl', ['-sS', '--max-time', '20', '--cacert', t.rootPemPath, '--cert', certPath, '--key', keyPath,
    '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${csrB64Path}`, '-o', '-', '-w', '\n%{http_code}', `${t.hub.url}/.well-known/est/simplereenroll`], 25_000);
  const nl = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(nl + 1)), body: r.stdout.slice(0, nl) };
}

const errorCode = (body: string): unknown => (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
const certificates = async (o: TestOwner, d: Device) => (await t.hub.store.devices.certificates(o.tenantId, d.deviceId)).map((c) => `${c.serial}:${c.revokedAt ?? '-'}`);
const reenrollAudits = async () => (await t.hub.store.audit.list({ limit: 10_000 })).filter((a) => a.type === 'certificate.reenroll' || a.type === 'certificate.issue');

before(async () => {
  t = await startTestHub({ FLEETKEY_DEVICE_CERT_VALIDITY_DAYS: '5', FLEETKEY_TLS_CERT_VALIDITY_HOURS: '2160' }, { clock });
  orgA = await t.owner('Renewal A');
  orgB = await t.owner('Renewal B');
  orgStrict = await t.owner('Renewal Strict');
  devices.graceOk = await enrollDevice(t, orgA.token, 'grace-ok');
  devices.revoked = await enrollDevice(t, orgA.token, 'revoked');
  devices.strict = await enrollDevice(t, orgStrict.token, 'strict');
  devices.otherTenant = await enrollDevice(t, orgB.token, 'other-tenant');
  // Six days later, for real: every certificate above expired one day ago.
  clock.set(Date.now());
  [orgA, orgB, orgStrict] = await Promise.all([relogin(orgA), relogin(orgB), relogin(orgStrict)]);
  assert.equal((await t.api('POST', `/api/v1/devices/${devices.revoked.deviceId}/revoke`, { reason: 'keyCompromise' }, orgA.token)).status, 200);
  assert.equal((await t.api('PUT', '/api/v1/organisation/renewal', { graceDays: 0 }, orgStrict.token)).status, 200);
});
after(async () => t.stop());

describe('an expired device certificate reaches simplereenroll and nothing else', () => {
  test('the certificates are expired for real (openssl verify says so)', async () => {
    const r = await run('openssl', ['x509', '-in', devices.graceOk.certPath, '-noout', '-checkend', '0']);
    assert.notEqual(r.status, 0, 'openssl -checkend 0 reports expiry');
  });

  test('MQTT with an expired certificate (mosquitto_pub) is refused and stores nothing', async () => {
    const d = devices.graceOk;
    const r = await mosquittoPub(t, d, `devices/${d.deviceId}/telemetry`, 'from an expired certificate');
    assert.notEqual(r.status, 0, r.stderr);
    assert.equal(await t.hub.store.telemetry.count(orgA.tenantId, d.deviceId), 0);
  });

  test('the renewal proof endpoint refuses an expired certificate (401 CERT_INVALID)', async () => {
    const d = devices.graceOk;
    const r = await t.request('GET', '/.well-known/fleetkey/device', { key: readFileSync(d.keyPath, 'utf8'), cert: readFileSync(d.certPath, 'utf8') });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.body?.error?.code, 'CERT_INVALID');
  });

  test('the organisation grace defaults to 30 days and is owner-settable', async () => {
    const a = await t.api('GET', '/api/v1/organisation/renewal', undefined, orgA.token);
    assert.deepEqual({ graceDays: a.body.graceDays, source: a.body.source }, { graceDays: 30, source: 'default' });
    const strict = await t.api('GET', '/api/v1/organisation/renewal', undefined, orgStrict.token);
    assert.deepEqual({ graceDays: strict.body.graceDays, source: strict.body.source }, { graceDays: 0, source: 'organisation' });
    const bad = await t.api('PUT', '/api/v1/organisation/renewal', { graceDays: 366 }, orgA.token);
    assert.equal(bad.status, 400);
    assert.equal((await t.api('GET', '/api/v1/organisation/renewal', undefined, orgA.token)).body.source, 'default', 'a refused setting changed nothing');
  });
});

describe('attacks on renewal after expiry (curl as the EST peer)', () => {
  test('renewal of a revoked certificate (expired, inside the grace, same key) → 401 CERT_INVALID, nothing issued', async () => {
    const d = devices.revoked;
    const before = await certificates(orgA, d);
    const r = await curlReenroll(d.certPath, d.keyPath, await csrFor(d.keyPath, 'revoked-same'));
    assert.equal(r.status, 401, r.body);
    assert.equal(errorCode(r.body), 'CERT_INVALID');
    assert.deepEqual(await certificates(orgA, d), before);
  });

  test('renewal after expiry outside the grace period (organisation grace 0) → 403 RENEWAL_NEEDS_CLAIM, nothing issued, audited', async () => {
    const d = devices.strict;
    const before = await certificates(orgStrict, d);
    const r = await curlReenroll(d.certPath, d.keyPath, await csrFor(d.keyPath, 'strict-same'));
    assert.equal(r.status, 403, r.body);
    assert.equal(errorCode(r.body), 'RENEWAL_NEEDS_CLAIM');
    assert.doesNotMatch(r.body, /BEGIN CERTIFICATE|MII/);
    assert.deepEqual(await certificates(orgStrict, d), before);
    const audit = (await reenrollAudits()).at(-1);
    assert.equal(audit?.type, 'certificate.reenroll');
    assert.equal(audit?.result, 'failure');
    assert.equal(audit?.code, 'RENEWAL_NEEDS_CLAIM');
    assert.equal(audit?.tenantId, orgStrict.tenantId);
  });

  test('renewal inside the grace period with a different key → 403 RENEWAL_NEEDS_CLAIM, nothing issued', async () => {
    const d = devices.graceOk;
    const before = await certificates(orgA, d);
    const other = await newKeyFile('grace-other');
    const r = await curlReenroll(d.certPath, d.keyPath, await csrFor(other, 'grace-other'));
    assert.equal(r.status, 403, r.body);
    assert.equal(errorCode(r.body), 'RENEWAL_NEEDS_CLAIM');
    assert.deepEqual(await certificates(orgA, d), before);
  });

  /** A copy of org A's certificate (same serial and device id) signed by another CA the hub trusts. */
  async function lookAlike(victim: Device, name: string): Promise<{ certPath: string; keyPath: string; otherCa: Uint8Array }> {
    const original = parseCertificate(victim.der);
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const caSpki = pair.publicKey.export({ type: 'spki', format: 'der' });
    const signer: CertificateSigner = { algorithm: 'p256', sign: async (tbs) => sign('sha256', tbs, pair.privateKey) };
    const now = clock.now();
    // Another organisation's CA the hub trusts for device certificates (a factory kit sub-CA).
    const otherCa = await signCertificate(caTemplate({ subject: [['CN', 'org B factory kit']], spki: caSpki, serial: Buffer.from('0a0b0c0d0e0f1011', 'hex'), notBefore: new Date(now - DAY_MS), notAfter: new Date(now + DAY_MS), pathLen: 0 }), signer);
    const thief = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = await signCertificate(deviceLeafTemplate({
      issuerName: parseCertificate(otherCa).subject, issuerSpki: caSpki, deviceId: victim.deviceId, spki: thief.publicKey.export({ type: 'spki', format: 'der' }),
      serial: original.serial, notBefore: new Date(now - DAY_MS), notAfter: new Date(now + DAY_MS),
    }), signer);
    const certPath = join(t.dir, `${name}.pem`);
    const keyPath = join(t.dir, `${name}.key`);
    writeFileSync(certPath, toPem('CERTIFICATE', forged) + toPem('CERTIFICATE', otherCa));
    writeFileSync(keyPath, thief.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    return { certPath, keyPath, otherCa };
  }

  test("renewal with another tenant's certificate (a copy of org A's signed by another trusted CA, same serial and device id) → 401 CERT_INVALID", async () => {
    const victim = devices.graceOk;
    const { certPath, keyPath, otherCa } = await lookAlike(victim, 'forged');
    const trusted = t.hub.deviceCaCerts;
    t.hub.setDeviceTrust([...trusted, new X509Certificate(otherCa)]);
    try {
      const before = await certificates(orgA, victim);
      const r = await curlReenroll(certPath, keyPath, await csrFor(keyPath, 'thief'));
      assert.equal(r.status, 401, r.body);
      assert.equal(errorCode(r.body), 'CERT_INVALID');
      assert.deepEqual(await certificates(orgA, victim), before);
      // Refused by the hub's record check, not by TLS: the look-alike chained to a trusted CA.
      assert.match(String((await reenrollAudits()).at(-1)?.details?.reason), /differs from the one recorded/);
    } finally {
      t.hub.setDeviceTrust(trusted);
    }
  });

  test("attack: MQTT CONNECT with another tenant's look-alike certificate (same serial and device id, another trusted CA) → refused, nothing stored", async () => {
    const victim = devices.graceOk;
    const { certPath, keyPath, otherCa } = await lookAlike(victim, 'forged-mqtt');
    const trusted = t.hub.deviceCaCerts;
    t.hub.setDeviceTrust([...trusted, new X509Certificate(otherCa)]);
    try {
      const stored = await t.hub.store.telemetry.count(orgA.tenantId, victim.deviceId);
      const r = await mosquittoPub(t, { deviceId: victim.deviceId, certPath, keyPath }, `devices/${victim.deviceId}/telemetry`, 'from a look-alike');
      assert.notEqual(r.status, 0, 'the broker must refuse the look-alike');
      assert.equal(await t.hub.store.telemetry.count(orgA.tenantId, victim.deviceId), stored);
    } finally {
      t.hub.setDeviceTrust(trusted);
    }
  });

  test("another organisation's owner cannot ask org A's device to renew (404, no audit, no command)", async () => {
    const commands: string[] = [];
    const unsubscribe = t.hub.bus.subscribe('device.command', (e) => void commands.push(e.deviceId));
    try {
      const audits = await t.hub.store.audit.count();
      const r = await t.api('POST', `/api/v1/devices/${devices.graceOk.deviceId}/renew`, {}, orgB.token);
      assert.equal(r.status, 404);
      assert.equal(await t.hub.store.audit.count(), audits);
      assert.deepEqual(commands, []);
    } finally {
      unsubscribe();
    }
  });

  test('control: inside the grace period with the SAME key (curl --cert expired) → 200, same key certified, MQTT works with the renewed certificate, audited as grace', async () => {
    const d = devices.graceOk;
    const r = await curlReenroll(d.certPath, d.keyPath, await csrFor(d.keyPath, 'grace-same'));
    assert.equal(r.status, 200, r.body);
    const [leaf] = decodeCertsOnly(Buffer.from(r.body.replace(/\s+/g, ''), 'base64'));
    assert.ok(leaf !== undefined);
    const renewed = new X509Certificate(leaf);
    const old = new X509Certificate(d.der);
    assert.ok(renewed.publicKey.equals(old.publicKey), 'the same key');
    assert.equal(renewed.subject, old.subject);
    assert.ok(Date.parse(renewed.validTo) > Date.now(), 'valid again');
    const audit = (await reenrollAudits()).at(-1);
    assert.equal(audit?.type, 'certificate.issue');
    assert.equal(audit?.details?.renewal, 'grace');
    assert.equal(audit?.details?.previousSerial, d.serial);
    const renewedPath = join(t.dir, 'grace-ok-renewed.pem');
    writeFileSync(renewedPath, renewed.toString());
    const pub = await mosquittoPub(t, { deviceId: d.deviceId, certPath: renewedPath, keyPath: d.keyPath }, `devices/${d.deviceId}/telemetry`, 'renewed');
    assert.equal(pub.status, 0, pub.stderr);
    assert.equal(await t.hub.store.telemetry.count(orgA.tenantId, d.deviceId), 1);
  });
});

describe('early renewal for a whole organisation (after a device-CA rotation)', () => {
  test('the hub asks every active device of one organisation, once per interval; revoked and other tenants are skipped', async () => {
    const events: Array<{ tenantId: string; deviceId: string; topic: string; payload: Buffer }> = [];
    const unsubscribe = t.hub.bus.subscribe('device.command', (e) => void events.push(e));
    try {
      const actor = { tenantId: orgA.tenantId, actor: 'hub', session: null, source: 'hub' };
      const first = await t.hub.renewal.requestRenewalAll(actor, 'device-ca-rotation');
      assert.deepEqual(first, { requested: 1, rateLimited: 0 }, 'org A has one active device (the other is revoked)');
      assert.deepEqual(events.map((e) => [e.tenantId, e.deviceId, e.topic]), [[orgA.tenantId, devices.graceOk.deviceId, RENEW_COMMAND]]);
      const command = parseRenewCommand(events[0]!.payload);
      assert.equal(command.reason, 'device-ca-rotation');
      const audit = (await t.hub.store.audit.list({ limit: 10_000 })).filter((a) => a.type === 'device.renew.bulk').at(-1);
      assert.deepEqual([audit?.actor, audit?.details?.commandId, audit?.details?.deviceId], ['hub', command.id, devices.graceOk.deviceId]);
      const second = await t.hub.renewal.requestRenewalAll(actor, 'device-ca-rotation');
      assert.deepEqual(second, { requested: 0, rateLimited: 1 });
      assert.equal(events.length, 1, 'a rate-limited device gets no second command');
    } finally {
      unsubscribe();
    }
  });
});
