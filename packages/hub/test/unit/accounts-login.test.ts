import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetkeyError } from '@fleetkey/protocol';
import { auditOf, codeFor, makeAccounts, makeOwner, median, rejectsWith, type AccountsFixture, type TestOwner } from './accounts-fixture.js';
import { accountThrottleKey } from '../../src/accounts/login.js';

const MIN = 60_000;

function correct(fx: AccountsFixture, owner: TestOwner, source: string) {
  return () => fx.login.login({ email: owner.email, password: owner.password, totp: codeFor(fx, owner), source });
}
function wrongPassword(fx: AccountsFixture, email: string, source: string) {
  return () => fx.login.login({ email, password: 'not the password', totp: '000000', source });
}

test('lockout: after 5 failures the correct password is refused (AUTH_LOCKED), and works once the lock expires', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  for (let i = 0; i < 5; i++) await rejectsWith(wrongPassword(fx, alice.email, `10.0.1.${i}`), 'AUTH_FAILED');
  const lastStepBefore = (await fx.store.owners.get(alice.ownerId))?.totpLastStep;

  await rejectsWith(correct(fx, alice, '10.0.2.1'), 'AUTH_LOCKED'); // fresh source: the account lock alone
  assert.equal((await auditOf(fx.store, 'login', 'success')).length, 0, 'a session was created while locked');
  assert.equal((await fx.store.owners.get(alice.ownerId))?.totpLastStep, lastStepBefore, 'TOTP consumed while locked');
  const locked = (await auditOf(fx.store, 'login', 'failure')).at(-1);
  assert.equal(locked?.code, 'AUTH_LOCKED');
  assert.equal(locked?.details?.['reason'], 'account_locked');

  fx.clock.advance(15 * MIN - 1);
  await rejectsWith(correct(fx, alice, '10.0.2.2'), 'AUTH_LOCKED');
  fx.clock.advance(1);
  const { token } = await correct(fx, alice, '10.0.2.3')();
  assert.equal((await fx.login.authenticate(token)).ownerId, alice.ownerId);
  assert.equal((await fx.store.throttle.get(accountThrottleKey(alice.email), fx.clock.now())).failures, 0, 'success did not reset');
  assert.ok(!accountThrottleKey(alice.email).includes(alice.email), 'throttle keys keep no typed email');
  await fx.store.close();
});

test('lockout: wrong TOTP codes count too (5 wrong codes with the right password → locked)', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const wrongCode = (i: number) => () =>
    fx.login.login({ email: alice.email, password: alice.password, totp: String(100000 + i), source: `10.0.3.${i}` });
  for (let i = 0; i < 5; i++) await rejectsWith(wrongCode(i), 'AUTH_FAILED');
  await rejectsWith(correct(fx, alice, '10.0.3.9'), 'AUTH_LOCKED');
  assert.equal((await auditOf(fx.store, 'login', 'success')).length, 0);
  await fx.store.close();
});

test('lockout does not enumerate: an email that does not exist locks exactly like a real one', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const errors: FleetkeyError[] = [];
  for (const email of [alice.email, 'nobody@example.com']) {
    for (let i = 0; i < 5; i++) await rejectsWith(wrongPassword(fx, email, `10.0.4.${i}`), 'AUTH_FAILED');
    errors.push(await rejectsWith(wrongPassword(fx, email, '10.0.4.99'), 'AUTH_LOCKED'));
    fx.clock.advance(16 * MIN); // let source 10.0.4.99 etc. cool down between the two emails
  }
  assert.deepEqual(errors[0]!.toJSON(), errors[1]!.toJSON());
  assert.equal(errors[0]!.status, errors[1]!.status);
  await fx.store.close();
});

test('per-source lockout: 5 failures from one address across different emails lock that address only', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  for (let i = 0; i < 5; i++) await rejectsWith(wrongPassword(fx, `user${i}@example.com`, '203.0.113.7'), 'AUTH_FAILED');

  await rejectsWith(correct(fx, alice, '203.0.113.7'), 'AUTH_LOCKED');
  assert.equal((await auditOf(fx.store, 'login', 'success')).length, 0);
  assert.equal((await auditOf(fx.store, 'login', 'failure')).at(-1)?.details?.['reason'], 'source_locked');
  const { token } = await correct(fx, alice, '198.51.100.1')(); // alice from elsewhere is fine
  assert.ok(token.startsWith('fks_'));
  await fx.store.close();
});

