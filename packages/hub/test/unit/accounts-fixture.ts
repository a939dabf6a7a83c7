/**
 * Shared set-up for the accounts tests: a real SQLite store (in memory, or a file when a test
 * needs to read or edit the database directly), a ManualClock, the real sealer and hasher.
 */
import assert from 'node:assert/strict';
import { URI } from 'otpauth';
import { FleetkeyError, ManualClock, type ErrorCode } from '@fleetkey/protocol';
import {
  CommonPasswordBlocklist,
  LoginService,
  PasswordHasher,
  createOrganisationWithOwner,
  generateTotpCode,
  validateAccountsConfig,
  type AccountsConfig,
  type AccountsConfigInput,
  type AccountsDeps,
} from '../../src/accounts/index.js';
import { AesGcmSealer } from '../../src/secrets/sealer.js';
import { openSqliteStore } from '../../src/storage/sqlite/index.js';
import type { AuditRecord, Store } from '../../src/storage/types.js';

export interface AccountsFixture {
  readonly clock: ManualClock;
  readonly store: Store;
  readonly config: AccountsConfig;
  readonly deps: AccountsDeps;
  readonly login: LoginService;
}

export interface TestOwner {
  readonly ownerId: string;
  readonly tenantId: string;
  readonly email: string;
  readonly password: string;
  readonly secret: Buffer;
  readonly otpauthUri: string;
}

/** 12:00:15 UTC: mid-step, so ±1 step codes are unambiguous. */
export const T0 = Date.UTC(2026, 0, 1, 12, 0, 15);
export const DEFAULT_PASSWORD = 'correct horse battery staple';

// One hasher for all tests of a file: its dummy hash costs one argon2id run.
let sharedHasher: Promise<PasswordHasher> | undefined;

export async function makeAccounts(opts: { path?: string; config?: AccountsConfigInput } = {}): Promise<AccountsFixture> {
  const clock = new ManualClock(T0);
  const store = await openSqliteStore({ path: opts.path ?? ':memory:', clock });
  const config = validateAccountsConfig(opts.config);
  const hasher = opts.config?.argon2 === undefined
    ? await (sharedHasher ??= PasswordHasher.create(config.argon2))
    : await PasswordHasher.create(config.argon2);
  const sealer = new AesGcmSealer(AesGcmSealer.generateKey());
  const deps: AccountsDeps = { store, clock, hasher, sealer, blocklist: new CommonPasswordBlocklist() };
  return { clock, store, config, deps, login: new LoginService({ store, clock, hasher, sealer, config }) };
}

export async function makeOwner(fx: AccountsFixture, email = 'alice@example.com', password = DEFAULT_PASSWORD): Promise<TestOwner> {
  const orgName = `Org of ${email}`;
  const created = await createOrganisationWithOwner({ orgName, email, password }, fx.deps);
  const secret = Buffer.from(URI.parse(created.otpauthUri).secret.bytes);
  return { ...created, email: email.toLowerCase(), password, secret };
}

/** The current TOTP code of `owner`, `steps` steps away from the clock's now. */
export function codeFor(fx: AccountsFixture, owner: TestOwner, steps = 0): string {
  return generateTotpCode(owner.secret, fx.clock.now() + steps * 30_000);
}

/** Runs `fn`, expects a FleetkeyError with `code`, and returns it. */
export async function rejectsWith(fn: () => Promise<unknown>, code: ErrorCode): Promise<FleetkeyError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof FleetkeyError, `expected FleetkeyError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code} (${String(err.cause)})`);
    return err;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}

export async function auditOf(store: Store, type: string, result?: 'success' | 'failure'): Promise<AuditRecord[]> {
  const all = await store.audit.list({ limit: 100_000 });
  return all.filter((r) => r.category === 'auth' && r.type === type && (result === undefined || r.result === result));
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
