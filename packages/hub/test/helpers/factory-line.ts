/**
 * A factory line inside a test (ADR 0015): a kit made through the real hub API
 * (`POST /api/v1/factory-kits`, the kit key made here and never sent), device certificates signed
 * with the kit key, and manifests signed with it. Because the test holds the kit key, it can forge
 * manifests a real line would refuse to make (beyond the count, outside the window, duplicate
 * serials or keys), so the hub's import checks are the only thing that can stop them.
 * Also: a read-only snapshot of what an import may change, for "nothing changed" assertions.
 */
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import Database from 'better-sqlite3';
import {
  DeviceLeafProfile, MANIFEST_FORMAT, assembleCertificate, buildCsr, encodeTbsCertificate, factoryDeviceId, fromPem, parseCertificate,
  signManifest, spkiSha256, toPem, type ManifestBody, type ManifestEntry, type SignedManifest,
} from '@fleetkey/protocol';
import { randomSerial } from '../../src/ca/serial.js';
import { dbPath } from '../../src/datadir.js';
import type { TestHub } from './test-hub.js';

export interface TestKit {
  readonly kitId: string;
  readonly tenantId: string;
  readonly caDer: Buffer;
  readonly caPem: string;
  readonly key: KeyObject;
  readonly windowStart: number;
  readonly windowEnd: number;
}

export interface LineDevice {
  readonly entry: ManifestEntry;
  readonly certPem: string;
  readonly keyPem: string;
  readonly privateKey: KeyObject;
}

export interface LineOverrides {
  readonly notBefore?: number;
  readonly serial?: Buffer;
  /** Certify this key instead of a fresh one (duplicate-key forgeries). */
  readonly privateKey?: KeyObject;
}

/** A kit for `orgName` through the hub API; the key stays in the test. */
export async function createKit(t: TestHub, token: string, orgName: string, count: number, validForSeconds = 86_400): Promise<TestKit> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csr = await buildCsr({ spki: publicKey.export({ type: 'spki', format: 'der' }), subject: [['CN', 'test kit']], algorithm: 'p256', sign: async (d) => sign('sha256', d, privateKey) });
  const r = await t.api('POST', '/api/v1/factory-kits', { orgName, count, validForSeconds, csr: csr.toString('base64') }, token);
  if (r.status !== 201) throw new Error(`kit creation failed: ${r.status} ${JSON.stringify(r.body)}`);
  const caPem = String(r.body.caCertificatePem);
  return {
    kitId: String(r.body.kitId), tenantId: String(r.body.tenantId), caDer: fromPem(caPem, 'CERTIFICATE'), caPem, key: privateKey,
    windowStart: Date.parse(String(r.body.windowStart)), windowEnd: Date.parse(String(r.body.windowEnd)),
  };
}

/** A device certificate for `seq`, signed with the kit key like the line does (factory-line.ts). */
export function lineDevice(kit: TestKit, seq: number, over: LineOverrides = {}): LineDevice {
  const privateKey = over.privateKey ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const ca = parseCertificate(kit.caDer);
  const profile = new DeviceLeafProfile({ issuerName: ca.subject, issuerSpki: ca.spki });
  const nb = over.notBefore ?? Date.now() - 60_000;
  const deviceId = factoryDeviceId(kit.kitId, seq);
  const template = profile.template({
    deviceId, spki, serial: over.serial ?? randomSerial(), notBefore: new Date(nb - (nb % 1000)), notAfter: new Date(nb - (nb % 1000) + 86_400_000),
  });
  const tbs = encodeTbsCertificate(template, 'p256');
  const der = assembleCertificate(tbs, 'p256', sign('sha256', tbs, kit.key));
  const entry: ManifestEntry = {
    seq, deviceId, serial: parseCertificate(der).serial.toString('hex'), spkiSha256: spkiSha256(spki).toString('hex'), certificate: der.toString('base64'),
  };
  return { entry, certPem: toPem('CERTIFICATE', der), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), privateKey };
}

/** The signed manifest of `devices` (counter = their number), signed with the kit key. */
export async function lineManifest(kit: TestKit, devices: readonly LineDevice[], over: Partial<ManifestBody> = {}): Promise<SignedManifest> {
  const entries = devices.map((d) => d.entry);
  const body: ManifestBody = { format: MANIFEST_FORMAT, kitId: kit.kitId, tenantId: kit.tenantId, counter: entries.length, createdAt: new Date().toISOString(), entries, ...over };
  return signManifest(body, { algorithm: 'p256', sign: async (d) => sign('sha256', d, kit.key) }, kit.caDer);
}

/** What an import may change, read straight from the database (read-only). */
export function importState(t: TestHub, kitId: string): string {
  const db = new Database(dbPath(t.hub.config.dataDir), { readonly: true });
  try {
    return JSON.stringify({
      devices: db.prepare('SELECT id, tenant_id, status, pre_provisioned, current_serial FROM devices ORDER BY id').all(),
      certificates: db.prepare('SELECT serial, device_id, spki_sha256, revoked_at FROM certificates ORDER BY serial').all(),
      kit: db.prepare('SELECT imported_counter, imported_digest FROM factory_kits WHERE id = ?').get(kitId),
    });
  } finally {
    db.close();
  }
}
