/**
 * How a queued message carries its stable id to the hub — the one place that knows the wire form.
 *
 * Invariant (docs/adr/0010-telemetry-dedup.md): every PUBLISH the SDK sends is a fleetkey
 * envelope `FK1 <message-id> LF <body>` (protocol's `wrapEnvelope`); the id is the outbox's UUID,
 * identical on every resend and after a restart, so the hub stores each message once.
 */
import { randomUUID } from 'node:crypto';
import { wrapEnvelope } from '@fleetkey/protocol';

/** The PUBLISH payload for a message with `id` and application `body`. */
export function envelopePayload(id: string, body: Buffer): Buffer {
  return wrapEnvelope(id, body);
}

/** A fresh message id (UUID v4: 36 characters of `[0-9a-f-]`, within the envelope's 16–64). */
export function newMessageId(): string {
  return randomUUID();
}
