/**
 * Device certificate renewal on the hub (ADR 0025): the organisation's grace policy, early-renewal
 * commands, and retiring the certificates a proven renewal superseded.
 *
 * Invariants:
 * - Grace: the organisation's own `graceDays`, else the hub default (`renewalGraceDays`); 0–365.
 * - An early-renewal request is tenant-scoped (another organisation's device is NOT_FOUND, with
 *   no audit and no event), only for active devices (FORBIDDEN), at most one per device per
 *   `minIntervalMs` (RATE_LIMITED, nothing published), audited durably BEFORE the command is
 *   published on the EventBus (`device.command`), exactly like any owner command.
 * - The rate-limit memory is per hub process and bounded (MAX_TRACKED devices; the oldest
 *   entries go first); the device limits itself as well (device/src/renewal/).
 * - Retiring runs only for a certificate the caller has proven to be current (routes.ts); the
 *   store revokes the older ones as `superseded` and the CRL is re-signed.
 */
import { randomBytes } from 'node:crypto';
import { FleetkeyError, RENEW_COMMAND, encodeRenewCommand, type Clock } from '@fleetkey/protocol';
import type { EventBus } from '../events/bus.js';
import type { Device, Store } from '../storage/types.js';

export const MAX_GRACE_DAYS = 365;
const DAY_MS = 86_400_000;
const MAX_TRACKED = 100_000;
const PAGE = 1000;

/** Who asks: an owner (`owner:<id>`, with a session) or the hub itself (`hub`, e.g. after a device-CA rotation). */
export interface RenewalActor {
  readonly tenantId: string;
  readonly actor: string;
  readonly session: string | null;
  readonly source: string;
}

export interface RenewalServiceDeps {
  readonly store: Store;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly defaultGraceDays: number;
  readonly minIntervalMs: number;
  /** Called after certificates were retired (the CRL must be re-signed). */
  readonly onRetired?: (serials: readonly string[]) => void;
}

export interface GracePolicyView {
  readonly graceDays: number;
  readonly source: 'organisation' | 'default';
  readonly updatedAt: string | null;
}

export interface RenewRequested {
  readonly deviceId: string;
  readonly commandId: string;
  readonly topic: string;
  readonly requestedAt: string;
}

export class RenewalService {
  readonly #d: RenewalServiceDeps;
  readonly #lastSent = new Map<string, number>();

  constructor(deps: RenewalServiceDeps) {
    this.#d = deps;
  }

  async policy(tenantId: string): Promise<GracePolicyView> {
    const own = await this.#d.store.renewal.policy(tenantId);
    if (own === undefined) return { graceDays: this.#d.defaultGraceDays, source: 'default', updatedAt: null };
    return { graceDays: own.graceDays, source: 'organisation', updatedAt: new Date(own.updatedAt).toISOString() };
  }

  /** The grace of this tenant in ms (ReenrollMethod reads it per request). */
  async graceMs(tenantId: string): Promise<number> {
    return (await this.policy(tenantId)).graceDays * DAY_MS;
  }

  async setGraceDays(actor: RenewalActor, graceDays: number): Promise<GracePolicyView> {
    if (!Number.isInteger(graceDays) || graceDays < 0 || graceDays > MAX_GRACE_DAYS) {
      throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'graceDays', min: 0, max: MAX_GRACE_DAYS } });
    }
    const now = this.#d.clock.now();
    await this.#d.store.renewal.setPolicy({ tenantId: actor.tenantId, graceDays, updatedAt: now }, {
      category: 'owner', type: 'renewal.policy.set', result: 'success', actor: actor.actor, source: actor.source,
      tenantId: actor.tenantId, session: actor.session, details: { graceDays },
    });
    return this.policy(actor.tenantId);
  }

  /** Asks one device of the actor's organisation to renew now. */
  async requestRenewal(actor: RenewalActor, deviceId: string, reason: string): Promise<RenewRequested> {
    const device = await this.#d.store.devices.get(actor.tenantId, deviceId);
    if (device === undefined) throw new FleetkeyError('NOT_FOUND');
    if (device.status !== 'active') throw new FleetkeyError('FORBIDDEN', { details: { reason: 'device not active' } });
    if (this.#limited(device.id)) throw new FleetkeyError('RATE_LIMITED', { details: { retryAfterSeconds: Math.ceil(this.#d.minIntervalMs / 1000) } });
    return this.#send(actor, device, reason, 'device.renew');
  }

  /** Asks every active device of the organisation to renew (e.g. after a device-CA rotation). */
  async requestRenewalAll(actor: RenewalActor, reason: string): Promise<{ requested: number; rateLimited: number }> {
    let requested = 0;
    let rateLimited = 0;
    for (let after = ''; ;) {
      const page = await this.#d.store.devices.list(actor.tenantId, { limit: PAGE, after });
      for (const device of page) {
        if (device.status !== 'active') continue;
        if (this.#limited(device.id)) rateLimited += 1;
        else {
          await this.#send(actor, device, reason, 'device.renew.bulk');
          requested += 1;
        }
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.id;
    }
    return { requested, rateLimited };
  }

  /** Retires the certificates of this device older than the proven `serial` (reason superseded). */
  async retirePrevious(identity: { tenantId: string; deviceId: string; serial: string }, source: string): Promise<string[]> {
    const retired = await this.#d.store.renewal.retirePrevious({
      tenantId: identity.tenantId, deviceId: identity.deviceId, keepSerial: identity.serial, now: this.#d.clock.now(),
      audit: { category: 'certificate', type: 'certificate.retire', result: 'success', actor: `device:${identity.deviceId}`, source, details: { serial: identity.serial, reason: 'superseded' } },
    });
    if (retired.length > 0) this.#d.onRetired?.(retired);
    return retired;
  }

  #limited(deviceId: string): boolean {
    const last = this.#lastSent.get(deviceId);
    return last !== undefined && this.#d.clock.now() - last < this.#d.minIntervalMs;
  }

  async #send(actor: RenewalActor, device: Device, reason: string, type: string): Promise<RenewRequested> {
    const now = this.#d.clock.now();
    this.#remember(device.id, now);
    const commandId = `rnw_${randomBytes(12).toString('base64url')}`;
    const requestedAt = new Date(now).toISOString();
    await this.#d.store.audit.append({
      category: 'owner', type, result: 'success', actor: actor.actor, source: actor.source,
      tenantId: device.tenantId, session: actor.session, details: { deviceId: device.id, commandId, reason },
    });
    const payload = encodeRenewCommand({ v: 1, id: commandId, reason, requestedAt });
    await this.#d.bus.publish('device.command', { tenantId: device.tenantId, deviceId: device.id, topic: RENEW_COMMAND, payload });
    return { deviceId: device.id, commandId, topic: `devices/${device.id}/commands/${RENEW_COMMAND}`, requestedAt };
  }

  #remember(deviceId: string, now: number): void {
    this.#lastSent.delete(deviceId);
    this.#lastSent.set(deviceId, now);
    if (this.#lastSent.size > MAX_TRACKED) {
      const oldest = this.#lastSent.keys().next();
      if (oldest.done !== true) this.#lastSent.delete(oldest.value);
    }
  }
}
