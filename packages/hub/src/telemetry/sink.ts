/**
 * The `TelemetrySink` the broker calls: validate → unwrap the envelope → derive the dedup
 * decision → store durably (group commit) → publish `telemetry.stored`.
 *
 * Invariants (see ./types.ts for the seam and docs/adr/0010-telemetry-dedup.md):
 * - `accept` resolves only after the row's COMMIT returned; a rejection means nothing was stored.
 * - Duplicates resolve `{ duplicate: true }` with the original's seq and publish nothing.
 * - Defence in depth: a topic outside `devices/{deviceId}/` (FORBIDDEN) or a dedup key that does
 *   not match the payload (INTERNAL: a broker bug) is refused here too, and nothing is stored.
 * - The size limit applies to the application payload (envelope removed): BODY_TOO_LARGE.
 * - `telemetry.stored` is published after the commit and not awaited: a slow or remote
 *   subscriber never delays a PUBACK; bus failures are logged, never fail the accept.
 */
import { FleetkeyError } from '@fleetkey/protocol';
import type { EventBus } from '../events/bus.js';
import type { Store } from '../storage/types.js';
import { messageIdOfKey, parseEnvelope } from './dedup.js';
import { jsonTextOf } from './json-text.js';
import type { InboundTelemetry, TelemetrySink } from './types.js';

export interface TelemetryLimits {
  /** Largest application payload in bytes (`telemetryMaxPayloadBytes`). */
  readonly maxPayloadBytes: number;
  /** DUP-without-envelope matching window (`telemetryDupWindowSeconds` × 1000). */
  readonly dupWindowMs: number;
}

export interface TelemetrySinkDeps {
  readonly store: Store;
  readonly bus: EventBus;
  readonly limits: TelemetryLimits;
  readonly onPublishError?: (err: unknown) => void;
}

/** Non-throwing RFC 8259 check (json-text.ts, ADR 0023); kept exported here for its callers. */
export { jsonTextOf } from './json-text.js';

interface DedupDecision {
  readonly body: Buffer;
  readonly dedupKey: string | null;
  readonly contentDedupSince: number | null;
}

function decideDedup(m: InboundTelemetry, dupWindowMs: number): DedupDecision {
  const envelope = parseEnvelope(m.payload);
  const key = m.dedupKey;
  if (envelope !== undefined) {
    if (key !== `id:${envelope.messageId}`) throw new FleetkeyError('INTERNAL', { cause: new Error('dedup key does not match the envelope') });
    return { body: envelope.body, dedupKey: key, contentDedupSince: null };
  }
  if (key === null) return { body: m.payload, dedupKey: null, contentDedupSince: null };
  if (!key.startsWith('dup:')) throw new FleetkeyError('INTERNAL', { cause: new Error('dedup key without an envelope') });
  return { body: m.payload, dedupKey: null, contentDedupSince: m.receivedAt - dupWindowMs };
}

export class StoringTelemetrySink implements TelemetrySink {
  readonly #deps: TelemetrySinkDeps;

  constructor(deps: TelemetrySinkDeps) {
    this.#deps = deps;
  }

  async accept(m: InboundTelemetry): Promise<{ readonly seq: number; readonly duplicate: boolean }> {
    const { store, limits } = this.#deps;
    // The broker enforces the topic rules; checked again so a broker bug cannot cross devices.
    if (!m.topic.startsWith(`devices/${m.deviceId}/`)) throw new FleetkeyError('FORBIDDEN', { details: { reason: 'topic outside the device namespace' } });
    const d = decideDedup(m, limits.dupWindowMs);
    if (d.body.length > limits.maxPayloadBytes) throw new FleetkeyError('BODY_TOO_LARGE', { details: { limit: limits.maxPayloadBytes } });
    const result = await store.telemetry.insert({
      tenantId: m.tenantId, deviceId: m.deviceId, topic: m.topic, payload: d.body, payloadJson: jsonTextOf(d.body),
      qos: m.qos, receivedAt: m.receivedAt, dedupKey: d.dedupKey, contentDedupSince: d.contentDedupSince,
    });
    if (!result.duplicate) this.#announce(m, d, result.seq);
    return result;
  }

  #announce(m: InboundTelemetry, d: DedupDecision, seq: number): void {
    const event = {
      tenantId: m.tenantId, deviceId: m.deviceId, seq, topic: m.topic, receivedAt: m.receivedAt, payload: d.body,
      qos: m.qos, messageId: messageIdOfKey(d.dedupKey),
    };
    this.#deps.bus.publish('telemetry.stored', event).catch((err: unknown) => this.#deps.onPublishError?.(err));
  }
}
