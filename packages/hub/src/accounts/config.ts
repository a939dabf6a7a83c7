/**
 * Configuration of owner accounts: lockout, sessions and the password KDF. All limits live here,
 * with their units in the names (`…Ms` milliseconds, `…KiB` kibibytes).
 *
 * Invariants:
 * - A config is validated once (`validateAccountsConfig`), then frozen and passed explicitly.
 * - Lockout can never be configured looser than NIST SP 800-63B §5.2.2 allows: at most 100
 *   consecutive failures before the account is throttled (`LOCKOUT_HARD_CAP`).
 * - argon2id parameters never go below the weakest OWASP Password Storage Cheat Sheet profile
 *   (m = 7 MiB, t = 5; in general m·t ≥ 35,840 KiB-passes with m ≥ 7,168 KiB).
 * - A session's idle timeout is never longer than its absolute lifetime.
 */
import { availableParallelism } from 'node:os';
import { FleetkeyError } from '@fleetkey/protocol';
import type { ThrottlePolicy } from '../storage/types.js';

export interface Argon2Config {
  /** Memory per hash in KiB (argon2 `m`). Default 19,456 KiB = 19 MiB (OWASP). */
  readonly memoryKiB: number;
  /** Passes over memory (argon2 `t`). Default 2. */
  readonly timeCost: number;
  /** Lanes (argon2 `p`). Default 1. */
  readonly parallelism: number;
  /** Hashes computed at once in this process; the rest wait. Default 2 × CPU cores. */
  readonly maxConcurrent: number;
}

export interface SessionConfig {
  /** Absolute lifetime from login, whatever the activity. Default 12 h. */
  readonly absoluteMs: number;
  /** Idle timeout, slid forward on use (at most once a minute). Default 30 min. */
  readonly idleMs: number;
}

export interface AccountsConfig {
  /** Per account and per source address: N failures within `windowMs` lock for `lockMs`. */
  readonly lockout: ThrottlePolicy;
  readonly session: SessionConfig;
  readonly argon2: Argon2Config;
}

/** What an operator may write: any subset; the rest comes from the defaults. */
export interface AccountsConfigInput {
  readonly lockout?: Partial<ThrottlePolicy>;
  readonly session?: Partial<SessionConfig>;
  readonly argon2?: Partial<Argon2Config>;
}

export const LOCKOUT_HARD_CAP = 100; // NIST SP 800-63B §5.2.2
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export function defaultAccountsConfig(cores: number = availableParallelism()): AccountsConfig {
  return freeze({
    lockout: { maxFailures: 5, windowMs: 15 * MINUTE, lockMs: 15 * MINUTE },
    session: { absoluteMs: 12 * HOUR, idleMs: 30 * MINUTE },
    argon2: { memoryKiB: 19_456, timeCost: 2, parallelism: 1, maxConcurrent: Math.max(2, 2 * cores) },
  });
}

type Limits = Readonly<Record<string, readonly [min: number, max: number]>>;

const LOCKOUT_LIMITS: Limits = {
  maxFailures: [1, LOCKOUT_HARD_CAP],
  windowMs: [1_000, DAY],
  lockMs: [1_000, 30 * DAY],
};
const SESSION_LIMITS: Limits = {
  absoluteMs: [MINUTE, 30 * DAY],
  idleMs: [MINUTE, 30 * DAY],
};
const ARGON2_LIMITS: Limits = {
  memoryKiB: [7_168, 1_048_576],
  timeCost: [1, 20],
  parallelism: [1, 16],
  maxConcurrent: [1, 256],
};

/**
 * Merges `input` over the defaults, checks every limit and returns a frozen config.
 * Throws CONFIG_INVALID with `details.field` naming the first bad field.
 */
export function validateAccountsConfig(
  input: AccountsConfigInput = {},
  cores: number = availableParallelism(),
): AccountsConfig {
  const d = defaultAccountsConfig(cores);
  const config: AccountsConfig = {
    lockout: checkSection('lockout', { ...d.lockout, ...input.lockout }, LOCKOUT_LIMITS),
    session: checkSection('session', { ...d.session, ...input.session }, SESSION_LIMITS),
    argon2: checkSection('argon2', { ...d.argon2, ...input.argon2 }, ARGON2_LIMITS),
  };
  if (config.session.idleMs > config.session.absoluteMs) {
    invalid('session.idleMs', 'must not exceed session.absoluteMs');
  }
  if (config.argon2.memoryKiB * config.argon2.timeCost < 35_840) {
    invalid('argon2.timeCost', 'memoryKiB × timeCost must be at least 35840 (OWASP)');
  }
  return freeze(config);
}

function checkSection<T extends object>(section: string, value: T, limits: Limits): T {
  for (const [name, [min, max]] of Object.entries(limits)) {
    const v: unknown = (value as Record<string, unknown>)[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      invalid(`${section}.${name}`, `must be an integer from ${min} to ${max}`);
    }
  }
  for (const name of Object.keys(value)) {
    if (!(name in limits)) invalid(`${section}.${name}`, 'unknown setting');
  }
  return value;
}

function invalid(field: string, why: string): never {
  throw new FleetkeyError('CONFIG_INVALID', { details: { field }, cause: new Error(`${field} ${why}`) });
}

function freeze(config: AccountsConfig): AccountsConfig {
  return Object.freeze({
    lockout: Object.freeze({ ...config.lockout }),
    session: Object.freeze({ ...config.session }),
    argon2: Object.freeze({ ...config.argon2 }),
  });
}
