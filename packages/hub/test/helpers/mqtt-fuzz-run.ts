/**
 * Runs an MQTT fuzz campaign (cases from mqtt-fuzz-cases.ts) against a live broker over mutual
 * TLS, one connection per case, while two well-behaved probe devices check that the broker stays
 * responsive: one long-lived session publishing QoS 1, one opening fresh sessions.
 *
 * Invariants:
 * - Every wait is bounded (CONNACK, prelude replies, the broker's close, the whole campaign);
 *   every socket is destroyed when its case ends; nothing runs after `runFuzzCampaign` resolves.
 * - Each worker owns one device (devices[0] and [1] are the probes'), so no two live connections
 *   share a client id and no takeover [MQTT-3.1.4-2] can close a case early.
 * - A case fails when: an authenticated CONNECT is not answered CONNACK 0, a legal prelude packet
 *   is not answered, a malformed CONNECT gets CONNACK 0, or the broker has not closed the
 *   connection within the timeout after the attack.
 * - Memory is sampled through the caller's `memory()` (after GC) every `memoryEveryCases` cases.
 */
import { connect as tlsConnect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { fuzzCase } from './mqtt-fuzz-cases.js';
import { connectPacket, publishPacket, type FuzzCase } from './mqtt-fuzz-gen.js';

export interface FuzzDevice { readonly deviceId: string; readonly keyPem: string; readonly certPem: string }
export interface MemorySample { readonly atCase: number; readonly rss: number; readonly heapUsed: number }

export interface CampaignOptions {
  readonly port: number;
  readonly rootPem: string;
  /** [0] long-lived probe, [1] fresh-connection probe, the rest one per worker. */
  readonly devices: readonly FuzzDevice[];
  readonly seed: number;
  /** Stop once this many packets were sent (only malformed ones when `countAttacksOnly`). */
  readonly packets: number;
  readonly countAttacksOnly?: boolean;
  readonly maxDurationMs: number;
  readonly closeTimeoutMs: number;
  /** For stalled cases: the broker's CONNECT timeout plus slack. */
  readonly stallTimeoutMs: number;
  readonly probeEveryMs: number;
  readonly memoryEveryCases: number;
  readonly memory: () => Promise<{ rss: number; heapUsed: number }>;
  readonly onProgress?: (r: CampaignResult) => void;
}

export interface CampaignResult {
  packets: number;
  attackPackets: number;
  cases: number;
  closedByBroker: number;
  /** Publishes of preludes the broker acknowledged (each stored once). */
  legalAcked: number;
  kinds: Record<string, number>;
  /** Wall time spent in the cases of each kind (ms). */
  kindMs: Record<string, number>;
  failures: Record<string, number>;
  firstFailures: Array<{ index: number; kind: string; problem: string }>;
  probe: { checks: number; failures: number; maxMs: number; acked: number };
  memory: MemorySample[];
  durationMs: number;
}

const HOST = '127.0.0.1';

/** Reads the broker's replies on one connection: CONNACK code, reply types, close. */
class ReplyReader {
  readonly socket: TLSSocket;
  closed = false;
  connackCode: number | undefined;
  readonly #counts = new Map<number, number>();
  #pending: Buffer = Buffer.alloc(0);
  #secured = false;
  #waiters: Array<() => void> = [];

  constructor(socket: TLSSocket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#feed(chunk));
    socket.on('error', () => undefined); // a refusal shows as a close
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('secureConnect', () => {
      this.#secured = true;
      this.#wake();
    });
  }

  secure(timeoutMs: number): Promise<boolean> {
    return this.#until(() => this.closed || this.#secured, timeoutMs);
  }

  async connack(timeoutMs: number): Promise<number | undefined> {
    await this.#until(() => this.connackCode !== undefined || this.closed, timeoutMs);
    return this.connackCode;
  }

  /** Waits for one reply of each listed type (any order); consumes them. */
  async replies(types: readonly number[], timeoutMs: number): Promise<boolean> {
    const want = new Map<number, number>();
    for (const t of types) want.set(t, (want.get(t) ?? 0) + 1);
    const ok = await this.#until(() => [...want].every(([t, n]) => (this.#counts.get(t) ?? 0) >= n), timeoutMs);
    if (ok) for (const [t, n] of want) this.#counts.set(t, (this.#counts.get(t) ?? 0) - n);
    return ok;
  }

  waitClosed(timeoutMs: number): Promise<boolean> {
    return this.#until(() => this.closed, timeoutMs);
  }

  /** §2.2: type in the high nibble, Remaining Length varint, body. */
  #feed(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    for (;;) {
      let len = 0;
      let i = 1;
      for (let mul = 1; i < this.#pending.length && i < 5; i++, mul *= 128) {
        len += (this.#pending[i]! & 0x7f) * mul;
        if ((this.#pending[i]! & 0x80) === 0) break;
      }
      if (i >= this.#pending.length || this.#pending.length < i + 1 + len) break;
      const type = this.#pending[0]! >> 4;
      if (type === 2) this.connackCode = this.#pending[i + 2];
      else this.#counts.set(type, (this.#counts.get(type) ?? 0) + 1);
      this.#pending = this.#pending.subarray(i + 1 + len);
    }
    this.#wake();
  }

  async #until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

function fail(r: CampaignResult, c: FuzzCase, problem: string): void {
  const key = `${c.kind}: ${problem}`;
  r.failures[key] = (r.failures[key] ?? 0) + 1;
  if (r.firstFailures.length < 20) r.firstFailures.push({ index: c.index, kind: c.kind, problem });
}

async function open(port: number, ctx: SecureContext): Promise<ReplyReader> {
  const socket: TLSSocket = tlsConnect({ host: HOST, port, secureContext: ctx, checkServerIdentity: () => undefined });
  const reader = new ReplyReader(socket);
  await reader.secure(10_000);
  return reader;
}

/** One case on one connection; returns the packets sent. */
async function runCase(o: CampaignOptions, r: CampaignResult, c: FuzzCase, device: FuzzDevice, ctx: SecureContext): Promise<number> {
  const reader = await open(o.port, ctx);
  let sent = 0;
  try {
    if (reader.closed) return fail(r, c, 'TLS handshake failed'), 0;
    if (c.authenticate) {
      reader.socket.write(connectPacket({ clientId: device.deviceId }));
      sent++;
      if ((await reader.connack(5000)) !== 0) return fail(r, c, 'authorised device refused'), sent;
      if (c.prelude.length > 0) {
        reader.socket.write(Buffer.concat(c.prelude.map((p) => p.bytes)));
        sent += c.prelude.length;
        if (!(await reader.replies(c.prelude.map((p) => p.reply), 5000))) return fail(r, c, 'legal packet not answered'), sent;
        r.legalAcked += c.prelude.filter((p) => p.stores).length;
      }
    }
    for (const b of c.attack) reader.socket.write(b);
    sent += c.attackPackets;
    r.attackPackets += c.attackPackets;
    if (c.halfClose) reader.socket.end();
    const closed = await reader.waitClosed(c.stall ? o.stallTimeoutMs : o.closeTimeoutMs);
    if (!c.authenticate && reader.connackCode === 0) fail(r, c, 'malformed CONNECT accepted (CONNACK 0)');
    if (closed) r.closedByBroker++;
    else fail(r, c, 'connection not closed by the broker');
    return sent;
  } finally {
    reader.socket.destroy();
  }
}

async function worker(o: CampaignOptions, r: CampaignResult, device: FuzzDevice, next: () => number | undefined, sample: () => Promise<void>): Promise<void> {
  const ctx = createSecureContext({ key: device.keyPem, cert: device.certPem, ca: o.rootPem });
  for (let i = next(); i !== undefined; i = next()) {
    const c = fuzzCase(o.seed, i, device.deviceId);
    r.kinds[c.kind] = (r.kinds[c.kind] ?? 0) + 1;
    const t0 = performance.now();
    const sent = await runCase(o, r, c, device, ctx); // read r.packets after the await (workers interleave)
    r.kindMs[c.kind] = (r.kindMs[c.kind] ?? 0) + (performance.now() - t0);
    r.packets += sent;
    r.cases++;
    if (r.cases % o.memoryEveryCases === 0) await sample();
  }
}

async function probePublish(reader: ReplyReader, deviceId: string, n: number): Promise<boolean> {
  const id = (n % 65535) + 1;
  reader.socket.write(publishPacket(`devices/${deviceId}/telemetry`, Buffer.from(`FK1 probe-${deviceId}-${n}-0000000000\n{"n":${n}}`), { qos: 1, id }));
  return reader.replies([4], 5000);
}

async function session(o: CampaignOptions, device: FuzzDevice, ctx: SecureContext): Promise<ReplyReader | undefined> {
  const reader = await open(o.port, ctx);
  reader.socket.write(connectPacket({ clientId: device.deviceId }));
  if ((await reader.connack(5000)) === 0) return reader;
  reader.socket.destroy();
  return undefined;
}

/** Probes until `done()`: a QoS 1 PUBLISH on the long-lived session, and every 5th a fresh session too. */
async function probe(o: CampaignOptions, r: CampaignResult, done: () => boolean): Promise<void> {
  const [long, fresh] = [o.devices[0]!, o.devices[1]!];
  const ctxs = [long, fresh].map((d) => createSecureContext({ key: d.keyPem, cert: d.certPem, ca: o.rootPem }));
  let live = await session(o, long, ctxs[0]!);
  for (let n = 1; !done(); n++) {
    const t0 = performance.now();
    let ok = live !== undefined && !live.closed && (await probePublish(live, long.deviceId, n));
    if (ok && n % 5 === 0) {
      const s = await session(o, fresh, ctxs[1]!);
      ok = s !== undefined && (await probePublish(s, fresh.deviceId, n));
      s?.socket.destroy();
      if (ok) r.probe.acked++;
    }
    r.probe.checks++;
    r.probe.maxMs = Math.max(r.probe.maxMs, performance.now() - t0);
    if (ok) r.probe.acked++;
    else {
      r.probe.failures++;
      live?.socket.destroy();
      live = await session(o, long, ctxs[0]!);
    }
    await new Promise((resolve) => setTimeout(resolve, o.probeEveryMs));
  }
  live?.socket.destroy();
}

export async function runFuzzCampaign(o: CampaignOptions): Promise<CampaignResult> {
  const r: CampaignResult = { packets: 0, attackPackets: 0, cases: 0, closedByBroker: 0, legalAcked: 0, kinds: {}, kindMs: {}, failures: {}, firstFailures: [], probe: { checks: 0, failures: 0, maxMs: 0, acked: 0 }, memory: [], durationMs: 0 };
  const start = performance.now();
  let index = 0;
  let finished = false;
  const next = (): number | undefined => ((o.countAttacksOnly === true ? r.attackPackets : r.packets) < o.packets && performance.now() - start < o.maxDurationMs ? index++ : undefined);
  let sampling: Promise<void> | undefined;
  const sample = async (): Promise<void> => {
    sampling ??= o.memory().then((m) => {
      r.memory.push({ atCase: r.cases, ...m });
      o.onProgress?.(r);
    }).finally(() => (sampling = undefined));
    await sampling;
  };
  await sample();
  const probing = probe(o, r, () => finished);
  await Promise.all(o.devices.slice(2).map((d) => worker(o, r, d, next, sample)));
  finished = true;
  await probing;
  await sample();
  r.durationMs = performance.now() - start;
  return r;
}
