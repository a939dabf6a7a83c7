/**
 * Owner sessions: opaque bearer tokens with an absolute lifetime and a sliding idle timeout.
 *
 * Invariants:
 * - A token is `fks_` + 32 CSPRNG bytes in base64url (256 bits, ASVS V7.2.3); a new one is made
 *   at every login, so a session id is never carried over from before authentication.
 * - Only SHA-256(token) (hex) is stored; the token exists in clear only in the login response.
 * - A session is valid while `now < expiresAt` (absolute, never extended) and
 *   `now < idleExpiresAt`, and while its owner exists and is not disabled. Anything else, and a
 *   malformed or unknown token, is the one public error AUTH_REQUIRED.
 * - The idle expiry slides forward on use, written at most once per `SESSION_TOUCH_INTERVAL_MS`
 *   per session (so the effective idle timeout is between idleMs − 1 min and idleMs), and never
 *   beyond the absolute expiry.
 * - `sessionId` is the first 16 hex digits of the token hash: enough to correlate logs and audit
 *   records, useless to authenticate with.
 */
import { createHash, randomBytes } from 'node:crypto';
import { FleetkeyError, type Clock } from '@fleetkey/protocol';
import type { Owner, Session, Store } from '../storage/types.js';
import type { SessionConfig } from './config.js';

export const SESSION_TOKEN_PREFIX = 'fks_';
export const SESSION_TOKEN_BYTES = 32;
export const SESSION_TOUCH_INTERVAL_MS = 60_000;
const TOKEN_SHAPE = /^fks_[A-Za-z0-9_-]{43}$/;

export interface AuthContext {
  readonly ownerId: string;
  readonly tenantId: string;
  readonly sessionId: string;
}

export interface IssuedSession {
  readonly token: string;
  readonly expiresAt: number;
  readonly sessionId: string;
}

export function hashSessionToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function sessionIdOf(tokenHash: string): string {
  return tokenHash.slice(0, 16);
}

/** Accepts `Bearer fks_…` (an Authorization header value) or the bare token. */
export function parseBearer(value: string | null | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const token = /^bearer /i.test(value) ? value.slice(7).trim() : value.trim();
  return TOKEN_SHAPE.test(token) ? token : undefined;
}

function authRequired(reason: string): FleetkeyError {
  return new FleetkeyError('AUTH_REQUIRED', { cause: new Error(reason) });
}

export class SessionManager {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #config: SessionConfig;

  constructor(store: Store, clock: Clock, config: SessionConfig) {
    this.#store = store;
    this.#clock = clock;
    this.#config = config;
  }

  /** Creates a session for `owner`; the `auth`/`login` success record is written with it. */
  async create(owner: Owner, source: string): Promise<IssuedSession> {
    const token = SESSION_TOKEN_PREFIX + randomBytes(SESSION_TOKEN_BYTES).toString('base64url');
    const tokenHash = hashSessionToken(token);
    const now = this.#clock.now();
    const expiresAt = now + this.#config.absoluteMs;
    const session: Session = {
      tokenHash,
      ownerId: owner.id,
      tenantId: owner.tenantId,
      createdAt: now,
      expiresAt,
      idleExpiresAt: Math.min(now + this.#config.idleMs, expiresAt),
    };
    const sessionId = sessionIdOf(tokenHash);
    await this.#store.sessions.create(session, {
      category: 'auth',
      type: 'login',
      result: 'success',
      actor: `owner:${owner.id}`,
      source,
      tenantId: owner.tenantId,
      session: sessionId,
    });
    return { token, expiresAt, sessionId };
  }

  /** Resolves a bearer token to its owner; AUTH_REQUIRED when missing, unknown or expired. */
  async authenticate(bearer: string | null | undefined): Promise<AuthContext> {
    const session = await this.#live(bearer);
    const owner = await this.#store.owners.get(session.ownerId);
    if (owner === undefined || owner.disabled) throw authRequired('owner missing or disabled');
    await this.#slide(session);
    return { ownerId: session.ownerId, tenantId: session.tenantId, sessionId: sessionIdOf(session.tokenHash) };
  }

  /** Ends the session of `bearer`, with an `auth`/`logout` audit record. */
  async logout(bearer: string | null | undefined, source: string): Promise<void> {
    const session = await this.#live(bearer);
    await this.#store.sessions.delete(session.tokenHash, {
      category: 'auth',
      type: 'logout',
      result: 'success',
      actor: `owner:${session.ownerId}`,
      source,
      tenantId: session.tenantId,
      session: sessionIdOf(session.tokenHash),
    });
  }

  async #live(bearer: string | null | undefined): Promise<Session> {
    const token = parseBearer(bearer);
    if (token === undefined) throw authRequired('no or malformed bearer token');
    const session = await this.#store.sessions.get(hashSessionToken(token));
    if (session === undefined) throw authRequired('unknown session');
    const now = this.#clock.now();
    if (now >= session.expiresAt) throw authRequired('session past its absolute lifetime');
    if (now >= session.idleExpiresAt) throw authRequired('session idle too long');
    return session;
  }

  async #slide(session: Session): Promise<void> {
    const next = Math.min(this.#clock.now() + this.#config.idleMs, session.expiresAt);
    if (next - session.idleExpiresAt >= SESSION_TOUCH_INTERVAL_MS) {
      await this.#store.sessions.touch(session.tokenHash, next);
    }
  }
}
