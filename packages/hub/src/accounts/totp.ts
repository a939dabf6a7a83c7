/**
 * TOTP second factor (RFC 6238): HMAC-SHA-1, 6 digits, 30-second steps.
 *
 * Invariants:
 * - Time comes from the injected Clock only (RFC 6238 §6: the verifier's trusted time), never
 *   from `Date.now`.
 * - A code is accepted for the current step or one step either side, never two (RFC 6238 §5.2
 *   and §6 allow "at most one time step" of network delay; ASVS V6.5.5).
 * - A code is accepted once (RFC 6238 §5.2): the matched step must be newer than the owner's last
 *   accepted step, decided by one conditional statement in the store (`advanceTotpStep`), so two
 *   concurrent logins with the same code cannot both win, and an older adjacent code is refused
 *   once a newer one was used.
 * - The seed is 20 random bytes (RFC 4226 §4 R6: ≥ 128 bits, 160 recommended), stored only
 *   sealed with aad `totp:<ownerId>`, so one owner's sealed seed cannot be moved to another.
 */
import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import type { Clock } from '@fleetkey/protocol';
import type { SecretSealer } from '../secrets/sealer.js';
import type { Owner, OwnerRepo } from '../storage/types.js';

export const TOTP_ALGORITHM = 'SHA1';
export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_S = 30;
/** Steps accepted either side of the current one. */
export const TOTP_WINDOW = 1;
export const TOTP_SECRET_BYTES = 20;

/** A fresh 160-bit seed (RFC 4226 §4 R6). */
export function generateTotpSecret(): Buffer {
  return randomBytes(TOTP_SECRET_BYTES);
}

function totpFor(secret: Buffer, digits: number, issuer = '', label = 'fleetkey'): TOTP {
  return new TOTP({
    issuer,
    label,
    secret: Secret.fromHex(secret.toString('hex')),
    algorithm: TOTP_ALGORITHM,
    digits,
    period: TOTP_PERIOD_S,
  });
}

/** The `otpauth://totp/…` URI an authenticator app scans (also drawn as a QR code). */
export function otpauthUri(opts: { issuer: string; label: string; secret: Buffer }): string {
  return totpFor(opts.secret, TOTP_DIGITS, opts.issuer, opts.label).toString();
}

/** RFC 6238 §4.2: T = floor((now − T0) / X), T0 = 0, X = 30 s. */
export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_S);
}

/** The code for `nowMs` (for tests and enrollment checks); `digits` only for the RFC vectors. */
export function generateTotpCode(secret: Buffer, nowMs: number, digits = TOTP_DIGITS): string {
  return totpFor(secret, digits).generate({ timestamp: nowMs });
}

/** The time step that `code` belongs to, within ±TOTP_WINDOW of `nowMs`, or null. Pure. */
export function matchTotpStep(secret: Buffer, code: string, nowMs: number): number | null {
  if (typeof code !== 'string' || !/^[0-9]{6}$/.test(code)) return null;
  const delta = totpFor(secret, TOTP_DIGITS).validate({ token: code, timestamp: nowMs, window: TOTP_WINDOW });
  // otpauth returns the step delta (0 = current) or null: 0 is a match, so compare with null.
  return delta !== null ? totpStep(nowMs) + delta : null;
}

export function totpAad(ownerId: string): string {
  return `totp:${ownerId}`;
}

/** Seals a seed for `Owner.totpSealed` (base64). */
export function sealTotpSecret(sealer: SecretSealer, ownerId: string, secret: Buffer): string {
  return sealer.seal(secret, totpAad(ownerId)).toString('base64');
}

/** Opens `owner.totpSealed`; SECRET_UNREADABLE when the key is wrong or the data was moved. */
export function openTotpSecret(sealer: SecretSealer, owner: Pick<Owner, 'id' | 'totpSealed'>): Buffer {
  return sealer.open(Buffer.from(owner.totpSealed, 'base64'), totpAad(owner.id));
}

export type TotpOutcome = 'accepted' | 'invalid' | 'reused';

export interface TotpDeps {
  readonly owners: Pick<OwnerRepo, 'advanceTotpStep'>;
  readonly sealer: SecretSealer;
  readonly clock: Clock;
}

/** Checks `code` for `owner` and, if it matches a step newer than the last one, consumes it. */
export async function acceptTotp(owner: Owner, code: string, deps: TotpDeps): Promise<TotpOutcome> {
  const secret = openTotpSecret(deps.sealer, owner);
  try {
    const step = matchTotpStep(secret, code, deps.clock.now());
    if (step === null) return 'invalid';
    return (await deps.owners.advanceTotpStep(owner.id, step)) ? 'accepted' : 'reused';
  } finally {
    secret.fill(0);
  }
}
