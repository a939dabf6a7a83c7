/**
 * The KeyStore contract: every key store kind runs this suite unchanged.
 *
 * A kind that cannot hold some algorithm (e.g. a TPM and Ed25519) names it in `unsupported` with
 * the reason; for those the contract asserts the refusal (KEYSTORE_ERROR, nothing created) instead.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { FleetkeyError, KEY_ALGORITHMS, type KeyAlgorithm } from '@fleetkey/protocol';
import { digestFor } from '../../src/keystore/algorithms.js';
import type { KeyStore } from '../../src/keystore/types.js';

/** What a `tryExportPrivateKey` hook throws when the device itself refused the export. */
export class ExportRefused extends Error {}

export interface KeyStoreContractOptions {
  /** Algorithms this kind does not support, with the reason: `create` must refuse them. */
  readonly unsupported?: Partial<Record<KeyAlgorithm, string>>;
  /**
   * Hardware kinds: tries to get the private key of `label` out of the store with the kind's
   * own native means (PKCS#11 C_GetAttributeValue CKA_VALUE, TPM2_Duplicate, …). The contract
   * expects ExportRefused (the device said no); resolving means the key left the store, and
   * any other error means the attempt was not made properly.
   */
  readonly tryExportPrivateKey?: (store: KeyStore, label: string) => Promise<unknown>;
}

function isKeystoreError(err: unknown): boolean {
  return err instanceof FleetkeyError && err.code === 'KEYSTORE_ERROR';
}

function verifies(spki: Buffer, algorithm: KeyAlgorithm, data: Buffer, signature: Buffer): boolean {
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  return verify(digestFor(algorithm), data, { key, dsaEncoding: 'der' }, signature);
}

let labelCounter = 0;
function freshLabel(): string {
  labelCounter += 1;
  return `contract-${process.pid}-${labelCounter}`;
}

/** Runs the contract against stores made by `makeStore` (a fresh, empty store per test). */
export function runKeyStoreContract(name: string, makeStore: () => Promise<KeyStore>, options: KeyStoreContractOptions = {}): void {
  describe(`KeyStore contract: ${name}`, () => {
    for (const algorithm of KEY_ALGORITHMS) {
      const reason = options.unsupported?.[algorithm];
      if (reason !== undefined) {
        test(`${algorithm}: not supported (${reason}): create refuses with KEYSTORE_ERROR and nothing opens`, async () => {
          const store = await makeStore();
          const label = freshLabel();
          await assert.rejects(store.create(label, algorithm), isKeystoreError);
          await assert.rejects(store.open(label), isKeystoreError);
        });
        continue;
      }
      test(`${algorithm}: create, open again, and the signature verifies with node:crypto`, async () => {
        const store = await makeStore();
        const label = freshLabel();
        const created = await store.create(label, algorithm);
        assert.equal(created.algorithm, algorithm);
        const reopened = await store.open(label);
        assert.equal(reopened.algorithm, algorithm);
        const spki = await created.publicKeySpki();
        assert.deepEqual(await reopened.publicKeySpki(), spki, 'open returns the key that create made');
        const data = Buffer.from(`to be signed by ${algorithm}`);
        assert.ok(verifies(spki, algorithm, data, await reopened.sign(data)), 'signature by the reopened key verifies');
        assert.ok(!verifies(spki, algorithm, Buffer.from('other data'), await created.sign(data)), 'signature is bound to data');
      });
    }

    test('opening an unknown label fails with KEYSTORE_ERROR', async () => {
      const store = await makeStore();
      await assert.rejects(store.open(freshLabel()), isKeystoreError);
    });

    test('creating the same label twice fails with KEYSTORE_ERROR and keeps the first key', async () => {
      const store = await makeStore();
      const label = freshLabel();
      const first = await store.create(label, 'p256');
      await assert.rejects(store.create(label, 'p256'), isKeystoreError);
      assert.deepEqual(await (await store.open(label)).publicKeySpki(), await first.publicKeySpki());
    });

    const tryExport = options.tryExportPrivateKey;
    if (tryExport !== undefined) {
      test('key exfiltration: reading the private key out of a hardware store is refused by the device itself', async () => {
        const store = await makeStore();
        const label = freshLabel();
        const key = await store.create(label, 'p256');
        await assert.rejects(tryExport(store, label), ExportRefused, 'the store handed out the private key');
        const data = Buffer.from('still usable');
        assert.ok(verifies(await key.publicKeySpki(), 'p256', data, await key.sign(data)), 'the key still signs after the refused export');
      });
    }

    test('a label that could escape the store (path traversal) is refused with KEYSTORE_ERROR', async () => {
      const store = await makeStore();
      for (const label of ['../escape', 'a/b', '', '.hidden', 'x'.repeat(65)]) {
        await assert.rejects(store.create(label, 'p256'), isKeystoreError, JSON.stringify(label));
      }
    });
  });
}
