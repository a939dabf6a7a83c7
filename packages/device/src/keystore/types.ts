/**
 * The device key store seam: where a device's private key lives and how it signs.
 *
 * Invariants:
 * - A private key never leaves its store through this interface: callers get the public key
 *   (SPKI DER) and signatures, nothing else. The optional TLS capability hands Node's TLS stack
 *   either the key material (file kind) or an OpenSSL engine reference (PKCS#11/TPM kinds).
 * - `sign` returns the signature in the form X.509 and PKCS#10 carry it: DER `ECDSA-Sig-Value`
 *   for P-256/384/521 (hashed with SHA-256/384/512), raw 64 bytes for Ed25519, PKCS#1 v1.5 with
 *   SHA-256 for RSA (RFC 5758 §3.2, RFC 8410 §6, RFC 4055).
 * - Labels are never reused: `create` on an existing label fails, it does not overwrite.
 * - Every failure is a FleetkeyError with code KEYSTORE_ERROR; the cause says why, for logs.
 *
 * Adding a kind: one folder under keystore/, one line in registry.ts, one call of the contract
 * suite in test/unit/keystore.contract.ts.
 */
import type { KeyAlgorithm } from '@fleetkey/protocol';

/** A private key held by a key store. */
export interface KeyHandle {
  readonly algorithm: KeyAlgorithm;
  /** The SubjectPublicKeyInfo DER (RFC 5280 §4.1.2.7). */
  publicKeySpki(): Promise<Buffer>;
  /** Signs `data` (the store hashes as the algorithm requires) in X.509/CSR signature form. */
  sign(data: Buffer): Promise<Buffer>;
}

/** A key store: creates and opens keys by label. */
export interface KeyStore {
  /** The registry kind, recorded in identity.json so the key can be found again. */
  readonly kind: string;
  /** Kind-specific address recorded with the kind (e.g. the PKCS#11 URI); never holds a secret. */
  readonly locator?: string;
  /** Generates a new key under a fresh label; fails with KEYSTORE_ERROR if the label exists. */
  create(label: string, algorithm: KeyAlgorithm): Promise<KeyHandle>;
  /** Opens an existing key; fails with KEYSTORE_ERROR if there is none under `label`. */
  open(label: string): Promise<KeyHandle>;
}

/** What Node's TLS needs to use a key for a client certificate (mutual TLS). */
export type TlsKeyOptions =
  | { readonly key: string | Buffer }
  | { readonly privateKeyEngine: string; readonly privateKeyIdentifier: string };

/** Optional capability: the key can be used by Node's TLS stack for mutual TLS. */
export interface TlsKeyCapability {
  tlsKeyOptions(): TlsKeyOptions;
}

/** True if the key handle can be used directly for mutual TLS. */
export function hasTlsKeyCapability(handle: KeyHandle): handle is KeyHandle & TlsKeyCapability {
  return typeof (handle as Partial<TlsKeyCapability>).tlsKeyOptions === 'function';
}

/** Labels are path- and URI-safe so every kind can use them as a file name or a PKCS#11 label. */
export const KEY_LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isValidKeyLabel(label: string): boolean {
  return KEY_LABEL_PATTERN.test(label) && !label.includes('..');
}
