/**
 * The explicit registry of key store kinds: kind name → factory. One line per kind.
 *
 * Invariants:
 * - Nothing registers itself by being imported: a kind exists only if it is listed here.
 * - Factories get everything they need from `KeyStoreContext` (no globals, no environment reads
 *   beyond `context.env`), so the same kind opens the same keys again from what identity.json
 *   recorded (kind, locator, label).
 * - `--keystore` specs are `file`, `pkcs11:<RFC 7512 URI>` or `tpm[:<TCTI>]` (parseKeyStoreSpec).
 * - An unknown kind is KEYSTORE_ERROR, never a silent fallback to another kind.
 */
import { join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';
import { FileKeyStore } from './file/file-keystore.js';
import { Pkcs11KeyStore } from './pkcs11/pkcs11-keystore.js';
import { TpmKeyStore } from './tpm/tpm-keystore.js';
import type { KeyStore } from './types.js';

/** What a key store factory may use: the device's state directory and the store's locator. */
export interface KeyStoreContext {
  readonly stateDir: string;
  /** Kind-specific address recorded in identity.json (pkcs11: the store URI; tpm: the TCTI). */
  readonly locator?: string;
  /** Where a pkcs11 `pin-source=env:NAME` is looked up; defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

function required(context: KeyStoreContext, kind: string): string {
  if (context.locator === undefined) throw new FleetkeyError('KEYSTORE_ERROR', { cause: new Error(`the ${kind} key store needs a locator (URI)`) });
  return context.locator;
}

export type KeyStoreFactory = (context: KeyStoreContext) => KeyStore;

export const KEY_STORE_KINDS: Readonly<Record<string, KeyStoreFactory>> = Object.freeze({
  file: (context: KeyStoreContext) => new FileKeyStore({ directory: join(context.stateDir, 'keys') }),
  pkcs11: (context: KeyStoreContext) => new Pkcs11KeyStore({ uri: required(context, 'pkcs11'), env: context.env }),
  tpm: (context: KeyStoreContext) => new TpmKeyStore({ directory: join(context.stateDir, 'tpm'), tcti: context.locator }),
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

/** A `--keystore` value split into kind and locator: `file`, `pkcs11:URI`, `tpm`, `tpm:TCTI`. */
export function parseKeyStoreSpec(spec: string): { readonly kind: string; readonly locator?: string } {
  if (spec === 'file') return { kind: 'file' };
  if (spec.startsWith('pkcs11:')) return { kind: 'pkcs11', locator: spec };
  if (spec === 'tpm') return { kind: 'tpm' };
  if (spec.startsWith('tpm:') && spec.length > 4) return { kind: 'tpm', locator: spec.slice(4) };
  throw new FleetkeyError('KEYSTORE_ERROR', { cause: new Error('key store must be file, pkcs11:<URI> or tpm[:<TCTI>]') });
}
