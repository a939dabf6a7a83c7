/**
 * The hub's own PKI: the hub root (pinned by devices), the device CA it signs, short-lived TLS
 * certificates for the hub's listeners, and the offline recovery key.
 *
 * Invariants:
 * - The root is self-signed (10 years), KU keyCertSign+cRLSign, cA=true, no pathLen so a later
 *   constrained factory sub-CA can hang below it; the device CA is signed by the root (5 years),
 *   pathLen 0 (RFC 5280 §4.2.1.9). No certificate outlives its issuer.
 * - Names carry the first bytes of the key identifier, so a new root after rotation never shares
 *   a subject with the old one (chain builders match names first).
 * - The recovery key never touches hub storage: only its public key (and pin) is kept; the
 *   private half is returned once as PKCS#8 PEM for the operator to take away.
 * - Every notBefore is backdated by BACKDATE_MS to absorb clock skew on devices.
 */
import { generateKeyPairSync } from 'node:crypto';
import {
  FleetkeyError, caTemplate, computePin, keyIdentifier, parseCertificate, signCertificate, tlsServerTemplate,
  type Clock, type KeyAlgorithm, type NameEntry,
} from '@fleetkey/protocol';
import { SoftwareSigner } from './software-signer.js';
import { randomSerial } from './serial.js';
import type { Signer } from './signer.js';

export const BACKDATE_MS = 5 * 60_000;
const YEAR_MS = 365 * 86_400_000;
export const ROOT_VALIDITY_MS = 10 * YEAR_MS;
export const DEVICE_CA_VALIDITY_MS = 5 * YEAR_MS;
export const TLS_SERVER_VALIDITY_MS = 7 * 86_400_000;

export interface CaIdentity {
  /** A SoftwareSigner (sealed at rest) or a Pkcs11Signer (key in a token, ADR 0028). */
  readonly signer: Signer;
  readonly certificate: Buffer;
}

export interface RecoveryKey {
  readonly spki: Buffer;
  /** `sha256//...` pin, kept beside the root pin. */
  readonly pin: string;
  /** PKCS#8 PEM of the private key: write it once to removable media; the hub keeps no copy. */
  readonly privateKeyPem: string;
}

export interface HubPki {
  readonly root: CaIdentity;
  readonly deviceCa: CaIdentity;
  readonly rootPin: string;
  readonly recovery: RecoveryKey;
}

export interface HubPkiOptions {
  readonly clock: Clock;
  readonly orgName: string;
  readonly rootAlgorithm?: KeyAlgorithm;
  readonly deviceCaAlgorithm?: KeyAlgorithm;
  /** Makes the root and device CA keys; default in memory (SoftwareSigner), or in a token. */
  readonly generateSigner?: (role: 'root' | 'device-ca', algorithm: KeyAlgorithm) => Promise<Signer>;
}

export function nameFor(orgName: string, role: string, spki: Buffer): NameEntry[] {
  return [['O', orgName], ['CN', `fleetkey ${role} ${keyIdentifier(spki).subarray(0, 4).toString('hex')}`]];
}

export function clampTo(issuerNotAfter: Date, wanted: number): Date {
  return new Date(Math.min(wanted, issuerNotAfter.getTime()));
}

export async function createHubPki(options: HubPkiOptions): Promise<HubPki> {
  if (options.orgName.length === 0 || options.orgName.length > 64) { // RFC 5280 ub-organization-name
    throw new FleetkeyError('CONFIG_INVALID', { details: { field: 'orgName' } });
  }
  const now = options.clock.now();
  const notBefore = new Date(now - BACKDATE_MS);
  const generate = options.generateSigner ?? (async (_role: string, algorithm: KeyAlgorithm): Promise<Signer> => SoftwareSigner.generate(algorithm));
  const rootSigner = await generate('root', options.rootAlgorithm ?? 'p384');
  const rootCertificate = await signCertificate(caTemplate({
    subject: nameFor(options.orgName, 'hub root', rootSigner.spki), spki: rootSigner.spki, serial: randomSerial(),
    notBefore, notAfter: new Date(now + ROOT_VALIDITY_MS),
  }), rootSigner);
  const root = parseCertificate(rootCertificate);
  const caSigner = await generate('device-ca', options.deviceCaAlgorithm ?? 'p256');
  const caCertificate = await signCertificate(caTemplate({
    subject: nameFor(options.orgName, 'device CA', caSigner.spki), spki: caSigner.spki, serial: randomSerial(),
    notBefore, notAfter: clampTo(root.notAfter, now + DEVICE_CA_VALIDITY_MS), pathLen: 0,
    issuer: { issuerName: root.subject, issuerSpki: rootSigner.spki },
  }), rootSigner);
  return {
    root: { signer: rootSigner, certificate: rootCertificate },
    deviceCa: { signer: caSigner, certificate: caCertificate },
    rootPin: computePin(rootSigner.spki),
    recovery: generateRecoveryKey(),
  };
}

/** A P-384 key pair for root recovery; see the module invariants. */
export function generateRecoveryKey(): RecoveryKey {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return { spki, pin: computePin(spki), privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

export interface TlsServerOptions {
  readonly rootSigner: Signer;
  readonly rootCertificate: Buffer;
  readonly dnsNames: readonly string[];
  readonly ips: readonly string[];
  readonly validityMs?: number;
  readonly clock: Clock;
}

export interface TlsServerCredential {
  readonly privateKeyPem: string;
  readonly certificate: Buffer;
  /** [leaf, root], for `tls.createSecureContext({ cert })`. */
  readonly chain: readonly Buffer[];
  readonly notAfter: Date;
}

/** A fresh P-256 key and a short-lived serverAuth certificate from the root. */
export async function issueTlsServerCert(options: TlsServerOptions): Promise<TlsServerCredential> {
  const root = parseCertificate(options.rootCertificate);
  if (!root.spki.equals(options.rootSigner.spki)) {
    throw new FleetkeyError('CONFIG_INVALID', { cause: new Error('root signer does not match the root certificate') });
  }
  const now = options.clock.now();
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const notAfter = clampTo(root.notAfter, now + (options.validityMs ?? TLS_SERVER_VALIDITY_MS));
  const certificate = await signCertificate(tlsServerTemplate({
    dnsNames: options.dnsNames, ips: options.ips, spki: publicKey.export({ format: 'der', type: 'spki' }),
    serial: randomSerial(), notBefore: new Date(now - BACKDATE_MS), notAfter,
    issuerName: root.subject, issuerSpki: options.rootSigner.spki,
  }), options.rootSigner);
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    certificate,
    chain: [certificate, options.rootCertificate],
    notAfter,
  };
}
