/**
 * The running hub follows its trust bundle (ADR 0021): a rotation or recovery written by the CLI
 * into the store, the end of an overlap, or a bundle nearing expiry is applied live — new TLS
 * certificate chained to the current root, device CA set, retained `$fleetkey/trust` message —
 * without a restart (ADR 0017 live trust).
 *
 * Invariants:
 * - A check tick (injected timers, every `checkIntervalMs`) compares the store's latest version
 *   and the injected Clock with the material in use; at most one check runs at a time.
 * - `apply` gets a complete material; a failure keeps the previous trust in service, goes to
 *   `onError`, and the next tick retries (the material is re-read from the store each time).
 * - Refresh before expiry happens here too (refreshIfDue), so a hub that runs for years keeps
 *   serving an unexpired bundle; devices never see a frozen one.
 */
import type { IntervalTimers } from '../tls/renewal.js';
import { loadTrust, refreshIfDue, type TrustContext } from './bundles.js';
import type { TrustMaterial } from './material.js';

export interface RootFollowerOptions {
  readonly context: TrustContext;
  readonly timers: IntervalTimers;
  readonly checkIntervalMs: number;
  readonly apply: (material: TrustMaterial) => Promise<void>;
  readonly onError: (err: unknown) => void;
}

export class RootFollower {
  readonly #o: RootFollowerOptions;
  #current: TrustMaterial;
  #handle: unknown;
  #running: Promise<boolean> | undefined;
  #stopped = false;

  constructor(o: RootFollowerOptions, initial: TrustMaterial) {
    this.#o = o;
    this.#current = initial;
  }

  get current(): TrustMaterial {
    return this.#current;
  }

  start(): void {
    if (this.#handle === undefined && !this.#stopped) this.#handle = this.#o.timers.setInterval(() => void this.check(), this.#o.checkIntervalMs);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#handle !== undefined) this.#o.timers.clearInterval(this.#handle);
    this.#handle = undefined;
  }

  /** Applies a changed trust state; resolves true when one was applied. Never rejects. */
  check(): Promise<boolean> {
    if (this.#stopped) return Promise.resolve(false);
    this.#running ??= this.#follow().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #follow(): Promise<boolean> {
    try {
      const ctx = this.#o.context;
      const refreshed = await refreshIfDue(ctx, this.#current);
      const latest = await ctx.store.trust.latest();
      const changesAt = this.#current.changesAt;
      const due = refreshed !== undefined || latest?.version !== this.#current.bundle.content.version || (changesAt !== undefined && ctx.clock.now() >= changesAt);
      if (!due || this.#stopped) return false;
      const material = await loadTrust(ctx);
      await this.#o.apply(material);
      this.#current = material;
      return true;
    } catch (err) {
      this.#o.onError(err);
      return false;
    }
  }
}
