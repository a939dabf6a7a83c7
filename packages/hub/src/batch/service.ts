/**
 * Online batches for the owner API (ADR 0014): create, status, bundle, revoke unused.
 *
 * Invariants:
 * - Tenant-scoped: another organisation's batch is NOT_FOUND, like a missing one.
 * - Creation is all-or-none (csr-input.ts): a refused batch stores nothing but a failure audit.
 * - The passphrase is sealed with the master key (aad names the batch) and erased with the keys;
 *   it is never logged, returned or stored in clear.
 * - A bundle is handed out only for a finished batch and at most `maxDownloads` times, each
 *   counted and audited in the unit that reads it (storage claimBundle).
 * - Revoking a batch revokes only devices that never connected; the event goes out after the
 *   store unit is durable.
 */
import { randomBytes } from 'node:crypto';
import { FleetkeyError, type Clock } from '@fleetkey/protocol';
import type { CertificateAuthority } from '../ca/issuance.js';
import type { EventBus } from '../events/bus.js';
import type { OwnerContext } from '../provisioning/claim-token/service.js';
import { isRevocationReason } from '../revocation/service.js';
import type { SecretSealer } from '../secrets/sealer.js';
import type { Batch, BatchMode, BatchRevocation, NewBatchItem, Store } from '../storage/types.js';
import { buildBundle, type BundleContext } from './bundle.js';
import { decodeCsrs, validateCsrs } from './csr-input.js';
import type { BatchJobs } from './job.js';

export const HUB_KEY_ALGORITHMS = ['p256', 'p384', 'p521', 'ed25519'] as const;
const passphraseAad = (batchId: string): string => `fleetkey:batch-passphrase:${batchId}`;

export interface CreateBatchInput {
  readonly count: number;
  readonly keyAlg: string;
  readonly mode: BatchMode;
  readonly label?: string;
  readonly csrs?: readonly string[];
  readonly csrsPem?: string;
  readonly passphrase?: string;
}

export interface BatchServiceDeps {
  readonly store: Store;
  readonly ca: () => CertificateAuthority;
  readonly jobs: BatchJobs;
  readonly sealer: SecretSealer;
  readonly clock: Clock;
  readonly bus: EventBus;
  readonly maxCount: number;
  readonly maxDownloads: number;
  readonly allowedKeys: readonly string[];
  readonly bundleContext: () => BundleContext;
}

const invalid = (field: string): FleetkeyError => new FleetkeyError('VALIDATION_FAILED', { details: { field } });

export class BatchService {
  readonly #d: BatchServiceDeps;

  constructor(deps: BatchServiceDeps) {
    this.#d = deps;
  }

  async create(owner: OwnerContext, input: CreateBatchInput): Promise<Batch> {
    this.#checkInput(input);
    const id = `bt${randomBytes(5).toString('hex')}`;
    const csrs = input.mode === 'device-keys' ? await this.#csrs(input) : undefined;
    const items: NewBatchItem[] = Array.from({ length: input.count }, (_, i) => ({
      idx: i + 1, deviceId: `${id}-${String(i + 1).padStart(6, '0')}`, csr: csrs?.[i] ?? null,
    }));
    const batch: Batch = {
      id, tenantId: owner.tenantId, label: input.label ?? null, mode: input.mode, keyAlgorithm: input.keyAlg, count: input.count,
      done: 0, status: 'running', failureCode: null, createdAt: this.#d.clock.now(), createdBy: `owner:${owner.ownerId}`,
      completedAt: null, downloads: 0,
      passphraseSealed: input.passphrase === undefined ? null : this.#d.sealer.seal(Buffer.from(input.passphrase, 'utf8'), passphraseAad(id)),
    };
    await this.#d.store.batches.create(batch, items, {
      category: 'certificate', type: 'batch.create', result: 'success', actor: batch.createdBy, source: owner.source, session: owner.session,
      tenantId: owner.tenantId, details: { batchId: id, mode: input.mode, keyAlgorithm: input.keyAlg, count: input.count, encrypted: input.passphrase !== undefined },
    });
    this.#d.jobs.start(batch);
    return batch;
  }

  #checkInput(input: CreateBatchInput): void {
    if (!Number.isSafeInteger(input.count) || input.count < 1 || input.count > this.#d.maxCount) throw invalid('count');
    if (input.mode !== 'device-keys' && input.mode !== 'hub-keys') throw invalid('mode');
    const hubKeyAlg = (HUB_KEY_ALGORITHMS as readonly string[]).includes(input.keyAlg);
    if (!this.#d.allowedKeys.includes(input.keyAlg) || (input.mode === 'hub-keys' && !hubKeyAlg)) throw new FleetkeyError('KEY_NOT_ALLOWED', { details: { field: 'keyAlg' } });
    if (input.passphrase !== undefined && (input.mode !== 'hub-keys' || input.passphrase.length < 12)) throw invalid('passphrase');
    if (input.mode === 'hub-keys' && (input.csrs !== undefined || input.csrsPem !== undefined)) throw invalid('csrs');
  }

  async #csrs(input: CreateBatchInput): Promise<Buffer[]> {
    const ders = decodeCsrs(input);
    if (ders.length !== input.count) throw invalid('count');
    await validateCsrs(this.#d.ca(), this.#d.store, ders, input.keyAlg);
    return ders;
  }

  async get(owner: OwnerContext, id: string): Promise<Batch> {
    const batch = await this.#d.store.batches.get(owner.tenantId, id);
    if (batch === undefined) throw new FleetkeyError('NOT_FOUND');
    return batch;
  }

  /** The `.tar.gz`; counts one download (see the module invariants). */
  async bundle(owner: OwnerContext, id: string): Promise<Buffer> {
    const audit = { category: 'certificate', type: 'batch.bundle.download', actor: `owner:${owner.ownerId}`, source: owner.source, session: owner.session, tenantId: owner.tenantId } as const;
    const claim = await this.#d.store.batches.claimBundle(owner.tenantId, id, this.#d.maxDownloads, { ...audit, result: 'success', details: { batchId: id } });
    if (!claim.ok) {
      const code = ({ 'not-found': 'NOT_FOUND', 'not-ready': 'BATCH_NOT_READY', gone: 'BUNDLE_GONE' } as const)[claim.reason];
      if (claim.reason !== 'not-found') await this.#d.store.audit.append({ ...audit, result: 'failure', code, details: { batchId: id } });
      throw new FleetkeyError(code);
    }
    const sealed = claim.batch.passphraseSealed;
    const passphrase = sealed === null ? null : this.#d.sealer.open(sealed, passphraseAad(id)).toString('utf8');
    return buildBundle({ batch: claim.batch, items: claim.items, context: this.#d.bundleContext(), sealer: this.#d.sealer, passphrase, clock: this.#d.clock });
  }

  async revokeUnused(owner: OwnerContext, id: string, reason = 'unspecified'): Promise<BatchRevocation> {
    if (!isRevocationReason(reason)) throw invalid('reason');
    const result = await this.#d.store.batches.revokeUnused(owner.tenantId, id, reason, this.#d.clock.now(), {
      category: 'certificate', type: 'batch.revoke', result: 'success', actor: `owner:${owner.ownerId}`, source: owner.source, session: owner.session,
      details: { batchId: id, reason },
    });
    if (result === undefined) throw new FleetkeyError('NOT_FOUND');
    if (result.devices.length > 0) await this.#d.bus.publish('batch.revoked', { tenantId: owner.tenantId, batchId: id, devices: result.devices });
    return result;
  }
}
