/**
 * The attack table of the MQTT fuzz campaign: one entry per malformed or boundary packet family,
 * each with its MQTT 3.1.1 clause and a weight. `fuzzCase` turns (seed, index, device) into one
 * case: optionally a valid CONNECT and a prelude of legal packets, then the attack.
 *
 * Invariants: every entry is `expect: 'close'` unless its bytes are random (then `'any'` with a
 * half-close); attacks never need the broker's state beyond "this device is connected"; weights
 * keep the large (64 KiB) and slow (stalled) cases rare.
 */
import {
  BAD_UTF8, PINGREQ, connectPacket, publishPacket, rngFor, subscribePacket, taintedTopic, unsubscribePacket, varint,
  type FuzzCase, type LegalPacket, type Rng,
} from './mqtt-fuzz-gen.js';

interface Attack {
  readonly kind: string;
  readonly clause: string;
  readonly weight: number;
  readonly authenticate: boolean;
  readonly make: (rng: Rng, deviceId: string) => Buffer[];
  readonly expect?: 'any';
  readonly halfClose?: boolean;
  readonly stall?: boolean;
}

const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const rand = (rng: Rng, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(rng, 0, 255)));
const own = (id: string): string => `devices/${id}/telemetry`;
const payload = (rng: Rng): Buffer => rand(rng, int(rng, 0, 64));
/** A header byte of `type` whose low nibble is anything but `required` [MQTT-2.2.2-2]. */
const badFlags = (rng: Rng, type: number, required: number): number => (type << 4) | ((required + int(rng, 1, 15)) & 0x0f);

const PRE: readonly Attack[] = [
  { kind: 'rl-5-byte', clause: '§2.2.3', weight: 4, authenticate: false, make: (r) => [Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, int(r, 0, 0x7f)])] },
  { kind: 'rl-truncated-eof', clause: '§2.2.3', weight: 3, authenticate: false, halfClose: true, make: (r) => [Buffer.from([0x10, 0x80 | int(r, 0, 0x7f)])] },
  { kind: 'rl-too-large', clause: '§2.2.3', weight: 3, authenticate: false, make: (r) => [Buffer.concat([Buffer.from([0x10]), varint(int(r, 200_000, 268_435_455))])] },
  { kind: 'reserved-type', clause: '§2.2.1', weight: 3, authenticate: false, make: (r) => [Buffer.from([pick(r, [0x00, 0xf0]) | int(r, 0, 15), 0x00])] },
  { kind: 'packet-before-connect', clause: '[MQTT-3.1.0-1]', weight: 4, authenticate: false, make: (r, id) => [pick(r, [PINGREQ, publishPacket(own(id), payload(r)), subscribePacket([[`devices/${id}/commands/#`, 1]])])] },
  { kind: 'connect-protocol-name', clause: '[MQTT-3.1.2-1]', weight: 4, authenticate: false, make: (r, id) => [connectPacket({ clientId: id, protocol: pick(r, ['MQIsdp', 'mqtt', 'MQT', '', 'MQTT\u0000', rand(r, 4)]) })] },
  { kind: 'connect-protocol-level', clause: '[MQTT-3.1.2-2]', weight: 4, authenticate: false, make: (r, id) => [connectPacket({ clientId: id, level: pick(r, [0, 1, 2, 5, 6, 127, 255]) })] },
  { kind: 'connect-reserved-flag', clause: '[MQTT-3.1.2-3]', weight: 4, authenticate: false, make: (r, id) => [connectPacket({ clientId: id, flags: 0x03 | (int(r, 0, 1) << 7) | (int(r, 0, 1) << 6) })] },
  { kind: 'connect-will-qos-without-will', clause: '[MQTT-3.1.2-13]', weight: 2, authenticate: false, make: (r, id) => [connectPacket({ clientId: id, flags: 0x02 | (int(r, 1, 3) << 3) })] },
  { kind: 'connect-will-retain-without-will', clause: '[MQTT-3.1.2-15]', weight: 2, authenticate: false, make: (_r, id) => [connectPacket({ clientId: id, flags: 0x22 })] },
  { kind: 'connect-will-qos-3', clause: '[MQTT-3.1.2-14]', weight: 3, authenticate: false, make: (r, id) => [connectPacket({ clientId: id, flags: 0x1e, tail: Buffer.concat([varStr(own(id)), varStr(payload(r))]) })] },
  { kind: 'connect-password-without-username', clause: '[MQTT-3.1.2-22]', weight: 3, authenticate: false, make: (_r, id) => [connectPacket({ clientId: id, flags: 0x42, tail: varStr('secret') })] },
  { kind: 'connect-header-flags', clause: '[MQTT-2.2.2-2]', weight: 3, authenticate: false, make: (r, id) => [Buffer.concat([Buffer.from([badFlags(r, 1, 0)]), connectPacket({ clientId: id }).subarray(1)])] },
  { kind: 'connect-string-overflow', clause: '§1.5.3', weight: 3, authenticate: false, make: (r, id) => [overflowString(connectPacket({ clientId: id }), 10, r)] },
  { kind: 'connect-client-id-bad-utf8', clause: '[MQTT-1.5.3-1]', weight: 3, authenticate: false, make: (r, id) => [connectPacket({ clientId: Buffer.concat([Buffer.from(id), pick(r, BAD_UTF8)]) })] },
  { kind: 'connect-oversize-client-id', clause: '[MQTT-3.1.3-5]', weight: 1, authenticate: false, make: (r) => [connectPacket({ clientId: 'a'.repeat(int(r, 65, 65_535)) })] },
  { kind: 'connect-stalled-truncated', clause: '§3.1.2.10', weight: 0.2, authenticate: false, stall: true, make: (_r, id) => [connectPacket({ clientId: id }).subarray(0, 8)] },
  { kind: 'random-bytes-first', clause: '§2', weight: 4, authenticate: false, expect: 'any', halfClose: true, make: (r) => [rand(r, int(r, 1, 300))] },
];

