/**
 * The early-renewal command (ADR 0025): the hub asks a device to renew its certificate now, e.g.
 * after a device-CA rotation, on the device's own command topic.
 *
 *   topic    devices/{deviceId}/commands/fleetkey/renew      (QoS 1, [MQTT-4.3.2])
 *   payload  {"v":1,"id":"rnw_<base64url>","reason":"<text ≤ 64>","requestedAt":"<ISO 8601 UTC>"}
 *
 * Invariants (pure, no I/O):
 * - `parseRenewCommand` accepts only version 1 with exactly these four fields, an id of
 *   `rnw_` + 8–64 base64url characters, a reason of 1–64 printable ASCII characters and a valid
 *   date; anything else (including more than MAX_RENEW_COMMAND_BYTES) is VALIDATION_FAILED.
 * - The id makes the command idempotent: a device acts on one id at most once.
 */
import { FleetkeyError } from './errors.js';

/** The command name under `devices/{id}/commands/`. */
export const RENEW_COMMAND = 'fleetkey/renew';
export const MAX_RENEW_COMMAND_BYTES = 512;

export interface RenewCommand {
  readonly v: 1;
  readonly id: string;
  readonly reason: string;
  readonly requestedAt: string;
}

const ID = /^rnw_[A-Za-z0-9_-]{8,64}$/;
const REASON = /^[\x20-\x7e]{1,64}$/;
const FIELDS = ['id', 'reason', 'requestedAt', 'v'];

export function encodeRenewCommand(command: RenewCommand): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, id: command.id, reason: command.reason, requestedAt: command.requestedAt }), 'utf8');
}

function invalid(field: string): FleetkeyError {
  return new FleetkeyError('VALIDATION_FAILED', { details: { field: `renew.${field}` } });
}

/** Parses a renew command payload; VALIDATION_FAILED (naming the field) when it is not one. */
export function parseRenewCommand(payload: Uint8Array): RenewCommand {
  if (payload.length > MAX_RENEW_COMMAND_BYTES) throw invalid('size');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw invalid('json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('json');
  const o = value as Record<string, unknown>;
  if (Object.keys(o).sort().join(',') !== FIELDS.join(',')) throw invalid('fields');
  if (o.v !== 1) throw invalid('v');
  if (typeof o.id !== 'string' || !ID.test(o.id)) throw invalid('id');
  if (typeof o.reason !== 'string' || !REASON.test(o.reason)) throw invalid('reason');
  if (typeof o.requestedAt !== 'string' || Number.isNaN(Date.parse(o.requestedAt))) throw invalid('requestedAt');
  return { v: 1, id: o.id, reason: o.reason, requestedAt: o.requestedAt };
}
