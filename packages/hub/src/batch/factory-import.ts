/**
 * Verification of a signed factory manifest before import (ADR 0015). Pure checks over the
 * store's read side; the write is one unit (storage importFactory) conditional on the counter.
 *
 * Invariants — in this order, and a failing check changes nothing:
 * 1. The envelope signature verifies under its signer certificate (MANIFEST_INVALID).
 * 2. The signer is a kit this hub recorded, byte for byte, and its certificate verifies under a
 *    hub root still trusted (MANIFEST_INVALID): the chain is leaf → kit sub-CA → hub root, where
 *    the root is one since the latest recovery (trust/lineage.ts, ADR 0026).
 * 3. The kit, and the manifest body, belong to the importing organisation (MANIFEST_OTHER_ORGANISATION).
 * 4. counter ≤ the kit's count (FACTORY_LIMIT_EXCEEDED); counter ≥ the imported counter, and the
 *    entries already imported are unchanged (MANIFEST_STALE); the same digest again is a no-op.
 * 5. Every new entry: a device-profile certificate signed by the kit key, naming the kit's device
 *    id for its seq, with the serial and key the entry states (MANIFEST_INVALID), issued inside
 *    the window (FACTORY_LIMIT_EXCEEDED), no serial or key twice in the manifest or already
 *    recorded on another device (MANIFEST_DUPLICATE).
 */
import { X509Certificate } from 'node:crypto';
import {
  FleetkeyError, describeSpki, deviceIdFromCertificate, factoryDeviceId, parseCertificate, spkiSha256, verifyCertificateSignature,
  type ManifestBody, type ManifestEntry, type OpenedManifest,
} from '@fleetkey/protocol';
import type { CertificateRecord, FactoryKitRecord, Store } from '../storage/types.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SKEW_MS = 5 * 60_000;

export interface ImportPlan {
  readonly kit: FactoryKitRecord;
  readonly body: ManifestBody;
  readonly digest: string;
  /** True when this exact manifest (or an older prefix of what was imported) is already in. */
  readonly alreadyImported: boolean;
  readonly certificates: readonly CertificateRecord[];
}

const fail = (code: 'MANIFEST_INVALID' | 'MANIFEST_STALE' | 'MANIFEST_DUPLICATE' | 'FACTORY_LIMIT_EXCEEDED', reason: string, index?: number): never => {
  throw new FleetkeyError(code, { cause: new Error(reason), ...(index === undefined ? {} : { details: { index } }) });
};

async function signedByOneOf(certificate: Buffer, rootSpkis: readonly Buffer[]): Promise<boolean> {
  const parsed = parseCertificate(certificate);
  for (const spki of rootSpkis) if (await verifyCertificateSignature(parsed, spki)) return true;
  return false;
}

async function checkKit(store: Store, opened: OpenedManifest, rootSpkis: readonly Buffer[], tenantId: string): Promise<FactoryKitRecord> {
  const kit = await store.batches.getKit(opened.body.kitId);
  if (kit === undefined || !kit.certificate.equals(opened.signerCertificate)) return fail('MANIFEST_INVALID', 'signer is not a kit of this hub');
  if (!(await signedByOneOf(kit.certificate, rootSpkis))) return fail('MANIFEST_INVALID', 'kit not signed by a hub root still trusted');
  if (kit.tenantId !== tenantId || opened.body.tenantId !== tenantId) throw new FleetkeyError('MANIFEST_OTHER_ORGANISATION');
  return kit;
}

async function checkHistory(store: Store, kit: FactoryKitRecord, body: ManifestBody): Promise<void> {
  if (body.counter > kit.maxCount) fail('FACTORY_LIMIT_EXCEEDED', 'counter above the kit count');
  if (body.counter < kit.importedCounter) fail('MANIFEST_STALE', 'counter below the imported one');
  // Entries already imported must be the ones recorded (same device, same serial).
  for (const e of body.entries.slice(0, kit.importedCounter)) {
    const device = await store.devices.get(kit.tenantId, e.deviceId);
    const certs = device === undefined ? [] : await store.devices.certificates(kit.tenantId, e.deviceId);
    if (!certs.some((c) => c.serial === e.serial)) fail('MANIFEST_STALE', `entry ${e.seq} diverges from the imported one`, e.seq);
  }
}

async function checkEntry(e: ManifestEntry, kit: FactoryKitRecord, kitCa: X509Certificate): Promise<CertificateRecord> {
  const der = Buffer.from(e.certificate, 'base64');
  let x: X509Certificate;
  try {
    x = new X509Certificate(der);
  } catch {
    return fail('MANIFEST_INVALID', 'certificate unparsable', e.seq);
  }
  const parsed = parseCertificate(der);
  const signed = x.checkIssued(kitCa) && (await verifyCertificateSignature(parsed, parseCertificate(kit.certificate).spki));
  const id = deviceIdFromCertificate(der);
  const spki = spkiSha256(parsed.spki).toString('hex');
  const profileOk = !x.ca && (x.keyUsage ?? []).includes(CLIENT_AUTH);
  if (!signed || !profileOk || id !== e.deviceId || id !== factoryDeviceId(kit.id, e.seq) || parsed.serial.toString('hex') !== e.serial || spki !== e.spkiSha256) {
    fail('MANIFEST_INVALID', `entry ${e.seq} does not match its certificate`, e.seq);
  }
  const notBefore = parsed.notBefore.getTime();
  if (notBefore < kit.windowStart - SKEW_MS || notBefore > kit.windowEnd || parsed.notAfter.getTime() > Date.parse(kitCa.validTo)) {
    fail('FACTORY_LIMIT_EXCEEDED', `entry ${e.seq} issued outside the window`, e.seq);
  }
  return {
    serial: e.serial, deviceId: id, tenantId: kit.tenantId, spkiSha256: spki, keyAlgorithm: describeSpki(parsed.spki).algorithm,
    notBefore, notAfter: parsed.notAfter.getTime(), issuedAt: notBefore, der, revokedAt: null, revocationReason: null,
  };
}

async function checkDuplicates(store: Store, certs: readonly CertificateRecord[]): Promise<void> {
  const serials = new Set<string>();
  const keys = new Set<string>();
  for (const [i, c] of certs.entries()) {
    if (serials.has(c.serial) || keys.has(c.spkiSha256)) fail('MANIFEST_DUPLICATE', 'repeated within the manifest', i + 1);
    serials.add(c.serial);
    keys.add(c.spkiSha256);
    const other = await store.devices.certificateBySpki(c.spkiSha256);
    if ((other !== undefined && other.deviceId !== c.deviceId) || (await store.devices.certificateBySerial(c.serial)) !== undefined) {
      fail('MANIFEST_DUPLICATE', 'serial or key already recorded', i + 1);
    }
  }
}

/** Runs checks 2–5 on an opened manifest (check 1 is `openSignedManifest`). */
export async function planImport(store: Store, opened: OpenedManifest, rootSpkis: readonly Buffer[], tenantId: string): Promise<ImportPlan> {
  const kit = await checkKit(store, opened, rootSpkis, tenantId);
  const { body, digest } = opened;
  await checkHistory(store, kit, body);
  if (body.counter === kit.importedCounter) return { kit, body, digest, alreadyImported: true, certificates: [] };
  const kitCa = new X509Certificate(kit.certificate);
  const fresh = body.entries.slice(kit.importedCounter);
  const certificates = await Promise.all(fresh.map((e) => checkEntry(e, kit, kitCa)));
  await checkDuplicates(store, certificates);
  return { kit, body, digest, alreadyImported: false, certificates };
}
