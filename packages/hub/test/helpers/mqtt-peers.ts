/**
 * mosquitto_pub / mosquitto_sub as independent MQTT peers, always spawned asynchronously (the
 * hub lives in the test process), always bounded in time and killed by pid when over it.
 * Also: enrollment of a device through the real hub's EST route, written as PEM files.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, generateKeyPairSync, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCsr, decodeCertsOnly, deviceIdFromCertificate, toPem } from '@fleetkey/protocol';
import type { TestHub } from './test-hub.js';

export interface PeerFiles {
  readonly deviceId: string;
  readonly certPath?: string;
  readonly keyPath?: string;
}

export interface RunResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

function tlsArgs(t: TestHub, files: PeerFiles): string[] {
  const args = ['-h', '127.0.0.1', '-p', String(t.hub.mqttPort), '--cafile', t.rootPemPath, '-i', files.deviceId];
  if (files.certPath !== undefined && files.keyPath !== undefined) args.push('--cert', files.certPath, '--key', files.keyPath);
  return args;
}

/** Runs a child to completion, killed (by its pid) after `timeoutMs`. */
export function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), timedOut });
    });
  });
}

export function mosquittoPub(t: TestHub, files: PeerFiles, topic: string, message: string, qos: 0 | 1 = 1): Promise<RunResult> {
  return run('mosquitto_pub', [...tlsArgs(t, files), '-t', topic, '-m', message, '-q', String(qos)]);
}

/** A running mosquitto_sub (-v, debug on) whose output lines are timestamped as they arrive. */
export class MosquittoSub {
  readonly lines: Array<{ at: number; text: string }> = [];
  readonly exited: Promise<number>;
  readonly #child: ChildProcess;
  readonly #timer: NodeJS.Timeout;

  constructor(t: TestHub, files: PeerFiles, filters: readonly string[], lifetimeMs = 20_000) {
    const args = [...tlsArgs(t, files), '-v', '-d', '-q', '1', ...filters.flatMap((f) => ['-t', f])];
    // Line-buffered: mosquitto_sub's stdout is a pipe, which stdio would otherwise buffer fully.
    this.#child = spawn('stdbuf', ['-oL', 'mosquitto_sub', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const take = (c: Buffer) => {
      for (const text of c.toString().split('\n')) if (text.length > 0) this.lines.push({ at: Date.now(), text });
    };
    this.#child.stdout?.on('data', take);
    this.#child.stderr?.on('data', take);
    this.exited = new Promise((resolve) => this.#child.on('close', (code) => resolve(code ?? -1)));
    this.#timer = setTimeout(() => this.stop(), lifetimeMs);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Waits for an output line matching `re`; undefined after `timeoutMs`. */
  async waitFor(re: RegExp, timeoutMs = 5000): Promise<{ at: number; text: string } | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => re.test(l.text));
      if (hit !== undefined || Date.now() > deadline) return hit;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGTERM, then SIGKILL after 2 s if it is still alive (seen once: blocked on a lock under load). */
  stop(): void {
    clearTimeout(this.#timer);
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill('SIGTERM');
    const force = setTimeout(() => {
      if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
    }, 2000);
    force.unref();
    void this.exited.then(() => clearTimeout(force));
  }
}

/** Enrolls a fresh P-256 device through the hub's EST route; writes `<name>.pem`/`<name>.key`. */
export async function enrollDevice(t: TestHub, ownerToken: string, name: string): Promise<Required<PeerFiles> & { serial: string; der: Buffer }> {
  const { token } = await t.claimToken(ownerToken);
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const csr = await buildCsr({ spki, subject: [['CN', name]], algorithm: 'p256', sign: async (d) => sign('sha256', d, pair.privateKey) });
  const r = await t.request('POST', '/.well-known/est/simpleenroll', {
    headers: { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from(`any:${token}`).toString('base64')}` },
    body: csr.toString('base64'),
  });
  if (r.status !== 200) throw new Error(`enroll failed: ${r.status} ${r.text}`);
  const [leaf] = decodeCertsOnly(Buffer.from(r.text.replace(/\s+/g, ''), 'base64'));
  if (leaf === undefined) throw new Error('no certificate in the EST response');
  const certPath = join(t.dir, `${name}.pem`);
  const keyPath = join(t.dir, `${name}.key`);
  writeFileSync(certPath, toPem('CERTIFICATE', leaf));
  writeFileSync(keyPath, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { deviceId: deviceIdFromCertificate(leaf), certPath, keyPath, der: leaf, serial: new X509Certificate(leaf).serialNumber.toLowerCase() };
}

/** Writes a test-made credential as PEM files for the mosquitto tools. */
export function writeCredential(dir: string, name: string, cred: { deviceId: string; certPem: string; keyPem: string }): Required<PeerFiles> {
  const certPath = join(dir, `${name}.pem`);
  const keyPath = join(dir, `${name}.key`);
  writeFileSync(certPath, cred.certPem);
  writeFileSync(keyPath, cred.keyPem, { mode: 0o600 });
  return { deviceId: cred.deviceId, certPath, keyPath };
}
