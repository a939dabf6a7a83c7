/**
 * The hub's own identity on disk: created at first start, loaded afterwards.
 *
 *   hub root (self-signed, 10 y)  ── pinned by devices (SHA-256 of its SPKI)
 *    ├─ device CA (5 y, pathLen 0) ── device certificates
 *    └─ TLS server certificates (short-lived, new key at every start, never written to disk)
 *   recovery key: generated once; only its public key stays (pki/recovery.pub.pem); the private
 *   key is written once to <dataDir>/RECOVERY-KEY-MOVE-OFFLINE.pem for the operator to take away.
 *
 * Invariants: private keys on disk are sealed (AES-256-GCM, aad = purpose); an existing identity is
 * never silently replaced; certificates are re-read and their keys checked against them at load.
 */
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  FleetkeyError, caTemplate, computePin, fromPem, parseCertificate, signCertificate, tlsServerTemplate, toPem,
  type Clock, type KeyAlgorithm,
} from '@fleetkey/protocol';
import { pkiDir, writeFileAtomic, writePublicFile } from '../datadir.js';
import type { SecretSealer } from '../secrets/sealer.js';
import { generateKey, keySigner, randomSerial } from './keys.js';

type HubKeyAlgorithm = Exclude<KeyAlgorithm, 'rsa'>;
const YEAR = 365 * 24 * 3600 * 1000;

export interface CaIdentity {
  readonly algorithm: HubKeyAlgorithm;
  readonly certDer: Buffer;
  readonly cert: X509Certificate;
  readonly key: KeyObject;
}

export interface HubPki {
  readonly root: CaIdentity;
  readonly deviceCa: CaIdentity;
  readonly pin: string;
  readonly recoveryPublicKeyPem: string;
  /** Set only on the start that created the identity. */
  readonly recoveryKeyFile?: string;
}

export interface TlsServerIdentity {
  readonly keyPem: string;
  /** Leaf then root. */
  readonly chainPem: string;
  readonly notAfter: Date;
}

function algorithmOf(key: KeyObject): HubKeyAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve === 'prime256v1') return 'p256';
  if (curve === 'secp384r1') return 'p384';
  if (curve === 'secp521r1') return 'p521';
  throw new FleetkeyError('CONFIG_INVALID', { details: { setting: 'pki', problem: 'unsupported hub key' } });
}

function loadCa(dir: string, name: string, sealer: SecretSealer): CaIdentity {
  const certDer = fromPem(readFileSync(join(dir, `${name}.crt`), 'utf8'), 'CERTIFICATE');
  const sealed = readFileSync(join(dir, `${name}.key.sealed`));
  const key = createPrivateKey({ key: sealer.open(sealed, `pki:${name}`), format: 'der', type: 'pkcs8' });
  const cert = new X509Certificate(certDer);
  const pub = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!pub.equals(cert.publicKey.export({ type: 'spki', format: 'der' }))) {
    throw new FleetkeyError('SECRET_UNREADABLE', { cause: new Error(`${name}: key does not match certificate`) });
  }
  return { algorithm: algorithmOf(key), certDer, cert, key };
}

function saveCa(dir: string, name: string, ca: CaIdentity, sealer: SecretSealer): void {
  const pkcs8 = ca.key.export({ type: 'pkcs8', format: 'der' });
  writeFileAtomic(join(dir, `${name}.key.sealed`), sealer.seal(pkcs8, `pki:${name}`), 0o600);
  writePublicFile(join(dir, `${name}.crt`), toPem('CERTIFICATE', ca.certDer));
}

export function hubPkiExists(dataDir: string): boolean {
  return existsSync(join(pkiDir(dataDir), 'root.crt'));
}

export function readRootCertificate(dataDir: string): Buffer {
  const path = join(pkiDir(dataDir), 'root.crt');
  if (!existsSync(path)) throw new FleetkeyError('CONFIG_INVALID', { details: { setting: 'dataDir', problem: 'no hub identity here; run fleetkey hub start first' } });
  return fromPem(readFileSync(path, 'utf8'), 'CERTIFICATE');
}

export function spkiOfCertificate(der: Buffer): Buffer {
  return new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
}

