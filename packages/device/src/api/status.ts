/**
 * status(): what the device's stored identity says, without touching the network or the key.
 *
 * Invariants:
 * - Read-only: status never writes the state directory (except loadIdentity's roll-forward of
 *   a half-finished save, which only completes what identity.json already committed).
 * - `renewalDue` is true from RENEW_AT_FRACTION of the certificate lifetime on, and when expired.
 */
import { systemClock, type Clock } from '@fleetkey/protocol';
import { loadIdentity } from '../state/identity.js';
import type { IdentitySummary } from './enroll.js';

/** Renew once two thirds of the lifetime have passed (leaves a third for outages). */
export const RENEW_AT_FRACTION = 2 / 3;

export type CertificateState = 'valid' | 'expired' | 'not-yet-valid';

export interface StatusOptions {
  readonly stateDir: string;
  readonly clock?: Clock;
}

export interface DeviceStatus extends IdentitySummary {
  readonly state: CertificateState;
  readonly renewalDue: boolean;
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
    enrolledAt: new Date(identity.enrolledAt),
    ...(identity.renewedAt === undefined ? {} : { renewedAt: new Date(identity.renewedAt) }),
  };
}
