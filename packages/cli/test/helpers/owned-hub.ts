/**
 * A real hub for interop tests with one organisation and a logged-in owner (password + TOTP):
 * 127.0.0.1, ephemeral ports, its own temp folder. The owner's API calls, a fresh claim token,
 * and a device's stored telemetry, as the key-store interop tests (PKCS#11, TPM) need them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { loadConfig, openAdminContext, startHub, type RunningHub } from '@fleetkey/hub';
import { apiCall, type ApiResponse } from './api.js';

export interface OwnedHub {
  readonly dir: string;
  readonly hub: RunningHub;
  /** An owner API call (the owner's bearer token unless `token` is given). */
  api(method: string, path: string, body?: unknown, token?: string): Promise<ApiResponse>;
  /** A single-use claim token of the organisation. */
  claimToken(): Promise<string>;
  /** The device's telemetry as the owner reads it (first 50). */
  storedTelemetry(deviceId: string): Promise<unknown[]>;
  /** Stops the hub and removes the folder. */
  close(): Promise<void>;
}

export async function startOwnedHub(prefix: string, orgName: string): Promise<OwnedHub> {
  const dir = mkdtempSync(join(tmpdir(), `fleetkey-${prefix}-`));
  const hub = await startHub({ config: loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, {}), logger: pino({ level: 'silent' }) });
  const email = `o@${prefix}.example`;
  const password = `${prefix} interop password`;
  const admin = await openAdminContext(hub.config);
  const created = await admin.createOrganisationWithOwner({ orgName, email, password });
  await admin.close();
  const call = (method: string, path: string, body?: unknown, token?: string): Promise<ApiResponse> => apiCall(hub.url, hub.rootCertPem, method, path, body, token);
  const session = await call('POST', '/api/v1/sessions', { email, password, totp: OTPAuth.URI.parse(created.otpauthUri).generate() });
  assert.equal(session.status, 201);
  const ownerToken = (session.body as { token: string }).token;
  const api = (method: string, path: string, body?: unknown, token = ownerToken): Promise<ApiResponse> => call(method, path, body, token);
  return {
    dir, hub, api,
    claimToken: async () => {
      const claim = await api('POST', '/api/v1/claim-tokens', {});
      assert.equal(claim.status, 201, JSON.stringify(claim.body));
      return (claim.body as { token: string }).token;
    },
    storedTelemetry: async (deviceId) => {
      const page = await api('GET', `/api/v1/devices/${deviceId}/telemetry?limit=50`);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      return (page.body as { items: unknown[] }).items;
    },
    close: async () => {
      await hub.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
