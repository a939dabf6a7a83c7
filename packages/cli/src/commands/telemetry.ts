/**
 * `fleetkey telemetry tail <deviceId> [--limit N] [--json]` — live messages (server-sent events)
 * `fleetkey telemetry export <deviceId> --format csv|jsonl [--since ISO] [--until ISO]` — all
 * stored messages, oldest first, paged through the API.
 *
 * Invariants:
 * - Both talk to the hub only over a pinned TLS connection (`connectPinned`) with the saved owner
 *   session, exactly like the other owner commands (owner-api.ts).
 * - `tail` is bounded for scripts: it stops after `--limit` messages, when the hub ends the
 *   stream (session expired, logout, shutdown) or on SIGINT; it never reconnects by itself.
 * - `export` output is lossless: every row carries the payload as base64 (binary-safe) plus the
 *   parsed JSON when there is one; CSV follows RFC 4180 (quotes doubled, CRLF line ends).
 */
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { FleetkeyError, isErrorCode } from '@fleetkey/protocol';
import { PinSet, connectPinned, parseHubUrl } from '@fleetkey/device';
import type { CliIo } from '../io.js';
import { call, loadSession, sessionFile, type SavedSession } from './owner-api.js';

export interface TelemetryMessage {
  readonly seq: number;
  readonly topic: string;
  readonly receivedAt: string;
  readonly qos: number;
  readonly messageId: string | null;
  readonly payload: string;
  readonly json?: unknown;
}

const OPTIONS = {
  limit: { type: 'string' }, json: { type: 'boolean' }, format: { type: 'string' }, since: { type: 'string' },
  until: { type: 'string' }, 'session-file': { type: 'string' },
} as const;
const PAGE = 1000;
const CSV_COLUMNS = ['seq', 'receivedAt', 'topic', 'qos', 'messageId', 'payloadBase64', 'json'] as const;

/** RFC 4180 §2: a field with a comma, quote, CR or LF is quoted and its quotes doubled. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export function csvRow(m: TelemetryMessage): string {
  const json = m.json === undefined ? '' : JSON.stringify(m.json);
  return [String(m.seq), m.receivedAt, m.topic, String(m.qos), m.messageId ?? '', m.payload, json].map(csvField).join(',') + '\r\n';
}

/** One human line: time, topic, then the payload as text when it is printable UTF-8, else base64. */
function humanLine(m: TelemetryMessage): string {
  const bytes = Buffer.from(m.payload, 'base64');
  const text = bytes.toString('utf8');
  const printable = Buffer.from(text, 'utf8').equals(bytes) && !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text);
  return `${m.receivedAt}\t${m.topic}\t${printable ? text.replaceAll('\n', '\\n') : `base64:${m.payload}`}\n`;
}

function positiveInt(raw: string | undefined, field: string): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(raw)) throw new FleetkeyError('VALIDATION_FAILED', { details: { field } });
  return Number(raw);
}

export async function telemetryCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  const [sub, deviceId] = positionals;
  if (deviceId === undefined || !/^[A-Za-z0-9_-]{1,80}$/.test(deviceId)) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'deviceId' } });
  const session = loadSession(sessionFile(io, values['session-file']));
  if (sub === 'tail') return tail(session, deviceId, { limit: positiveInt(values.limit, 'limit'), json: values.json === true }, io);
  if (sub === 'export') {
    const format = values.format;
    if (format !== 'csv' && format !== 'jsonl') throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'format' } });
    return exportAll(session, deviceId, { format, since: values.since, until: values.until }, io);
  }
  throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `telemetry ${sub ?? ''}`.trim() } });
}

