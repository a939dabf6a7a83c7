/**
 * The on-disk record format of the outbox segments (ADR 0013).
 *
 * Invariants:
 * - A record is `u32 bodyLength ‖ u32 crc32(body) ‖ body`, little endian. A record whose length
 *   runs past the end of the file or whose CRC does not match ends the readable part of its
 *   segment: it is a torn write that never reached fsync, so its publish never resolved.
 * - `put` carries everything needed to resend the message (seq, stable message id, QoS, topic,
 *   payload, queue time); `remove` names a seq only (acknowledged or dropped).
 * - Every length is bounded before any allocation: a corrupt length can't make us allocate more
 *   than MAX_RECORD_BYTES.
 */
import { crc32 } from 'node:zlib';

export const RECORD_HEADER_BYTES = 8;
export const MAX_TOPIC_BYTES = 1024;
/** Upper bound of one record body (payload limit + topic + header fields). */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

const TYPE_PUT = 1;
const TYPE_REMOVE = 2;

export interface PutRecord {
  readonly type: 'put';
  readonly seq: number;
  readonly id: string;
  readonly qos: 1;
  readonly topic: string;
  readonly payload: Buffer;
  readonly queuedAt: number;
}

export interface RemoveRecord {
  readonly type: 'remove';
  readonly seq: number;
}

export type OutboxRecord = PutRecord | RemoveRecord;

function frame(body: Buffer): Buffer {
  const header = Buffer.alloc(RECORD_HEADER_BYTES);
  header.writeUInt32LE(body.length, 0);
  header.writeUInt32LE(crc32(body), 4);
  return Buffer.concat([header, body]);
}

export function encodeRecord(record: OutboxRecord): Buffer {
  if (record.type === 'remove') {
    const body = Buffer.alloc(9);
    body.writeUInt8(TYPE_REMOVE, 0);
    body.writeDoubleLE(record.seq, 1);
    return frame(body);
  }
  const id = Buffer.from(record.id, 'utf8');
  const topic = Buffer.from(record.topic, 'utf8');
  const fixed = Buffer.alloc(1 + 8 + 8 + 1 + 2 + 2 + 4);
  let at = fixed.writeUInt8(TYPE_PUT, 0);
  at = fixed.writeDoubleLE(record.seq, at);
  at = fixed.writeDoubleLE(record.queuedAt, at);
  at = fixed.writeUInt8(record.qos, at);
  at = fixed.writeUInt16LE(id.length, at);
  at = fixed.writeUInt16LE(topic.length, at);
  fixed.writeUInt32LE(record.payload.length, at);
  return frame(Buffer.concat([fixed, id, topic, record.payload]));
}

function decodeBody(body: Buffer): OutboxRecord | undefined {
  const type = body.readUInt8(0);
  if (type === TYPE_REMOVE && body.length === 9) return { type: 'remove', seq: body.readDoubleLE(1) };
  if (type !== TYPE_PUT || body.length < 26) return undefined;
  const seq = body.readDoubleLE(1);
  const queuedAt = body.readDoubleLE(9);
  const qos = body.readUInt8(17);
  const idLength = body.readUInt16LE(18);
  const topicLength = body.readUInt16LE(20);
  const payloadLength = body.readUInt32LE(22);
  if (qos !== 1 || 26 + idLength + topicLength + payloadLength !== body.length) return undefined;
  const id = body.subarray(26, 26 + idLength).toString('utf8');
  const topic = body.subarray(26 + idLength, 26 + idLength + topicLength).toString('utf8');
  const payload = Buffer.from(body.subarray(26 + idLength + topicLength));
  return { type: 'put', seq, id, qos, topic, payload, queuedAt };
}

/** The records of one segment file, stopping at the first torn or corrupt record. */
export function decodeSegment(data: Buffer): { records: OutboxRecord[]; validBytes: number } {
  const records: OutboxRecord[] = [];
  let at = 0;
  while (at + RECORD_HEADER_BYTES <= data.length) {
    const length = data.readUInt32LE(at);
    const end = at + RECORD_HEADER_BYTES + length;
    if (length === 0 || length > MAX_RECORD_BYTES || end > data.length) break;
    const body = data.subarray(at + RECORD_HEADER_BYTES, end);
    if (crc32(body) !== data.readUInt32LE(at + 4)) break;
    const record = decodeBody(body);
    if (record === undefined) break;
    records.push(record);
    at = end;
  }
  return { records, validBytes: at };
}
