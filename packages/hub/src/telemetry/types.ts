/**
 * The seam between the MQTT broker (mqtt/) and telemetry storage (telemetry/).
 *
 * Invariants:
 * - The broker calls `TelemetrySink.accept` for every authorised device PUBLISH and, for QoS 1,
 *   sends PUBACK only after the returned promise resolved — i.e. after the message is durably
 *   committed (group commit, synchronous=FULL). A rejected promise means no PUBACK: the broker
 *   closes the connection so the client retransmits (MQTT 3.1.1 §4.4).
 * - Redelivery is idempotent (docs/adr/0010-telemetry-dedup.md): a message whose `dedupKey` was
 *   already stored for this device resolves `{ duplicate: true, seq: <the original's seq> }`
 *   without storing it twice — never an error, so the broker PUBACKs it like any other.
 * - The sink enforces the payload size limit (`telemetryMaxPayloadBytes`) and rejects a larger
 *   message with BODY_TOO_LARGE before anything is stored; a rejection for any reason means
 *   nothing was stored.
 * - After the commit the sink publishes `telemetry.stored` on the EventBus (not for duplicates);
 *   the promise does not wait for subscribers.
 * - The device identity comes from the verified TLS client certificate only, never from the
 *   client id or username.
 */

export interface InboundTelemetry {
  readonly tenantId: string;
  readonly deviceId: string;
  /** Full MQTT topic, already checked to be under `devices/{deviceId}/`. */
  readonly topic: string;
  /** The PUBLISH payload as received; a fleetkey envelope is unwrapped by the sink. */
  readonly payload: Buffer;
  readonly qos: 0 | 1;
  /** Broker receive time (ms since epoch, from the injected clock). */
  readonly receivedAt: number;
  /**
   * `dedupKeyFor(topic, payload, dup)` from `./dedup.ts`: `id:<messageId>` when the payload is a
   * fleetkey envelope (dedup forever), `dup:<hash>` when the PUBLISH has DUP set (dedup against an
   * identical message of this device within the dedup window), `null` = never deduplicated.
   */
  readonly dedupKey: string | null;
}

export interface TelemetrySink {
  /** Resolves once the message is durably stored (or was a duplicate). */
  accept(message: InboundTelemetry): Promise<{ readonly seq: number; readonly duplicate: boolean }>;
}