const POST: readonly Attack[] = [
  { kind: 'second-connect', clause: '[MQTT-3.1.0-2]', weight: 5, authenticate: true, make: (_r, id) => [connectPacket({ clientId: id })] },
  { kind: 'header-flags', clause: '[MQTT-2.2.2-2]', weight: 6, authenticate: true, make: (r, id) => [wrongFlags(r, id)] },
  { kind: 'publish-qos-3', clause: '[MQTT-3.3.1-4]', weight: 4, authenticate: true, make: (r, id) => [publishPacket(own(id), payload(r), { qos: 1, header: 0x36 | int(r, 0, 1) | (int(r, 0, 1) << 3) })] },
  { kind: 'publish-packet-id-0', clause: '[MQTT-2.3.1-1]', weight: 4, authenticate: true, make: (r, id) => [publishPacket(own(id), payload(r), { qos: 1, id: 0 })] },
  { kind: 'publish-wildcard-topic', clause: '[MQTT-3.3.2-2]', weight: 4, authenticate: true, make: (r, id) => [publishPacket(`devices/${id}/${pick(r, ['+', '#', 'a/+/b', 'a#', '+x'])}`, payload(r), { qos: int(r, 0, 1), id: int(r, 1, 65535) })] },
  { kind: 'publish-topic-bad-utf8', clause: '[MQTT-1.5.3-1] [MQTT-1.5.3-2]', weight: 5, authenticate: true, make: (r, id) => [publishPacket(taintedTopic(r, `devices/${id}/`), payload(r), { qos: int(r, 0, 1), id: int(r, 1, 65535) })] },
  { kind: 'publish-topic-overflow', clause: '§1.5.3', weight: 3, authenticate: true, make: (r, id) => [overflowString(publishPacket(own(id), Buffer.alloc(0)), 0, r)] },
  { kind: 'publish-oversize-topic', clause: '§4.7.3', weight: 0.5, authenticate: true, make: (r, id) => [publishPacket(`devices/${id}/${'t'.repeat(int(r, 600, 65_000))}`, Buffer.alloc(0), { qos: 1, id: 9 })] },
  { kind: 'subscribe-qos-3', clause: '[MQTT-3.8.3-4]', weight: 4, authenticate: true, make: (r, id) => [subscribePacket([[`devices/${id}/commands/#`, pick(r, [3, 4, 0x80, 0xff])]], int(r, 1, 65535))] },
  { kind: 'subscribe-no-topics', clause: '[MQTT-3.8.3-3]', weight: 4, authenticate: true, make: (r) => [subscribePacket([], int(r, 1, 65535))] },
  { kind: 'subscribe-packet-id-0', clause: '[MQTT-2.3.1-1]', weight: 4, authenticate: true, make: (_r, id) => [subscribePacket([[`devices/${id}/commands/#`, 1]], 0)] },
  { kind: 'subscribe-filter-bad-utf8', clause: '[MQTT-1.5.3-1] [MQTT-1.5.3-2]', weight: 5, authenticate: true, make: (r, id) => [subscribePacket([[taintedTopic(r, `devices/${id}/commands/`), 1]], int(r, 1, 65535))] },
  { kind: 'unsubscribe-no-topics', clause: '[MQTT-3.10.3-2]', weight: 3, authenticate: true, make: (r) => [unsubscribePacket([], int(r, 1, 65535))] },
  { kind: 'unsubscribe-packet-id-0', clause: '[MQTT-2.3.1-1]', weight: 2, authenticate: true, make: (_r, id) => [unsubscribePacket([`devices/${id}/commands/#`], 0)] },
  { kind: 'unsubscribe-filter-bad-utf8', clause: '[MQTT-1.5.3-1] [MQTT-1.5.3-2]', weight: 3, authenticate: true, make: (r, id) => [unsubscribePacket([taintedTopic(r, `devices/${id}/commands/`)], int(r, 1, 65535))] },
  { kind: 'server-packet-from-client', clause: '[MQTT-4.8.0-1]', weight: 3, authenticate: true, make: (r) => [pick(r, [Buffer.from([0x20, 0x02, 0x00, 0x00]), Buffer.from([0x90, 0x03, 0x00, 0x01, 0x00]), Buffer.from([0xb0, 0x02, 0x00, 0x01]), Buffer.from([0xd0, 0x00])])] },
  { kind: 'reserved-type-after-connect', clause: '§2.2.1', weight: 2, authenticate: true, make: (r) => [Buffer.from([pick(r, [0x00, 0xf0]), 0x00])] },
  { kind: 'rl-5-byte-after-connect', clause: '§2.2.3', weight: 2, authenticate: true, make: () => [Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])] },
  { kind: 'truncated-then-eof', clause: '§2.2.3', weight: 3, authenticate: true, halfClose: true, make: (r, id) => [publishPacket(own(id), payload(r), { qos: 1, id: 5 }).subarray(0, int(r, 2, 6))] },
  { kind: 'random-bytes-after-connect', clause: '§2', weight: 8, authenticate: true, expect: 'any', halfClose: true, make: (r) => [rand(r, int(r, 1, 400))] },
];

