/**
 * `fleetkey device run`: the telemetry agent.
 *
 *   fleetkey device run --state-dir D [--interval 5s] [--stdin] [--hub-mqtt host:port]
 *
 * Invariants:
 * - Publishes QoS 1 to `devices/{id}/telemetry` through the SDK's durable outbox: sample metrics
 *   (uptime, load average, memory, as JSON) every interval, or with `--stdin` one message per
 *   input line (then exits after EOF once everything queued was acknowledged or the flush
 *   timeout passed).
 * - Prints each command it receives as one line `command <name> <payload>` on stdout (payload
 *   as UTF-8 when it is valid text, else `base64:…`).
 * - SIGTERM/SIGINT (or the `stop` signal in tests) stop it cleanly: flush up to FLUSH_TIMEOUT_MS,
 *   DISCONNECT, close the outbox (unsent messages stay queued for the next run), exit 0.
 * - A fatal client error (DEVICE_REVOKED, …) ends the run with that code's exit status.
 * - Renewal (ADR 0025): a certificate that has already expired is renewed (same key, within the
 *   hub's grace) before the first connection; while running, the SDK's AutoRenewal renews at
 *   two thirds of the lifetime ± jitter and on the hub's `fleetkey/renew` command, and switches
 *   the live session. Each renewal step prints one line `renewal <event> …` on stdout; a refusal
 *   that needs a new claim (RENEWAL_NEEDS_CLAIM) before the first connection ends the run.
 */
import { createInterface } from 'node:readline';
import { loadavg, freemem, totalmem, uptime } from 'node:os';
import { FleetkeyError } from '@fleetkey/protocol';
import { adoptBundle, connect, renew, startAutoRenewal, status, telemetryTopic, type AutoRenewalEvent, type DeviceClient, type DeviceCommand } from '@fleetkey/device';

export const FLUSH_TIMEOUT_MS = 10_000;
const MIN_INTERVAL_MS = 100;
const MAX_INTERVAL_MS = 86_400_000;
const MAX_LINE_BYTES = 256 * 1024;

export interface RunOptions {
  readonly stateDir: string;
  readonly interval?: string;
  readonly stdin: boolean;
  readonly hubMqtt?: string;
}

export interface RunIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
  /** Aborting stops the agent like SIGTERM; defaults to the process signals. */
  readonly stop?: AbortSignal;
}

/** `5s`, `500ms`, `2m`, `1h`, or plain seconds → milliseconds; VALIDATION_FAILED otherwise. */
export function parseInterval(text: string | undefined): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text ?? '5s');
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match?.[2] ?? 's'] ?? 1000;
  const ms = match === null ? NaN : Math.round(Number(match[1]) * unit);
  if (!(ms >= MIN_INTERVAL_MS && ms <= MAX_INTERVAL_MS)) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'interval', min: '100ms', max: '24h' } });
  return ms;
}

/** `host:port` or `[v6]:port` → { host, port }. */
export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || !(port >= 1 && port <= 65535)) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'hub-mqtt' } });
  return { host: match[1] ?? match[2] ?? '', port };
}

/** One sample of this machine's metrics. */
export function sampleMetrics(): Record<string, unknown> {
  const [one = 0, five = 0, fifteen = 0] = loadavg();
  return { uptimeSeconds: Math.round(uptime()), loadAverage: [one, five, fifteen], memory: { totalBytes: totalmem(), freeBytes: freemem() }, at: new Date().toISOString() };
}

function printCommand(stdout: NodeJS.WritableStream, command: DeviceCommand): void {
  const text = command.payload.toString('utf8');
  const printable = Buffer.from(text, 'utf8').equals(command.payload) && !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text);
  stdout.write(`command ${command.name} ${printable ? text.replace(/\n/g, '\\n') : `base64:${command.payload.toString('base64')}`}\n`);
}

