/**
 * Owner login: password + TOTP → session, with lockout (IEC 62443-4-2 CR 1.11, NIST SP 800-63B
 * §5.2.2) and no user enumeration (ASVS V6.3.8).
 *
 * Invariants:
 * - The lockout is checked before any credential: while `account:<email>` or `source:<ip>` is
 *   locked, every attempt is AUTH_LOCKED, with the correct password too, and nothing is verified.
 *   Emails that do not exist are counted and locked exactly like real ones.
 * - Unknown email, wrong password, disabled owner, wrong TOTP and a reused TOTP are one public
 *   error, AUTH_FAILED (same code, same body). The reason goes only to the audit record
 *   (`details.reason`) and the log.
 * - An unknown email costs one argon2id verification against the dummy hash, the same work as a
 *   wrong password, so the answer takes as long (and writes the same rows).
 * - Every failure adds one to both counters; only a full success (password and TOTP) resets the
 *   account counter. The source counter is never reset by a success, so one valid account does
 *   not give a source more guesses against others.
 * - Attempts for one account are serialised in this process, so a parallel burst cannot get more
 *   than `maxFailures` guesses in before the lock lands. (Across hub nodes the bound is
 *   `maxFailures` + nodes − 1.)
 */
import { createHash } from 'node:crypto';
import { FleetkeyError, type Clock } from '@fleetkey/protocol';
import type { SecretSealer } from '../secrets/sealer.js';
import type { Owner, Store } from '../storage/types.js';
import type { AccountsConfig } from './config.js';
import { EMAIL_MAX_LENGTH, normalizeEmail } from './owners.js';
import type { PasswordHasher } from './password.js';
import { SessionManager, type AuthContext } from './session.js';
import { acceptTotp } from './totp.js';

/** Hashed: the throttle table must not keep what was typed (it may be a misplaced password). */
export function accountThrottleKey(typedEmail: string): string {
  const raw = typedEmail.trim().toLowerCase().slice(0, EMAIL_MAX_LENGTH + 1);
  return `account:${createHash('sha256').update(raw).digest('hex')}`;
}

export interface LoginRequest {
  readonly email: string;
  readonly password: string;
  readonly totp: string;
  /** Remote address as the HTTP layer saw it, or `cli`. */
  readonly source: string;
}

export interface LoginResult {
  /** `fks_…` bearer token: shown once, never stored. */
  readonly token: string;
  /** Absolute expiry (ms since the epoch). */
  readonly expiresAt: number;
}

/** pino-compatible. */
export interface AccountsLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface LoginDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly hasher: PasswordHasher;
  readonly sealer: SecretSealer;
  readonly config: AccountsConfig;
  readonly log?: AccountsLogger;
}

export type LoginFailureReason =
  | 'unknown_user'
  | 'wrong_password'
  | 'disabled'
  | 'totp_invalid'
  | 'totp_reused';

interface Attempt {
  readonly email: string | undefined;
  readonly accountKey: string;
  readonly sourceKey: string;
  readonly request: LoginRequest;
}

/** Runs tasks with the same key one after another; different keys run freely. */
class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => undefined);
    this.#tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

export class LoginService {
  readonly #deps: LoginDeps;
  readonly #sessions: SessionManager;
  readonly #perAccount = new KeyedQueue();

  constructor(deps: LoginDeps) {
    this.#deps = deps;
    this.#sessions = new SessionManager(deps.store, deps.clock, deps.config.session);
  }

  /** Password + TOTP login. AUTH_LOCKED while throttled, otherwise AUTH_FAILED on any failure. */
  async login(request: LoginRequest): Promise<LoginResult> {
    const raw = typeof request.email === 'string' ? request.email.trim().toLowerCase() : '';
    const attempt: Attempt = {
      email: normalizeEmail(raw),
      accountKey: accountThrottleKey(raw),
      sourceKey: `source:${String(request.source).slice(0, 64)}`,
      request,
    };
    return this.#perAccount.run(attempt.accountKey, () => this.#attempt(attempt));
  }

