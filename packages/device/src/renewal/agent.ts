/**
 * Automatic renewal inside a running device agent (ADR 0025): the scheduler, the hub's early-renew
 * command, and the switch of the live MQTT session to the renewed certificate.
 *
 * Invariants:
 * - One renewal = renew() without retirement (proof + commit) → `client.useIdentity` (the live
 *   session ends and reconnects at once with the new certificate; the outbox keeps every queued
 *   message) → once the client is connected again, the previous certificates are retired at the
 *   hub. If the new session does not come up within `connectedTimeoutMs`, nothing is retired:
 *   the old certificate stays valid until it expires, and the failure is reported.
 * - An early-renew command (`devices/{id}/commands/fleetkey/renew`) is parsed strictly
 *   (protocol/renew-command.ts); a malformed one, a repeated command id, or one arriving within
 *   `minCommandIntervalMs` of the last command-triggered renewal is ignored and reported with its
 *   code (VALIDATION_FAILED, CONFLICT, RATE_LIMITED). A renewal already running is joined.
 */
import { FleetkeyError, RENEW_COMMAND, parseRenewCommand, systemClock, type Clock } from '@fleetkey/protocol';
import { renew, retirePreviousCertificates } from '../api/renew.js';
import type { KeyStore } from '../keystore/types.js';
import { systemTimers, type BackoffOptions, type Timers } from '../mqtt/backoff.js';
import type { DeviceClient } from '../mqtt/client.js';
import { loadClientIdentity } from '../mqtt/connect.js';
import type { DeviceCommand } from '../mqtt/topics.js';
import { loadIdentity } from '../state/identity.js';
import { RenewalScheduler, type RenewalEvent, type RenewalTrigger } from './scheduler.js';
import type { Validity } from './schedule.js';

export const DEFAULT_MIN_COMMAND_INTERVAL_MS = 5 * 60_000;
const SEEN_COMMANDS = 64;

export type AutoRenewalEvent =
  | RenewalEvent
  | { readonly type: 'retired'; readonly serials: readonly string[] }
  | { readonly type: 'command-ignored'; readonly error: FleetkeyError };

export interface AutoRenewalOptions {
  readonly stateDir: string;
  readonly client: DeviceClient;
  readonly keyStore?: KeyStore;
  readonly clock?: Clock;
  readonly timers?: Timers;
  readonly random?: () => number;
  readonly jitterFraction?: number;
  readonly retry?: Omit<BackoffOptions, 'random' | 'stableAfterMs'>;
  readonly minCommandIntervalMs?: number;
  readonly connectedTimeoutMs?: number;
  readonly timeoutMs?: number;
  readonly onEvent?: (event: AutoRenewalEvent) => void;
}

/**
 * Which early-renew commands the agent acts on: a valid payload, a command id not seen before,
 * and not within `minIntervalMs` of the last admitted command. Pure apart from the clock.
 */
export class RenewCommandGate {
  readonly #clock: Clock;
  readonly #minIntervalMs: number;
  readonly #seen: string[] = [];
  #lastAt: number | undefined;

  constructor(clock: Clock, minIntervalMs = DEFAULT_MIN_COMMAND_INTERVAL_MS) {
    this.#clock = clock;
    this.#minIntervalMs = minIntervalMs;
  }