export interface PkiOptions {
  readonly dataDir: string;
  readonly sealer: SecretSealer;
  readonly clock: Clock;
  readonly rootAlgorithm: HubKeyAlgorithm;
  readonly deviceCaAlgorithm: HubKeyAlgorithm;
}

export async function loadOrCreateHubPki(o: PkiOptions): Promise<HubPki> {
  const dir = pkiDir(o.dataDir);
  if (hubPkiExists(o.dataDir)) {
    const root = loadCa(dir, 'root', o.sealer);
    const deviceCa = loadCa(dir, 'device-ca', o.sealer);
    const recoveryPublicKeyPem = readFileSync(join(dir, 'recovery.pub.pem'), 'utf8');
    return { root, deviceCa, recoveryPublicKeyPem, pin: computePin(spkiOfCertificate(root.certDer)) };
  }
  return createHubPki(o, dir);
}

async function createHubPki(o: PkiOptions, dir: string): Promise<HubPki> {
  const now = o.clock.now();
  const rootKey = generateKey(o.rootAlgorithm);
  const rootTemplate = caTemplate({
    subject: [['O', 'fleetkey'], ['CN', 'fleetkey hub root']], spki: rootKey.spki, serial: randomSerial(),
    notBefore: new Date(now - 300_000), notAfter: new Date(now + 10 * YEAR),
  });
  const rootDer = await signCertificate(rootTemplate, keySigner(o.rootAlgorithm, rootKey.privateKey));
  const root: CaIdentity = { algorithm: o.rootAlgorithm, certDer: rootDer, cert: new X509Certificate(rootDer), key: rootKey.privateKey };
  const caKey = generateKey(o.deviceCaAlgorithm);
  const caDer = await signCertificate(
    caTemplate({
      subject: [['O', 'fleetkey'], ['CN', 'fleetkey device CA']], spki: caKey.spki, serial: randomSerial(), pathLen: 0,
      issuer: { issuerName: rootTemplate.subjectName, issuerSpki: rootKey.spki },
      notBefore: new Date(now - 300_000), notAfter: new Date(now + 5 * YEAR),
    }),
    keySigner(o.rootAlgorithm, rootKey.privateKey),
  );
  const deviceCa: CaIdentity = { algorithm: o.deviceCaAlgorithm, certDer: caDer, cert: new X509Certificate(caDer), key: caKey.privateKey };
  const recovery = generateKey('p384');
  const recoveryPublicKeyPem = toPem('PUBLIC KEY', recovery.spki);
  const recoveryKeyFile = join(o.dataDir, 'RECOVERY-KEY-MOVE-OFFLINE.pem');
  writeFileAtomic(recoveryKeyFile, recovery.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  writePublicFile(join(dir, 'recovery.pub.pem'), recoveryPublicKeyPem);
  saveCa(dir, 'device-ca', deviceCa, o.sealer);
  saveCa(dir, 'root', root, o.sealer); // written last: its presence means "identity complete"
  return { root, deviceCa, recoveryPublicKeyPem, recoveryKeyFile, pin: computePin(rootKey.spki) };
}

/** A fresh listener key and certificate from the root, for the configured names (never stored). */
export async function issueTlsServerIdentity(
  pki: HubPki,
  o: { dnsNames: readonly string[]; ips: readonly string[]; validityMs: number; clock: Clock },
): Promise<TlsServerIdentity> {
  const now = o.clock.now();
  const key = generateKey('p256');
  const notAfter = new Date(Math.min(now + o.validityMs, Date.parse(pki.root.cert.validTo)));
  const der = await signCertificate(
    tlsServerTemplate({
      issuerName: rawSubject(pki.root.certDer), issuerSpki: spkiOfCertificate(pki.root.certDer), spki: key.spki,
      dnsNames: o.dnsNames, ips: o.ips, serial: randomSerial(), notBefore: new Date(now - 300_000), notAfter,
    }),
    keySigner(pki.root.algorithm, pki.root.key),
  );
  return {
    keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    chainPem: toPem('CERTIFICATE', der) + toPem('CERTIFICATE', pki.root.certDer),
    notAfter,
  };
}

/** The certificate's subject Name, as DER bytes (copied as the issuer of what it signs). */
export function rawSubject(certDer: Buffer): Buffer {
  return parseCertificate(certDer).subject;
}
