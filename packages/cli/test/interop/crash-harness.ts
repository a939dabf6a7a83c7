/**
 * Harness for the kill -9 crash test: the hub as a child process (`fleetkey hub start`) that can
 * be killed and restarted on the same data folder and ports, the CLI run asynchronously, and an
 * owner's HTTPS calls trusting only the hub root.
 *
 * Invariants:
 * - Only the pid this harness spawned is ever signalled; `HubProcess.dispose()` SIGKILLs a child
 *   that is still alive, so no hub outlives the test.
 * - A start that does not print its "API + EST:" line within `readyTimeoutMs` fails with the
 *   child's stderr tail (a stale lock or an unreadable WAL shows up there).
 * - Children are spawned asynchronously only (a synchronous spawn would block this process'
 *   event loop and with it the device clients under test).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { wrapEnvelope } from '@fleetkey/protocol';

import { BIN, runCli } from '../helpers/cli.js';

export { BIN, runCli };

/** A free TCP port on 127.0.0.1 (bound to 0, then closed). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface HubAddress {
  readonly url: string;
  readonly pin: string;
}

/** One hub data folder and its fixed ports; at most one live child at a time. */
export class HubProcess {
  readonly #args: string[];
  readonly #env: Record<string, string>;
  readonly #readyTimeoutMs: number;
  #child: ChildProcess | undefined;
  #exited: Promise<number | null> = Promise.resolve(null);
  starts = 0;
  /** Spawn → "API + EST:" line, per start (ms). */
  readonly readyMs: number[] = [];

