/**
 * Renewal of the hub's own TLS server certificate before it expires (ADR 0017): a fresh key and
 * certificate from the hub root, applied live to both listeners through `LiveTrust`.
 *
 * Invariants:
 * - The renewal time is `issuedAt + renewAtFraction × (notAfter − issuedAt)` of the certificate
 *   in use, read from the injected Clock: a check tick (injected timers, every `checkIntervalMs`)
 *   compares the clock with it. No single long timer: `setTimeout` caps at 2^31−1 ms (24.8 days,
 *   shorter than 2/3 of the longest allowed lifetime) and follows the monotonic clock, not the
 *   Clock, across a suspend or a clock step.
 * - At most one renewal runs at a time; a failed one leaves the current certificate in service,
 *   is reported to `onError`, and is retried at the next tick (each tick is one attempt).
 * - The new certificate is applied only after it was issued and every listener accepted it
 *   (LiveTrust is all-or-nothing); `onRenewed` then sees the previous and the new one.
 * - `stop` clears the tick; a renewal in flight finishes but applies nothing afterwards.
 */
import { X509Certificate } from 'node:crypto';
import type { Clock } from '@fleetkey/protocol';
import type { TlsServerIdentity } from '../pki/bootstrap.js';

export interface IntervalTimers {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const nodeTimers: IntervalTimers = {
  setInterval: (callback, ms) => {
    const handle = setInterval(callback, ms);
    handle.unref();
    return handle;
  },
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

/** The certificate in service, with when it was issued (the Clock's time, not the backdated notBefore). */
export interface ServedCertificate {
  readonly identity: TlsServerIdentity;
  readonly issuedAt: number;
  /** Lower-case hex serial of the leaf. */
  readonly serial: string;
}

export interface TlsRenewerOptions {
  readonly clock: Clock;
  readonly timers?: IntervalTimers;
  readonly checkIntervalMs: number;
  /** Share of the lifetime after which the certificate is renewed, in (0, 1). */
  readonly renewAtFraction: number;
  readonly issue: () => Promise<TlsServerIdentity>;
  /** Puts the new identity in service; throws when a listener refuses it. */
  readonly apply: (identity: TlsServerIdentity) => void;
  readonly onRenewed: (next: ServedCertificate, previous: ServedCertificate) => Promise<void>;
  readonly onError: (err: unknown, current: ServedCertificate) => void;
}

export function servedCertificate(identity: TlsServerIdentity, issuedAt: number): ServedCertificate {
  return { identity, issuedAt, serial: new X509Certificate(identity.chainPem).serialNumber.toLowerCase() };
}

/** When `served` is due for renewal (ms since the epoch). */
export function renewalTime(served: ServedCertificate, renewAtFraction: number): number {
  const lifetime = served.identity.notAfter.getTime() - served.issuedAt;
  return served.issuedAt + Math.floor(Math.max(0, lifetime) * renewAtFraction);
}

export class TlsRenewer {
  readonly #o: TlsRenewerOptions;
  readonly #timers: IntervalTimers;
  #current: ServedCertificate;
  #handle: unknown;
  #running: Promise<boolean> | undefined;
  #stopped = false;

  constructor(o: TlsRenewerOptions, current: ServedCertificate) {
    this.#o = o;
    this.#timers = o.timers ?? nodeTimers;
    this.#current = current;
  }

  get current(): ServedCertificate {
    return this.#current;
  }

  get renewAt(): number {
    return renewalTime(this.#current, this.#o.renewAtFraction);
  }

  /** Takes over a certificate put in service elsewhere (a root rotation, ADR 0021). */
  adopt(served: ServedCertificate): void {
    this.#current = served;
  }

  start(): void {
    if (this.#handle !== undefined || this.#stopped) return;
    this.#handle = this.#timers.setInterval(() => void this.check(), this.#o.checkIntervalMs);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#handle !== undefined) this.#timers.clearInterval(this.#handle);
    this.#handle = undefined;
  }

  /** Renews when due; resolves true when a new certificate went into service. Never rejects. */
  check(): Promise<boolean> {
    if (this.#stopped || this.#o.clock.now() < this.renewAt) return Promise.resolve(false);
    this.#running ??= this.#renew().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #renew(): Promise<boolean> {
    const previous = this.#current;
    try {
      const identity = await this.#o.issue();
      if (this.#stopped) return false;
      this.#o.apply(identity);
      this.#current = servedCertificate(identity, this.#o.clock.now());
    } catch (err) {
      this.#o.onError(err, previous);
      return false;
    }
    await this.#o.onRenewed(this.#current, previous);
    return true;
  }
}
