/**
 * The two hub calls of the two-phase swap (ADR 0025), each on a FRESH pinned mutual-TLS
 * connection with the NEW certificate and key:
 *   proveIdentity   GET  /.well-known/fleetkey/device                  → 200 {deviceId, serial}
 *   retirePrevious  POST /.well-known/fleetkey/device/retire-previous  → 200 {retired: [...]}
 *
 * Invariants:
 * - The hub answers 200 only for a certificate its TLS stack and its device authentication both
 *   accept now (chain, validity, recorded, not revoked, device active), so a 200 naming our
 *   device id and the new serial proves the new identity works for the hub's mTLS services.
 * - Any other outcome of the proof (TLS failure, timeout, refusal, another serial) is
 *   RENEWAL_PROOF_FAILED with the reason as cause; nothing is written by this module.
 * - The pin is verified before a byte is sent (connectPinned, ADR 0006).
 */
import { X509Certificate } from 'node:crypto';
import { FleetkeyError, type Clock } from '@fleetkey/protocol';
import { parseHubUrl, type MutualTlsIdentity } from '../enroll/est-client.js';
import { errorFromResponse } from '../enroll/est-wire.js';
import { requestOverSocket, type HttpResponse } from '../enroll/http-over-socket.js';
import { connectPinned } from '../trust/connect.js';
import type { PinSet } from '../trust/pin-set.js';

export const DEVICE_PATH = '/.well-known/fleetkey/device';

export interface HubCallOptions {
  readonly hubUrl: string;
  readonly pins: PinSet;
  readonly knownCertificates: readonly Uint8Array[];
  readonly identity: MutualTlsIdentity;
  readonly clock: Clock;
  readonly timeoutMs?: number;
}

async function call(o: HubCallOptions, method: 'GET' | 'POST', path: string): Promise<HttpResponse> {
  const hub = parseHubUrl(o.hubUrl);
  const socket = await connectPinned({
    host: hub.host, port: hub.port, pins: o.pins, knownCertificates: o.knownCertificates, clock: o.clock,
    clientKey: o.identity.clientKey, clientCert: o.identity.clientCert, ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
  });
  const host = `${hub.host.includes(':') ? `[${hub.host}]` : hub.host}:${hub.port}`;
  return requestOverSocket(socket, {
    method, host, path, headers: { accept: 'application/json', connection: 'close' },
    ...(method === 'POST' ? { body: Buffer.alloc(0) } : {}), ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
  });
}

function json(response: HttpResponse): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(response.body.toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error('the hub answered with something that is not a JSON object') });
}

/** Proves `certificateDer` (with the identity's key) on a fresh connection; RENEWAL_PROOF_FAILED otherwise. */
export async function proveIdentity(o: HubCallOptions & { readonly deviceId: string; readonly certificateDer: Uint8Array }): Promise<void> {
  const serial = new X509Certificate(o.certificateDer).serialNumber.toLowerCase();
  try {
    const response = await call(o, 'GET', DEVICE_PATH);
    if (response.status !== 200) throw errorFromResponse('renewal proof', response);
    const body = json(response);
    if (body.deviceId !== o.deviceId || body.serial !== serial) {
      throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error('the hub proved a different device or certificate') });
    }
  } catch (cause) {
    throw new FleetkeyError('RENEWAL_PROOF_FAILED', { cause });
  }
}

/** Asks the hub to retire (revoke as superseded) the certificates older than the identity's one. */
export async function retirePrevious(o: HubCallOptions): Promise<string[]> {
  const response = await call(o, 'POST', `${DEVICE_PATH}/retire-previous`);
  if (response.status !== 200) throw errorFromResponse('retire previous certificates', response);
  const retired = json(response).retired;
  if (!Array.isArray(retired) || !retired.every((s) => typeof s === 'string')) throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error('retire-previous: no serial list') });
  return retired as string[];
}
