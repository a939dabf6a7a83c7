/**
 * The factory line (ADR 0015): `fleetkey factory issue|export` with no network and no hub. It
 * signs device certificates with the kit's sub-CA key and keeps the signed manifest of
 * everything it signed in `<state-dir>/manifest.json`.
 *
 * Invariants:
 * - Refuses (FACTORY_LIMIT_EXCEEDED) before signing anything when now is outside the kit's
 *   issuance window, or when the manifest would exceed the kit's count.
 * - A CSR is checked like an EST enrollment (strict parse, proof of possession, key policy) and
 *   only its public key reaches the certificate (device-leaf profile, protocol profile.ts).
 * - The manifest is written (signed, atomically) before any device folder: no certificate ever
 *   leaves the line without being in the manifest. The counter only grows.
 * - The kit key is decrypted in memory with the kit passphrase and never written in clear.
 */
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DeviceLeafProfile, FleetkeyError, MANIFEST_FORMAT, assembleCertificate, encodeTbsCertificate, factoryDeviceId, fromPem, fromPemAll,
  openSignedManifest, parseCertificate, parseCsr, signManifest, spkiSha256, toPem, verifyCsrSignature,
  type FactoryKitFile, type ManifestBody, type ManifestEntry, type SignedManifest,
} from '@fleetkey/protocol';
import { randomSerial, writeFileAtomic } from '@fleetkey/hub';

export interface LineContext {
  readonly kit: FactoryKitFile;
  readonly key: KeyObject;
  readonly caDer: Buffer;
  readonly stateDir: string;
  readonly now: number;
}

export function openKitKey(kit: FactoryKitFile, passphrase: string): KeyObject {
  try {
    return createPrivateKey({ key: kit.encryptedKeyPem, format: 'pem', passphrase });
  } catch (cause) {
    throw new FleetkeyError('SECRET_UNREADABLE', { cause });
  }
}

const manifestPath = (dir: string): string => join(dir, 'manifest.json');

/** The line's manifest so far (verified against the kit), or an empty one. */
export async function loadManifest(ctx: LineContext): Promise<ManifestBody> {
  const path = manifestPath(ctx.stateDir);
  if (!existsSync(path)) return { format: MANIFEST_FORMAT, kitId: ctx.kit.kitId, tenantId: ctx.kit.tenantId, counter: 0, createdAt: new Date(ctx.now).toISOString(), entries: [] };
  const opened = await openSignedManifest(JSON.parse(readFileSync(path, 'utf8')));
  if (!opened.signerCertificate.equals(ctx.caDer) || opened.body.kitId !== ctx.kit.kitId) throw new FleetkeyError('MANIFEST_INVALID', { cause: new Error('state belongs to another kit') });
  return opened.body;
}

export async function signedManifest(ctx: LineContext, body: ManifestBody): Promise<SignedManifest> {
  return signManifest(body, { algorithm: 'p256', sign: async (d) => sign('sha256', d, ctx.key) }, ctx.caDer);
}

function checkLimits(ctx: LineContext, counter: number, n: number): void {
  const inWindow = ctx.now >= Date.parse(ctx.kit.windowStart) && ctx.now <= Date.parse(ctx.kit.windowEnd);
  if (!inWindow) throw new FleetkeyError('FACTORY_LIMIT_EXCEEDED', { details: { limit: 'window' } });
  if (counter + n > ctx.kit.maxCount) throw new FleetkeyError('FACTORY_LIMIT_EXCEEDED', { details: { limit: 'count', left: ctx.kit.maxCount - counter } });
}

export interface LineDevice {
  readonly entry: ManifestEntry;
  readonly certificate: Buffer;
  readonly keyPem?: string;
}

async function issueOne(ctx: LineContext, profile: DeviceLeafProfile, seq: number, spki: Buffer): Promise<Buffer> {
  const ca = parseCertificate(ctx.caDer);
  const notBefore = Math.max(ctx.now - 5 * 60_000, ca.notBefore.getTime());
  const notAfter = Math.min(ctx.now + ctx.kit.deviceValidityDays * 86_400_000, ca.notAfter.getTime());
  const template = profile.template({ deviceId: factoryDeviceId(ctx.kit.kitId, seq), spki, serial: randomSerial(), notBefore: new Date(notBefore - (notBefore % 1000)), notAfter: new Date(notAfter - (notAfter % 1000)) });
  const tbs = encodeTbsCertificate(template, 'p256');
  return assembleCertificate(tbs, 'p256', sign('sha256', tbs, ctx.key));
}

