/**
 * The device CA's CRL (RFC 5280 §5): generated from the store, signed by the device CA key,
 * cached, and re-signed when a revocation happens or half of its lifetime has passed.
 *
 * Invariants:
 * - Every CRL carries a new cRLNumber from the store's durable counter (never reused across
 *   restarts or processes) and nextUpdate = thisUpdate + nextUpdateMs, so a served CRL always
 *   has at least half of its lifetime left.
 * - thisUpdate is read after the revoked list, so no revocationDate is after it; a revocation
 *   stamped by a clock running ahead (another node) is listed at thisUpdate, never left out.
 * - Generations run one at a time. `invalidate()` during a generation makes the next `current()`
 *   start another one, so a revocation is never hidden by a generation that read the list before it.
 * - Lists revoked certificates that have not expired (RFC 5280 §3.3 allows dropping expired ones).
 */
import { signCrl, type Clock, type CrlReason, isCrlReason, parseCertificate } from '@fleetkey/protocol';
import type { Signer } from '../ca/signer.js';
import type { RevocationRepo } from '../storage/types.js';

export interface PublishedCrl {
  readonly der: Buffer;
  readonly crlNumber: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: number;
}

export interface CrlPublisherDeps {
  readonly revocation: RevocationRepo;
  readonly signer: Signer;
  /** DER certificate of the device CA (`signer`'s key). */
  readonly caCertificate: Buffer;
  readonly clock: Clock;
  readonly nextUpdateMs: number;
}

const wholeSeconds = (ms: number): Date => new Date(ms - (ms % 1000));

export class CrlPublisher {
  readonly #deps: CrlPublisherDeps;
  readonly #issuerName: Buffer;
  #epoch = 0;
  #current: { crl: PublishedCrl; epoch: number } | undefined;
  #inflight: { epoch: number; promise: Promise<PublishedCrl> } | undefined;

  constructor(deps: CrlPublisherDeps) {
    if (!Number.isSafeInteger(deps.nextUpdateMs) || deps.nextUpdateMs < 2000) throw new RangeError('nextUpdateMs');
    this.#deps = deps;
    this.#issuerName = parseCertificate(deps.caCertificate).subject;
  }

  /** The CRL to serve now: the cached one while it is fresh, else a new one. */
  async current(): Promise<PublishedCrl> {
    const cached = this.#current;
    if (cached !== undefined && cached.epoch === this.#epoch && this.#deps.clock.now() < this.#refreshAt(cached.crl)) {
      return cached.crl;
    }
    return this.regenerate();
  }

  /** Marks the cached CRL as out of date (a revocation was committed). */
  invalidate(): void {
    this.#epoch++;
  }

  /** Signs a new CRL now (joining a generation that started after the last invalidate). */
  regenerate(): Promise<PublishedCrl> {
    const epoch = this.#epoch;
    if (this.#inflight?.epoch === epoch) return this.#inflight.promise;
    const previous = this.#inflight?.promise.catch(() => undefined);
    const promise = (async () => {
      await previous;
      return this.#generate(epoch);
    })();
    this.#inflight = { epoch, promise };
    const clear = (): void => {
      if (this.#inflight?.promise === promise) this.#inflight = undefined;
    };
    promise.then(clear, clear);
    return promise;
  }

  #refreshAt(crl: PublishedCrl): number {
    return crl.thisUpdate.getTime() + this.#deps.nextUpdateMs / 2;
  }

  async #generate(epoch: number): Promise<PublishedCrl> {
    const { revocation, signer, clock, nextUpdateMs } = this.#deps;
    const revoked = await revocation.listRevoked({ notAfterFrom: clock.now() });
    const crlNumber = await revocation.nextCrlNumber();
    const thisUpdate = wholeSeconds(clock.now());
    const nextUpdate = new Date(thisUpdate.getTime() + nextUpdateMs);
    const der = await signCrl({
      issuerName: this.#issuerName,
      issuerSpki: signer.spki,
      thisUpdate,
      nextUpdate,
      crlNumber,
      revoked: revoked.map((r) => ({
        serial: Buffer.from(r.serial, 'hex'),
        revocationDate: new Date(Math.min(r.revokedAt, thisUpdate.getTime())),
        reason: reasonOf(r.reason),
      })),
    }, signer);
    const crl: PublishedCrl = { der, crlNumber, thisUpdate, nextUpdate, entries: revoked.length };
    if (this.#current === undefined || crl.crlNumber > this.#current.crl.crlNumber) this.#current = { crl, epoch };
    return crl;
  }
}

/** A stored reason name; anything unexpected is reported as `unspecified` rather than dropped. */
export function reasonOf(stored: string): CrlReason {
  return isCrlReason(stored) ? stored : 'unspecified';
}
