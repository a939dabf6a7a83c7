/**
 * A deterministic generator of malformed and boundary MQTT 3.1.1 packets for the broker fuzz
 * campaign (interop test tier and `bench/mqtt/fuzz.mjs`). Pure: no I/O, no clock, no Math.random.
 *
 * Invariants:
 * - `fuzzCase(seed, index, deviceId)` depends on its arguments only (mulberry32 seeded by
 *   seed ⊕ index), so a campaign replays exactly, whatever its concurrency, and one failing case
 *   is reproduced by its index alone.
 * - Every case names the spec clause it breaks; `expect: 'close'` cases are malformed by MQTT
 *   3.1.1 and the broker must close the connection; `'any'` cases (random bytes) may parse as
 *   anything, so the client half-closes and the broker must only survive and let go.
 * - Packets are built by hand (§2.2 fixed header, §2.2.3 Remaining Length, §1.5.3 strings), never
 *   by mqtt-packet, so they can be wrong in exactly one place.
 * - The prelude of an authenticated case holds only legal packets with a known reply type; a
 *   QoS 1 PUBLISH there is a valid telemetry message (the only thing a case may store).
 */
import { mulberry32, type Rng } from './prng.js';
export type { Rng };

/** The generator of case `index` of campaign `seed` (mulberry32 on a mixed seed). */
export function rngFor(seed: number, index: number): Rng {
  return mulberry32(seed ^ Math.imul(index + 1, 0x9e3779b1));
}

const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const bytes = (rng: Rng, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(rng, 0, 255)));

/** §2.2.3 Remaining Length: 7-bit groups, low first, high bit = more. */
export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

const u16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
/** §1.5.3 UTF-8 string: 2-byte length then the bytes (which may be made invalid on purpose). */
const str = (s: string | Buffer): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([u16(b.length), b]);
};
const frame = (header: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([header]), varint(body.length), body]);

export interface ConnectFields {
  readonly protocol?: string | Buffer;
  readonly level?: number;
  readonly flags?: number;
  readonly header?: number;
  readonly clientId: string | Buffer;
  readonly tail?: Buffer;
}

/** §3.1 CONNECT; defaults: "MQTT", level 4, CleanSession, keep-alive 30 s. */
export function connectPacket(f: ConnectFields): Buffer {
  const body = Buffer.concat([str(f.protocol ?? 'MQTT'), Buffer.from([f.level ?? 4, f.flags ?? 0x02]), u16(30), str(f.clientId), f.tail ?? Buffer.alloc(0)]);
  return frame(f.header ?? 0x10, body);
}

export function publishPacket(topic: string | Buffer, payload: Buffer, o: { qos?: number; id?: number; header?: number } = {}): Buffer {
  const qos = o.qos ?? 0;
  const header = o.header ?? (0x30 | (qos << 1));
  return frame(header, Buffer.concat([str(topic), qos > 0 ? u16(o.id ?? 1) : Buffer.alloc(0), payload]));
}

export function subscribePacket(filters: ReadonlyArray<readonly [string | Buffer, number]>, id = 1, header = 0x82): Buffer {
  return frame(header, Buffer.concat([u16(id), ...filters.map(([f, q]) => Buffer.concat([str(f), Buffer.from([q])]))]));
}

export function unsubscribePacket(filters: ReadonlyArray<string | Buffer>, id = 1, header = 0xa2): Buffer {
  return frame(header, Buffer.concat([u16(id), ...filters.map((f) => str(f))]));
}

export const PINGREQ = Buffer.from([0xc0, 0x00]);

/** A legal packet of the prelude and the packet type (§2.2.1) the broker answers with. */
export interface LegalPacket {
  readonly bytes: Buffer;
  readonly reply: 3 | 4 | 9 | 11 | 13;
  /** A QoS 1 telemetry PUBLISH the broker stores (then acknowledges). */
  readonly stores: boolean;
}

export interface FuzzCase {
  readonly index: number;
  readonly kind: string;
  /** The MQTT 3.1.1 conformance statement or section the attack breaks. */
  readonly clause: string;
  /** Send a valid CONNECT as the device first and require CONNACK 0. */
  readonly authenticate: boolean;
  readonly prelude: readonly LegalPacket[];
  /** Written in order, one write each. */
  readonly attack: readonly Buffer[];
  /** How many MQTT control packets `attack` holds (random bytes count as one). */
  readonly attackPackets: number;
  readonly expect: 'close' | 'any';
  /** End our side after the attack (truncated packets; random bytes). */
  readonly halfClose: boolean;
  /** The broker only notices by its CONNECT timeout (a stalled, truncated packet). */
  readonly stall: boolean;
}

/** Ill-formed UTF-8 [MQTT-1.5.3-1]: overlong NUL, a UTF-16 surrogate, 0xFF, a truncated sequence. */
export const BAD_UTF8: readonly Buffer[] = [Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xff]), Buffer.from([0xe2, 0x82]), Buffer.from([0x00])];

export function taintedTopic(rng: Rng, prefix: string): Buffer {
  return Buffer.concat([Buffer.from(prefix), pick(rng, BAD_UTF8), Buffer.from(`x${int(rng, 0, 99)}`)]);
}
