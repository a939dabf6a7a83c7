/**
 * The device's MQTT client: a reconnect loop around pinned sessions, fed by the durable outbox.
 *
 * Invariants:
 * - QoS 1 publishes go through the outbox: `publish` resolves "queued" after fsync, and a message
 *   leaves the outbox only on its PUBACK. Each session resends every pending message, oldest
 *   first, at most `maxInflight` at a time, with DUP=1 when it may have been sent before.
 * - QoS 0 publishes are never stored: sent when a session is up, else reported `dropped`.
 * - Every session starts with connectPinned (pin verified before a byte is written) using the
 *   one TLS context of this identity (ADR 0008), then CONNECT with client id = device id.
 * - Failed attempts wait `Backoff.next()` (full jitter, never below minMs); a refusal of our
 *   certificate stops the loop with DEVICE_REVOKED (refusal.ts) — no retry storm.
 * - `stopped` resolves once, with the fatal error or undefined after `close()`.
 * - `useIdentity` (a renewed certificate, ADR 0025) swaps the TLS context for every later
 *   connection and ends the live session at once; the loop reconnects without backoff, and
 *   messages that were in flight stay in the outbox and are resent (DUP=1): nothing queued is lost.
 */
import { EventEmitter } from 'node:events';
import type { SecureContext, TLSSocket } from 'node:tls';
import { FleetkeyError, type Clock } from '@fleetkey/protocol';
import { envelopePayload, newMessageId } from '../outbox/message-id.js';
import type { FileOutbox, QueuedMessage } from '../outbox/outbox.js';
import { connectFollowing, fixedTrust } from '../trust/connect-following.js';
import type { PinSet } from '../trust/pin-set.js';
import type { TrustFollower } from '../trust/follow.js';
import { Backoff, type Timers } from './backoff.js';
import { classifyFailure } from './refusal.js';
import { openSession, type MqttSession } from './session.js';
import { checkPublishTopic, commandFrom, commandsFilter, TRUST_TOPIC, type DeviceCommand } from './topics.js';

export interface DeviceClientEvents {
  connected: [];
  disconnected: [error: FleetkeyError];
  reconnecting: [info: { delayMs: number; attempt: number }];
  subscribed: [granted: Array<{ filter: string; qos: number }>];
  command: [command: DeviceCommand];
  trust: [message: { topic: string; payload: Buffer }];
  acked: [message: QueuedMessage];
  dropped: [message: QueuedMessage];
  stopped: [error: FleetkeyError | undefined];
  identity: [];
}

/** What a renewed identity changes for the client: its TLS context and known issuers. */
export interface ClientIdentity {
  readonly secureContext: SecureContext;
  readonly knownCertificates: readonly Uint8Array[];
}

export type PublishResult =
  | { readonly status: 'queued'; readonly id: string; readonly seq: number }
  | { readonly status: 'sent' | 'dropped'; readonly id: string };

/** Everything the client needs, prepared once by connect(). */
export interface DeviceClientSetup {
  readonly deviceId: string;
  readonly host: string;
  readonly port: number;
  readonly pins: PinSet;
  /** Follows the hub's trust bundles (ADR 0022); its pins replace `pins` when present. */
  readonly trust?: TrustFollower;
  readonly knownCertificates: readonly Uint8Array[];
  readonly secureContext: SecureContext;
  readonly outbox: FileOutbox;
  readonly backoff: Backoff;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly timeoutMs: number;
  readonly keepaliveSeconds: number;
  readonly maxInflight: number;
  readonly cleanSession: boolean;
}

/** In-flight state of one session; a late PUBACK of an old session can't touch a new one. */
interface Flight {
  readonly session: MqttSession;
  readonly inflight: Set<number>;
  cursor: number;
}

export class DeviceClient extends EventEmitter<DeviceClientEvents> {
  readonly deviceId: string;
  /** Resolves when the client stopped: the fatal error, or undefined after close(). */
  readonly stopped: Promise<FleetkeyError | undefined>;
  readonly #setup: DeviceClientSetup;
  readonly #maybeSent: Set<number>;
  readonly #idleWaiters = new Set<() => void>();
  #flight: Flight | undefined;
  #identity: ClientIdentity;
  /** Bumped by useIdentity: an attempt begun under an older identity is ended and not backed off. */
  #generation = 0;
  #stopping = false;
  #wake: (() => void) | undefined;
  #resolveStopped!: (error: FleetkeyError | undefined) => void;
  #loop: Promise<void> = Promise.resolve();

