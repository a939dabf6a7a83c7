/**
 * TLS with TPM keys, end to end (issue 5, ADR 0028): a device enrolls with a claim token and a
 * key created inside a real swtpm (behind tpm2-abrmd, as /dev/tpmrm0 on a device), the key is
 * linked into a tpm2-pkcs11 token, and the device talks MQTT over mutual TLS to the hub's broker
 * with that key through OpenSSL's pkcs11 engine; the hub stores its telemetry. Once through the
 * CLI (`device enroll --keystore tpm:TCTI`, `device run`), once through the SDK in this process.
 * mosquitto_pub uses the same TPM key through `--tls-engine pkcs11 --keyform engine`, reaching
 * the token through p11-kit-client.so and a p11-kit server (ADR 0028). The token shows the key
 * as sensitive and never extractable, and refuses to export it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pkcs11js from 'pkcs11js';
import { FleetkeyError } from '@fleetkey/protocol';
import { connect, enroll, Pkcs11KeyStore, renew, TpmKeyStore } from '@fleetkey/device';
import type { RunningHub } from '@fleetkey/hub';
import { startOwnedHub, type OwnedHub } from '../helpers/owned-hub.js';
import { runCli } from '../helpers/cli.js';
import { startManagedTpm, startP11KitServer, type ManagedTpm } from '../helpers/tpm.js';

const TPM2_PKCS11 = '/usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1';
/** A CLI child must set up its own engine environment, not inherit this process's store. */
const FRESH_ENGINE_ENV = { PKCS11_MODULE_PATH: '', TPM2_PKCS11_STORE: '', TPM2_PKCS11_TCTI: '' };
let owned: OwnedHub;
let dir: string;
let hub: RunningHub;
let tpm: ManagedTpm;

// The interop assertions read the JSON bodies directly.
const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> =>
  owned.api(method, path, body) as Promise<{ status: number; body: any }>;
const claimToken = (): Promise<string> => owned.claimToken();
const storedTelemetry = (deviceId: string): Promise<unknown[]> => owned.storedTelemetry(deviceId);

before(async () => {
  tpm = await startManagedTpm();
  owned = await startOwnedHub('tpm-tls', 'Tpm');
  ({ dir, hub } = owned);
});
after(async () => {
  await owned.close();
  await tpm.stop();
});

async function assertNoPrivateKeyFiles(stateDir: string): Promise<void> {
  const entries = await readdir(stateDir, { recursive: true, withFileTypes: true });
  for (const entry of entries.filter((e) => e.isFile())) {
    const file = join(entry.parentPath ?? entry.path, entry.name);
    assert.doesNotMatch(await readFile(file, 'latin1'), /PRIVATE KEY/, `${file} holds no private key`);
  }
}

test('CLI: enroll --keystore tpm:TCTI links the TPM key into a token, and the agent publishes over mTLS with it', async () => {
  const stateDir = join(dir, 'cli-device');
  const spec = `tpm:${tpm.tcti}`;
  const enrolled = await runCli(['device', 'enroll', '--hub', hub.url, '--pin', hub.pin, '--token', '-', '--state-dir', stateDir, '--keystore', spec, '--json'], `${await claimToken()}\n`, FRESH_ENGINE_ENV);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  const identity = JSON.parse(await readFile(join(stateDir, 'identity.json'), 'utf8'));
  assert.deepEqual([identity.keyStore.kind, identity.keyStore.locator], ['tpm', tpm.tcti]);
  assert.equal((await stat(join(stateDir, 'tpm', 'pkcs11', 'user.pin'))).mode & 0o777, 0o600, 'the token PIN file is private');
  await assertNoPrivateKeyFiles(stateDir);
  const run = await runCli(['device', 'run', '--state-dir', stateDir, '--stdin', '--hub-mqtt', `127.0.0.1:${hub.mqttPort}`], '{"t":1}\n{"t":2}\n{"t":3}\n', FRESH_ENGINE_ENV);
  assert.equal(run.code, 0, run.stderr);
  assert.equal((await storedTelemetry(identity.deviceId)).length, 3, 'all three lines were stored by the hub');
});

