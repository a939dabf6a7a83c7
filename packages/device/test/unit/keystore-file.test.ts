import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { FleetkeyError } from '@fleetkey/protocol';
import { FileKeyStore } from '../../src/keystore/file/file-keystore.js';
import { openKeyStore } from '../../src/keystore/registry.js';
import { hasTlsKeyCapability } from '../../src/keystore/types.js';
import { runKeyStoreContract } from './keystore.contract.js';

async function tempDir(): Promise<string> {
  return fs.mkdtemp(join(tmpdir(), 'fleetkey-keystore-'));
}

runKeyStoreContract('file', async () => new FileKeyStore({ directory: join(await tempDir(), 'keys') }));

function isKeystoreError(err: unknown): boolean {
  return err instanceof FleetkeyError && err.code === 'KEYSTORE_ERROR';
}

test('file key store writes the key with mode 0600 in a 0700 directory, as PKCS#8 PEM', async () => {
  const dir = join(await tempDir(), 'keys');
  await new FileKeyStore({ directory: dir }).create('device-1', 'p256');
  const stat = await fs.stat(join(dir, 'device-1.key.pem'));
  assert.equal(stat.mode & 0o777, 0o600);
  assert.equal((await fs.stat(dir)).mode & 0o777, 0o700);
  assert.match(await fs.readFile(join(dir, 'device-1.key.pem'), 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
  assert.deepEqual((await fs.readdir(dir)).sort(), ['device-1.key.pem'], 'no temporary file is left behind');
});

test('a key file made group/other readable (0644) is refused, because the key may have been copied', async () => {
  const dir = join(await tempDir(), 'keys');
  const store = new FileKeyStore({ directory: dir });
  await store.create('device-1', 'p256');
  await fs.chmod(join(dir, 'device-1.key.pem'), 0o644);
  await assert.rejects(store.open('device-1'), (err: unknown) => isKeystoreError(err) && /mode 644/.test(String((err as Error).cause)));
});

test('a key file replaced by a symbolic link is refused (no following links to other keys)', async () => {
  const dir = join(await tempDir(), 'keys');
  const store = new FileKeyStore({ directory: dir });
  await store.create('device-1', 'p256');
  await fs.symlink(join(dir, 'device-1.key.pem'), join(dir, 'device-2.key.pem'));
  await assert.rejects(store.open('device-2'), isKeystoreError);
});

test('a file that is not a private key is refused with KEYSTORE_ERROR', async () => {
  const dir = join(await tempDir(), 'keys');
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.writeFile(join(dir, 'junk.key.pem'), 'not a key', { mode: 0o600 });
  await assert.rejects(new FileKeyStore({ directory: dir }).open('junk'), isKeystoreError);
});

test('file key handles offer the TLS key capability with the PEM key', async () => {
  const handle = await new FileKeyStore({ directory: join(await tempDir(), 'keys') }).create('tls', 'p256');
  assert.ok(hasTlsKeyCapability(handle));
  const options = handle.tlsKeyOptions();
  assert.ok('key' in options && String(options.key).includes('BEGIN PRIVATE KEY'));
});

test('the registry opens the file kind under <stateDir>/keys and refuses unknown kinds', async () => {
  const stateDir = await tempDir();
  const store = openKeyStore('file', { stateDir });
  assert.equal(store.kind, 'file');
  await store.create('device-1', 'ed25519');
  await fs.access(join(stateDir, 'keys', 'device-1.key.pem'));
  assert.throws(() => openKeyStore('pkcs11-typo', { stateDir }), isKeystoreError);
  assert.throws(() => openKeyStore('__proto__', { stateDir }), isKeystoreError);
});
