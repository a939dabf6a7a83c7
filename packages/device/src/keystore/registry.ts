/**
 * The explicit registry of key store kinds: kind name → factory. One line per kind.
 *
 * Invariants:
 * - Nothing registers itself by being imported: a kind exists only if it is listed here.
 * - Factories get everything they need from `KeyStoreContext` (no globals, no environment reads),
 *   so the same kind opens the same keys again from what identity.json recorded.
 * - An unknown kind is KEYSTORE_ERROR, never a silent fallback to another kind.
 */
import { join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';
import { FileKeyStore } from './file/file-keystore.js';
import type { KeyStore } from './types.js';

/** What a key store factory may use: the device's state directory. */
export interface KeyStoreContext {
  readonly stateDir: string;
}

export type KeyStoreFactory = (context: KeyStoreContext) => KeyStore;

export const KEY_STORE_KINDS: Readonly<Record<string, KeyStoreFactory>> = Object.freeze({
  file: (context: KeyStoreContext) => new FileKeyStore({ directory: join(context.stateDir, 'keys') }),
  // pkcs11: (context) => new Pkcs11KeyStore(...),   — later issue (SoftHSM2 / tpm2-pkcs11)
  // tpm: (context) => new TpmKeyStore(...),         — later issue (swtpm + tpm2-tools)
});

/**
 * The key store of `kind` for a device whose state lives in `context.stateDir`.
 *
 * @example
 * const store = openKeyStore(identity.keyStore.kind, { stateDir: '/var/lib/fleetkey' });
 */
export function openKeyStore(kind: string, context: KeyStoreContext): KeyStore {
  const factory = Object.prototype.hasOwnProperty.call(KEY_STORE_KINDS, kind) ? KEY_STORE_KINDS[kind] : undefined;
  if (factory === undefined) {
    throw new FleetkeyError('KEYSTORE_ERROR', { cause: new Error(`unknown key store kind '${kind}'`) });
  }
  return factory(context);
}
