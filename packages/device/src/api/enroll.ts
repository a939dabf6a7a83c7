/**
 * enroll(): first enrollment of a device with a claim token (DESIGN flow 1).
 *
 * Steps, in order: validate input → refuse if already enrolled → fetch cacerts over pinned TLS
 * (proves the hub before any key or token is used) → create a key under a fresh label → build
 * and sign the CSR → simpleenroll with the token → accept the certificate (our key, chains to the
 * pin, one device id) → save the identity (identity.json last).
 *
 * Invariants:
 * - The token is sent only inside EstClient.simpleEnroll, i.e. only over a pinned connection,
 *   and never stored, logged or put into an error.
 * - Nothing is written to the state directory unless the certificate was accepted; a key may be
 *   left in the key store under an unused label (labels are never reused, so it is inert).
 */
import { randomBytes } from 'node:crypto';
import { buildCsr, FleetkeyError, systemClock, type Clock, type KeyAlgorithm } from '@fleetkey/protocol';
import { EstClient, parseHubUrl } from '../enroll/est-client.js';
import { checkClaimToken } from '../enroll/est-wire.js';
import { openKeyStore } from '../keystore/registry.js';
import type { KeyStore } from '../keystore/types.js';
import { hasIdentity, saveIdentity, sha256Hex, type KeyStoreRecord } from '../state/identity.js';
import { PinSet } from '../trust/pin-set.js';
import { acceptIssuedCertificate, newKeyLabel } from './issued.js';

export interface EnrollOptions {
  /** `https://host[:port]` of the hub's API/EST listener. */
  readonly hubUrl: string;
  /** The hub root pin(s), `sha256//BASE64` (from the claim QR code or the factory bundle). */
  readonly pin: string | readonly string[];
  /** The claim token (single use, short-lived). Never stored. */
  readonly token: string;
  /** Where identity.json, cert.pem, chain.pem (and file-kind keys) live. */
  readonly stateDir: string;
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Defaults to the `file` key store in `<stateDir>/keys`; e.g. a Pkcs11KeyStore (ADR 0024). */
  readonly keyStore?: KeyStore;
  readonly timeoutMs?: number;
  readonly clock?: Clock;
}

/** What enroll, renew and status report (no secrets). */
export interface IdentitySummary {
  readonly deviceId: string;
  readonly hubUrl: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly keyStore: KeyStoreRecord;
  readonly keyAlgorithm: KeyAlgorithm;
}

/**
 * Enrolls this device with the hub: makes a key, proves the hub by its pin, spends the claim
 * token over EST and stores the issued identity in `stateDir`.
 *
 * @example
 * import { enroll } from '@fleetkey/device';
 * const id = await enroll({
 *   hubUrl: 'https://hub.example:8443', pin: 'sha256//…', stateDir: '/var/lib/fleetkey',
 *   token: process.env.FLEETKEY_CLAIM_TOKEN ?? '',
 * });
 * console.log(id.deviceId, id.notAfter);
 */
export async function enroll(options: EnrollOptions): Promise<IdentitySummary> {
  const pins = PinSet.parse(options.pin);
  parseHubUrl(options.hubUrl);
  checkClaimToken(options.token);
  if (await hasIdentity(options.stateDir)) {
    throw new FleetkeyError('CONFLICT', { cause: new Error('the state directory already holds an identity; use renew') });
  }
  const clock = options.clock ?? systemClock;
  const est = new EstClient({ hubUrl: options.hubUrl, pins, clock, timeoutMs: options.timeoutMs });
  const caCertificates = await est.getCaCerts();
  const store = options.keyStore ?? openKeyStore('file', { stateDir: options.stateDir });
  const label = newKeyLabel(clock, randomBytes(4).toString('hex'));
  const key = await store.create(label, options.keyAlgorithm ?? 'p256');
  const spki = await key.publicKeySpki();
  const csr = await buildCsr({ spki, subject: [], algorithm: key.algorithm, sign: (data) => key.sign(data) });
  const reported = ['file', 'pkcs11', 'tpm'].includes(store.kind) ? store.kind : undefined;
  const issued = await est.simpleEnroll(csr, options.token, reported);
  const accepted = acceptIssuedCertificate({ issued, caCertificates, spki, pins, clock });
  const identity = {
    version: 1 as const,
    deviceId: accepted.deviceId,
    hubUrl: options.hubUrl,
    pins: pins.toArray(),
    keyStore: { kind: store.kind, label, ...(store.locator === undefined ? {} : { locator: store.locator }) },
    keyAlgorithm: key.algorithm,
    certificateSha256: sha256Hex(accepted.certificateDer),
    notBefore: accepted.notBefore.toISOString(),
    notAfter: accepted.notAfter.toISOString(),
    enrolledAt: new Date(clock.now()).toISOString(),
  };
  await saveIdentity(options.stateDir, { identity, certificateDer: accepted.certificateDer, chainDers: accepted.chainDers });
  return { deviceId: identity.deviceId, hubUrl: identity.hubUrl, notBefore: accepted.notBefore, notAfter: accepted.notAfter, keyStore: identity.keyStore, keyAlgorithm: key.algorithm };
}
