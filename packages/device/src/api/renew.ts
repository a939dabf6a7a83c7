/**
 * renew(): re-enrollment over mutual TLS with the current certificate, as a two-phase swap
 * (DESIGN flow 4, ADR 0025).
 *
 * Steps: load the identity → open the current key (must offer the TLS capability) → fetch the
 * current cacerts (RFC 7030 §4.1.1; a hub on a root the device does not pin yet makes it catch up
 * through the trust bundles first, ADR 0026) → choose the key: a NEW key under a fresh label while
 * the certificate is valid, the SAME key once it has expired (the hub accepts an expired
 * certificate only within its grace and only for the key it certifies) → CSR for the same device
 * id → simplereenroll over pinned mutual TLS → accept (our key, chains to a pin in use, same
 * device id) → PROVE the new certificate and key on a fresh connection (renewal/proof.ts) → save
 * (identity.json commits the swap) → ask the hub to retire the previous certificates (best
 * effort: they expire anyway).
 *
 * Invariants:
 * - The current identity stays in use until the new certificate was accepted, proven and saved;
 *   a failure at any of those steps leaves identity.json, cert.pem and chain.pem as they were
 *   (rollback = nothing to undo). A failed proof is RENEWAL_PROOF_FAILED.
 * - The hub must not change the device id on renewal: a different id is HUB_PROTOCOL_ERROR.
 * - The old key is kept in its store (no delete in the KeyStore seam yet); it is no longer named.
 * - A failure to retire the old certificates after the commit is reported in the result
 *   (`retired: undefined`), never thrown: the swap is done.
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { buildCsr, FleetkeyError, systemClock, toPem, type Clock } from '@fleetkey/protocol';
import { EstClient, type MutualTlsIdentity } from '../enroll/est-client.js';
import { openKeyStore } from '../keystore/registry.js';
import { hasTlsKeyCapability, type KeyHandle, type KeyStore } from '../keystore/types.js';
import { proveIdentity, retirePrevious } from '../renewal/proof.js';
import { loadIdentity, saveIdentity, sha256Hex, type StoredIdentity } from '../state/identity.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../trust/connect.js';
import { openFollower } from '../trust/follow.js';
import type { IdentitySummary } from './enroll.js';
import { acceptIssuedCertificate, newKeyLabel } from './issued.js';

export interface RenewOptions {
  readonly stateDir: string;
  /** The store that holds the current key; defaults to the kind recorded in identity.json. */
  readonly keyStore?: KeyStore;
  /** `auto` (default): a new key while valid, the same key once expired (and always for `tpm`). */
  readonly key?: 'auto' | 'new' | 'same';
  /** Ask the hub to retire the previous certificates right after the commit (default true). The
   *  agent passes false and retires once its live session runs on the new certificate. */
  readonly retire?: boolean;
  readonly timeoutMs?: number;
  readonly clock?: Clock;
}

export interface RenewResult extends IdentitySummary {
  readonly previousSerial: string;
  readonly serial: string;
  /** True when the same key was certified again (renewal after expiry, within the hub's grace). */
  readonly sameKey: boolean;
  /** Serials the hub retired (superseded); undefined when that last step failed. */
  readonly retired: readonly string[] | undefined;
}

async function tlsIdentity(key: KeyHandle, certificateDer: Uint8Array, chainDers: readonly Uint8Array[]): Promise<MutualTlsIdentity> {
  if (!hasTlsKeyCapability(key)) throw new FleetkeyError('KEYSTORE_ERROR', { cause: new Error('this key store cannot be used for mutual TLS') });
  // The leaf and its device CA, so the hub can build the path without a lookup.
  const clientCert = [certificateDer, ...chainDers.slice(0, -1)].map((der) => toPem('CERTIFICATE', der)).join('');
  return { clientKey: key.tlsKeyOptions(), clientCert };
}

const serialOf = (der: Uint8Array): string => new X509Certificate(der).serialNumber.toLowerCase();

/**
 * Same key once the certificate has expired (RFC 5280 §4.1.2.5), unless the caller chose. A TPM
 * key is always renewed as the same key under `auto`: it is fixedTPM and cannot leave the chip,
 * and a new one would not be usable for TLS in this process (libtpm2-pkcs11 reads its token once,
 * ADR 0028), so the proof on a fresh connection could never pass.
 */
function keepKey(choice: RenewOptions['key'], stored: StoredIdentity, now: number): boolean {
  if (choice === 'same') return true;
  if (choice === 'new') return false;
  return stored.identity.keyStore.kind === 'tpm' || now > Date.parse(stored.identity.notAfter);
}

