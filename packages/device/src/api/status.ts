/**
 * status(): what the device's stored identity says, without touching the network or the key.
 *
 * Invariants:
 * - Read-only: status never writes the state directory (except loadIdentity's roll-forward of
 *   a half-finished save, which only completes what identity.json already committed).
 * - `renewalDue` is true from RENEW_AT_FRACTION of the certificate lifetime on, and when expired;
 *   `renewalDueAt` is that nominal time and `renewalWindow` the jitter range the agent's
 *   scheduler draws from (renewal/schedule.ts, ADR 0025).
 */
import { systemClock, type Clock } from '@fleetkey/protocol';
import { loadIdentity } from '../state/identity.js';
import { RENEW_AT_FRACTION, renewalWindow } from '../renewal/schedule.js';
import type { IdentitySummary } from './enroll.js';

export { RENEW_AT_FRACTION };

export type CertificateState = 'valid' | 'expired' | 'not-yet-valid';

export interface StatusOptions {
  readonly stateDir: string;
  readonly clock?: Clock;
}

export interface DeviceStatus extends IdentitySummary {
  readonly state: CertificateState;
  readonly renewalDue: boolean;
  /** Nominal renewal time (two thirds of the lifetime). */
  readonly renewalDueAt: Date;
  /** Where the agent's jittered renewal time falls. */
  readonly renewalWindow: { readonly earliest: Date; readonly latest: Date };
  readonly enrolledAt: Date;
  readonly renewedAt?: Date;
  readonly pins: readonly string[];
}

/**
 * Reads the stored identity; DEVICE_NOT_ENROLLED when there is none.
 *
 * @example
 * import { status } from '@fleetkey/device';
 * const s = await status({ stateDir: '/var/lib/fleetkey' });
 * console.log(s.deviceId, s.state, s.notAfter.toISOString());
 */
export async function status(options: StatusOptions): Promise<DeviceStatus> {
  const { identity } = await loadIdentity(options.stateDir);
  const now = (options.clock ?? systemClock).now();
  const notBefore = new Date(identity.notBefore);
  const notAfter = new Date(identity.notAfter);
  const state: CertificateState = now < notBefore.getTime() ? 'not-yet-valid' : now > notAfter.getTime() ? 'expired' : 'valid';
  const window = renewalWindow({ notBefore: notBefore.getTime(), notAfter: notAfter.getTime() });
  const renewAt = notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * RENEW_AT_FRACTION;
  return {
    deviceId: identity.deviceId,
    hubUrl: identity.hubUrl,
    notBefore,
    notAfter,
    keyStore: identity.keyStore,
    keyAlgorithm: identity.keyAlgorithm,
    pins: identity.pins,
    state,
    renewalDue: now >= renewAt,
    renewalDueAt: new Date(window.nominal),
    renewalWindow: { earliest: new Date(window.earliest), latest: new Date(window.latest) },
    enrolledAt: new Date(identity.enrolledAt),
    ...(identity.renewedAt === undefined ? {} : { renewedAt: new Date(identity.renewedAt) }),
  };
}
