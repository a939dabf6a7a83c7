/**
 * A device-leaf TBSCertificate as a stamp: the DER of one certificate with the per-device bytes
 * rewritten in place for the next one (the enrollment hot path, ADR 0031).
 *
 * Every device leaf of one issuer and one shape (CA algorithm, SPKI length, device-id length,
 * serial length, both times as UTCTime) has the same bytes except the serial, the two times, the
 * device id (in the CN and in the SAN URI), the SPKI and its key identifier (SKI). All lengths —
 * and so every DER length octet — are the same, so a copy of a reference encoding with those
 * fields overwritten is the encoding.
 *
 * Invariants:
 * - `encode(p)` returns exactly the bytes the generic encoder gives for `p`. The constructor
 *   proves the layout on two fresh samples against the generic encoder and throws if either
 *   differs, so a wrong offset can never reach a signature.
 * - Only params for which `stampable` holds are stamped; the caller keys stamps by shape and
 *   falls back to the generic encoder for anything else.
 */
import { createHash } from 'node:crypto';
import { DerError } from '../der/index.js';
import { subjectPublicKeyBits } from './extensions.js';

export interface StampParams {
  readonly serial: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly deviceId: string;
  readonly spki: Buffer;
}

/** Byte offsets of the per-device fields in the reference TBSCertificate. */
export interface StampLayout {
  readonly serialAt: number;
  readonly notBeforeAt: number;
  readonly notAfterAt: number;
  readonly cnIdAt: number;
  readonly spkiAt: number;
  readonly skiAt: number;
  readonly sanIdAt: number;
}

const UTC_TIME_CONTENT = 13; // YYMMDDHHMMSSZ

function utcYearOk(d: Date): boolean {
  const y = d.getUTCFullYear();
  return y >= 1950 && y <= 2049;
}

/** True when `p` has the shape a stamp covers: UTCTime validity (RFC 5280 §4.1.2.5). */
export function stampable(p: StampParams): boolean {
  return Number.isFinite(p.notBefore.getTime()) && Number.isFinite(p.notAfter.getTime()) &&
    utcYearOk(p.notBefore) && utcYearOk(p.notAfter);
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** UTCTime content octets, whole seconds truncated (as der/time.ts writes them). */
function writeUtcTime(out: Buffer, at: number, d: Date): void {
  const text = two(d.getUTCFullYear() % 100) + two(d.getUTCMonth() + 1) + two(d.getUTCDate()) +
    two(d.getUTCHours()) + two(d.getUTCMinutes()) + two(d.getUTCSeconds()) + 'Z';
  out.write(text, at, UTC_TIME_CONTENT, 'latin1');
}

/** A sample of the same shape as `p` with every per-device byte changed. */
function variant(p: StampParams, n: number): StampParams {
  const serial = Buffer.from(p.serial);
  for (let i = 1; i < serial.length; i++) serial[i] = (serial[i]! + 17 * n + i) & 0xff;
  const spki = Buffer.from(p.spki);
  spki[spki.length - 1] = (spki[spki.length - 1]! + n) & 0xff; // key bits only: the shape stays
  const ids = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let deviceId = '';
  for (let i = 0; i < p.deviceId.length; i++) deviceId += ids[(i * 7 + n * 5) % ids.length];
  const step = (p.notBefore.getUTCFullYear() < 2000 ? 1 : -1) * n * 86_399_000; // stays within 1950–2049
  const shift = (d: Date): Date => new Date(d.getTime() + step);
  return { serial, spki, deviceId, notBefore: shift(p.notBefore), notAfter: shift(p.notAfter) };
}

export class LeafStamp {
  readonly #reference: Buffer;
  readonly #layout: StampLayout;
  readonly #shape: string;

  constructor(generic: (p: StampParams) => Buffer, layout: StampLayout, sample: StampParams) {
    this.#reference = generic(sample);
    this.#layout = layout;
    this.#shape = shapeOf(sample);
    for (const n of [1, 2]) {
      const probe = variant(sample, n);
      if (!stampable(probe) || !this.encode(probe).equals(generic(probe))) {
        throw new DerError('device-leaf stamp layout does not match the generic encoder');
      }
    }
  }

  encode(p: StampParams): Buffer {
    if (shapeOf(p) !== this.#shape || !stampable(p)) throw new DerError('params do not fit this stamp');
    const l = this.#layout;
    const out = Buffer.allocUnsafe(this.#reference.length);
    this.#reference.copy(out);
    p.serial.copy(out, l.serialAt);
    writeUtcTime(out, l.notBeforeAt, p.notBefore);
    writeUtcTime(out, l.notAfterAt, p.notAfter);
    out.write(p.deviceId, l.cnIdAt, 'latin1');
    out.write(p.deviceId, l.sanIdAt, 'latin1');
    p.spki.copy(out, l.spkiAt);
    // RFC 5280 §4.2.1.2 method (1), as keyIdentifier() computes it.
    createHash('sha1').update(subjectPublicKeyBits(p.spki)).digest().copy(out, l.skiAt);
    return out;
  }
}

function shapeOf(p: StampParams): string {
  return `${p.serial.length}|${p.spki.length}|${p.deviceId.length}`;
}