  constructor(setup: DeviceClientSetup) {
    super();
    this.#setup = setup;
    this.deviceId = setup.deviceId;
    this.#identity = { secureContext: setup.secureContext, knownCertificates: setup.knownCertificates };
    // Messages found on disk may have reached the hub before a crash: resend them with DUP=1.
    this.#maybeSent = new Set(setup.outbox.pending().map((m) => m.seq));
    this.stopped = new Promise((resolve) => { this.#resolveStopped = resolve; });
  }

  /** Starts the reconnect loop (connect() calls it). */
  start(): void {
    this.#loop = this.#run();
  }

  get connected(): boolean {
    return this.#flight !== undefined;
  }

  /** Pending QoS 1 messages (not yet acknowledged by the hub). */
  get pendingCount(): number {
    return this.#setup.outbox.size;
  }

  /**
   * Publishes `payload` to `topic` (under `devices/{id}/`). QoS 1 (default): resolves "queued"
   * once the message is durably in the outbox; it is delivered, also across restarts, until PUBACK.
   *
   * @example
   * await client.publish(`devices/${client.deviceId}/telemetry`, JSON.stringify({ t: 21.5 }));
   */
  async publish(topic: string, payload: string | Uint8Array, options: { qos?: 0 | 1 } = {}): Promise<PublishResult> {
    checkPublishTopic(this.deviceId, topic);
    if (this.#stopping) throw new FleetkeyError('INTERNAL', { cause: new Error('the client is closed') });
    const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
    if ((options.qos ?? 1) === 0) return this.#publishQos0(topic, body);
    const message = await this.#setup.outbox.append(topic, body);
    this.#pump();
    return { status: 'queued', id: message.id, seq: message.seq };
  }

  /** Resolves true once every queued message was acknowledged, false after `timeoutMs`. */
  flush(timeoutMs: number): Promise<boolean> {
    if (this.#setup.outbox.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        this.#setup.timers.clearTimeout(timer);
        this.#idleWaiters.delete(onIdle);
        resolve(ok);
      };
      const onIdle = (): void => done(true);
      const timer = this.#setup.timers.setTimeout(() => done(false), timeoutMs);
      this.#idleWaiters.add(onIdle);
    });
  }

  /** Optionally flushes, then DISCONNECTs, stops the loop and closes the outbox. */
  async close(options: { flushTimeoutMs?: number } = {}): Promise<void> {
    if (options.flushTimeoutMs !== undefined && options.flushTimeoutMs > 0) await this.flush(options.flushTimeoutMs);
    if (!this.#stopping) {
      this.#stopping = true;
      this.#wake?.();
      await this.#flight?.session.end();
    }
    await this.#loop;
  }

  /**
   * Uses a renewed identity from now on: the live session (if any) is ended and the client
   * reconnects at once with the new certificate; queued messages are kept and resent.
   */
  async useIdentity(next: ClientIdentity): Promise<void> {
    this.#identity = next;
    this.#generation += 1;
    this.emit('identity');
    const flight = this.#flight;
    if (flight !== undefined) await flight.session.end();
    else this.#wake?.();
  }

  /** Called by the outbox's overflow policy. */
  notifyDropped(message: QueuedMessage): void {
    this.#maybeSent.delete(message.seq);
    this.emit('dropped', message);
  }

  async #publishQos0(topic: string, body: Buffer): Promise<PublishResult> {
    const id = newMessageId();
    const flight = this.#flight;
    if (flight === undefined) return { status: 'dropped', id };
    try {
      await flight.session.publish(topic, envelopePayload(id, body), 0, false);
      return { status: 'sent', id };
    } catch {
      return { status: 'dropped', id };
    }
  }