function varStr(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

/** Raises the string length at `offset` of the variable header (after a 2-byte fixed header) above what the packet holds. */
function overflowString(packet: Buffer, offset: number, rng: Rng): Buffer {
  const out = Buffer.from(packet);
  const at = 2 + offset;
  if (at + 1 < out.length) out.writeUInt16BE(Math.min(65535, out.length + int(rng, 1, 60_000)), at);
  return out;
}

function wrongFlags(rng: Rng, id: string): Buffer {
  const [type, required, good] = pick(rng, [
    [8, 2, subscribePacket([[`devices/${id}/commands/#`, 1]], 7)], [10, 2, unsubscribePacket([`devices/${id}/commands/#`], 7)],
    [6, 2, Buffer.from([0x62, 0x02, 0x00, 0x07])], [12, 0, PINGREQ], [14, 0, Buffer.from([0xe0, 0x00])], [4, 0, Buffer.from([0x40, 0x02, 0x00, 0x07])],
  ] as const);
  return Buffer.concat([Buffer.from([badFlags(rng, type, required)]), good.subarray(1)]);
}

function prelude(rng: Rng, id: string, index: number): LegalPacket[] {
  const out: LegalPacket[] = [];
  for (let i = int(rng, 0, 40); i > 0; i--) {
    const k = int(rng, 0, 9);
    if (k < 3) out.push({ bytes: PINGREQ, reply: 13, stores: false });
    else if (k < 6) out.push({ bytes: subscribePacket([[pick(rng, [`devices/${id}/commands/#`, '#', '+/#', '$SYS/#', 'devices/other/commands/#', `devices/${id}/#`]), int(rng, 0, 1)]], int(rng, 1, 65535)), reply: 9, stores: false });
    else if (k < 8) out.push({ bytes: unsubscribePacket([`devices/${id}/commands/${int(rng, 0, 9)}`], int(rng, 1, 65535)), reply: 11, stores: false });
    else out.push({ bytes: publishPacket(own(id), Buffer.concat([Buffer.from(`FK1 fuzz-${index}-${i}-000000000000\n`), payload(rng)]), { qos: 1, id: int(rng, 1, 65535) }), reply: 4, stores: true });
  }
  return out;
}

const TABLE = [...PRE, ...POST];
const TOTAL = TABLE.reduce((s, a) => s + a.weight, 0);

export const FUZZ_KINDS: readonly string[] = TABLE.map((a) => a.kind);

/** Case `index` of campaign `seed`, for the connected device `deviceId` (see module invariants). */
export function fuzzCase(seed: number, index: number, deviceId: string): FuzzCase {
  const rng = rngFor(seed, index);
  let x = rng() * TOTAL;
  const attack = TABLE.find((a) => (x -= a.weight) < 0) ?? TABLE[0]!;
  const bytes = attack.make(rng, deviceId);
  return {
    index, kind: attack.kind, clause: attack.clause, authenticate: attack.authenticate,
    prelude: attack.authenticate ? prelude(rng, deviceId, index) : [], attack: bytes, attackPackets: bytes.length,
    expect: attack.expect ?? 'close', halfClose: attack.halfClose === true, stall: attack.stall === true,
  };
}
