/**
 * Keys in a PKCS#11 token, end to end (issue 5, ADR 0024): a device enrolls with its key
 * generated inside SoftHSM2, then talks MQTT over mutual TLS to the hub's broker with that key
 * used through OpenSSL's pkcs11 engine, and its telemetry is stored. Once through the CLI
 * (`device enroll --keystore pkcs11:URI`, `device run`), once through the SDK in this process.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rm } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { connect, enroll, Pkcs11KeyStore } from '@fleetkey/device';
import { loadConfig, openAdminContext, startHub, type RunningHub } from '@fleetkey/hub';
import { apiCall } from '../helpers/api.js';
import { runCli } from '../helpers/cli.js';
import { cliTokens, USER_PIN, type CliTokens } from '../helpers/softhsm.js';

let dir: string;
let hub: RunningHub;
let tokens: CliTokens;
let ownerToken: string;

const api = async (method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }> =>
  apiCall(hub.url, hub.rootCertPem, method, path, body, token);

before(async () => {
  tokens = await cliTokens(['cli-device', 'sdk-device']);
  dir = mkdtempSync(join(tmpdir(), 'fleetkey-p11-'));
  hub = await startHub({ config: loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, {}), logger: pino({ level: 'silent' }) });
  const admin = await openAdminContext(hub.config);
  const created = await admin.createOrganisationWithOwner({ orgName: 'Chips', email: 'o@chips.example', password: 'pkcs11 interop password' });
  await admin.close();
  const session = await api('POST', '/api/v1/sessions', { email: 'o@chips.example', password: 'pkcs11 interop password', totp: OTPAuth.URI.parse(created.otpauthUri).generate() });
  assert.equal(session.status, 201);
  ownerToken = session.body.token as string;
});
after(async () => {
  await hub.close();
  await rm(dir, { recursive: true, force: true });
  await rm(tokens.dir, { recursive: true, force: true });
});

async function claimToken(): Promise<string> {
  const claim = await api('POST', '/api/v1/claim-tokens', {}, ownerToken);
  assert.equal(claim.status, 201, JSON.stringify(claim.body));
  return claim.body.token as string;
}

async function storedTelemetry(deviceId: string): Promise<unknown[]> {
  const page = await api('GET', `/api/v1/devices/${deviceId}/telemetry?limit=50`, undefined, ownerToken);
  assert.equal(page.status, 200, JSON.stringify(page.body));
  return page.body.items as unknown[];
}

async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name));
}

test('CLI: enroll --keystore pkcs11:URI keeps the key in the token, and the agent publishes over mTLS with it', async () => {
  const stateDir = join(dir, 'cli-device');
  const uri = tokens.fileUri('cli-device');
  const enrolled = await runCli(['device', 'enroll', '--hub', hub.url, '--pin', hub.pin, '--token', '-', '--state-dir', stateDir, '--keystore', uri, '--json'], `${await claimToken()}\n`, tokens.env);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  const identity = JSON.parse(await readFile(join(stateDir, 'identity.json'), 'utf8'));
  assert.equal(identity.keyStore.kind, 'pkcs11');
  assert.equal(identity.keyStore.locator, uri, 'identity.json records the store URI so run/renew find the key');
  for (const file of await filesUnder(stateDir)) {
    const text = await readFile(file, 'utf8');
    assert.doesNotMatch(text, /PRIVATE KEY/, `${file} holds no private key`);
    assert.ok(!text.includes(USER_PIN), `${file} holds no PIN`);
  }
  const run = await runCli(['device', 'run', '--state-dir', stateDir, '--stdin', '--hub-mqtt', `127.0.0.1:${hub.mqttPort}`], '{"t":1}\n{"t":2}\n{"t":3}\n', tokens.env);
  assert.equal(run.code, 0, run.stderr);
  assert.equal((await storedTelemetry(identity.deviceId)).length, 3, 'all three lines were stored by the hub');
});

test('SDK: enroll with a Pkcs11KeyStore (PIN from the environment), connect in-process through the engine, publish', async () => {
  const stateDir = join(dir, 'sdk-device');
  const env = { FLEETKEY_SDK_PIN: USER_PIN };
  const keyStore = new Pkcs11KeyStore({ uri: tokens.envUri('sdk-device', 'FLEETKEY_SDK_PIN'), env });
  const identity = await enroll({ hubUrl: hub.url, pin: hub.pin, token: await claimToken(), stateDir, keyStore, keyAlgorithm: 'p384' });
  assert.equal(identity.keyStore.kind, 'pkcs11');
  const device = await api('GET', `/api/v1/devices/${identity.deviceId}`, undefined, ownerToken);
  assert.equal(device.body.keyProtection, 'pkcs11', 'the key store kind is recorded as device-reported protection (ADR 0027)');
  const client = await connect({ stateDir, keyStore, mqttHost: '127.0.0.1', mqttPort: hub.mqttPort });
  for (let i = 0; i < 5; i++) await client.publish(`devices/${identity.deviceId}/telemetry`, JSON.stringify({ i }));
  assert.equal(await client.flush(15_000), true, 'every message acknowledged over the token-key mTLS session');
  await client.close();
  assert.equal((await storedTelemetry(identity.deviceId)).length, 5);
});