  async #run(): Promise<void> {
    let fatal: FleetkeyError | undefined;
    while (!this.#stopping) {
      const outcome = await this.#attempt();
      if (this.#stopping) break;
      if (outcome.generation !== this.#generation) continue; // a new identity: reconnect now
      const failure = classifyFailure(outcome.error);
      if (!failure.retry) {
        fatal = failure.error;
        break;
      }
      this.emit('disconnected', failure.error);
      if (outcome.upMs >= this.#setup.backoff.stableAfterMs) this.#setup.backoff.reset();
      const attempt = this.#setup.backoff.attempt + 1;
      const delayMs = this.#setup.backoff.next();
      this.emit('reconnecting', { delayMs, attempt });
      await this.#sleep(delayMs);
    }
    this.#stopping = true;
    await this.#setup.outbox.close().catch(() => undefined);
    this.emit('stopped', fatal);
    this.#resolveStopped(fatal);
  }

  /** One connection: pinned TLS, CONNECT, subscriptions, then serve until the session ends. */
  async #attempt(): Promise<{ error: unknown; upMs: number; generation: number }> {
    const s = this.#setup;
    const generation = this.#generation;
    let connectedAt: number | undefined;
    try {
      const socket = await this.#connectTrusted();
      if (this.#stopping) {
        socket.destroy();
        return { error: undefined, upMs: 0, generation };
      }
      const session = await openSession(socket, {
        clientId: s.deviceId, keepaliveSeconds: s.keepaliveSeconds, connackTimeoutMs: s.timeoutMs,
        cleanSession: s.cleanSession, onMessage: (topic, payload) => this.#onMessage(topic, payload),
      });
      connectedAt = s.clock.now();
      const error = await this.#serve(session, generation);
      return { error, upMs: s.clock.now() - connectedAt, generation };
    } catch (error) {
      return { error, upMs: connectedAt === undefined ? 0 : s.clock.now() - connectedAt, generation };
    } finally {
      this.#flight = undefined;
    }
  }

  /** Pinned TLS; a chain to an unpinned root first makes the device catch up (ADR 0022), once. */
  #connectTrusted(): Promise<TLSSocket> {
    const s = this.#setup;
    return connectFollowing({
      host: s.host, port: s.port, knownCertificates: this.#identity.knownCertificates,
      secureContext: this.#identity.secureContext, alpnProtocols: ['mqtt'], timeoutMs: s.timeoutMs, clock: s.clock,
    }, s.trust ?? fixedTrust(s.pins));
  }

  /** Subscribes, resends the outbox, and waits for the session to end; returns why it ended. */
  async #serve(session: MqttSession, generation: number): Promise<Error | undefined> {
    if (this.#stopping || generation !== this.#generation) {
      await session.end();
      return undefined;
    }
    this.#flight = { session, inflight: new Set(), cursor: 0 };
    this.emit('connected');
    this.#pump();
    const filters = [commandsFilter(this.deviceId), TRUST_TOPIC];
    session.subscribe(filters).then(
      (granted) => this.emit('subscribed', filters.map((filter, i) => ({ filter, qos: granted[i] ?? 128 }))),
      () => undefined, // the session is closing; `closed` carries the reason
    );
    return session.closed;
  }

  #pump(): void {
    const flight = this.#flight;
    if (flight === undefined) return;
    while (flight.inflight.size < this.#setup.maxInflight) {
      const message = this.#setup.outbox.next(flight.cursor);
      if (message === undefined) return;
      flight.cursor = message.seq;
      flight.inflight.add(message.seq);
      const dup = this.#maybeSent.has(message.seq);
      this.#maybeSent.add(message.seq);
      flight.session.publish(message.topic, envelopePayload(message.id, message.payload), 1, dup).then(
        () => this.#onAck(flight, message),
        () => flight.inflight.delete(message.seq), // stays in the outbox; the next session resends it
      );
    }
  }

  #onAck(flight: Flight, message: QueuedMessage): void {
    flight.inflight.delete(message.seq);
    this.#maybeSent.delete(message.seq);
    if (this.#setup.outbox.has(message.seq)) {
      this.#setup.outbox.remove(message.seq);
      this.emit('acked', message);
    }
    if (this.#setup.outbox.size === 0) for (const waiter of [...this.#idleWaiters]) waiter();
    this.#pump();
  }

  #onMessage(topic: string, payload: Buffer): void {
    const command = commandFrom(this.deviceId, topic, payload);
    try {
      if (command !== undefined) this.emit('command', command);
      else if (topic === TRUST_TOPIC) {
        void this.#setup.trust?.onBundle(payload);
        this.emit('trust', { topic, payload });
      }
    } catch {
      // a throwing application listener must not break the MQTT packet pump
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#setup.timers.setTimeout(() => { this.#wake = undefined; resolve(); }, ms);
      this.#wake = () => {
        this.#setup.timers.clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }
}
