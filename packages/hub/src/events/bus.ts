/**
 * The EventBus seam: what must reach every hub process (revocations, commands, live telemetry,
 * trust updates). In-process by default; a multi-node deployment puts Redis pub/sub or NATS
 * behind the same interface — never a home-made cluster protocol. So nothing may assume that a
 * device's MQTT session lives in the process that handles the owner's API call: the API
 * publishes an event and whichever process holds the session acts on it.
 *
 * Invariants: `publish` resolves once every in-process handler has finished; a failing
 * handler is isolated (logged by the bus owner) and never fails the publisher.
 */

export interface HubEvents {
  /** A device was revoked: its live sessions must close now. */
  'device.revoked': { readonly tenantId: string; readonly deviceId: string; readonly serials: readonly string[] };
  /** Never-connected devices of a batch were revoked together (ADR 0014): one CRL re-sign for all. */
  'batch.revoked': { readonly tenantId: string; readonly batchId: string; readonly devices: ReadonlyArray<{ readonly deviceId: string; readonly serials: readonly string[] }> };
  /** A command for a device, to deliver on `devices/{id}/commands/{topic}`. */
  'device.command': { readonly tenantId: string; readonly deviceId: string; readonly topic: string; readonly payload: Buffer };
  /** A telemetry message was durably stored. */
  'telemetry.stored': {
    readonly tenantId: string; readonly deviceId: string; readonly seq: number; readonly topic: string; readonly receivedAt: number; readonly payload: Buffer;
    /** Optional extras for live views (telemetry/live-stream.ts). */
    readonly qos?: 0 | 1; readonly messageId?: string | null;
  };
}

export type HubEventName = keyof HubEvents;
export type Handler<K extends HubEventName> = (event: HubEvents[K]) => void | Promise<void>;

export interface EventBus {
  publish<K extends HubEventName>(name: K, event: HubEvents[K]): Promise<void>;
  /** Returns the unsubscribe function. */
  subscribe<K extends HubEventName>(name: K, handler: Handler<K>): () => void;
}

const RESOLVED: Promise<void> = Promise.resolve();

export class InProcessEventBus implements EventBus {
  readonly #handlers = new Map<HubEventName, Set<Handler<HubEventName>>>();
  readonly #onError: (err: unknown, name: HubEventName) => void;

  constructor(onError: (err: unknown, name: HubEventName) => void = () => undefined) {
    this.#onError = onError;
  }

  publish<K extends HubEventName>(name: K, event: HubEvents[K]): Promise<void> {
    const set = this.#handlers.get(name);
    // Nobody listening (e.g. no live telemetry stream open): one settled promise, no array, no
    // async frame — this runs once per stored telemetry message (ADR 0029).
    if (set === undefined || set.size === 0) return RESOLVED;
    return this.#deliver([...set] as Handler<K>[], name, event);
  }

  async #deliver<K extends HubEventName>(handlers: Handler<K>[], name: K, event: HubEvents[K]): Promise<void> {
    await Promise.all(
      handlers.map(async (h) => {
        try {
          await h(event);
        } catch (err) {
          this.#onError(err, name);
        }
      }),
    );
  }

  subscribe<K extends HubEventName>(name: K, handler: Handler<K>): () => void {
    let set = this.#handlers.get(name);
    if (set === undefined) {
      set = new Set();
      this.#handlers.set(name, set);
    }
    set.add(handler as unknown as Handler<HubEventName>);
    return () => set.delete(handler as unknown as Handler<HubEventName>);
  }
}
