/**
 * `fleetkey device run` with a certificate that expired while the device was offline (ADR 0025),
 * against a real hub: the certificates are expired for real (issued while the hub clock stood six
 * days back, five-day validity), so OpenSSL in the agent's and the hub's TLS stacks agrees.
 * The owner's grace is set with the CLI (`fleetkey devices renewal-grace`).
 *
 * - Inside the default 30-day grace the agent renews with the SAME key before its first
 *   connection, then publishes; the hub stores the telemetry.
 * - The same with a key inside a PKCS#11 token (SoftHSM2): "the same key" is the same token key,
 *   used for the TLS proof and the CSR through the token; no key ever leaves it.
 * - With the organisation's grace set to 0 the agent stops with RENEWAL_NEEDS_CLAIM (exit 4), the
 *   state directory is unchanged and nothing is published.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { FleetkeyError, ManualClock } from '@fleetkey/protocol';
import { enroll, renew, Pkcs11KeyStore, type KeyStore } from '@fleetkey/device';
import { loadConfig, openAdminContext, startHub, type RunningHub } from '@fleetkey/hub';
import { apiCall } from '../helpers/api.js';
import { runCli, type CliRun } from '../helpers/cli.js';
import { cliTokens, type CliTokens } from '../helpers/softhsm.js';

const DAY = 86_400_000;
const PASSWORD = 'renewal device-run password';
let dir: string;
let hub: RunningHub;
const clock = new ManualClock(Date.now() - 6 * DAY);

/** The CLI with a hard time limit (killed by its own pid). */
const fleetkey = (args: string[], stdin: string, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliRun> => runCli(args, stdin, env, timeoutMs);

interface Org { email: string; otpauthUri: string; tenantId: string; deviceDir: string; deviceId: string }

async function orgWithDevice(name: string, keyStore?: KeyStore): Promise<Org> {
  const email = `${name}@renew-run.example`;
  const admin = await openAdminContext(hub.config, clock);
  const created = await admin.createOrganisationWithOwner({ orgName: name, email, password: PASSWORD });
  await admin.close();
  const totp = OTPAuth.URI.parse(created.otpauthUri).generate({ timestamp: clock.now() });
  const session = await apiCall(hub.url, hub.rootCertPem, 'POST', '/api/v1/sessions', { email, password: PASSWORD, totp });
  const claim = await apiCall(hub.url, hub.rootCertPem, 'POST', '/api/v1/claim-tokens', {}, (session.body as { token: string }).token);
  const deviceDir = join(dir, name);
  const device = await enroll({ hubUrl: hub.url, pin: hub.pin, token: (claim.body as { token: string }).token, stateDir: deviceDir, clock, ...(keyStore === undefined ? {} : { keyStore }) });
  return { email, otpauthUri: created.otpauthUri, tenantId: created.tenantId, deviceDir, deviceId: device.deviceId };
}

let lenient: Org;
let strict: Org;
let chip: Org;
let tokens: CliTokens;
let strictSession: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetkey-renew-run-'));
  hub = await startHub({
    config: loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, { FLEETKEY_DEVICE_CERT_VALIDITY_DAYS: '5', FLEETKEY_TLS_CERT_VALIDITY_HOURS: '2160' }),
    clock, logger: pino({ level: 'silent' }),
  });
  tokens = await cliTokens(['renewal-chip']);
  chip = await orgWithDevice('chip', new Pkcs11KeyStore({ uri: tokens.fileUri('renewal-chip') }));
  lenient = await orgWithDevice('lenient');
  strict = await orgWithDevice('strict');
  clock.set(Date.now()); // six days later: both device certificates expired a day ago
  // The strict organisation's owner turns the grace off with the CLI.
  const sessionFile = join(dir, 'strict-session.json');
  strictSession = sessionFile;
  const totp = OTPAuth.URI.parse(strict.otpauthUri).generate({ timestamp: clock.now() });
  const login = await fleetkey(['login', '--hub', hub.url, '--pin', hub.pin, '--email', strict.email, '--session-file', sessionFile], `${PASSWORD}\n${totp}\n`);
  assert.equal(login.code, 0, login.stderr);
  const grace = await fleetkey(['devices', 'renewal-grace', '--days', '0', '--session-file', sessionFile, '--json'], '');
  assert.equal(grace.code, 0, grace.stderr);
  assert.deepEqual(JSON.parse(grace.stdout).graceDays, 0);
});
after(async () => {
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(tokens.dir, { recursive: true, force: true });
});

test('an agent offline past expiry renews with the same key inside the grace, then publishes', async () => {
  const before = new X509Certificate(readFileSync(join(lenient.deviceDir, 'cert.pem')));
  assert.ok(Date.parse(before.validTo) < Date.now(), 'expired for real');
  const run = await fleetkey(['device', 'run', '--state-dir', lenient.deviceDir, '--stdin', '--hub-mqtt', `127.0.0.1:${hub.mqttPort}`], 'after the outage\n');
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^renewal started expired$/m);
  assert.match(run.stdout, /^renewal done /m);
  const after = new X509Certificate(readFileSync(join(lenient.deviceDir, 'cert.pem')));
  assert.notEqual(after.serialNumber, before.serialNumber);
  assert.ok(after.publicKey.equals(before.publicKey), 'the same key was certified again');
  assert.equal(await hub.store.telemetry.count(lenient.tenantId, lenient.deviceId), 1);
  const status = await fleetkey(['device', 'status', '--state-dir', lenient.deviceDir], '');
  assert.match(status.stdout, /: valid, renewal due at \d{4}-/);
});