/**
 * Renews the device certificate over mutual TLS with the current one, proving the new one on a
 * fresh connection before it replaces the old.
 *
 * @example
 * import { renew, status } from '@fleetkey/device';
 * if ((await status({ stateDir })).renewalDue) await renew({ stateDir });
 */
export async function renew(options: RenewOptions): Promise<RenewResult> {
  const stored = await loadIdentity(options.stateDir);
  const { identity } = stored;
  const clock = options.clock ?? systemClock;
  const store = options.keyStore ?? openKeyStore(identity.keyStore.kind, { stateDir: options.stateDir, locator: identity.keyStore.locator });
  if (store.kind !== identity.keyStore.kind) throw new FleetkeyError('KEYSTORE_ERROR', { cause: new Error('key store kind differs from identity.json') });
  const current = await store.open(identity.keyStore.label);
  const tls = await tlsIdentity(current, stored.certificateDer, stored.chainDers);
  const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
  const trust = await openFollower({ stateDir: options.stateDir, hubUrl: identity.hubUrl, pins: identity.pins, clock, timeoutMs: options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS });
  const est = new EstClient({ hubUrl: identity.hubUrl, pins: trust.pins(), trust, knownCertificates: stored.chainDers, clock, ...timeout });
  const caCertificates = [...(await est.getCaCerts()), ...stored.chainDers]; // the device CA as the current root certifies it
  const sameKey = keepKey(options.key, stored, clock.now());
  const label = sameKey ? identity.keyStore.label : newKeyLabel(clock, randomBytes(4).toString('hex'));
  const key = sameKey ? current : await store.create(label, identity.keyAlgorithm);
  const spki = await key.publicKeySpki();
  const csr = await buildCsr({ spki, subject: [['CN', identity.deviceId]], algorithm: key.algorithm, sign: (data) => key.sign(data) });
  const issued = await est.simpleReenroll(csr, tls);
  const accepted = acceptIssuedCertificate({ issued, caCertificates, spki, pins: est.pins, clock });
  const hub = { hubUrl: identity.hubUrl, pins: est.pins, knownCertificates: caCertificates, clock, ...timeout };
  if (accepted.deviceId !== identity.deviceId) {
    throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error('the renewed certificate names a different device') });
  }
  // Phase 1: the new certificate and key must work on a fresh connection before anything changes.
  const next = await tlsIdentity(key, accepted.certificateDer, accepted.chainDers);
  await proveIdentity({ ...hub, identity: next, deviceId: identity.deviceId, certificateDer: accepted.certificateDer });
  // Phase 2: commit (identity.json names the new certificate and key), then retire the old.
  const saved = {
    ...identity,
    keyStore: { ...identity.keyStore, label },
    certificateSha256: sha256Hex(accepted.certificateDer),
    notBefore: accepted.notBefore.toISOString(),
    notAfter: accepted.notAfter.toISOString(),
    renewedAt: new Date(clock.now()).toISOString(),
  };
  await saveIdentity(options.stateDir, { identity: saved, certificateDer: accepted.certificateDer, chainDers: accepted.chainDers });
  const retired = options.retire === false ? undefined : await retirePrevious({ ...hub, knownCertificates: accepted.chainDers, identity: next }).catch(() => undefined);
  return {
    deviceId: saved.deviceId, hubUrl: saved.hubUrl, notBefore: accepted.notBefore, notAfter: accepted.notAfter, keyStore: saved.keyStore, keyAlgorithm: saved.keyAlgorithm,
    previousSerial: serialOf(stored.certificateDer), serial: serialOf(accepted.certificateDer), sameKey, retired,
  };
}

/**
 * Asks the hub to retire (revoke as `superseded`) every certificate of this device older than the
 * stored one, over mutual TLS with the stored one; returns the retired serials.
 *
 * @example
 * await retirePreviousCertificates({ stateDir }); // after the live session moved to the new certificate
 */
export async function retirePreviousCertificates(options: Pick<RenewOptions, 'stateDir' | 'keyStore' | 'timeoutMs' | 'clock'>): Promise<string[]> {
  const stored = await loadIdentity(options.stateDir);
  const { identity } = stored;
  const store = options.keyStore ?? openKeyStore(identity.keyStore.kind, { stateDir: options.stateDir, locator: identity.keyStore.locator });
  const key = await store.open(identity.keyStore.label);
  const clock = options.clock ?? systemClock;
  const trust = await openFollower({ stateDir: options.stateDir, hubUrl: identity.hubUrl, pins: identity.pins, clock, timeoutMs: options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS });
  return retirePrevious({
    hubUrl: identity.hubUrl, pins: trust.pins(), knownCertificates: stored.chainDers, clock,
    identity: await tlsIdentity(key, stored.certificateDer, stored.chainDers), ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
}
