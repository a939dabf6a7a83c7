/**
 * The fleetkey telemetry envelope: how a device gives a message an identity that survives
 * reconnects (MQTT 3.1.1 Packet Identifiers are per session [MQTT-2.3.1-2]). See
 * docs/adr/0010-telemetry-dedup.md and docs/telemetry.md.
 *
 *   envelope = "FK1 " message-id LF body
 *   message-id = 16*64 ( ALPHA / DIGIT / "-" / "_" )      ; a UUID or ULID
 *   body = *OCTET                                          ; the application payload
 *
 * Invariants: pure (no I/O); a payload that merely starts with `FK1 ` but is not well formed is
 * not an envelope, so it is treated as opaque bytes.
 */
export const ENVELOPE_MAGIC = Buffer.from('FK1 ', 'ascii');
export const MESSAGE_ID_MIN = 16;
export const MESSAGE_ID_MAX = 64;
const LF = 0x0a;
export const MESSAGE_ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

export interface Envelope {
  readonly messageId: string;
  /** The application payload after the envelope header (a view, not a copy). */
  readonly body: Buffer;
}

function isIdByte(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x5f;
}

/** The envelope inside `payload`, or `undefined` when it is not a well-formed fleetkey envelope. */
export function parseEnvelope(payload: Buffer): Envelope | undefined {
  if (payload.length < ENVELOPE_MAGIC.length + MESSAGE_ID_MIN + 1) return undefined;
  if (!payload.subarray(0, ENVELOPE_MAGIC.length).equals(ENVELOPE_MAGIC)) return undefined;
  const start = ENVELOPE_MAGIC.length;
  const limit = Math.min(payload.length, start + MESSAGE_ID_MAX + 1);
  for (let i = start; i < limit; i++) {
    const b = payload[i]!;
    if (b === LF) {
      if (i - start < MESSAGE_ID_MIN) return undefined;
      return { messageId: payload.toString('ascii', start, i), body: payload.subarray(i + 1) };
    }
    if (!isIdByte(b)) return undefined;
  }
  return undefined;
}

/**
 * Wraps `body` in a fleetkey envelope (what the SDK publishes).
 *
 * @example
 * client.publish(`devices/${id}/telemetry`, wrapEnvelope(randomUUID(), Buffer.from('{"t":21.5}')), { qos: 1 });
 */
export function wrapEnvelope(messageId: string, body: Buffer): Buffer {
  if (!MESSAGE_ID_PATTERN.test(messageId)) {
    throw new RangeError(`message id must be ${MESSAGE_ID_MIN}-${MESSAGE_ID_MAX} characters [A-Za-z0-9_-]`);
  }
  return Buffer.concat([ENVELOPE_MAGIC, Buffer.from(`${messageId}\n`, 'ascii'), body]);
}
