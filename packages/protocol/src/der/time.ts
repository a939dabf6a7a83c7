/**
 * X.509 Time (RFC 5280 §4.1.2.5): UTCTime for years 1950–2049, GeneralizedTime from 2050.
 *
 * Invariants:
 * - Written times are always UTC with `Z` and whole seconds (RFC 5280 §4.1.2.5.1/§4.1.2.5.2);
 *   milliseconds are truncated, never rounded up.
 * - Read times must have exactly that shape; anything else (offsets, fractions, missing seconds)
 *   is a DerError. The reader also refuses GeneralizedTime for years before 2050, as RFC 5280
 *   requires of conforming CAs, and checks field ranges.
 */
import { DerError, Tag } from './tags.js';
import { tlv } from './length.js';

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function stamp(date: Date): { year: number; rest: string } {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new DerError('invalid date');
  const d = new Date(ms - (((ms % 1000) + 1000) % 1000));
  const rest =
    pad(d.getUTCMonth() + 1, 2) + pad(d.getUTCDate(), 2) + pad(d.getUTCHours(), 2) +
    pad(d.getUTCMinutes(), 2) + pad(d.getUTCSeconds(), 2) + 'Z';
  return { year: d.getUTCFullYear(), rest };
}

/** UTCTime YYMMDDHHMMSSZ; only for 1950 <= year <= 2049. */
export function utcTime(date: Date): Buffer {
  const { year, rest } = stamp(date);
  if (year < 1950 || year > 2049) throw new DerError('UTCTime year out of range');
  return tlv(Tag.UTC_TIME, Buffer.from(pad(year % 100, 2) + rest, 'latin1'));
}

/** GeneralizedTime YYYYMMDDHHMMSSZ. */
export function generalizedTime(date: Date): Buffer {
  const { year, rest } = stamp(date);
  if (year < 0 || year > 9999) throw new DerError('GeneralizedTime year out of range');
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(pad(year, 4) + rest, 'latin1'));
}

/** The RFC 5280 Time choice for `date`. */
export function x509Time(date: Date): Buffer {
  const year = new Date(date.getTime()).getUTCFullYear();
  return year <= 2049 && year >= 1950 ? utcTime(date) : generalizedTime(date);
}

const UTC_RE = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GEN_RE = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

function build(year: number, fields: readonly string[]): Date {
  const [mo, d, h, mi, s] = fields.map(Number) as [number, number, number, number, number];
  const ms = Date.UTC(year, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  // Rejects 31 February, hour 24, second 60 and similar: the fields must survive a round trip.
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h ||
      back.getUTCMinutes() !== mi || back.getUTCSeconds() !== s) {
    throw new DerError('time field out of range');
  }
  return back;
}

/** Decodes a Time TLV's tag and value. */
export function decodeTime(tag: number, value: Uint8Array): Date {
  const text = Buffer.from(value).toString('latin1');
  if (tag === Tag.UTC_TIME) {
    const m = UTC_RE.exec(text);
    if (m === null) throw new DerError('malformed UTCTime');
    const yy = Number(m[1]);
    return build(yy >= 50 ? 1900 + yy : 2000 + yy, m.slice(2)); // RFC 5280 §4.1.2.5.1
  }
  if (tag === Tag.GENERALIZED_TIME) {
    const m = GEN_RE.exec(text);
    if (m === null) throw new DerError('malformed GeneralizedTime');
    const year = Number(m[1]);
    if (year < 2050) throw new DerError('GeneralizedTime before 2050'); // RFC 5280 §4.1.2.5
    return build(year, m.slice(2));
  }
  throw new DerError('expected UTCTime or GeneralizedTime');
}
