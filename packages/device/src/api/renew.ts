/**
 * renew(): re-enrollment over mutual TLS with the current certificate (DESIGN flow 4).
 *
 * Steps: load the identity → open the current key (must offer the TLS capability) → fetch the
 * current cacerts (RFC 7030 §4.1.1; a hub on a root the device does not pin yet makes it catch up
 * through the trust bundles first, ADR 0026) → create a new key under a fresh label in the same
 * store → CSR for the same device id → simplereenroll over pinned mutual TLS → accept (our new
 * key, chains to a pin in use, same device id) → save (identity.json commits the swap).
 *
 * Invariants:
 * - The current identity stays in use until the new certificate has been accepted and saved;
 *   a failure at any step leaves identity.json, cert.pem and chain.pem as they were.
 * - The hub must not change the device id on renewal: a different id is HUB_PROTOCOL_ERROR.
 * - The old key is kept in its store (no delete in the KeyStore seam yet); it is no longer named.
 */
import { randomBytes } from 'node:crypto';
import { buildCsr, FleetkeyError, systemClock, toPem, type Clock } from '@fleetkey/protocol';
import { EstClient } from '../enroll/est-client.js';
import { openKeyStore } from '../keystore/registry.js';
import { hasTlsKeyCapability, type KeyStore } from '../keystore/types.js';
import type { MutualTlsIdentity } from '../enroll/est-client.js';
import { loadIdentity, saveIdentity, sha256Hex, type StoredIdentity } from '../state/identity.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../trust/connect.js';
import { openFollower } from '../trust/follow.js';
import type { IdentitySummary } from './enroll.js';
import { acceptIssuedCertificate, newKeyLabel } from './issued.js';

export interface RenewOptions {
  readonly stateDir: string;
  /** The store that holds the current key; defaults to the kind recorded in identity.json. */
  readonly keyStore?: KeyStore;
  readonly timeoutMs?: number;
  readonly clock?: Clock;
}

async function currentTlsIdentity(store: KeyStore, stored: StoredIdentity): Promise<MutualTlsIdentity> {
  const current = await store.open(stored.identity.keyStore.label);
  if (!hasTlsKeyCapability(current)) {
    throw new FleetkeyError('KEYSTORE_ERROR', { cause: new Error(`key store kind '${store.kind}' cannot be used for mutual TLS`) });
  }
  // The leaf and its device CA, so the hub can build the path without a lookup.
  const issuers = stored.chainDers.slice(0, -1);
  const clientCert = [stored.certificateDer, ...issuers].map((der) => toPem('CERTIFICATE', der)).join('');
  return { clientKey: current.tlsKeyOptions(), clientCert };
}

/**
 * Renews the device certificate with a new key, over mutual TLS with the current one.
 *
 * @example
 * import { renew, status } from '@fleetkey/device';
 * if ((await status({ stateDir })).renewalDue) await renew({ stateDir });
 */
export async function renew(options: RenewOptions): Promise<IdentitySummary> {
  const stored = await loadIdentity(options.stateDir);
  const { identity } = stored;
  const clock = options.clock ?? systemClock;
  const store = options.keyStore ?? openKeyStore(identity.keyStore.kind, { stateDir: options.stateDir, locator: identity.keyStore.locator });
  if (store.kind !== identity.keyStore.kind) throw new FleetkeyError('KEYSTORE_ERROR', { cause: new Error('key store kind differs from identity.json') });
  const tls = await currentTlsIdentity(store, stored);
  const trust = await openFollower({ stateDir: options.stateDir, hubUrl: identity.hubUrl, pins: identity.pins, clock, timeoutMs: options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS });
  const est = new EstClient({ hubUrl: identity.hubUrl, pins: trust.pins(), trust, knownCertificates: stored.chainDers, clock, timeoutMs: options.timeoutMs });
  const caCertificates = [...(await est.getCaCerts()), ...stored.chainDers]; // the device CA as the current root certifies it
  const label = newKeyLabel(clock, randomBytes(4).toString('hex'));
  const key = await store.create(label, identity.keyAlgorithm);
  const spki = await key.publicKeySpki();
  const csr = await buildCsr({ spki, subject: [['CN', identity.deviceId]], algorithm: key.algorithm, sign: (data) => key.sign(data) });
  const issued = await est.simpleReenroll(csr, tls);
  const accepted = acceptIssuedCertificate({ issued, caCertificates, spki, pins: est.pins, clock });
  if (accepted.deviceId !== identity.deviceId) {
    throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error('the renewed certificate names a different device') });
  }
  const next = {
    ...identity,
    keyStore: { ...identity.keyStore, label },
    certificateSha256: sha256Hex(accepted.certificateDer),
    notBefore: accepted.notBefore.toISOString(),
    notAfter: accepted.notAfter.toISOString(),
    renewedAt: new Date(clock.now()).toISOString(),
  };
  await saveIdentity(options.stateDir, { identity: next, certificateDer: accepted.certificateDer, chainDers: accepted.chainDers });
  return { deviceId: next.deviceId, hubUrl: next.hubUrl, notBefore: accepted.notBefore, notAfter: accepted.notAfter, keyStore: next.keyStore, keyAlgorithm: next.keyAlgorithm };
}
