/**
 * Replaying the outbox segments at open (ADR 0013).
 *
 * Invariants:
 * - Segments are replayed in file-number order; within one, in record order, up to the first torn
 *   or corrupt record (record.ts). Files that are not `NNNNNNNNNN.seg` are ignored.
 * - A remove record cancels its seq for good: a later put of the same seq (a compaction copy
 *   written before the remove) never brings it back.
 * - A put of a seq that is already pending (compaction copy) moves the message to the newer
 *   segment, so the older one can be deleted.
 * - The result is in seq order; `maxSeq` covers every seq any record names, so new seqs never
 *   collide with a record still on disk.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { decodeSegment, type PutRecord } from './record.js';

export interface Segment {
  readonly no: number;
  readonly path: string;
  /** Pending messages whose newest put lives in this segment. */
  live: number;
  bytes: number;
}

export interface LoadedMessage {
  readonly message: Omit<PutRecord, 'type'>;
  segment: Segment;
}

export interface LoadedOutbox {
  readonly segments: Segment[];
  readonly messages: LoadedMessage[];
  readonly maxSeq: number;
}

const SEGMENT_NAME = /^(\d{10})\.seg$/;

export function segmentPath(directory: string, no: number): string {
  return join(directory, `${String(no).padStart(10, '0')}.seg`);
}

async function segmentNumbers(directory: string): Promise<number[]> {
  const names = await fs.readdir(directory);
  return names.flatMap((name) => {
    const match = SEGMENT_NAME.exec(name);
    return match?.[1] === undefined ? [] : [Number(match[1])];
  }).sort((a, b) => a - b);
}

/** Replays every segment of `directory`. */
export async function loadSegments(directory: string): Promise<LoadedOutbox> {
  const segments: Segment[] = [];
  const pending = new Map<number, LoadedMessage>();
  const removed = new Set<number>();
  let maxSeq = 0;
  for (const no of await segmentNumbers(directory)) {
    const path = segmentPath(directory, no);
    const data = await fs.readFile(path);
    const segment: Segment = { no, path, live: 0, bytes: data.length };
    segments.push(segment);
    for (const record of decodeSegment(data).records) {
      maxSeq = Math.max(maxSeq, record.seq);
      const known = pending.get(record.seq);
      if (record.type === 'remove') {
        removed.add(record.seq);
        if (known !== undefined) known.segment.live -= 1;
        pending.delete(record.seq);
      } else if (known !== undefined) {
        known.segment.live -= 1;
        known.segment = segment;
        segment.live += 1;
      } else if (!removed.has(record.seq)) {
        const { type: _type, ...message } = record;
        pending.set(record.seq, { message, segment });
        segment.live += 1;
      }
    }
  }
  const messages = [...pending.values()].sort((a, b) => a.message.seq - b.message.seq);
  return { segments, messages, maxSeq };
}
