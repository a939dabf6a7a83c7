/**
 * The batch job (ADR 0014): issues the identities of a running batch in chunks, resumable after
 * a hub restart or a crash.
 *
 * Invariants:
 * - A chunk is signed in memory and recorded by one store unit (`recordIssued`): devices,
 *   certificates, item marks and progress land together or not at all. A crash loses at most
 *   the chunk in flight, whose certificates were never handed to anyone; the resumed job signs
 *   those items again (new serials, new hub keys) under the same pre-assigned device ids.
 * - Only `ca/` decides what gets signed: the job passes a Grant (who) and a prepared key (a
 *   verified CSR, or a key generated here, `prepareHubKey`) to `CertificateAuthority.issue`.
 * - A hub-generated private key exists in clear only in this process's memory; it is sealed with
 *   the master key (aad names the device) before the unit that stores it.
 * - One loop per batch at a time; `close` stops every loop after its current chunk.
 * - A coded failure (a CSR key meanwhile enrolled elsewhere) marks the batch failed with the code.
 */
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { toFleetkeyError, type Clock } from '@fleetkey/protocol';
import { CertificateAuthority, type VerifiedCsr } from '../ca/issuance.js';
import type { CsrVerifierPool } from '../ca/csr-verifier-pool.js';
import type { IssuancePolicy } from '../ca/policy.js';
import type { Signer } from '../ca/signer.js';
import type { SecretSealer } from '../secrets/sealer.js';
import type { Batch, IssuedBatchItem, PendingBatchItem, Store } from '../storage/types.js';
import { batchKeyAad } from './bundle.js';

const generateKeyPairAsync = promisify(generateKeyPair);
export const DEFAULT_CHUNK = 200;

export interface BatchJobDeps {
  readonly store: Store;
  /** The device CA as the batch job uses it (its record step is the chunk unit here). */
  readonly ca: () => CertificateAuthority;
  readonly sealer: SecretSealer;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly deviceValidityMs: number;
  readonly chunkSize?: number;
}

async function newKey(algorithm: string): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  if (algorithm === 'ed25519') return generateKeyPairAsync('ed25519');
  const namedCurve = ({ p256: 'P-256', p384: 'P-384', p521: 'P-521' } as Record<string, string>)[algorithm] ?? 'P-256';
  return generateKeyPairAsync('ec', { namedCurve });
}

export class BatchJobs {
  readonly #deps: BatchJobDeps;
  readonly #running = new Map<string, Promise<void>>();
  #closed = false;

  constructor(deps: BatchJobDeps) {
    this.#deps = deps;
  }

  /** Starts the loop of a running batch unless one is already running. */
  start(batch: Batch): void {
    if (this.#closed || this.#running.has(batch.id)) return;
    const loop = this.#run(batch)
      .catch((err: unknown) => this.#deps.logger.error({ err, batchId: batch.id }, 'batch job stopped'))
      .finally(() => this.#running.delete(batch.id));
    this.#running.set(batch.id, loop);
  }

  /** Resumes every batch left running (hub start-up); returns how many. */
  async resumeAll(): Promise<number> {
    const running = await this.#deps.store.batches.listRunning();
    for (const b of running) this.start(b);
    if (running.length > 0) this.#deps.logger.info({ batches: running.length }, 'batch jobs resumed');
    return running.length;
  }

  /** Resolves when the batch's loop (if any) has stopped. */
  async settled(batchId: string): Promise<void> {
    await this.#running.get(batchId);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#running.values()]);
  }

  async #run(batch: Batch): Promise<void> {
    const chunk = this.#deps.chunkSize ?? DEFAULT_CHUNK;
    while (!this.#closed) {
      const items = await this.#deps.store.batches.pendingItems(batch.id, chunk);
      if (items.length === 0) return;
      let issued: IssuedBatchItem[];
      try {
        issued = await Promise.all(items.map((item) => this.#issueOne(batch, item)));
        const first = items[0]!.idx;
        const recorded = await this.#deps.store.batches.recordIssued(batch.tenantId, batch.id, issued, {
          category: 'certificate', type: 'batch.issue', result: 'success', actor: batch.createdBy, source: 'hub',
          details: { batchId: batch.id, first, last: items.at(-1)!.idx, certificates: issued.length },
        });
        if (!recorded) return; // cancelled (batch revoke) or finished elsewhere
      } catch (err) {
        await this.#fail(batch, err);
        return;
      }
    }
  }

  async #fail(batch: Batch, err: unknown): Promise<void> {
    const e = toFleetkeyError(err);
    this.#deps.logger.warn({ err, batchId: batch.id, code: e.code }, 'batch failed');
    await this.#deps.store.batches.fail(batch.id, e.code, {
      category: 'certificate', type: 'batch.fail', result: 'failure', actor: batch.createdBy, source: 'hub', tenantId: batch.tenantId, code: e.code,
      details: { batchId: batch.id, ...(e.details ?? {}) },
    });
  }

  async #prepare(batch: Batch, item: PendingBatchItem): Promise<{ prepared: VerifiedCsr; keySealed: Buffer | null }> {
    const ca = this.#deps.ca();
    if (item.csr !== null) return { prepared: await ca.prepareAsync(item.csr), keySealed: null };
    const { publicKey, privateKey } = await newKey(batch.keyAlgorithm);
    const prepared = ca.prepareHubKey(publicKey.export({ type: 'spki', format: 'der' }));
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    const keySealed = this.#deps.sealer.seal(pkcs8, batchKeyAad(item.deviceId));
    pkcs8.fill(0);
    return { prepared, keySealed };
  }

  async #issueOne(batch: Batch, item: PendingBatchItem): Promise<IssuedBatchItem> {
    const { prepared, keySealed } = await this.#prepare(batch, item);
    const grant = { method: 'batch', tenantId: batch.tenantId, deviceId: item.deviceId, maxValidityMs: this.#deps.deviceValidityMs, context: { batchId: batch.id } };
    const issued = await this.#deps.ca().issue(grant, prepared);
    return {
      idx: item.idx, keySealed,
      certificate: {
        serial: issued.serialHex, deviceId: item.deviceId, tenantId: batch.tenantId, spkiSha256: issued.spkiSha256Hex,
        keyAlgorithm: issued.keyAlgorithm, notBefore: issued.notBefore.getTime(), notAfter: issued.notAfter.getTime(),
        issuedAt: this.#deps.clock.now(), der: issued.der, revokedAt: null, revocationReason: null,
      },
    };
  }
}

/**
 * The device CA as batch jobs use it: the same key, certificate and policy as EST enrollment
 * (createEnrollmentCa), with no per-certificate record step — `recordIssued` records each chunk.
 */
export function createBatchCa(o: { signer: Signer; certificate: Buffer; clock: Clock; policy: Partial<IssuancePolicy>; csrVerifier?: CsrVerifierPool }): CertificateAuthority {
  return new CertificateAuthority({
    signer: o.signer, certificate: o.certificate, clock: o.clock, policy: o.policy,
    ...(o.csrVerifier === undefined ? {} : { csrVerifier: o.csrVerifier }),
    recorder: { record: async () => undefined },
  });
}
