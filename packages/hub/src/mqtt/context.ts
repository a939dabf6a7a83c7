/**
 * What the broker hooks share: dependencies, limits and the audit helper. No logic of its own
 * beyond turning a security event into one audit record and one log line.
 *
 * Invariants: audit records of this module have category `mqtt`, actor `device:<id>` (or
 * `anonymous` before an identity is known), source `mqtt:<remote address>`, and the
 * `FleetkeyError` code of the refusal. An audit write failure is logged and never stops the
 * broker (checklist row 20): the refusal itself has already happened.
 */
import type { TLSSocket } from 'node:tls';
import type { Client } from 'aedes';
import type { Logger } from 'pino';
import type { Clock, ErrorCode } from '@fleetkey/protocol';
import type { Store } from '../storage/types.js';
import type { TelemetrySink } from '../telemetry/types.js';
import type { DeviceAuthenticator } from './device-auth.js';
import type { DeviceRateLimiter, RateLimit } from './rate-limit.js';
import type { SessionRegistry } from './sessions.js';

export interface MqttLimits {
  readonly maxPacketBytes: number;
  /** Packets a client may send before its CONNECT has been processed. */
  readonly maxQueuedPackets: number;
  /** Commands handed to one connection and not yet written. */
  readonly maxInflight: number;
  readonly maxSubscriptions: number;
  readonly connectTimeoutMs: number;
  readonly keepAliveMaxSeconds: number;
  readonly rate: RateLimit;
  /** How long a `device.revoked` mark is kept in memory (longest device certificate lifetime). */
  readonly revocationRetentionMs: number;
}

export interface MqttAuditEvent {
  readonly type: string;
  readonly result: 'success' | 'failure';
  readonly code?: ErrorCode;
  readonly deviceId?: string | undefined;
  readonly tenantId?: string | undefined;
  readonly source: string;
  readonly details?: Readonly<Record<string, string | number | boolean | null>>;
}

export interface BrokerContext {
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sink: TelemetrySink;
  readonly sessions: SessionRegistry;
  readonly auth: DeviceAuthenticator;
  readonly rate: DeviceRateLimiter;
  readonly limits: MqttLimits;
  /** Resolves once the record is durable (or its failure was logged). */
  audit(event: MqttAuditEvent): Promise<void>;
}

/** `mqtt:<address>` of the client's TLS socket. */
export function sourceOf(client: Client | null): string {
  const address = (client?.conn as TLSSocket | undefined)?.remoteAddress;
  return `mqtt:${address ?? 'unknown'}`;
}

export function makeAudit(store: Store, logger: Logger): BrokerContext['audit'] {
  return async (e) => {
    const log = e.result === 'failure' ? logger.warn.bind(logger) : logger.info.bind(logger);
    log({ mqtt: e.type, deviceId: e.deviceId, code: e.code, details: e.details }, 'mqtt audit');
    try {
      await store.audit.append({
        category: 'mqtt', type: e.type, result: e.result,
        actor: e.deviceId === undefined ? 'anonymous' : `device:${e.deviceId}`,
        source: e.source, tenantId: e.tenantId ?? null, code: e.code ?? null, details: e.details ?? {},
      });
    } catch (err) {
      logger.error({ err, mqtt: e.type }, 'mqtt audit record could not be written');
    }
  };
}
