/**
 * The device follows the hub's trust bundles (ADR 0022): from the retained `$fleetkey/trust`
 * message, and — when the hub presents a chain to a root the device does not pin — by fetching
 * the bundles from its own version on and walking them from what it already trusts.
 *
 * Invariants:
 * - Nothing but the verifier decides: a bundle is stored only after verifyInitial (from the
 *   pins of identity.json) or verifyNext/verifyChain from the stored bundle; on any failure the
 *   stored trust state and the pins in use stay exactly as they were.
 * - Bundles are fetched over a TLS connection that is NOT trusted (the point is that the device
 *   does not trust the presented root yet): only `GET /.well-known/fleetkey/trust/…`, no client
 *   certificate, no token, nothing secret is written; the bytes are self-authenticating.
 * - A catch-up walks at most MAX_CATCH_UP versions (a hostile `latest` cannot make it fetch
 *   forever); one catch-up or bundle update runs at a time.
 * - The pins in use are the stored bundle's active pins at the Clock's now (the overlap ends on
 *   the device's clock), else identity.json's pins.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import {
  FleetkeyError, MAX_BUNDLE_BYTES, decodeCandidate, verifyChain, verifyInitial, verifyNext, type Clock, type TrustBundle,
} from '@fleetkey/protocol';
import { parseHubUrl, type HubAddress } from '../enroll/est-client.js';
import { requestOverSocket } from '../enroll/http-over-socket.js';
import type { PinSet } from './pin-set.js';
import { loadTrustBundle, pinsAt, saveTrustBundle } from './trust-store.js';

export const MAX_CATCH_UP = 64;
export const TRUST_PATH = '/.well-known/fleetkey/trust';

/** Where bundles come from (the hub's HTTPS listener; tests may pass their own). */
export interface BundleSource {
  fetch(version: number | 'latest'): Promise<Buffer>;
}

function openUntrusted(hub: HubAddress, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    // Not trusted on purpose (module invariants): only public, signed documents are read.
    const socket = tlsConnect({ host: hub.host, port: hub.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.2' });
    const timer = setTimeout(() => socket.destroy(new Error('no TLS connection in time')), timeoutMs);
    socket.once('secureConnect', () => { clearTimeout(timer); resolve(socket); });
    socket.once('error', (cause) => { clearTimeout(timer); reject(new FleetkeyError('HUB_UNREACHABLE', { cause })); });
  });
}

export function httpsBundleSource(hub: HubAddress, timeoutMs: number): BundleSource {
  return {
    fetch: async (version) => {
      const socket = await openUntrusted(hub, timeoutMs);
      const res = await requestOverSocket(socket, { method: 'GET', host: `${hub.host}:${hub.port}`, path: `${TRUST_PATH}/${version}`, headers: { accept: 'application/json' }, timeoutMs });
      if (res.status !== 200) throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error(`GET ${TRUST_PATH}/${version}: ${res.status}`) });
      if (res.body.length > MAX_BUNDLE_BYTES) throw new FleetkeyError('TRUST_BUNDLE_REJECTED', { details: { reason: 'oversized' } });
      return res.body;
    },
  };
}

async function walk(trusted: TrustBundle, to: number, source: BundleSource, now: number): Promise<TrustBundle> {
  if (to - trusted.content.version > MAX_CATCH_UP) throw new FleetkeyError('TRUST_BUNDLE_REJECTED', { details: { reason: 'version-gap' } });
  const steps: Buffer[] = [];
  for (let v = trusted.content.version + 1; v <= to; v++) steps.push(await source.fetch(v));
  return verifyChain(trusted, steps, now);
}

/** The newest bundle reachable from `trusted` (or from the pins), or undefined when nothing is newer. */
export async function catchUp(trusted: TrustBundle | undefined, pins: readonly string[], source: BundleSource, now: number): Promise<TrustBundle | undefined> {
  const latestBytes = await source.fetch('latest');
  const latest = decodeCandidate(latestBytes).content.version;
  if (trusted !== undefined) return latest > trusted.content.version ? walk(trusted, latest, source, now) : undefined;
  try {
    return verifyInitial(pins, latestBytes, now);
  } catch {
    const first = verifyInitial(pins, await source.fetch(1), now); // enrolled before a rotation: walk from v1
    return latest > 1 ? walk(first, latest, source, now) : first;
  }
}

export interface TrustFollowerOptions {
  readonly stateDir: string;
  readonly identityPins: readonly string[];
  readonly source: BundleSource;
  readonly clock: Clock;
  readonly onError?: (err: unknown) => void;
}

export class TrustFollower {
  readonly #o: TrustFollowerOptions;
  #bundle: TrustBundle | undefined;
  #busy: Promise<boolean> | undefined;

  private constructor(o: TrustFollowerOptions, bundle: TrustBundle | undefined) {
    this.#o = o;
    this.#bundle = bundle;
  }

  static async open(o: TrustFollowerOptions): Promise<TrustFollower> {
    return new TrustFollower(o, await loadTrustBundle(o.stateDir));
  }

  get version(): number | undefined {
    return this.#bundle?.content.version;
  }

  pins(): PinSet {
    return pinsAt(this.#bundle, this.#o.identityPins, this.#o.clock.now());
  }

  /** The hub presented an unpinned root: catch up; true when the trust state advanced. */
  onUnpinned(): Promise<boolean> {
    return this.#once(() => catchUp(this.#bundle, this.#o.identityPins, this.#o.source, this.#o.clock.now()));
  }

  /** A bundle from `$fleetkey/trust`: the next version directly, a later one by catching up. */
  onBundle(bytes: Buffer): Promise<boolean> {
    return this.#once(async () => {
      const now = this.#o.clock.now();
      const version = decodeCandidate(bytes).content.version;
      if (this.#bundle === undefined) return catchUp(undefined, this.#o.identityPins, this.#o.source, now);
      if (version <= this.#bundle.content.version) return undefined; // the retained copy of what we hold
      if (version === this.#bundle.content.version + 1) return verifyNext(this.#bundle, bytes, now);
      return walk(this.#bundle, version, this.#o.source, now);
    });
  }

  #once(next: () => Promise<TrustBundle | undefined>): Promise<boolean> {
    this.#busy ??= (async () => {
      try {
        const bundle = await next();
        if (bundle === undefined) return false;
        await saveTrustBundle(this.#o.stateDir, bundle);
        this.#bundle = bundle;
        return true;
      } catch (err) {
        this.#o.onError?.(err);
        return false;
      }
    })().finally(() => {
      this.#busy = undefined;
    });
    return this.#busy;
  }
}

/** The follower of a device's state directory, fetching bundles from its hub URL. */
export function openFollower(o: { stateDir: string; hubUrl: string; pins: readonly string[]; clock: Clock; timeoutMs: number }): Promise<TrustFollower> {
  const source = httpsBundleSource(parseHubUrl(o.hubUrl), o.timeoutMs);
  return TrustFollower.open({ stateDir: o.stateDir, identityPins: o.pins, source, clock: o.clock });
}
