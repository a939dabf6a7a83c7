/**
 * Opaque paging cursors for the telemetry API: base64url of `t1:<seq>`, the seq of the last row
 * the client received. Pure.
 *
 * Invariants:
 * - A cursor carries no tenant or device: every query is scoped by the session's tenant and the
 *   device in the path, so a cursor from another device or organisation reveals and unlocks
 *   nothing; it is only a position.
 * - Decoding is strict (canonical base64url, `t1:` prefix, a safe integer); anything else is
 *   VALIDATION_FAILED on field `cursor`, never a silent restart from the beginning.
 */
import { FleetkeyError } from '@fleetkey/protocol';

const PREFIX = 't1:';

export function encodeCursor(seq: number): string {
  return Buffer.from(`${PREFIX}${seq}`, 'ascii').toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const bad = (): FleetkeyError => new FleetkeyError('VALIDATION_FAILED', { details: { field: 'cursor' } });
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(cursor)) throw bad();
  const text = Buffer.from(cursor, 'base64url').toString('ascii');
  // RFC 4648 §5 without padding; re-encoding must give the same string (no alternative spellings).
  if (Buffer.from(text, 'ascii').toString('base64url') !== cursor) throw bad();
  const m = /^t1:(0|[1-9][0-9]{0,15})$/.exec(text);
  if (m === null) throw bad();
  const seq = Number(m[1]);
  if (!Number.isSafeInteger(seq)) throw bad();
  return seq;
}

/** ISO 8601 date-time (with zone) → ms since epoch; VALIDATION_FAILED naming `field` otherwise. */
export function parseIsoTime(value: string, field: string): number {
  // RFC 3339 §5.6 profile of ISO 8601: a full date, a time and an explicit offset.
  const ok = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i.test(value);
  const ms = ok ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw new FleetkeyError('VALIDATION_FAILED', { details: { field } });
  return ms;
}
