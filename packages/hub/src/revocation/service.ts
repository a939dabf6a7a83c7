/**
 * Revoking a device on an owner's request: the store revokes the device and all its
 * certificates as one unit with the audit record, then `device.revoked` goes out on the
 * EventBus, where the broker closes live sessions and every node's CRL publisher re-signs.
 *
 * Invariants:
 * - Tenant-scoped: another organisation's device is NOT_FOUND, exactly like a missing one, and
 *   nothing is written or published for it.
 * - The reason is one of REVOCATION_REASONS (RFC 5280 §5.3.1 names an owner may state; the
 *   CA-level ones such as cACompromise are not theirs to claim).
 * - Idempotent: revoking a revoked device answers 200 with the first revocation's time and
 *   reason, audits the attempt, and publishes nothing (ADR 0011).
 * - The event is published only after the store unit is durable.
 */
import { FleetkeyError, type Clock, type CrlReason } from '@fleetkey/protocol';
import type { EventBus } from '../events/bus.js';
import type { DeviceRevocation, RevocationRepo } from '../storage/types.js';

export const REVOCATION_REASONS = [
  'unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation',
] as const satisfies readonly CrlReason[];
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

export function isRevocationReason(value: unknown): value is RevocationReason {
  return typeof value === 'string' && (REVOCATION_REASONS as readonly string[]).includes(value);
}

/** Who asks, from where (the owner's session). */
export interface RevocationActor {
  readonly tenantId: string;
  readonly ownerId: string;
  readonly session: string;
  readonly source: string;
}

export interface RevocationServiceDeps {
  readonly revocation: RevocationRepo;
  readonly bus: EventBus;
  readonly clock: Clock;
}

export class RevocationService {
  readonly #deps: RevocationServiceDeps;

  constructor(deps: RevocationServiceDeps) {
    this.#deps = deps;
  }

  async revokeDevice(actor: RevocationActor, deviceId: string, reason: RevocationReason = 'unspecified'): Promise<DeviceRevocation> {
    if (!isRevocationReason(reason)) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'reason' } });
    const result = await this.#deps.revocation.revokeDevice({
      tenantId: actor.tenantId, deviceId, reason, now: this.#deps.clock.now(),
      audit: {
        category: 'certificate', type: 'device.revoke', result: 'success', actor: `owner:${actor.ownerId}`,
        source: actor.source, session: actor.session, details: { deviceId, reason },
      },
    });
    if (result === undefined) throw new FleetkeyError('NOT_FOUND');
    if (!result.alreadyRevoked) {
      await this.#deps.bus.publish('device.revoked', { tenantId: actor.tenantId, deviceId, serials: result.serials });
    }
    return result;
  }
}
