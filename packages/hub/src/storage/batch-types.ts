/**
 * Storage types of batch pre-provisioning and factory kits (ADRs 0014, 0015); part of the Store
 * seam of `types.ts`, whose invariants hold here too.
 *
 * Invariants:
 * - A batch device is registered together with its certificate, its item's `done` mark and the
 *   batch's progress counter in one unit: after any crash a device exists with exactly one
 *   certificate, or not at all (no half-registered devices), and `done` counts exactly them.
 * - Item device ids are assigned at creation (UNIQUE): a resumed job can never register a device
 *   twice, whatever it re-signs.
 * - Hub-generated private keys are stored only sealed (master key, aad names the device) and are
 *   erased in the unit that hands out the last allowed bundle download.
 * - Every read and write is tenant-scoped; another tenant's batch or kit is "no such batch".
 * - A kit's imported counter only grows: an import is conditional on the counter it read.
 */
import type { AuditEventInput, CertificateRecord, Device } from './types.js';

export type BatchMode = 'device-keys' | 'hub-keys';
export type BatchStatus = 'running' | 'done' | 'failed' | 'cancelled';

export interface Batch {
  readonly id: string;
  readonly tenantId: string;
  readonly label: string | null;
  readonly mode: BatchMode;
  readonly keyAlgorithm: string;
  readonly count: number;
  readonly done: number;
  readonly status: BatchStatus;
  readonly failureCode: string | null;
  readonly createdAt: number;
  readonly createdBy: string;
  readonly completedAt: number | null;
  readonly downloads: number;
  /** The optional bundle passphrase, sealed with the master key. */
  readonly passphraseSealed: Buffer | null;
}

export interface NewBatchItem {
  readonly idx: number;
  readonly deviceId: string;
  /** DER PKCS#10 (device-keys), null (hub-keys). */
  readonly csr: Buffer | null;
}

export interface PendingBatchItem extends NewBatchItem {
  readonly batchId: string;
}

export interface IssuedBatchItem {
  readonly idx: number;
  readonly certificate: CertificateRecord;
  /** Sealed PKCS#8 of a hub-generated key, else null. */
  readonly keySealed: Buffer | null;
}

export interface BundleItem {
  readonly idx: number;
  readonly deviceId: string;
  readonly certificateDer: Buffer;
  /** The certificate's validity as recorded (ms), so the bundle need not parse it again. */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly keySealed: Buffer | null;
}

export type BundleClaim =
  | { readonly ok: true; readonly batch: Batch; readonly items: readonly BundleItem[] }
  | { readonly ok: false; readonly reason: 'not-found' | 'not-ready' | 'gone' };

export interface BatchRevocation {
  /** The batch (or factory kit) id. */
  readonly id: string;
  /** True when a running job was stopped by this revocation. */
  readonly cancelled: boolean;
  /** Devices revoked now, each with its certificate serials. */
  readonly devices: ReadonlyArray<{ readonly deviceId: string; readonly serials: readonly string[] }>;
}

export interface FactoryKitRecord {
  readonly id: string;
  readonly tenantId: string;
  /** DER of the factory sub-CA certificate. */
  readonly certificate: Buffer;
  readonly maxCount: number;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly createdAt: number;
  readonly createdBy: string;
  readonly importedCounter: number;
  readonly importedDigest: string | null;
}

export interface FactoryImportInput {
  readonly kitId: string;
  readonly tenantId: string;
  /** The counter the importer checked against; the unit fails with MANIFEST_STALE if it moved. */
  readonly previousCounter: number;
  readonly counter: number;
  readonly digest: string;
  readonly devices: ReadonlyArray<{ readonly device: Device; readonly certificate: CertificateRecord }>;
  readonly audit: AuditEventInput;
}

export interface BatchRepo {
  /** The batch and its items, atomically with the audit record; CONFLICT on a taken id. */
  create(batch: Batch, items: readonly NewBatchItem[], audit: AuditEventInput): Promise<void>;
  get(tenantId: string, id: string): Promise<Batch | undefined>;
  /** Running batches of every tenant, oldest first: the jobs to resume at start-up. */
  listRunning(): Promise<Batch[]>;
  /** Up to `limit` items not yet issued, by index. */
  pendingItems(batchId: string, limit: number): Promise<PendingBatchItem[]>;
  /**
   * One unit: each item's device (pre-provisioned) + certificate + done mark, progress += n, and
   * status done when complete. False (nothing written) when the batch is no longer running.
   * KEY_ALREADY_ENROLLED when a key meanwhile belongs to another device.
   */
  recordIssued(tenantId: string, batchId: string, items: readonly IssuedBatchItem[], audit: AuditEventInput): Promise<boolean>;
  /** Marks a running batch failed with a code (nothing else changes). */
  fail(batchId: string, code: string, audit: AuditEventInput): Promise<void>;
  /** Counts one download if the batch is done and under `maxDownloads`; erases keys on the last. */
  claimBundle(tenantId: string, id: string, maxDownloads: number, audit: AuditEventInput): Promise<BundleClaim>;
  /** Revokes the never-connected devices of a batch or factory kit, cancels a running job; undefined when no such id. */
  revokeUnused(tenantId: string, id: string, reason: string, now: number, audit: AuditEventInput): Promise<BatchRevocation | undefined>;
  /** pre-provisioned → active (first connection), one conditional UPDATE; false if it was not pre-provisioned. */
  activateDevice(tenantId: string, deviceId: string, audit: AuditEventInput): Promise<boolean>;
  createKit(kit: FactoryKitRecord, audit: AuditEventInput): Promise<void>;
  /** Any tenant: the importer decides what a kit of another organisation means. */
  getKit(kitId: string): Promise<FactoryKitRecord | undefined>;
  listKits(): Promise<FactoryKitRecord[]>;
  /** One unit: the devices and certificates, and the kit's counter and digest. */
  importFactory(input: FactoryImportInput): Promise<void>;
}