  constructor(o: { dataDir: string; apiPort: number; mqttPort: number; env?: Record<string, string>; readyTimeoutMs?: number }) {
    this.#args = [BIN, 'hub', 'start', '--data-dir', o.dataDir, '--api-port', String(o.apiPort), '--mqtt-port', String(o.mqttPort), '--log-level', 'warn'];
    this.#env = o.env ?? {};
    this.#readyTimeoutMs = o.readyTimeoutMs ?? 20_000;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Spawns the hub and resolves once it printed its address; rejects after the ready timeout. */
  start(): Promise<HubAddress> {
    if (this.#child !== undefined) throw new Error('hub child already running');
    const child = spawn(process.execPath, this.#args, { env: { ...process.env, ...this.#env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.starts++;
    const spawnedAt = Date.now();
    this.#exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let stdout = '';
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => {
        clearTimeout(timer);
        reject(new Error(`hub start #${this.starts} ${why}; stdout: ${stdout.slice(-1000)} stderr: ${stderr}`));
      };
      const timer = setTimeout(() => fail(`not ready within ${this.#readyTimeoutMs} ms`), this.#readyTimeoutMs);
      child.once('exit', (code, signal) => fail(`exited early (code ${String(code)}, signal ${String(signal)})`));
      child.stdout?.on('data', (c: Buffer) => {
        stdout += c.toString();
        const url = /API \+ EST:\s+(https:\/\/\S+)/.exec(stdout)?.[1];
        const pin = /hub pin:\s+(sha256\/\/\S+)/.exec(stdout)?.[1];
        if (url !== undefined && pin !== undefined) {
          clearTimeout(timer);
          this.readyMs.push(Date.now() - spawnedAt);
          resolve({ url, pin });
        }
      });
    });
  }

  /** SIGKILL of the child this harness started; resolves once it is gone. */
  async kill9(): Promise<void> {
    const child = this.#child;
    if (child?.pid === undefined) return;
    this.#child = undefined;
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    await this.#exited;
  }

  /** SIGTERM (clean shutdown); resolves with the exit code. */
  async stop(): Promise<number | null> {
    const child = this.#child;
    if (child?.pid === undefined) return null;
    this.#child = undefined;
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGTERM');
    return this.#exited;
  }

  /** For `after`: no child may survive the test. */
  async dispose(): Promise<void> {
    await this.kill9();
  }
}

export { apiCall, type ApiResponse } from '../helpers/api.js';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface RawMessage {
  readonly id: string;
  readonly body: Buffer;
  dup: boolean;
}

export interface RawPublisherOptions {
  readonly port: number;
  readonly deviceId: string;
  /** PEM: device key, device certificate + device CA, hub root. */
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
  readonly maxInflight: number;
}

/**
 * A plain MQTT.js QoS 1 publisher without the SDK: an in-memory queue, envelopes it writes itself
 * (ADR 0010), and `acked` = the ids whose PUBACK it received. After a lost connection it resends
 * the unacknowledged in-flight messages with DUP=1 [MQTT-3.3.1-1] (`resends` counts them), on a
 * fresh clean session every 50 ms until the hub answers again.
 */
export class RawPublisher {
  readonly acked = new Set<string>();
  readonly enqueued = new Set<string>();
  resends = 0;
  sessions = 0;
  readonly #o: RawPublisherOptions;
  readonly #topic: string;
  readonly #pending: RawMessage[] = [];
  readonly #inflight = new Map<string, { m: RawMessage; c: MqttClient }>();
  #client: MqttClient | undefined;
  #closed = false;
  #n = 0;

  constructor(o: RawPublisherOptions) {
    this.#o = o;
    this.#topic = `devices/${o.deviceId}/raw`;
  }

  get outstanding(): number {
    return this.#pending.length + this.#inflight.size;
  }

  start(): void {
    this.#dial();
  }

  enqueue(count: number): void {
    for (let i = 0; i < count; i++) {
      const id = randomUUID();
      this.enqueued.add(id);
      this.#pending.push({ id, body: Buffer.from(JSON.stringify({ raw: this.#n++ })), dup: false });
    }
    if (this.#client !== undefined) this.#pump(this.#client);
  }

  /** Sends already-acknowledged ids again (DUP=1, another body): the hub must not store them twice. */
  replay(ids: readonly string[]): void {
    for (const id of ids) this.#pending.push({ id, body: Buffer.from('{"replayed":true}'), dup: true });
    if (this.#client !== undefined) this.#pump(this.#client);
  }

  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.outstanding > 0 && Date.now() < deadline) await sleep(20);
    return this.outstanding === 0;
  }

  close(): void {
    this.#closed = true;
    this.#client?.end(true);
  }

  #dial(): void {
    if (this.#closed) return;
    const o = this.#o;
    const c = mqtt.connect({
      protocol: 'mqtts', host: '127.0.0.1', port: o.port, key: o.key, cert: o.cert, ca: o.ca,
      servername: 'localhost', clientId: o.deviceId, protocolVersion: 4, clean: true,
      reconnectPeriod: 0, connectTimeout: 5000, keepalive: 30,
    });
    this.#client = c;
    c.on('connect', () => {
      this.sessions++;
      this.#pump(c);
    });
    c.on('error', () => undefined); // 'close' follows; the loop below redials
    c.once('close', () => this.#lost(c));
  }

  #lost(c: MqttClient): void {
    const again: RawMessage[] = [];
    for (const [id, f] of this.#inflight) {
      if (f.c !== c) continue;
      this.#inflight.delete(id);
      f.m.dup = true;
      again.push(f.m);
    }
    this.resends += again.length;
    this.#pending.unshift(...again); // oldest first, as before
    c.end(true);
    if (this.#client === c) this.#client = undefined;
    if (!this.#closed) setTimeout(() => this.#dial(), 50);
  }

  #pump(c: MqttClient): void {
    while (c === this.#client && c.connected && this.#inflight.size < this.#o.maxInflight) {
      const m = this.#pending.shift();
      if (m === undefined) return;
      this.#inflight.set(m.id, { m, c });
      c.publish(this.#topic, wrapEnvelope(m.id, m.body), { qos: 1, dup: m.dup }, (err) => {
        // Only a PUBACK on the session that carries the message counts; errors mean "resend".
        if (err || this.#inflight.get(m.id)?.c !== c) return;
        this.#inflight.delete(m.id);
        this.acked.add(m.id);
        this.#pump(c);
      });
    }
  }
}