  /** The command id to act on; throws VALIDATION_FAILED, CONFLICT (seen) or RATE_LIMITED. */
  admit(payload: Uint8Array): string {
    const { id } = parseRenewCommand(payload);
    if (this.#seen.includes(id)) throw new FleetkeyError('CONFLICT', { cause: new Error('renew command already handled') });
    const now = this.#clock.now();
    if (this.#lastAt !== undefined && now - this.#lastAt < this.#minIntervalMs) throw new FleetkeyError('RATE_LIMITED');
    this.#seen.push(id);
    if (this.#seen.length > SEEN_COMMANDS) this.#seen.shift();
    this.#lastAt = now;
    return id;
  }
}

async function storedValidity(stateDir: string): Promise<Validity> {
  const { identity } = await loadIdentity(stateDir);
  return { notBefore: Date.parse(identity.notBefore), notAfter: Date.parse(identity.notAfter) };
}

export class AutoRenewal {
  readonly scheduler: RenewalScheduler;
  readonly #o: AutoRenewalOptions;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #gate: RenewCommandGate;
  readonly #onCommand = (command: DeviceCommand): void => this.handleCommand(command);

  constructor(options: AutoRenewalOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
    this.#gate = new RenewCommandGate(this.#clock, options.minCommandIntervalMs);
    this.scheduler = new RenewalScheduler({
      clock: this.#clock, timers: this.#timers, current: () => storedValidity(options.stateDir),
      renew: (trigger) => this.#renewAndSwitch(trigger),
      ...(options.random === undefined ? {} : { random: options.random }),
      ...(options.jitterFraction === undefined ? {} : { jitterFraction: options.jitterFraction }),
      ...(options.retry === undefined ? {} : { retry: options.retry }),
      ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
    });
  }

  async start(): Promise<void> {
    this.#o.client.on('command', this.#onCommand);
    await this.scheduler.start();
  }

  stop(): void {
    this.#o.client.off('command', this.#onCommand);
    this.scheduler.stop();
  }

  /** The agent's reaction to a command; only `fleetkey/renew` concerns renewal. */
  handleCommand(command: DeviceCommand): void {
    if (command.name !== RENEW_COMMAND) return;
    try {
      this.#gate.admit(command.payload);
    } catch (raw) {
      const error = raw instanceof FleetkeyError ? raw : new FleetkeyError('INTERNAL', { cause: raw });
      this.#o.onEvent?.({ type: 'command-ignored', error });
      return;
    }
    void this.scheduler.renewNow('command');
  }

  async #renewAndSwitch(_trigger: RenewalTrigger): Promise<Validity> {
    const o = this.#o;
    const common = { stateDir: o.stateDir, clock: this.#clock, ...(o.keyStore === undefined ? {} : { keyStore: o.keyStore }), ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }) };
    const renewed = await renew({ ...common, retire: false });
    const connected = this.#connectedAgain();
    await o.client.useIdentity(await loadClientIdentity(o.stateDir, o.keyStore));
    if (await connected) {
      const serials = await retirePreviousCertificates(common).catch(() => undefined);
      if (serials !== undefined) o.onEvent?.({ type: 'retired', serials });
    }
    return { notBefore: renewed.notBefore.getTime(), notAfter: renewed.notAfter.getTime() };
  }

  /** True once the client has connected after the switch, false after `connectedTimeoutMs`. */
  #connectedAgain(): Promise<boolean> {
    const client = this.#o.client;
    return new Promise((resolve) => {
      let switched = false;
      const onIdentity = (): void => { switched = true; };
      const onConnected = (): void => { if (switched) done(true); };
      const done = (ok: boolean): void => {
        this.#timers.clearTimeout(timer);
        client.off('identity', onIdentity);
        client.off('connected', onConnected);
        resolve(ok);
      };
      const timer = this.#timers.setTimeout(() => done(false), this.#o.connectedTimeoutMs ?? 60_000);
      client.on('identity', onIdentity);
      client.on('connected', onConnected);
    });
  }
}

/**
 * Starts automatic renewal for a connected client.
 *
 * @example
 * const client = await connect({ stateDir });
 * const renewal = await startAutoRenewal({ stateDir, client, onEvent: (e) => console.log(e.type) });
 * console.log('renewal due', renewal.scheduler.dueAt);
 */
export async function startAutoRenewal(options: AutoRenewalOptions): Promise<AutoRenewal> {
  const auto = new AutoRenewal(options);
  await auto.start();
  return auto;
}
