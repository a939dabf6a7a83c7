/**
 * One attestation request over a pinned TLS 1.3 connection, and that connection's channel
 * binding (RFC 9266 tls-exporter: label "EXPORTER-Channel-Binding", 32 bytes).
 *
 * Invariants:
 * - The socket comes from connectPinned: the claim token and evidence are written only after the
 *   hub proved its pinned key. The token travels only in `Authorization` (HTTP Basic).
 * - A connection that did not negotiate TLS 1.3 has no binding: refused (HUB_PROTOCOL_ERROR)
 *   before anything is sent.
 * - The binding is read on the connection that will carry the evidence, so what the chip signs
 *   is bound to exactly that connection.
 */
import type { TLSSocket } from 'node:tls';
import { FleetkeyError, systemClock, type Clock } from '@fleetkey/protocol';
import { parseHubUrl, type HubAddress } from '../enroll/est-client.js';
import { basicAuthorization, errorFromResponse } from '../enroll/est-wire.js';
import { requestOverSocket } from '../enroll/http-over-socket.js';
import { connectPinned } from '../trust/connect.js';
import type { PinSet } from '../trust/pin-set.js';

export const ATTEST_PATH = '/.well-known/fleetkey/attest';

export interface AttestConnection {
  /** tls-exporter of this connection (32 bytes). */
  readonly binding: Buffer;
  /** POSTs JSON with the token and returns the JSON answer; the connection is closed after it. */
  post(path: string, body: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Closes the connection without a request (idempotent; `post` closes it too). */
  close(): void;
}

export class AttestHub {
  readonly #hub: HubAddress;

  constructor(private readonly o: { hubUrl: string; pins: PinSet; token: string; timeoutMs?: number | undefined; clock?: Clock | undefined }) {
    this.#hub = parseHubUrl(o.hubUrl);
  }

  /** A fresh pinned TLS 1.3 connection with its binding. */
  async connect(): Promise<AttestConnection> {
    const socket = await connectPinned({ ...this.#hub, pins: this.o.pins, timeoutMs: this.o.timeoutMs, clock: this.o.clock ?? systemClock });
    if (socket.getProtocol() !== 'TLSv1.3') {
      socket.destroy();
      throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error('attestation needs TLS 1.3 (RFC 9266 tls-exporter)') });
    }
    // RFC 8446 §7.5: in TLS 1.3 "no context" and an empty context give the same exporter.
    const binding = socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
    return { binding, post: (path, body) => this.#post(socket, path, body), close: () => socket.destroy() };
  }

  /** One request on a connection of its own (the challenge needs no binding of its own). */
  async post(path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    return (await this.connect()).post(path, body);
  }

  async #post(socket: TLSSocket, path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const host = this.#hub.host.includes(':') ? `[${this.#hub.host}]` : this.#hub.host;
    const response = await requestOverSocket(socket, {
      method: 'POST', path: `${ATTEST_PATH}/${path}`, host: `${host}:${this.#hub.port}`, timeoutMs: this.o.timeoutMs,
      headers: { authorization: basicAuthorization(this.o.token), 'content-type': 'application/json', accept: 'application/json' },
      body: Buffer.from(JSON.stringify(body), 'utf8'),
    });
    if (response.status !== 200) throw errorFromResponse(path, response, this.o.token);
    try {
      const parsed: unknown = JSON.parse(response.body.toString('utf8'));
      if (typeof parsed === 'object' && parsed !== null) return parsed as Record<string, unknown>;
    } catch {
      // fall through
    }
    throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error(`${path}: the answer is not a JSON object`) });
  }
}

/** A base64 field of a hub answer, or HUB_PROTOCOL_ERROR. */
export function field(answer: Record<string, unknown>, name: string): Buffer {
  const value = answer[name];
  if (typeof value !== 'string' || value.length === 0) throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error(`the hub's answer has no ${name}`) });
  return Buffer.from(value, 'base64');
}

export function text(answer: Record<string, unknown>, name: string): string {
  const value = answer[name];
  if (typeof value !== 'string' || value.length === 0) throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error(`the hub's answer has no ${name}`) });
  return value;
}
