/**
 * Deduplication keys for inbound telemetry (docs/adr/0010-telemetry-dedup.md). Pure: no I/O.
 *
 * MQTT 3.1.1 gives a QoS 1 message no identity beyond its Packet Identifier, which is reused and
 * is only meaningful within one session [MQTT-2.3.1-2]; a redelivery after reconnect is a new
 * PUBLISH. So the identity must travel in the payload:
 *
 * - **fleetkey envelope** (what the SDK sends): the payload starts with the ASCII bytes
 *   `FK1 `, then a message id of 16–64 characters `[A-Za-z0-9_-]` (a UUID or ULID), then one LF,
 *   then the application body (any bytes, possibly empty). Key `id:<messageId>`: every copy of
 *   that message from that device is stored once, forever, whatever the DUP flag says.
 * - **no envelope, DUP set** (a client resending an unacknowledged PUBLISH, MQTT 3.1.1 §4.4):
 *   key `dup:<hex of contentHash>`; the store treats it as a duplicate when the same device stored
 *   the same topic and bytes (compared exactly, no hash is stored) without an envelope within the
 *   dedup window (the original had DUP=0 and no key).
 * - **no envelope, DUP clear**: `null`, never deduplicated — two identical readings are two rows.
 *
 * Invariants:
 * - A payload that starts with `FK1 ` but is not a well-formed envelope is opaque bytes, stored
 *   as sent, and never deduplicated by id.
 * - The key depends only on (topic, payload, dup): the same inputs always give the same key.
 */
import { hash } from 'node:crypto';
import { parseEnvelope } from '@fleetkey/protocol';

export { ENVELOPE_MAGIC, parseEnvelope, wrapEnvelope, type Envelope } from '@fleetkey/protocol';

/**
 * SHA-256 over (topic ‖ 0x00 ‖ payload), truncated to 128 bits: identifies identical messages.
 * One-shot `crypto.hash` over one buffer: a streaming Hash object cost ~3× more per message on
 * the ingest path (ADR 0023); the bytes hashed, and so the stored hashes, are the same.
 */
export function contentHash(topic: string, payload: Buffer): Buffer {
  const topicBytes = Buffer.byteLength(topic, 'utf8');
  const input = Buffer.allocUnsafe(topicBytes + 1 + payload.length);
  input.write(topic, 0, 'utf8');
  input[topicBytes] = 0;
  payload.copy(input, topicBytes + 1);
  // A 'binary' (latin1) digest string back into a pooled Buffer: 'buffer' output allocates an ArrayBuffer of
  // its own per call (~2× slower here); latin1 maps each byte to one char, so the bytes are equal.
  return Buffer.from(hash('sha256', input, 'binary').slice(0, 16), 'latin1');
}

/**
 * The dedup key of one PUBLISH, as the broker passes it in `InboundTelemetry.dedupKey`.
 *
 * @example
 * const key = dedupKeyFor(packet.topic, packet.payload, packet.dup); // 'id:…', 'dup:…' or null
 */
export function dedupKeyFor(topic: string, payload: Buffer, dup: boolean): string | null {
  const envelope = parseEnvelope(payload);
  if (envelope !== undefined) return `id:${envelope.messageId}`;
  return dup ? `dup:${contentHash(topic, payload).toString('hex')}` : null;
}

/** The SDK message id a key was derived from, if any (for the API's `messageId`). */
export function messageIdOfKey(key: string | null): string | null {
  return key !== null && key.startsWith('id:') ? key.slice(3) : null;
}