/** Public keys to certify: from CSRs (verified) or freshly generated P-256 keys. */
async function keysFor(csrPemText: string | undefined, count: number): Promise<Array<{ spki: Buffer; keyPem?: string }>> {
  if (csrPemText === undefined) {
    return Array.from({ length: count }, () => {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      return { spki: publicKey.export({ type: 'spki', format: 'der' }), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
    });
  }
  const ders = fromPemAll(csrPemText, 'CERTIFICATE REQUEST');
  return Promise.all(ders.map(async (der, i) => {
    try {
      const csr = parseCsr(der);
      await verifyCsrSignature(csr);
      return { spki: csr.spki };
    } catch (err) {
      throw new FleetkeyError(err instanceof FleetkeyError ? err.code : 'CSR_MALFORMED', { cause: err, details: { index: i + 1 } });
    }
  }));
}

/** Issues `count` (or one per CSR) device certificates; see the module invariants. */
export async function issueOnLine(ctx: LineContext, o: { csrPemText?: string; count: number; outDir: string }): Promise<LineDevice[]> {
  const body = await loadManifest(ctx);
  const keys = await keysFor(o.csrPemText, o.count);
  checkLimits(ctx, body.counter, keys.length);
  const ca = parseCertificate(ctx.caDer);
  const profile = new DeviceLeafProfile({ issuerName: ca.subject, issuerSpki: ca.spki });
  const devices: LineDevice[] = [];
  for (const [i, k] of keys.entries()) {
    const seq = body.counter + i + 1;
    const certificate = await issueOne(ctx, profile, seq, k.spki);
    const entry = { seq, deviceId: factoryDeviceId(ctx.kit.kitId, seq), serial: parseCertificate(certificate).serial.toString('hex'), spkiSha256: spkiSha256(k.spki).toString('hex'), certificate: certificate.toString('base64') };
    devices.push({ entry, certificate, ...(k.keyPem === undefined ? {} : { keyPem: k.keyPem }) });
  }
  const entries = [...body.entries, ...devices.map((d) => d.entry)];
  const next: ManifestBody = { ...body, counter: entries.length, createdAt: new Date(ctx.now).toISOString(), entries };
  mkdirSync(ctx.stateDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(manifestPath(ctx.stateDir), JSON.stringify(await signedManifest(ctx, next)) + '\n', 0o600);
  for (const d of devices) writeDeviceFolder(ctx, o.outDir, d);
  return devices;
}

function writeDeviceFolder(ctx: LineContext, outDir: string, d: LineDevice): void {
  const dir = join(outDir, d.entry.deviceId);
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, 'cert.pem'), toPem('CERTIFICATE', d.certificate), 0o644);
  writeFileAtomic(join(dir, 'chain.pem'), toPem('CERTIFICATE', ctx.caDer), 0o644);
  writeFileAtomic(join(dir, 'hub-root.pem'), ctx.kit.rootCertificatePem, 0o644);
  writeFileAtomic(join(dir, 'pin'), ctx.kit.pin + '\n', 0o644);
  writeFileAtomic(join(dir, 'device.json'), JSON.stringify({ version: 1, deviceId: d.entry.deviceId, hubUrl: ctx.kit.hubUrl, pins: [ctx.kit.pin], keyAlgorithm: 'p256', keyOrigin: d.keyPem === undefined ? 'device-generated' : 'line-generated', kitId: ctx.kit.kitId }, null, 2) + '\n', 0o644);
  if (d.keyPem !== undefined) writeFileAtomic(join(dir, 'key.pem'), d.keyPem, 0o600);
}

export function caDerOf(kit: FactoryKitFile): Buffer {
  return fromPem(kit.caCertificatePem, 'CERTIFICATE');
}