async function exportAll(s: SavedSession, deviceId: string, o: { format: 'csv' | 'jsonl'; since?: string | undefined; until?: string | undefined }, io: CliIo): Promise<number> {
  const base = new URLSearchParams({ limit: String(PAGE) });
  if (o.since !== undefined) base.set('since', o.since);
  if (o.until !== undefined) base.set('until', o.until);
  if (o.format === 'csv') io.stdout.write(CSV_COLUMNS.join(',') + '\r\n');
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams(base);
    if (cursor !== null) q.set('cursor', cursor);
    const page = (await call(s.hub, s.pin, 'GET', `/api/v1/devices/${encodeURIComponent(deviceId)}/telemetry?${q}`, undefined, s.token)) as { items: TelemetryMessage[]; next: string | null };
    for (const m of page.items) io.stdout.write(o.format === 'csv' ? csvRow(m) : JSON.stringify(m) + '\n');
    cursor = page.next;
  } while (cursor !== null);
  return 0;
}

interface TailOptions { readonly limit: number | undefined; readonly json: boolean }

async function tail(s: SavedSession, deviceId: string, o: TailOptions, io: CliIo): Promise<number> {
  const address = parseHubUrl(s.hub);
  const socket = await connectPinned({ host: address.host, port: address.port, pins: PinSet.parse(s.pin) });
  return new Promise<number>((resolve, reject) => {
    const req = request({
      method: 'GET', path: `/api/v1/devices/${encodeURIComponent(deviceId)}/telemetry/stream`, createConnection: () => socket,
      headers: { host: `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`, accept: 'text/event-stream', authorization: `Bearer ${s.token}` },
    });
    let done = false;
    const onSigint = (): void => finish(0);
    const finish = (code: number, err?: unknown): void => {
      if (done) return;
      done = true;
      process.off('SIGINT', onSigint);
      req.destroy();
      socket.destroy();
      if (err !== undefined) reject(err);
      else resolve(code);
    };
    process.once('SIGINT', onSigint);
    req.on('error', (cause) => finish(0, new FleetkeyError('HUB_UNREACHABLE', { cause })));
    req.on('response', (res) => {
      if (res.statusCode !== 200) return void readError(res).then((e) => finish(0, e));
      let count = 0;
      const parser = new SseParser((event, data) => {
        if (done) return;
        if (event === 'end') return finish(0, endError(data));
        if (event !== 'telemetry') return;
        const m = JSON.parse(data) as TelemetryMessage;
        io.stdout.write(o.json ? data + '\n' : humanLine(m));
        if (o.limit !== undefined && ++count >= o.limit) finish(0);
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => parser.push(chunk));
      res.on('end', () => finish(0));
    });
    req.end();
  });
}

function endError(data: string): FleetkeyError | undefined {
  const code = (JSON.parse(data) as { code?: unknown }).code;
  return new FleetkeyError(isErrorCode(code) ? code : 'HUB_PROTOCOL_ERROR');
}

async function readError(res: NodeJS.ReadableStream): Promise<FleetkeyError> {
  let text = '';
  for await (const chunk of res) if (text.length < 65536) text += String(chunk);
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return new FleetkeyError(isErrorCode(code) ? code : 'HUB_PROTOCOL_ERROR');
  } catch {
    return new FleetkeyError('HUB_PROTOCOL_ERROR');
  }
}

/** Incremental event-stream parser (WHATWG HTML §9.2.6): `event` and `data` fields, comments skipped. */
export class SseParser {
  #buffer = '';
  readonly #onEvent: (event: string, data: string) => void;

  constructor(onEvent: (event: string, data: string) => void) {
    this.#onEvent = onEvent;
  }

  push(chunk: string): void {
    this.#buffer += chunk.replaceAll('\r\n', '\n');
    if (this.#buffer.length > 4 * 1024 * 1024) throw new FleetkeyError('HUB_PROTOCOL_ERROR');
    let cut: number;
    while ((cut = this.#buffer.indexOf('\n\n')) >= 0) {
      const block = this.#buffer.slice(0, cut);
      this.#buffer = this.#buffer.slice(cut + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) this.#onEvent(event, data.join('\n'));
    }
  }
}