/** Every message along an error's cause chain (the reason sits below the public error). */
function causes(err: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = err; e instanceof Error && messages.length < 8; e = e.cause) messages.push(e.message);
  return messages.join(' <- ');
}

/** mosquitto_pub to completion (async: the hub lives in this process), killed by pid after 30 s. */
function mosquittoPub(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('mosquitto_pub', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, output }); });
  });
}

test('mosquitto_pub: --tls-engine pkcs11 --keyform engine with the TPM key (via p11-kit server) publishes, and the hub stores it', async () => {
  const stateDir = join(dir, 'cli-device');
  const identity = JSON.parse(await readFile(join(stateDir, 'identity.json'), 'utf8'));
  const before = (await storedTelemetry(identity.deviceId)).length;
  const server = await startP11KitServer(tpm, join(stateDir, 'tpm', 'pkcs11'));
  const cwd = await mkdtemp(join(tmpdir(), 'fleetkey-mosq-tpm-'));
  try {
    await symlink(join(stateDir, 'tpm', 'pkcs11', 'user.pin'), join(cwd, 'user.pin'));
    // libp11 reads the PIN from pin-source relative to the working directory. mosquitto 2.0.11
    // checks that --key names a file before applying --keyform engine (fixed upstream in
    // eclipse-mosquitto/mosquitto#2827), so the URI has no '/' and an empty file carries its name.
    const key = `pkcs11:token=fleetkey-tpm;object=${identity.keyStore.label as string};type=private?pin-source=file:user.pin`;
    await writeFile(join(cwd, key), '');
    await writeFile(join(cwd, 'root.pem'), hub.rootCertPem);
    const env = { ...process.env, OPENSSL_ENGINES: '/usr/lib/x86_64-linux-gnu/engines-3', PKCS11_MODULE_PATH: '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so', P11_KIT_SERVER_ADDRESS: server.address };
    const pub = await mosquittoPub(['-h', '127.0.0.1', '-p', String(hub.mqttPort), '--cafile', 'root.pem', '--cert', join(stateDir, 'cert.pem'),
      '--tls-engine', 'pkcs11', '--keyform', 'engine', '--key', key, '-i', identity.deviceId, '-q', '1',
      '-t', `devices/${identity.deviceId as string}/telemetry`, '-m', '{"from":"mosquitto_pub"}'], cwd, env);
    assert.equal(pub.code, 0, pub.output);
  } finally {
    await server.stop();
    await rm(cwd, { recursive: true, force: true });
  }
  assert.equal((await storedTelemetry(identity.deviceId)).length, before + 1, 'the hub stored the mosquitto_pub message');
});

let sdkDevice: { stateDir: string; label: string; spki: Buffer } | undefined;

test('SDK: enroll with a TpmKeyStore, connect in-process through the pkcs11 engine and libtpm2-pkcs11, publish', async () => {
  const stateDir = join(dir, 'sdk-device');
  const keyStore = new TpmKeyStore({ directory: join(stateDir, 'tpm'), tcti: tpm.tcti });
  const identity = await enroll({ hubUrl: hub.url, pin: hub.pin, token: await claimToken(), stateDir, keyStore, keyAlgorithm: 'p256' });
  assert.equal(identity.keyStore.kind, 'tpm');
  const client = await connect({ stateDir, keyStore, mqttHost: '127.0.0.1', mqttPort: hub.mqttPort });
  for (let i = 0; i < 5; i++) await client.publish(`devices/${identity.deviceId}/telemetry`, JSON.stringify({ i }));
  assert.equal(await client.flush(20_000), true, 'every message acknowledged over the TPM-key mTLS session');
  await client.close();
  assert.equal((await storedTelemetry(identity.deviceId)).length, 5);
  const spki = await (await keyStore.open(identity.keyStore.label)).publicKeySpki();
  sdkDevice = { stateDir, label: identity.keyStore.label, spki };
});

