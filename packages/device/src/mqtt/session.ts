/**
 * One MQTT 3.1.1 session over one already-verified TLS socket (MQTT.js underneath).
 *
 * Invariants:
 * - The socket handed in has passed the pin check (connectPinned): MQTT.js never opens a
 *   connection of its own, so CONNECT — and any PUBLISH after it — only ever goes to a hub that
 *   proved the pin. MQTT.js's own reconnect is off (`reconnectPeriod: 0`); a session lives and
 *   dies with its socket, and the reconnect loop (client.ts) makes a new one.
 * - `openSession` resolves after CONNACK 0 [MQTT-3.2.2-1]; a refusal rejects with the MQTT.js
 *   error carrying the return code (refusal.ts classifies it).
 * - Every `publish` promise settles: on PUBACK (QoS 1), once written (QoS 0), or rejected when
 *   the session closes first. The outbox keeps the message in that case and resends it.
 * - `closed` resolves exactly once, with the reason (undefined after our own `end`).
 */
import type { TLSSocket } from 'node:tls';
import { MqttClient, type IClientOptions } from 'mqtt';
import { FleetkeyError } from '@fleetkey/protocol';

export interface SessionOptions {
  readonly clientId: string;
  readonly keepaliveSeconds: number;
  readonly connackTimeoutMs: number;
  readonly cleanSession: boolean;
  readonly onMessage: (topic: string, payload: Buffer) => void;
}

export interface MqttSession {
  publish(topic: string, payload: Buffer, qos: 0 | 1, dup: boolean): Promise<void>;
  /** SUBSCRIBE; resolves with the granted QoS per filter (128 = refused, MQTT 3.1.1 §3.9.3). */
  subscribe(filters: readonly string[]): Promise<number[]>;
  /** DISCONNECT and close; resolves when the socket is gone. */
  end(): Promise<void>;
  readonly closed: Promise<Error | undefined>;
}

function clientOptions(options: SessionOptions): IClientOptions {
  return {
    protocolVersion: 4, // MQTT 3.1.1
    clientId: options.clientId, // = device id (from the certificate); the hub refuses any other
    clean: options.cleanSession,
    keepalive: options.keepaliveSeconds,
    connectTimeout: options.connackTimeoutMs,
    reconnectPeriod: 0,
    resubscribe: false,
    queueQoSZero: false,
    manualConnect: true,
  };
}

/** Runs CONNECT over `socket`; resolves after CONNACK 0. The socket is destroyed on failure. */
export function openSession(socket: TLSSocket, options: SessionOptions): Promise<MqttSession> {
  const client = new MqttClient(() => socket, clientOptions(options));
  let lastError: Error | undefined;
  let ended = false;
  const closed = new Promise<Error | undefined>((resolve) => {
    client.once('close', () => {
      socket.destroy();
      resolve(ended ? undefined : lastError ?? new FleetkeyError('HUB_UNREACHABLE', { cause: new Error('the hub closed the connection') }));
    });
  });
  client.on('error', (err) => { lastError = err; });
  client.on('message', (topic, payload) => options.onMessage(topic, payload));
  const session: MqttSession = {
    closed,
    publish: (topic, payload, qos, dup) => publishOn(client, closed, topic, payload, qos, dup),
    subscribe: (filters) => subscribeOn(client, filters),
    end: async () => {
      ended = true;
      await new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
      socket.destroy();
      await closed;
    },
  };
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(session));
    void closed.then((reason) => reject(reason ?? new Error('session closed before CONNACK')));
    client.connect();
  });
}

function publishOn(client: MqttClient, closed: Promise<Error | undefined>, topic: string, payload: Buffer, qos: 0 | 1, dup: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      if (err === undefined) resolve();
      else reject(err);
    };
    void closed.then((reason) => settle(reason ?? new Error('session ended before PUBACK')));
    // [MQTT-3.3.1-1] DUP=1 when this may be a redelivery of an earlier PUBLISH.
    client.publish(topic, payload, { qos, dup, retain: false }, (err) => settle(err ?? undefined));
  });
}

function subscribeOn(client: MqttClient, filters: readonly string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe([...filters], { qos: 1 }, (err, granted) => {
      if (err !== null && err !== undefined && granted === undefined) reject(err);
      else resolve(filters.map((f) => granted?.find((g) => g.topic === f)?.qos ?? 128));
    });
  });
}
