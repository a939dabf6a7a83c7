/**
 * Live MQTT sessions by device, and the live revocation list.
 *
 * Invariants:
 * - At most one live client per device id: the client id equals the certificate's device id
 *   (checked at CONNECT), so aedes' takeover [MQTT-3.1.4-2] can only ever replace a session of
 *   the same device.
 * - `revoke` marks the device and serials first, then closes the live client synchronously, so a
 *   connection that is still authenticating sees the mark (`isRevoked`) and one that registers
 *   later is closed on registration (`register` re-checks).
 * - The revocation list is bounded: an entry is dropped after `retentionMs` (the longest device
 *   certificate lifetime), when the store alone decides.
 * - Session state is per connection (clean sessions only, ADR 0012): nothing outlives the socket.
 */
import type { Client } from 'aedes';
import type { DeviceIdentity } from './device-auth.js';

export interface DeviceSession {
  readonly identity: DeviceIdentity;
  /** Allowed subscription filters of this connection. */
  readonly filters: Set<string>;
  /** Answers of this connection's PUBLISHes, released in arrival order (PUBACK order). */
  readonly acks: OrderedAcks;
  /** Commands handed to the connection and not yet written. */
  outboundPending: number;
}

interface AckSlot {
  settled: boolean;
  run: () => void;
}

const COMPACT_AT = 1024;

/**
 * Completions that run strictly in the order their slots were taken [MQTT-4.6.0-2], whatever
 * order they settle in: a slot settled early waits for every earlier one. One array per
 * connection instead of a promise chain per PUBLISH (ADR 0023). Re-entrant settles (a `run` that
 * settles another slot) are released by the outer loop.
 */
export class OrderedAcks {
  #slots: AckSlot[] = [];
  #head = 0;
  #releasing = false;

  /** Takes the next slot; call the returned function once with what to run when its turn comes. */
  take(): (run: () => void) => void {
    const slot: AckSlot = { settled: false, run: () => undefined };
    this.#slots.push(slot);
    return (run) => {
      if (slot.settled) return;
      slot.settled = true;
      slot.run = run;
      this.#release();
    };
  }

  /** Slots taken and not yet run. */
  get pending(): number {
    return this.#slots.length - this.#head;
  }

  #release(): void {
    if (this.#releasing) return;
    this.#releasing = true;
    try {
      for (let slot = this.#slots[this.#head]; slot?.settled === true; slot = this.#slots[this.#head]) {
        this.#head++;
        slot.run();
      }
    } finally {
      this.#releasing = false;
      if (this.#head === this.#slots.length) {
        this.#slots = [];
        this.#head = 0;
      } else if (this.#head >= COMPACT_AT) {
        this.#slots = this.#slots.slice(this.#head);
        this.#head = 0;
      }
    }
  }
}

export class SessionRegistry {
  readonly #sessions = new WeakMap<Client, DeviceSession>();
  readonly #live = new Map<string, Client>();
  readonly #revokedDevices = new Map<string, number>();
  readonly #revokedSerials = new Map<string, number>();
  readonly #retentionMs: number;

  constructor(retentionMs: number) {
    this.#retentionMs = retentionMs;
  }

  /** Attaches the authenticated identity to a client (before aedes registers it). */
  attach(client: Client, identity: DeviceIdentity): void {
    this.#sessions.set(client, { identity, filters: new Set(), acks: new OrderedAcks(), outboundPending: 0 });
  }

  session(client: Client | null): DeviceSession | undefined {
    return client === null ? undefined : this.#sessions.get(client);
  }

  /** A device's live client, if any. */
  live(deviceId: string): Client | undefined {
    return this.#live.get(deviceId);
  }

  /** Called when aedes registered the client; false (and closed) if it was revoked meanwhile. */
  register(client: Client): boolean {
    const session = this.#sessions.get(client);
    if (session === undefined) return false;
    if (this.isRevoked(session.identity.deviceId, session.identity.serial)) {
      client.close();
      return false;
    }
    this.#live.set(session.identity.deviceId, client);
    return true;
  }

  unregister(client: Client): void {
    const session = this.#sessions.get(client);
    if (session !== undefined && this.#live.get(session.identity.deviceId) === client) this.#live.delete(session.identity.deviceId);
  }

  isRevoked(deviceId: string, serial: string): boolean {
    return this.#revokedDevices.has(deviceId) || this.#revokedSerials.has(serial);
  }

  /** Marks the device revoked and closes its live client; returns that client's identity, if any. */
  revoke(deviceId: string, serials: readonly string[], now: number): DeviceIdentity | undefined {
    this.#prune(now);
    this.#revokedDevices.set(deviceId, now);
    for (const s of serials) this.#revokedSerials.set(s.toLowerCase(), now);
    const client = this.#live.get(deviceId);
    if (client === undefined) return undefined;
    this.#live.delete(deviceId);
    const identity = this.#sessions.get(client)?.identity;
    client.close();
    return identity;
  }

  /** The live clients, one per device (a snapshot). */
  liveClients(): Client[] {
    return [...this.#live.values()];
  }

  get liveCount(): number {
    return this.#live.size;
  }

  #prune(now: number): void {
    for (const map of [this.#revokedDevices, this.#revokedSerials]) {
      for (const [key, at] of map) if (now - at > this.#retentionMs) map.delete(key);
    }
  }
}
