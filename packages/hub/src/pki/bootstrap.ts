/**
 * The hub's own identity on disk: created at first start (ca/hub-pki.ts), loaded afterwards.
 *
 *   pki/root.crt, pki/root.key.sealed            hub root (pinned by devices)
 *   pki/device-ca.crt, pki/device-ca.key.sealed  device CA (signs device certificates)
 *   pki/recovery.pub.pem                         public half of the offline recovery key
 *   RECOVERY-KEY-MOVE-OFFLINE.pem                private half, written once for the operator
 *   pki/<name>.key.ref instead of .key.sealed    with `--ca-signer pkcs11:URI` (ADR 0028): JSON
 *                                                {uri, label} naming the key in the token; no secret
 * TLS server certificates get a new key at every start and are never written to disk.
 *
 * Invariants: private keys on disk are sealed (AES-256-GCM, aad names the key); an existing
 * identity is never silently replaced; root.crt is written last, so its presence means the
 * identity is complete; a key that does not match its certificate stops the start-up.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FleetkeyError, computePin, fromPem, toPem, type Clock, type KeyAlgorithm } from '@fleetkey/protocol';
import { createHubPki, issueTlsServerCert, type CaIdentity } from '../ca/hub-pki.js';
import { Pkcs11Signer } from '../ca/pkcs11-signer.js';
import type { Signer } from '../ca/signer.js';
import { SoftwareSigner } from '../ca/software-signer.js';
import { pkiDir, writeFileAtomic, writePublicFile } from '../datadir.js';
import type { SecretSealer } from '../secrets/sealer.js';

export interface HubPki {
  readonly root: CaIdentity;
  readonly deviceCa: CaIdentity;
  readonly deviceCaCert: X509Certificate;
  /** `sha256//…` of the root SPKI. */
  readonly pin: string;
  readonly recoveryPin: string;
  /** DER SPKI of the offline recovery key (pki/recovery.pub.pem). */
  readonly recoverySpki: Buffer;
  /** Set only on the start that created the identity. */
  readonly recoveryKeyFile?: string;
  /** Certificates sent after the TLS leaf; default [root]. During a root overlap: [cross, old root] (ADR 0021). */
  readonly tlsChainTail?: readonly Buffer[];
}

export interface TlsServerIdentity {
  readonly keyPem: string;
  /** Leaf then root. */
  readonly chainPem: string;
  readonly notAfter: Date;
}

const aad = (name: string): string => `fleetkey:ca-key:${name}`;

async function openSigner(dir: string, name: string, sealer: SecretSealer, caSigner: string): Promise<Signer> {
  const ref = join(dir, `${name}.key.ref`);
  if (!existsSync(ref)) return SoftwareSigner.openSealed(readFileSync(join(dir, `${name}.key.sealed`)), sealer, aad(name));
  const recorded = JSON.parse(readFileSync(ref, 'utf8')) as { uri: string; label: string };
  return Pkcs11Signer.open(caSigner.startsWith('pkcs11:') ? caSigner : recorded.uri, recorded.label); // a given URI may move the PIN file
}

async function loadCa(dir: string, name: string, sealer: SecretSealer, caSigner: string): Promise<CaIdentity> {
  const certificate = fromPem(readFileSync(join(dir, `${name}.crt`), 'utf8'), 'CERTIFICATE');
  const signer = await openSigner(dir, name, sealer, caSigner);
  if (!signer.spki.equals(spkiOfCertificate(certificate))) {
    throw new FleetkeyError('SECRET_UNREADABLE', { cause: new Error(`${name}: key does not match certificate`) });
  }
  return { signer, certificate };
}

function saveCa(dir: string, name: string, ca: CaIdentity, sealer: SecretSealer): void {
  const signer = ca.signer;
  if (signer instanceof Pkcs11Signer) writeFileAtomic(join(dir, `${name}.key.ref`), JSON.stringify({ uri: signer.uri, label: signer.label }), 0o600);
  else if (signer instanceof SoftwareSigner) writeFileAtomic(join(dir, `${name}.key.sealed`), signer.seal(sealer, aad(name)), 0o600);
  else throw new FleetkeyError('CONFIG_INVALID', { cause: new Error(`${name}: unknown signer kind`) });
  writePublicFile(join(dir, `${name}.crt`), toPem('CERTIFICATE', ca.certificate));
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
  readonly rootAlgorithm: KeyAlgorithm;
  readonly deviceCaAlgorithm: KeyAlgorithm;
  /** `software` (default) or `pkcs11:<RFC 7512 URI>`: where new CA keys are made (ADR 0028). */
  readonly caSigner?: string;
}

export async function loadOrCreateHubPki(o: PkiOptions): Promise<HubPki> {
  const dir = pkiDir(o.dataDir);
  if (!hubPkiExists(o.dataDir)) return createAndSave(o, dir);
  const root = await loadCa(dir, 'root', o.sealer, o.caSigner ?? 'software');
  const deviceCa = await loadCa(dir, 'device-ca', o.sealer, o.caSigner ?? 'software');
  const recoverySpki = fromPem(readFileSync(join(dir, 'recovery.pub.pem'), 'utf8'), 'PUBLIC KEY');
  return {
    root, deviceCa, deviceCaCert: new X509Certificate(deviceCa.certificate),
    pin: computePin(root.signer.spki), recoveryPin: computePin(recoverySpki), recoverySpki,
  };
}

async function createAndSave(o: PkiOptions, dir: string): Promise<HubPki> {
  const uri = o.caSigner !== undefined && o.caSigner.startsWith('pkcs11:') ? o.caSigner : undefined;
  const generateSigner = uri === undefined ? undefined : (role: string, algorithm: KeyAlgorithm): Promise<Signer> => Pkcs11Signer.generate(uri, role, algorithm);
  const pki = await createHubPki({ clock: o.clock, orgName: 'fleetkey', rootAlgorithm: o.rootAlgorithm, deviceCaAlgorithm: o.deviceCaAlgorithm, ...(generateSigner === undefined ? {} : { generateSigner }) });
  const recoveryKeyFile = join(o.dataDir, 'RECOVERY-KEY-MOVE-OFFLINE.pem');
  writeFileAtomic(recoveryKeyFile, pki.recovery.privateKeyPem, 0o600);
  writePublicFile(join(dir, 'recovery.pub.pem'), toPem('PUBLIC KEY', pki.recovery.spki));
  saveCa(dir, 'device-ca', pki.deviceCa, o.sealer);
  saveCa(dir, 'root', pki.root, o.sealer); // last: its presence means "identity complete"
  return {
    root: pki.root, deviceCa: pki.deviceCa, deviceCaCert: new X509Certificate(pki.deviceCa.certificate),
    pin: pki.rootPin, recoveryPin: pki.recovery.pin, recoverySpki: pki.recovery.spki, recoveryKeyFile,
  };
}

/** A fresh listener key and certificate from the root, for the configured names. */
export async function issueTlsServerIdentity(
  pki: HubPki,
  o: { dnsNames: readonly string[]; ips: readonly string[]; validityMs: number; clock: Clock },
): Promise<TlsServerIdentity> {
  const tls = await issueTlsServerCert({ rootSigner: pki.root.signer, rootCertificate: pki.root.certificate, ...o });
  const chain = [tls.certificate, ...(pki.tlsChainTail ?? [pki.root.certificate])];
  return { keyPem: tls.privateKeyPem, chainPem: chain.map((c) => toPem('CERTIFICATE', c)).join(''), notAfter: tls.notAfter };
}