/** One line per renewal event, e.g. `renewal scheduled 2026-12-01T10:00:00.000Z`. */
export function renewalLine(event: AutoRenewalEvent): string {
  switch (event.type) {
    case 'scheduled': return `renewal scheduled ${event.dueAt.toISOString()}\n`;
    case 'renewing': return `renewal started ${event.trigger}\n`;
    case 'renewed': return `renewal done ${new Date(event.validity.notAfter).toISOString()}\n`;
    case 'failed': return `renewal failed ${event.error.code}${event.retryInMs === undefined ? ' (stopped)' : ` (retry in ${Math.round(event.retryInMs / 1000)}s)`}\n`;
    case 'retired': return `renewal retired ${event.serials.length}\n`;
    case 'command-ignored': return `renewal command-ignored ${event.error.code}\n`;
  }
}

function stopSignal(io: RunIo): { signal: AbortSignal; dispose: () => void } {
  if (io.stop !== undefined) return { signal: io.stop, dispose: () => undefined };
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return { signal: controller.signal, dispose: () => { process.off('SIGTERM', onSignal); process.off('SIGINT', onSignal); } };
}

async function publishLines(client: DeviceClient, io: RunIo, signal: AbortSignal): Promise<void> {
  const lines = createInterface({ input: io.stdin, crlfDelay: Infinity });
  signal.addEventListener('abort', () => lines.close(), { once: true });
  for await (const line of lines) {
    if (Buffer.byteLength(line) > MAX_LINE_BYTES) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'line', max: MAX_LINE_BYTES } });
    if (line !== '') await client.publish(telemetryTopic(client.deviceId), line);
  }
}

async function publishSamples(client: DeviceClient, intervalMs: number, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await client.publish(telemetryTopic(client.deviceId), JSON.stringify(sampleMetrics()));
    await new Promise<void>((resolve) => {
      const onAbort = (): void => { clearTimeout(timer); resolve(); };
      const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, intervalMs);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function settledWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    void promise.then((value) => { clearTimeout(timer); resolve(value); });
  });
}

/** Runs the agent until stopped, EOF (`--stdin`) or a fatal error; returns the exit code. */
export async function runAgent(options: RunOptions, io: RunIo): Promise<number> {
  const intervalMs = parseInterval(options.interval);
  const mqtt = options.hubMqtt === undefined ? undefined : parseHostPort(options.hubMqtt);
  // An unpacked bundle folder with an encrypted key.pem: the batch passphrase from the environment.
  const passphrase = process.env.FLEETKEY_BUNDLE_PASSPHRASE;
  // An unpacked bundle folder becomes the state directory first (connect() would do it too).
  await adoptBundle({ stateDir: options.stateDir, ...(passphrase === undefined || passphrase === '' ? {} : { passphrase }) });
  // Offline past expiry: renew with the same key first (the hub's grace decides), then connect.
  if ((await status({ stateDir: options.stateDir })).state === 'expired') {
    io.stdout.write(renewalLine({ type: 'renewing', trigger: 'expired' }));
    const renewed = await renew({ stateDir: options.stateDir });
    io.stdout.write(renewalLine({ type: 'renewed', trigger: 'expired', validity: { notBefore: renewed.notBefore.getTime(), notAfter: renewed.notAfter.getTime() } }));
  }
  const client = await connect({
    stateDir: options.stateDir, ...(mqtt === undefined ? {} : { mqttHost: mqtt.host, mqttPort: mqtt.port }),
    ...(passphrase === undefined || passphrase === '' ? {} : { bundlePassphrase: passphrase }),
  });
  const { signal, dispose } = stopSignal(io);
  client.on('command', (command) => printCommand(io.stdout, command));
  const fatal = client.stopped.then((error) => error);
  const renewal = await startAutoRenewal({ stateDir: options.stateDir, client, onEvent: (event) => io.stdout.write(renewalLine(event)) });
  try {
    const work = options.stdin ? publishLines(client, io, signal) : publishSamples(client, intervalMs, signal);
    const first = await Promise.race([work.then(() => undefined, (err: unknown) => err), fatal]);
    if (first !== undefined) throw (await settledWithin(fatal, 1000)) ?? first; // prefer the client's own reason
    await client.close({ flushTimeoutMs: FLUSH_TIMEOUT_MS });
    const after = await client.stopped;
    if (after !== undefined) throw after;
    return 0;
  } finally {
    renewal.stop();
    dispose();
    await client.close();
  }
}