test('parallel burst: 20 concurrent guesses get only 5 tries before the lock, a correct one queued behind is locked', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const guesses = Array.from({ length: 20 }, (_, i) => wrongPassword(fx, alice.email, `10.0.5.${i}`)());
  const last = correct(fx, alice, '10.0.5.200')();
  const settled = await Promise.allSettled([...guesses, last]);
  const codes = settled.map((s) => (s.status === 'rejected' && s.reason instanceof FleetkeyError ? s.reason.code : 'OK'));
  assert.equal(codes.filter((c) => c === 'AUTH_FAILED').length, 5);
  assert.equal(codes.filter((c) => c === 'AUTH_LOCKED').length, 16);
  assert.equal((await auditOf(fx.store, 'login', 'success')).length, 0);
  await fx.store.close();
});

test('user enumeration: unknown email and wrong password give the same error, and the same time (|median Δt| < 5 ms)', async (t) => {
  const fx = await makeAccounts({ config: { lockout: { maxFailures: 100 } } });
  // 200 trials per series (checklist row 11); four real accounts so none reaches the lockout cap.
  const owners = [];
  for (const name of ['a', 'b', 'c', 'd']) owners.push(await makeOwner(fx, `${name}-timing@example.com`));
  const trials = 200;
  const unknown: number[] = [];
  const wrong: number[] = [];
  const bodies = new Set<string>();
  const statuses = new Set<number>();
  const timeOne = async (email: string, source: string): Promise<number> => {
    const started = performance.now();
    const err = await rejectsWith(wrongPassword(fx, email, source), 'AUTH_FAILED');
    const elapsed = performance.now() - started;
    bodies.add(JSON.stringify(err.toJSON()));
    statuses.add(err.status);
    return elapsed;
  };
  for (let i = 0; i < 5; i++) await timeOne('warmup@example.com', `10.9.0.${i}`);
  for (let i = 0; i < trials; i++) {
    // Alternate the order so drift (GC, JIT, disk) hits both series alike.
    const pair = i % 2 === 0 ? ['u', 'w'] : ['w', 'u'];
    for (const kind of pair) {
      if (kind === 'u') unknown.push(await timeOne(`nobody${i}@example.com`, `10.1.${i}.1`));
      else wrong.push(await timeOne(owners[i % owners.length]!.email, `10.2.${i}.1`));
    }
  }
  const delta = median(unknown) - median(wrong);
  t.diagnostic(`median unknown ${median(unknown).toFixed(2)} ms, wrong password ${median(wrong).toFixed(2)} ms, Δ ${delta.toFixed(2)} ms`);
  assert.equal(bodies.size, 1, `bodies differ: ${[...bodies].join(' | ')}`);
  assert.deepEqual([...statuses], [401]);
  assert.ok(Math.abs(delta) < 5, `|median Δt| = ${Math.abs(delta).toFixed(2)} ms`);
  await fx.store.close();
});

test('a password typed into the email field of an unknown account is kept nowhere: not in the audit log, not in throttle keys', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const typed = 'Hunter2-is-my-pass@word.example';
  await rejectsWith(wrongPassword(fx, typed, '10.0.7.1'), 'AUTH_FAILED');
  await rejectsWith(wrongPassword(fx, alice.email, '10.0.7.2'), 'AUTH_FAILED');
  const failures = await auditOf(fx.store, 'login', 'failure');
  const dump = JSON.stringify(failures);
  assert.ok(!dump.toLowerCase().includes(typed.toLowerCase()), 'typed text reached the audit log');
  assert.equal(failures.at(-1)?.details?.['email'], alice.email, 'a known account is still named');
  assert.equal((await fx.store.throttle.get(accountThrottleKey(typed), fx.clock.now())).failures, 1, 'the failure was still counted');
  await fx.store.close();
});

