/**
 * A real hub for root-rotation end-to-end tests (ADR 0026): 127.0.0.1, ephemeral ports, a temp
 * data folder, the trust check every second (FLEETKEY_TLS_RENEW_CHECK=1) so `rotateRoot`/`recoverRoot`
 * writes — made in a child process, as the CLI makes them (trust-writer-child.ts) — are applied live
 * within about a second, an owner, and SDK
 * enrollment; sessions served under a retired root are moved within 2 s
 * (FLEETKEY_RETIRED_ROOT_SESSION_SPREAD). `restart()` closes the hub and starts it again on the same data folder and ports
 * (what moves every open session to a new handshake).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { enroll } from '@fleetkey/device';
import {
  loadConfig, openAdminContext, openTrustAdmin, startHub, type RunningHub, type TrustAdmin,
} from '@fleetkey/hub';
import { apiCall } from './api.js';

const PASSWORD = 'rotation e2e password';

export interface RotationHub {
  readonly dir: string;
  readonly hub: RunningHub;
  readonly admin: TrustAdmin;
  readonly tenantId: string;
  /** Enrolls a device with the SDK into `<dir>/<name>`. */
  enrollDevice(name: string): Promise<{ stateDir: string; deviceId: string }>;
  /**
   * rotate-root with `overlapMs`; resolves once the running hub serves the new version, with the
   * milliseconds from the rotation's start to that point (the follower polls every second).
   */
  rotate(overlapMs: number): Promise<number>;
  /** Resolves once the running hub no longer serves the previous root (its overlap ended). */
  overlapOver(): Promise<void>;
  /** hub recover with the offline recovery key; resolves once applied. */
  recover(): Promise<void>;
  /** Every `id:<messageId>` dedup key stored for `deviceId`. */
  storedIds(deviceId: string): Promise<Set<string>>;
  /** `sessionsMoved` of every `trust.apply` audit event since the start, oldest first. */
  sessionsMoved(): Promise<number[]>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startRotationHub(prefix: string): Promise<RotationHub> {
  const dir = mkdtempSync(join(tmpdir(), `fleetkey-${prefix}-`));
  const env = { FLEETKEY_TLS_RENEW_CHECK: '1', FLEETKEY_RETIRED_ROOT_SESSION_SPREAD: '2' };
  const dataDir = join(dir, 'data');
  // rotate/recover write from a process of their own, as the CLI does: a second SQLite connection
  // in THIS process would busy-wait synchronously on the hub's open batch, blocking the event loop
  // that has to commit it (5 s stalls; trust-writer-child.ts).
  const writeTrust = (req: { op: 'rotate'; overlapMs: number } | { op: 'recover'; recoveryKeyPem: string }): Promise<{ recoveryKeyPem?: string }> =>
    new Promise((resolve, reject) => {
      const child = execFile(process.execPath, [fileURLToPath(new URL('./trust-writer-child.js', import.meta.url))], { timeout: 60_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`trust writer failed: ${stderr}`, { cause: err }));
        else resolve(JSON.parse(stdout) as { recoveryKeyPem?: string });
      });
      child.stdin!.end(JSON.stringify({ ...req, dataDir, env }));
    });
  const boot = (apiPort: string, mqttPort: string): Promise<RunningHub> =>
    startHub({ config: loadConfig({ 'data-dir': dataDir, 'api-port': apiPort, 'mqtt-port': mqttPort }, env), logger: pino({ level: process.env.FLEETKEY_TEST_LOG ?? 'silent' }) });
  let hub = await boot('0', '0');
  const admin = await openTrustAdmin(hub.config);
  const accounts = await openAdminContext(hub.config);
  const created = await accounts.createOrganisationWithOwner({ orgName: `${prefix} org`, email: `owner@${prefix}.example`, password: PASSWORD });
  await accounts.close();
  const login = await apiCall(hub.url, hub.rootCertPem, 'POST', '/api/v1/sessions', { email: `owner@${prefix}.example`, password: PASSWORD, totp: OTPAuth.URI.parse(created.otpauthUri).generate() });
  const token = (login.body as { token: string }).token;
  const applied = (version: number): Promise<void> => waitUntil(() => hub.trustVersion === version, 15_000, `trust version ${version}`);
  let recoveryKeyPem = readFileSync(hub.recoveryKeyFile!, 'utf8');
  return {
    dir, admin, tenantId: created.tenantId,
    get hub() {
      return hub;
    },
    enrollDevice: async (name) => {
      const claim = await apiCall(hub.url, hub.rootCertPem, 'POST', '/api/v1/claim-tokens', {}, token);
      const stateDir = join(dir, name);
      const id = await enroll({ hubUrl: hub.url, pin: hub.pin, token: (claim.body as { token: string }).token, stateDir });
      return { stateDir, deviceId: id.deviceId };
    },
    rotate: async (overlapMs) => {
      const next = hub.trustVersion + 1;
      const started = Date.now();
      await writeTrust({ op: 'rotate', overlapMs });
      await applied(next);
      return Date.now() - started;
    },
    // During an overlap the device CA is trusted as certified by both roots (trust/material.ts).
    overlapOver: () => waitUntil(() => hub.deviceCaCerts.length === 1, 30_000, 'the end of the overlap'),
    recover: async () => {
      const next = hub.trustVersion + 1;
      recoveryKeyPem = (await writeTrust({ op: 'recover', recoveryKeyPem })).recoveryKeyPem!;
      await applied(next);
    },
    storedIds: async (deviceId) => {
      const ids = new Set<string>();
      for (let after = 0; ;) {
        const page = await hub.store.telemetry.list(created.tenantId, deviceId, { afterSeq: after, limit: 1000 });
        for (const row of page) if (row.dedupKey !== null) ids.add(row.dedupKey);
        if (page.length < 1000) return ids;
        after = page[page.length - 1]!.seq;
      }
    },
    sessionsMoved: async () => (await hub.store.audit.list({ limit: 10_000 }))
      .filter((e) => e.type === 'trust.apply').map((e) => Number((e.details as { sessionsMoved?: unknown } | undefined)?.sessionsMoved)),
    restart: async () => {
      const { port, mqttPort } = hub;
      await hub.close();
      hub = await boot(String(port), String(mqttPort));
    },
    stop: async () => {
      await admin.close();
      await hub.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