  authenticate(bearer: string | null | undefined): Promise<AuthContext> {
    return this.#sessions.authenticate(bearer);
  }

  logout(bearer: string | null | undefined, source: string): Promise<void> {
    return this.#sessions.logout(bearer, source);
  }

  async #attempt(attempt: Attempt): Promise<LoginResult> {
    await this.#refuseIfLocked(attempt);
    const owner = attempt.email === undefined ? undefined : await this.#deps.store.owners.getByEmail(attempt.email);
    const reason = await this.#checkCredentials(owner, attempt.request);
    if (reason !== null || owner === undefined) {
      await this.#recordFailure(attempt, owner, reason ?? 'unknown_user');
      throw new FleetkeyError('AUTH_FAILED', { cause: new Error(`login failed: ${reason ?? 'unknown_user'}`) });
    }
    await this.#deps.store.throttle.reset(attempt.accountKey);
    const issued = await this.#sessions.create(owner, attempt.request.source);
    this.#deps.log?.info({ event: 'login', ownerId: owner.id, session: issued.sessionId }, 'owner logged in');
    return { token: issued.token, expiresAt: issued.expiresAt };
  }

  /** Null when password and TOTP are right, else the precise (private) reason. */
  async #checkCredentials(owner: Owner | undefined, request: LoginRequest): Promise<LoginFailureReason | null> {
    const { hasher, store, sealer, clock } = this.#deps;
    if (owner === undefined) {
      await hasher.verifyDummy(request.password);
      return 'unknown_user';
    }
    if (!(await hasher.verifyPassword(owner.passwordHash, request.password))) return 'wrong_password';
    if (owner.disabled) return 'disabled';
    const totp = await acceptTotp(owner, request.totp, { owners: store.owners, sealer, clock });
    if (totp === 'accepted') return null;
    return totp === 'reused' ? 'totp_reused' : 'totp_invalid';
  }

  async #refuseIfLocked(attempt: Attempt): Promise<void> {
    const { store, clock } = this.#deps;
    const now = clock.now();
    const [account, source] = await Promise.all([
      store.throttle.get(attempt.accountKey, now),
      store.throttle.get(attempt.sourceKey, now),
    ]);
    if (account.lockedUntil <= now && source.lockedUntil <= now) return;
    const reason = account.lockedUntil > now ? 'account_locked' : 'source_locked';
    await store.audit.append({
      category: 'auth',
      type: 'login',
      result: 'failure',
      actor: 'anonymous',
      source: attempt.request.source,
      code: 'AUTH_LOCKED',
      details: { reason },
    });
    this.#deps.log?.warn({ event: 'login', reason, source: attempt.request.source }, 'login refused: locked');
    throw new FleetkeyError('AUTH_LOCKED', { cause: new Error(reason) });
  }

  async #recordFailure(attempt: Attempt, owner: Owner | undefined, reason: LoginFailureReason): Promise<void> {
    const { store, clock, config } = this.#deps;
    const now = clock.now();
    const [account] = await Promise.all([
      store.throttle.recordFailure(attempt.accountKey, now, config.lockout),
      store.throttle.recordFailure(attempt.sourceKey, now, config.lockout),
    ]);
    const locked = account.lockedUntil > now;
    await store.audit.append({
      category: 'auth',
      type: 'login',
      result: 'failure',
      actor: owner === undefined ? 'anonymous' : `owner:${owner.id}`,
      source: attempt.request.source,
      tenantId: owner?.tenantId ?? null,
      code: 'AUTH_FAILED',
      // Only a known account's email is recorded: what was typed for an unknown one may be a
      // password entered in the wrong field.
      details: { reason, email: owner?.email ?? null, accountLocked: locked },
    });
    this.#deps.log?.warn({ event: 'login', reason, email: owner?.email ?? null, source: attempt.request.source }, 'login failed');
  }
}