test('one public error for every credential failure; the reason is only in the audit log', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const cases: Array<[reason: string, attempt: () => Promise<unknown>]> = [
    ['unknown_user', wrongPassword(fx, 'nobody@example.com', '10.0.6.1')],
    ['unknown_user', () => fx.login.login({ email: 'not an email', password: 'x', totp: '1', source: '10.0.6.2' })],
    ['wrong_password', wrongPassword(fx, alice.email, '10.0.6.3')],
    ['totp_invalid', () => fx.login.login({ email: alice.email, password: alice.password, totp: '12345', source: '10.0.6.4' })],
  ];
  const bodies = new Set<string>();
  for (const [reason, attempt] of cases) {
    const err = await rejectsWith(attempt, 'AUTH_FAILED');
    bodies.add(JSON.stringify(err.toJSON()));
    const record = (await auditOf(fx.store, 'login', 'failure')).at(-1);
    assert.equal(record?.details?.['reason'], reason);
    assert.equal(record?.code, 'AUTH_FAILED');
  }
  assert.deepEqual([...bodies], [JSON.stringify({ code: 'AUTH_FAILED', message: 'Authentication failed.' })]);
  await fx.store.close();
});

test('session absolute lifetime: 12 h after login the token is refused even when used all along', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const { token, expiresAt } = await correct(fx, alice, '10.0.7.1')();
  assert.equal(expiresAt, fx.clock.now() + 12 * 60 * MIN);
  while (fx.clock.now() + 20 * MIN < expiresAt) {
    fx.clock.advance(20 * MIN);
    await fx.login.authenticate(token);
  }
  fx.clock.set(expiresAt - 1);
  await fx.login.authenticate(`Bearer ${token}`);
  fx.clock.set(expiresAt);
  await rejectsWith(() => fx.login.authenticate(token), 'AUTH_REQUIRED');
  await fx.store.close();
});

test('session idle timeout: 30 min without use ends it; use slides it, written at most once a minute', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const { token } = await correct(fx, alice, '10.0.8.1')();
  const hash = (await import('../../src/accounts/index.js')).hashSessionToken(token);
  const idleAt = async (): Promise<number | undefined> => (await fx.store.sessions.get(hash))?.idleExpiresAt;
  const loginAt = fx.clock.now();

  fx.clock.advance(30_000);
  await fx.login.authenticate(token);
  assert.equal(await idleAt(), loginAt + 30 * MIN, 'touched within the first minute');
  fx.clock.advance(31_000);
  await fx.login.authenticate(token);
  assert.equal(await idleAt(), fx.clock.now() + 30 * MIN, 'not slid after a minute');

  fx.clock.advance(30 * MIN);
  await rejectsWith(() => fx.login.authenticate(token), 'AUTH_REQUIRED');
  const second = await correct(fx, alice, '10.0.8.2')();
  fx.clock.advance(29 * MIN);
  await fx.login.authenticate(second.token);
  fx.clock.advance(29 * MIN);
  await fx.login.authenticate(second.token);
  await fx.store.close();
});

test('logout: the token is refused afterwards and the logout is audited', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const { token } = await correct(fx, alice, '10.0.9.1')();
  const ctx = await fx.login.authenticate(token);
  assert.equal(ctx.tenantId, alice.tenantId);
  assert.match(ctx.sessionId, /^[0-9a-f]{16}$/);
  await fx.login.logout(token, '10.0.9.1');
  await rejectsWith(() => fx.login.authenticate(token), 'AUTH_REQUIRED');
  await rejectsWith(() => fx.login.logout(token, '10.0.9.1'), 'AUTH_REQUIRED');
  const [record] = await auditOf(fx.store, 'logout');
  assert.equal(record?.session, ctx.sessionId);
  assert.equal(record?.actor, `owner:${alice.ownerId}`);
  await fx.store.close();
});

test('forged or malformed bearer tokens are AUTH_REQUIRED', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const { token } = await correct(fx, alice, '10.0.10.1')();
  const forged = `fks_${'A'.repeat(43)}`;
  for (const bearer of [undefined, null, '', 'Bearer', 'Basic abc', forged, `${token}x`, token.slice(0, -1), token.slice(4)]) {
    await rejectsWith(() => fx.login.authenticate(bearer), 'AUTH_REQUIRED');
  }
  await fx.store.close();
});

test('each login issues a new random token (no fixation)', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const a = await correct(fx, alice, '10.0.11.1')();
  fx.clock.advance(30_000);
  const b = await correct(fx, alice, '10.0.11.1')();
  assert.notEqual(a.token, b.token);
  assert.match(a.token, /^fks_[A-Za-z0-9_-]{43}$/);
  await fx.store.close();
});
