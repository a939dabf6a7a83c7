/**
 * One server-sent-events stream of a device's telemetry (WHATWG HTML §9.2 "Server-sent events").
 *
 * Invariants:
 * - Only `telemetry.stored` events of this (tenant, device) are written: the filter compares
 *   both ids, so a bus event of another organisation's device never reaches this stream.
 * - Replay after `Last-Event-ID`: the stream subscribes *before* it reads stored rows, buffers
 *   live events meanwhile, and writes each seq at most once and in increasing order — no gap and
 *   no duplicate between the replayed rows and the live ones.
 * - Bounded: a client that does not read (more than MAX_BUFFERED_BYTES queued in the socket) is
 *   disconnected; replay sends at most REPLAY_LIMIT rows (the client pages the rest by the API).
 * - Every `heartbeatMs` a comment line is written and the session is re-checked; when it has
 *   expired or was logged out the stream ends with an `end` event naming the code.
 * - `close()` is idempotent and releases the subscription and the timer.
 */
import type { ServerResponse } from 'node:http';
import { FleetkeyError } from '@fleetkey/protocol';
import type { EventBus, HubEvents } from '../events/bus.js';
import type { TelemetryRecord } from '../storage/types.js';
import { jsonTextOf } from './sink.js';
import { messageIdOfKey } from './dedup.js';

export const MAX_BUFFERED_BYTES = 1024 * 1024;
export const REPLAY_LIMIT = 1000;

export interface LiveStreamOptions {
  readonly tenantId: string;
  readonly deviceId: string;
  readonly bus: EventBus;
  readonly heartbeatMs: number;
  /** Resolves when the session is still valid; rejects (FleetkeyError) when not. */
  readonly checkSession: () => Promise<void>;
  /** Rows after the seq of `Last-Event-ID` (already tenant and device scoped). */
  readonly replay?: () => Promise<TelemetryRecord[]>;
}

type Stored = HubEvents['telemetry.stored'];

/** The JSON shape of one message, shared with the paged API. */
export function messageView(m: TelemetryRecord | Stored): Record<string, unknown> {
  const json = 'payloadJson' in m ? m.payloadJson : jsonTextOf(m.payload);
  const messageId = 'dedupKey' in m ? messageIdOfKey(m.dedupKey) : (m.messageId ?? null);
  return {
    seq: m.seq, topic: m.topic, receivedAt: new Date(m.receivedAt).toISOString(), qos: m.qos ?? 1,
    messageId, payload: m.payload.toString('base64'),
    ...(json === null ? {} : { json: JSON.parse(json) as unknown }),
  };
}

export class LiveStream {
  readonly #res: ServerResponse;
  readonly #o: LiveStreamOptions;
  #lastSeq = 0;
  #pending: Stored[] | undefined = [];
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(res: ServerResponse, options: LiveStreamOptions) {
    this.#res = res;
    this.#o = options;
  }

  /** Writes the headers, subscribes, replays, then streams until `close()` or the client leaves. */
  async start(): Promise<void> {
    this.#res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store',
      'x-content-type-options': 'nosniff', connection: 'keep-alive', 'x-accel-buffering': 'no',
    });
    this.#res.write(': fleetkey telemetry stream\nretry: 2000\n\n');
    this.#res.on('close', () => this.close());
    this.#unsubscribe = this.#o.bus.subscribe('telemetry.stored', (e) => this.#onEvent(e));
    this.#timer = setInterval(() => void this.#heartbeat(), this.#o.heartbeatMs);
    const replayed = this.#o.replay === undefined ? [] : await this.#o.replay();
    for (const row of replayed) this.#write(row.seq, messageView(row));
    const buffered = this.#pending ?? [];
    this.#pending = undefined;
    for (const e of buffered) this.#writeEvent(e);
  }

  close(reason?: FleetkeyError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    clearInterval(this.#timer);
    if (reason !== undefined && this.#res.writable) this.#res.write(`event: end\ndata: ${JSON.stringify({ code: reason.code })}\n\n`);
    this.#res.end();
  }

  #onEvent(e: Stored): void {
    if (e.tenantId !== this.#o.tenantId || e.deviceId !== this.#o.deviceId) return;
    if (this.#pending !== undefined) this.#pending.push(e);
    else this.#writeEvent(e);
  }

  #writeEvent(e: Stored): void {
    this.#write(e.seq, messageView(e));
  }

  #write(seq: number, view: Record<string, unknown>): void {
    if (this.#closed || seq <= this.#lastSeq) return;
    this.#lastSeq = seq;
    this.#res.write(`id: ${seq}\nevent: telemetry\ndata: ${JSON.stringify(view)}\n\n`);
    if (this.#res.writableLength > MAX_BUFFERED_BYTES) this.close(new FleetkeyError('RATE_LIMITED'));
  }

  async #heartbeat(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#o.checkSession();
      this.#res.write(': heartbeat\n\n');
    } catch (err) {
      this.close(err instanceof FleetkeyError ? err : new FleetkeyError('AUTH_REQUIRED'));
    }
  }
}
