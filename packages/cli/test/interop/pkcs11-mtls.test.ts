/**
 * Keys in a PKCS#11 token, end to end (issue 5, ADR 0024): a device enrolls with its key
 * generated inside SoftHSM2, then talks MQTT over mutual TLS to the hub's broker with that key
 * used through OpenSSL's pkcs11 engine, and its telemetry is stored. Once through the CLI
 * (`device enroll --keystore pkcs11:URI`, `device run`), once through the SDK in this process.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, enroll, Pkcs11KeyStore } from '@fleetkey/device';
import type { RunningHub } from '@fleetkey/hub';
import { startOwnedHub, type OwnedHub } from '../helpers/owned-hub.js';
import { runCli } from '../helpers/cli.js';
import { cliTokens, USER_PIN, type CliTokens } from '../helpers/softhsm.js';

let owned: OwnedHub;
let dir: string;
let hub: RunningHub;
let tokens: CliTokens;

// The interop assertions read the JSON bodies directly.
const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> =>
  owned.api(method, path, body) as Promise<{ status: number; body: any }>;
const claimToken = (): Promise<string> => owned.claimToken();
const storedTelemetry = (deviceId: string): Promise<unknown[]> => owned.storedTelemetry(deviceId);

before(async () => {
  tokens = await cliTokens(['cli-device', 'sdk-device']);
  owned = await startOwnedHub('p11', 'Chips');
  ({ dir, hub } = owned);
});
after(async () => {
  await owned.close();
  await rm(tokens.dir, { recursive: true, force: true });
});

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
  const device = await api('GET', `/api/v1/devices/${identity.deviceId}`);
  assert.equal(device.body.keyProtection, 'pkcs11', 'the key store kind is recorded as device-reported protection (ADR 0027)');
  const client = await connect({ stateDir, keyStore, mqttHost: '127.0.0.1', mqttPort: hub.mqttPort });
  for (let i = 0; i < 5; i++) await client.publish(`devices/${identity.deviceId}/telemetry`, JSON.stringify({ i }));
  assert.equal(await client.flush(15_000), true, 'every message acknowledged over the token-key mTLS session');
  await client.close();
  assert.equal((await storedTelemetry(identity.deviceId)).length, 5);
});