test('key export through the token is refused: CKA_VALUE of the linked TPM key is sensitive, and the token vouches for it', async () => {
  assert.ok(sdkDevice !== undefined, 'runs after the SDK test');
  const pinFile = join(sdkDevice.stateDir, 'tpm', 'pkcs11', 'user.pin');
  const uri = `pkcs11:token=fleetkey-tpm?module-path=${TPM2_PKCS11}&pin-source=file:${pinFile}`;
  const viaToken = await new Pkcs11KeyStore({ uri }).open(sdkDevice.label); // refuses keys that are or were extractable
  assert.ok((await viaToken.publicKeySpki()).equals(sdkDevice.spki), 'the token holds the very key the TPM store made');
  const p11 = new pkcs11js.PKCS11();
  p11.load(TPM2_PKCS11);
  try {
    p11.C_Initialize();
  } catch (err) {
    assert.match((err as Error).message, /CKR_CRYPTOKI_ALREADY_INITIALIZED/); // the engine and the store share the module
  }
  const [slot] = p11.C_GetSlotList(true);
  assert.ok(slot !== undefined);
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    try {
      p11.C_Login(session, pkcs11js.CKU_USER, await readFile(pinFile, 'utf8'));
    } catch (err) {
      assert.match((err as Error).message, /CKR_USER_ALREADY_LOGGED_IN/);
    }
    p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_LABEL, value: sdkDevice.label }]);
    const [key] = p11.C_FindObjects(session, 1);
    p11.C_FindObjectsFinal(session);
    assert.ok(key !== undefined, 'the linked key is on the token');
    const [extractable] = p11.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_EXTRACTABLE }]);
    assert.equal((extractable?.value as Buffer)[0], 0, 'CKA_EXTRACTABLE is false');
    // tpm2-pkcs11 has no CKA_VALUE at all: the token holds only the TPM-wrapped blob (PKCS#11 v2.40 §5.7).
    assert.throws(() => p11.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }]), /CKR_ATTRIBUTE_TYPE_INVALID/);
  } finally {
    p11.C_CloseSession(session);
  }
});

test('SDK: renew over mTLS with the TPM key in this process keeps the chip key (proven on a fresh connection here), and a fresh agent process publishes with the renewed certificate', async () => {
  assert.ok(sdkDevice !== undefined, 'runs after the SDK test');
  const { stateDir } = sdkDevice;
  const keyStore = new TpmKeyStore({ directory: join(stateDir, 'tpm'), tcti: tpm.tcti });
  const before = await readFile(join(stateDir, 'cert.pem'), 'utf8');
  const renewed = await renew({ stateDir, keyStore });
  // ADR 0025/0028: a TPM key is renewed as the same key (a new one would need a process restart
  // for TLS, so its proof could not pass here); renew() proved it on a fresh mTLS connection.
  assert.equal(renewed.keyStore.label, sdkDevice.label, 'the same TPM key');
  assert.equal(renewed.sameKey, true);
  assert.notEqual(renewed.serial, renewed.previousSerial, 'a new certificate');
  assert.notEqual(await readFile(join(stateDir, 'cert.pem'), 'utf8'), before, 'cert.pem holds the renewed certificate');
  // A key linked after this process loaded libtpm2-pkcs11 is still refused for TLS with a clear reason.
  const late = await keyStore.create('late-linked', 'p256');
  assert.throws(() => (late as unknown as { tlsKeyOptions(): unknown }).tlsKeyOptions(),
    (err: unknown) => err instanceof FleetkeyError && err.code === 'KEYSTORE_ERROR' && /restart the process/.test(causes(err)));
  const run = await runCli(['device', 'run', '--state-dir', stateDir, '--stdin', '--hub-mqtt', `127.0.0.1:${hub.mqttPort}`], '{"after":"renew"}\n', FRESH_ENGINE_ENV);
  assert.equal(run.code, 0, run.stderr);
  assert.equal((await storedTelemetry(renewed.deviceId)).length, 6, 'the fresh process published over the renewed TPM key');
});
