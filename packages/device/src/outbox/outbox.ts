/**
 * The durable on-disk outbox: QoS 1 messages wait here until the hub acknowledged them (ADR 0013).
 *
 * Invariants:
 * - `append` resolves only after the message's record was written and fdatasync'ed: a message
 *   reported "queued" survives a crash or power loss. Appends that arrive while a sync runs share
 *   the next one (group commit).
 * - A message leaves the outbox only by `remove` (PUBACK received, or dropped by the overflow
 *   policy). Remove records are written without their own sync: after a crash a message may be
 *   sent again (same message id, so the hub stores it once), never lost.
 * - Segments are append-only files `NNNNNNNNNN.seg`; a new one is started on every open and when
 *   the current one reaches `segmentBytes`. Segments are deleted oldest first and only when none of
 *   their messages is pending, so a remove record is never lost while the put it cancels exists.
 * - Compaction is bounded: when the files hold more than 2 × live bytes + 2 × segmentBytes, the
 *   live messages of the oldest segment are copied (same seq and id) into the current one and the
 *   oldest is deleted. Disk use stays O(live bytes + segmentBytes).
 * - Size is bounded by `maxMessages` and `maxBytes`; on overflow `drop-oldest` removes the oldest
 *   messages (counted, reported to `onDrop`), `reject` fails the append with RATE_LIMITED.
 * - seqs increase monotonically across restarts and are never reused while a record names them.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { FleetkeyError, systemClock, type Clock } from '@fleetkey/protocol';
import { syncDirectory } from '../durable-fs.js';
import { lockOutbox } from './lock.js';
import { newMessageId } from './message-id.js';
import { encodeRecord, MAX_TOPIC_BYTES, type PutRecord } from './record.js';
import { loadSegments, segmentPath, type Segment } from './segments.js';

export type OverflowPolicy = 'drop-oldest' | 'reject';

export interface OutboxOptions {
  readonly directory: string;
  /** Default 10,000 messages. */
  readonly maxMessages?: number;
  /** Sum of topic + payload bytes; default 16 MiB. */
  readonly maxBytes?: number;
  /** Default `drop-oldest` (the newest telemetry is worth most). */
  readonly overflow?: OverflowPolicy;
  /** Default 1 MiB. */
  readonly segmentBytes?: number;
  /** Default 256 KiB. */
  readonly maxPayloadBytes?: number;
  readonly clock?: Clock;
  readonly onDrop?: (message: QueuedMessage) => void;
}

/** A message waiting for its PUBACK. `id` is stable across resends and restarts. */
export type QueuedMessage = Omit<PutRecord, 'type'>;

export interface OutboxStats {
  readonly pending: number;
  readonly pendingBytes: number;
  readonly dropped: number;
  readonly segments: number;
  readonly fileBytes: number;
}

type ResolvedOptions = Required<Omit<OutboxOptions, 'onDrop'>> & Pick<OutboxOptions, 'onDrop'>;
type Waiter = { resolve: (segment: Segment) => void; reject: (e: unknown) => void };

interface Entry {
  readonly message: QueuedMessage;
  segment: Segment;
}

const sizeOf = (m: { topic: string; payload: Buffer }): number => Buffer.byteLength(m.topic) + m.payload.length;

export class FileOutbox {
  readonly #options: ResolvedOptions;
  readonly #entries: Map<number, Entry>;
  readonly #segments: Segment[];
  readonly #release: () => Promise<void>;
  #current: { segment: Segment; file: fs.FileHandle };
  #nextSeq: number;
  #liveBytes = 0;
  #reserved = { messages: 0, bytes: 0 };
  #dropped = 0;
  #batch: { buffers: Buffer[]; sync: boolean; waiters: Waiter[] } = { buffers: [], sync: false, waiters: [] };
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(options: ResolvedOptions, state: Awaited<ReturnType<typeof loadSegments>>, current: { segment: Segment; file: fs.FileHandle }, release: () => Promise<void>) {
    this.#options = options;
    this.#segments = [...state.segments, current.segment];
    this.#current = current;
    this.#nextSeq = state.maxSeq + 1;
    this.#release = release;
    this.#entries = new Map(state.messages.map(({ message, segment }) => [message.seq, { message, segment }]));
    for (const { message } of state.messages) this.#liveBytes += sizeOf(message);
  }

