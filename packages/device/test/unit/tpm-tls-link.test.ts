/**
 * TLS set-up of TPM keys (ADR 0028) without a resource manager: which TCTIs may link, the engine
 * environment of the process (one module and one store per process), the engine identifier,
 * and that a key on bare swtpm is created without the TLS capability (no half-made token).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';
import { TpmKeyStore } from '../../src/keystore/tpm/tpm-keystore.js';
import { canLinkForTls, configureEngineEnvironment, engineKeyIdentifier, linkForTls, TPM2_PKCS11_MODULE } from '../../src/keystore/tpm/tls-link.js';
import { hasTlsKeyCapability } from '../../src/keystore/types.js';
import { startSwtpm } from '../helpers/swtpm.js';

const isKeystoreError = (err: unknown): boolean => err instanceof FleetkeyError && err.code === 'KEYSTORE_ERROR';

test('only resource-manager TCTIs can link keys for TLS', () => {
  assert.equal(canLinkForTls('device:/dev/tpmrm0'), true);
  assert.equal(canLinkForTls('tabrmd:bus_name=com.intel.tss2.Tabrmd,bus_type=session'), true);
  assert.equal(canLinkForTls('device:/dev/tpm0'), false, 'the raw device has no resource manager');
  assert.equal(canLinkForTls('swtpm:host=127.0.0.1,port=2321'), false);
  assert.equal(canLinkForTls('mssim:host=127.0.0.1,port=2321'), false);
});

test('engine environment: set for a fresh process, refused when another module or store is configured, unchanged on refusal', () => {
  const env: NodeJS.ProcessEnv = {};
  configureEngineEnvironment('device:/dev/tpmrm0', '/var/lib/fleetkey/tpm', env);
  assert.equal(env.PKCS11_MODULE_PATH, TPM2_PKCS11_MODULE);
  assert.equal(env.TPM2_PKCS11_STORE, '/var/lib/fleetkey/tpm/pkcs11');
  assert.equal(env.TPM2_PKCS11_TCTI, 'device:/dev/tpmrm0');
  assert.equal(env.TPM2_PKCS11_BACKEND, 'esysdb');
  configureEngineEnvironment('device:/dev/tpmrm0', '/var/lib/fleetkey/tpm', env); // idempotent
  const softhsm: NodeJS.ProcessEnv = { PKCS11_MODULE_PATH: '/usr/lib/softhsm/libsofthsm2.so' };
  assert.throws(() => configureEngineEnvironment('device:/dev/tpmrm0', '/var/lib/fleetkey/tpm', softhsm), isKeystoreError);
  assert.deepEqual(softhsm, { PKCS11_MODULE_PATH: '/usr/lib/softhsm/libsofthsm2.so' });
  assert.throws(() => configureEngineEnvironment('device:/dev/tpmrm0', '/other/tpm', env), isKeystoreError, 'a second store in the same process');
});

test('the engine identifier names the key and the PIN file, never a PIN value', () => {
  const id = engineKeyIdentifier('/var/lib/fleetkey/tpm', 'device-1');
  assert.equal(id, 'pkcs11:token=fleetkey-tpm;object=device-1;type=private?pin-source=file:/var/lib/fleetkey/tpm/pkcs11/user.pin');
  assert.doesNotMatch(id, /pin-value/);
});

const tpm = await startSwtpm();
after(() => tpm.stop());

test('bare swtpm: keys are created without the TLS capability, and linking there is refused before touching the TPM', async () => {
  const directory = await fs.mkdtemp(join(tmpdir(), 'fleetkey-tpmtls-'));
  try {
    const store = new TpmKeyStore({ directory, tcti: tpm.tcti });
    const key = await store.create('plain-1', 'p256');
    assert.equal(hasTlsKeyCapability(key), false);
    assert.equal(hasTlsKeyCapability(await store.open('plain-1')), false);
    await assert.rejects(linkForTls(tpm.tcti, directory, 'plain-1', { pub: join(directory, 'plain-1.pub'), priv: join(directory, 'plain-1.priv') }), isKeystoreError);
    assert.equal(existsSync(join(directory, 'pkcs11')), false, 'no token store was made');
  } finally {
    await fs.rm(directory, { recursive: true, force: true });
  }
});