test('renewal after expiry outside the grace period: the agent stops with RENEWAL_NEEDS_CLAIM, state unchanged, nothing published', async () => {
  const files = ['identity.json', 'cert.pem', 'chain.pem'].map((f) => join(strict.deviceDir, f));
  const snapshot = files.map((f) => readFileSync(f));
  const run = await fleetkey(['device', 'run', '--state-dir', strict.deviceDir, '--stdin', '--hub-mqtt', `127.0.0.1:${hub.mqttPort}`], 'must not arrive\n');
  assert.equal(run.code, 4, run.stdout + run.stderr);
  assert.match(run.stderr, /error RENEWAL_NEEDS_CLAIM/);
  assert.deepEqual(files.map((f) => readFileSync(f)), snapshot);
  assert.equal(await hub.store.telemetry.count(strict.tenantId, strict.deviceId), 0);
  assert.equal((await hub.store.devices.certificates(strict.tenantId, strict.deviceId)).length, 1, 'nothing issued');
});

test('a chip-held key (PKCS#11, SoftHSM2) offline past expiry renews as the same token key inside the grace, then publishes', async () => {
  const before = new X509Certificate(readFileSync(join(chip.deviceDir, 'cert.pem')));
  assert.ok(Date.parse(before.validTo) < Date.now(), 'expired for real');
  const run = await fleetkey(['device', 'run', '--state-dir', chip.deviceDir, '--stdin', '--hub-mqtt', `127.0.0.1:${hub.mqttPort}`], 'chip after the outage\n', tokens.env);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^renewal done /m);
  const after = new X509Certificate(readFileSync(join(chip.deviceDir, 'cert.pem')));
  assert.notEqual(after.serialNumber, before.serialNumber);
  assert.ok(after.publicKey.equals(before.publicKey), 'the same token key was certified again');
  const identity = JSON.parse(readFileSync(join(chip.deviceDir, 'identity.json'), 'utf8')) as { keyStore: { kind: string } };
  assert.equal(identity.keyStore.kind, 'pkcs11');
  assert.equal(await hub.store.telemetry.count(chip.tenantId, chip.deviceId), 1);
});

test('owner CLI: devices renew ID publishes the renew command; a repeat is RATE_LIMITED (exit 5); --all counts it as rate-limited', async () => {
  const events: string[] = [];
  const unsubscribe = hub.bus.subscribe('device.command', (e) => void events.push(`${e.deviceId} ${e.topic}`));
  try {
    const asked = await fleetkey(['devices', 'renew', strict.deviceId, '--reason', 'device-ca-rotation', '--session-file', strictSession, '--json'], '');
    assert.equal(asked.code, 0, asked.stderr);
    assert.equal(JSON.parse(asked.stdout).topic, `devices/${strict.deviceId}/commands/fleetkey/renew`);
    const again = await fleetkey(['devices', 'renew', strict.deviceId, '--session-file', strictSession], '');
    assert.equal(again.code, 5, again.stdout + again.stderr);
    assert.match(again.stderr, /error RATE_LIMITED/);
    const all = await fleetkey(['devices', 'renew', '--all', '--session-file', strictSession, '--json'], '');
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(JSON.parse(all.stdout), { requested: 0, rateLimited: 1 });
    assert.deepEqual(events, [`${strict.deviceId} fleetkey/renew`], 'exactly one command was published');
  } finally {
    unsubscribe();
  }
});

test('rollback against the real hub: a new certificate its TLS stack refuses (not yet valid: the hub clock runs an hour ahead) fails the proof; the old identity stays in use and keeps working', async () => {
  const files = ['identity.json', 'cert.pem', 'chain.pem'].map((f) => join(lenient.deviceDir, f));
  const snapshot = files.map((f) => readFileSync(f));
  const current = new X509Certificate(readFileSync(files[1]!)).serialNumber.toLowerCase();
  const certificatesBefore = (await hub.store.devices.certificates(lenient.tenantId, lenient.deviceId)).length;
  const ahead = Date.now() + 3_600_000;
  clock.set(ahead);
  try {
    await assert.rejects(renew({ stateDir: lenient.deviceDir, clock: new ManualClock(ahead) }), (e: unknown) => e instanceof FleetkeyError && e.code === 'RENEWAL_PROOF_FAILED'
      && e.cause instanceof FleetkeyError && e.cause.code === 'CERT_INVALID'); // the hub refused the new certificate
  } finally {
    clock.set(Date.now());
  }
  assert.deepEqual(files.map((f) => readFileSync(f)), snapshot, 'identity.json, cert.pem and chain.pem unchanged');
  const stored = await hub.store.devices.certificates(lenient.tenantId, lenient.deviceId);
  assert.equal(stored.length, certificatesBefore + 1, 'the hub did issue the (unproven) certificate');
  assert.equal(stored.find((c) => c.serial === current)?.revokedAt, null, 'the old certificate was not retired');
  const run = await fleetkey(['device', 'run', '--state-dir', lenient.deviceDir, '--stdin', '--hub-mqtt', `127.0.0.1:${hub.mqttPort}`], 'still the old identity\n');
  assert.equal(run.code, 0, run.stderr);
  assert.equal(await hub.store.telemetry.count(lenient.tenantId, lenient.deviceId), 2);
});