  /**
   * Opens (or creates) the outbox in `directory`, replaying its segments.
   *
   * @example
   * const outbox = await FileOutbox.open({ directory: '/var/lib/fleetkey/outbox', overflow: 'reject' });
   * const queued = await outbox.append('devices/dev-1/telemetry', Buffer.from('{"t":21.5}'));
   */
  static async open(options: OutboxOptions): Promise<FileOutbox> {
    const full = {
      maxMessages: 10_000, maxBytes: 16 * 1024 * 1024, overflow: 'drop-oldest' as OverflowPolicy, segmentBytes: 1024 * 1024,
      maxPayloadBytes: 256 * 1024, clock: systemClock, ...options,
    };
    await fs.mkdir(full.directory, { recursive: true, mode: 0o700 });
    const release = await lockOutbox(full.directory);
    try {
      const state = await loadSegments(full.directory);
      const no = (state.segments.at(-1)?.no ?? 0) + 1;
      const current = await FileOutbox.#createSegment(full.directory, no);
      const outbox = new FileOutbox(full, state, current, release);
      await outbox.#deleteEmptySegments();
      return outbox;
    } catch (err) {
      await release();
      throw err;
    }
  }

  static async #createSegment(directory: string, no: number): Promise<{ segment: Segment; file: fs.FileHandle }> {
    const path = segmentPath(directory, no);
    const file = await fs.open(path, 'wx', 0o600);
    await syncDirectory(directory);
    return { segment: { no, path, live: 0, bytes: 0 }, file };
  }

  /** Queues a QoS 1 message durably; resolves with it (and its stable id) after fsync. */
  async append(topic: string, payload: Buffer): Promise<QueuedMessage> {
    this.#checkOpen();
    this.#checkLimits(topic, payload);
    this.#makeRoom(sizeOf({ topic, payload }));
    const message: QueuedMessage = { seq: this.#nextSeq++, id: newMessageId(), qos: 1, topic, payload, queuedAt: this.#options.clock.now() };
    const size = sizeOf(message);
    this.#reserved.messages += 1;
    this.#reserved.bytes += size;
    let segment: Segment;
    try {
      segment = await this.#enqueue(encodeRecord({ type: 'put', ...message }), true);
    } finally {
      this.#reserved.messages -= 1;
      this.#reserved.bytes -= size;
    }
    this.#entries.set(message.seq, { message, segment });
    segment.live += 1;
    this.#liveBytes += size;
    return message;
  }

  /** Removes a message (PUBACK received); a no-op for unknown seqs. */
  remove(seq: number): void {
    const entry = this.#entries.get(seq);
    if (entry === undefined || this.#closed) return;
    this.#forget(seq, entry);
    this.#enqueue(encodeRecord({ type: 'remove', seq }), false).catch(() => undefined); // a lost remove = a resend
  }

  /** The pending messages in queue order (oldest first). */
  pending(): QueuedMessage[] {
    return [...this.#entries.values()].map((e) => e.message);
  }

  /** The oldest pending message with a seq greater than `afterSeq`. */
  next(afterSeq: number): QueuedMessage | undefined {
    for (const { message } of this.#entries.values()) if (message.seq > afterSeq) return message;
    return undefined;
  }

  has(seq: number): boolean {
    return this.#entries.has(seq);
  }

  get size(): number {
    return this.#entries.size;
  }

  stats(): OutboxStats {
    const fileBytes = this.#segments.reduce((sum, s) => sum + s.bytes, 0);
    return { pending: this.#entries.size, pendingBytes: this.#liveBytes, dropped: this.#dropped, segments: this.#segments.length, fileBytes };
  }

  /** Writes what is buffered, syncs, closes the files and releases the lock. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#enqueue(Buffer.alloc(0), true).catch(() => undefined);
    this.#closed = true;
    await this.#chain;
    await this.#current.file.close();
    await this.#release();
  }

  #checkOpen(): void {
    if (this.#closed) throw new FleetkeyError('INTERNAL', { cause: new Error('the outbox is closed') });
  }

  #checkLimits(topic: string, payload: Buffer): void {
    const topicBytes = Buffer.byteLength(topic);
    if (topicBytes === 0 || topicBytes > MAX_TOPIC_BYTES) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'topic', max: MAX_TOPIC_BYTES } });
    if (payload.length > this.#options.maxPayloadBytes) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'payload', max: this.#options.maxPayloadBytes } });
  }

  /** Applies the overflow policy so that one more message of `size` bytes fits. */
  #makeRoom(size: number): void {
    const { maxMessages, maxBytes, overflow } = this.#options;
    const full = (): boolean => this.#entries.size + this.#reserved.messages + 1 > maxMessages || this.#liveBytes + this.#reserved.bytes + size > maxBytes;
    if (!full()) return;
    if (overflow === 'reject' || this.#entries.size === 0) {
      throw new FleetkeyError('RATE_LIMITED', { details: { reason: 'outbox_full', maxMessages, maxBytes } });
    }
    while (full() && this.#entries.size > 0) {
      const [seq, entry] = this.#entries.entries().next().value as [number, Entry];
      this.remove(seq);
      this.#dropped += 1;
      this.#options.onDrop?.(entry.message);
    }
    if (full()) throw new FleetkeyError('RATE_LIMITED', { details: { reason: 'outbox_full', maxMessages, maxBytes } });
  }

  #forget(seq: number, entry: Entry): void {
    this.#entries.delete(seq);
    entry.segment.live -= 1;
    this.#liveBytes -= sizeOf(entry.message);
  }

  /** Resolves with the segment the buffer was written to. */
  #enqueue(buffer: Buffer, sync: boolean): Promise<Segment> {
    const done = new Promise<Segment>((resolve, reject) => this.#batch.waiters.push({ resolve, reject }));
    this.#batch.buffers.push(buffer);
    this.#batch.sync ||= sync;
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.#chain = this.#chain.then(() => this.#drain());
    }
    return done;
  }

  /** One group commit: write everything batched so far, sync if a put asked for it. */
  async #drain(): Promise<void> {
    this.#scheduled = false;
    const batch = this.#batch;
    this.#batch = { buffers: [], sync: false, waiters: [] };
    try {
      const segment = this.#current.segment;
      await this.#write(Buffer.concat(batch.buffers), batch.sync);
      for (const w of batch.waiters) w.resolve(segment);
    } catch (cause) {
      const err = new FleetkeyError('STORAGE_UNAVAILABLE', { cause });
      for (const w of batch.waiters) w.reject(err);
      await this.#rotate().catch(() => undefined); // never append after a possibly torn record
      return;
    }
    await this.#maintain().catch(() => undefined);
  }

  async #write(data: Buffer, sync: boolean): Promise<void> {
    if (data.length > 0) await this.#current.file.write(data);
    this.#current.segment.bytes += data.length;
    if (sync) await this.#current.file.datasync();
  }

  async #rotate(): Promise<void> {
    if (this.#closed) return;
    const next = await FileOutbox.#createSegment(this.#options.directory, this.#current.segment.no + 1);
    await this.#current.file.close();
    this.#current = next;
    this.#segments.push(next.segment);
  }

  /** Rotation, deletion of finished segments, bounded compaction (see the header). */
  async #maintain(): Promise<void> {
    if (this.#current.segment.bytes >= this.#options.segmentBytes) await this.#rotate();
    await this.#deleteEmptySegments();
    const fileBytes = this.#segments.reduce((sum, s) => sum + s.bytes, 0);
    const oldest = this.#segments[0];
    if (oldest === undefined || oldest === this.#current.segment) return;
    if (fileBytes <= 2 * this.#liveBytes + 2 * this.#options.segmentBytes) return;
    const moving = [...this.#entries.values()].filter((e) => e.segment === oldest);
    await this.#write(Buffer.concat(moving.map((e) => encodeRecord({ type: 'put', ...e.message }))), true);
    for (const entry of moving) {
      entry.segment.live -= 1;
      entry.segment = this.#current.segment;
      entry.segment.live += 1;
    }
    await this.#deleteEmptySegments();
  }

  async #deleteEmptySegments(): Promise<void> {
    let removed = false;
    while (this.#segments[0] !== undefined && this.#segments[0] !== this.#current.segment && this.#segments[0].live === 0) {
      const segment = this.#segments.shift() as Segment;
      await fs.rm(segment.path, { force: true });
      removed = true;
    }
    if (removed) await syncDirectory(this.#options.directory);
  }
}

export { segmentPath };
export const OUTBOX_DIRECTORY = 'outbox';
export const outboxDirectory = (stateDir: string): string => join(stateDir, OUTBOX_DIRECTORY);
