import { test } from 'node:test';
import assert from 'node:assert/strict';
import { URI, TOTP } from 'otpauth';
import {
  acceptTotp,
  generateTotpCode,
  generateTotpSecret,
  matchTotpStep,
  openTotpSecret,
  otpauthUri,
  totpStep,
} from '../../src/accounts/index.js';
import { AesGcmSealer } from '../../src/secrets/sealer.js';
import { T0, auditOf, codeFor, makeAccounts, makeOwner, rejectsWith } from './accounts-fixture.js';

// RFC 6238 Appendix B, SHA-1 column: seed "12345678901234567890" (ASCII), 8 digits.
const RFC6238_SHA1: ReadonlyArray<[seconds: number, code: string]> = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];
const RFC_SEED = Buffer.from('12345678901234567890', 'ascii');

test('RFC 6238 Appendix B SHA-1 vectors through our TOTP parameters', () => {
  for (const [seconds, code] of RFC6238_SHA1) {
    assert.equal(generateTotpCode(RFC_SEED, seconds * 1000, 8), code, `T = ${seconds}`);
    // RFC 4226 §5.3: the 6-digit code is the same truncation mod 10^6.
    assert.equal(generateTotpCode(RFC_SEED, seconds * 1000), code.slice(2), `T = ${seconds}, 6 digits`);
    assert.notEqual(matchTotpStep(RFC_SEED, code.slice(2), seconds * 1000), null);
  }
});

test('TOTP window: current step and ±1 accepted, ±2 rejected (pure)', () => {
  const secret = generateTotpSecret();
  const step = totpStep(T0);
  const at = (delta: number): string => generateTotpCode(secret, T0 + delta * 30_000);
  assert.equal(matchTotpStep(secret, at(0), T0), step);
  assert.equal(matchTotpStep(secret, at(-1), T0), step - 1);
  assert.equal(matchTotpStep(secret, at(1), T0), step + 1);
  assert.equal(matchTotpStep(secret, at(-2), T0), null);
  assert.equal(matchTotpStep(secret, at(2), T0), null);
  for (const junk of ['', '12345', '1234567', '12345a', ' 123456', '１２３４５６']) {
    assert.equal(matchTotpStep(secret, junk, T0), null, JSON.stringify(junk));
  }
});

test('otpauth URI carries issuer fleetkey, the email label, SHA1/6/30 and a 160-bit seed', () => {
  const secret = generateTotpSecret();
  assert.equal(secret.length, 20);
  const uri = otpauthUri({ issuer: 'fleetkey', label: 'alice@example.com', secret });
  const parsed = URI.parse(uri);
  assert.ok(parsed instanceof TOTP);
  assert.equal(parsed.issuer, 'fleetkey');
  assert.equal(parsed.label, 'alice@example.com');
  assert.equal(parsed.algorithm, 'SHA1');
  assert.equal(parsed.digits, 6);
  assert.equal(parsed.period, 30);
  assert.deepEqual(Buffer.from(parsed.secret.bytes), secret);
});

test('TOTP code reuse: the same code is refused the second time and no second session is made', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const code = codeFor(fx, alice);
  const first = await fx.login.login({ email: alice.email, password: alice.password, totp: code, source: '10.0.0.1' });
  await fx.login.logout(first.token, '10.0.0.1');
  const stepAfterFirst = (await fx.store.owners.get(alice.ownerId))?.totpLastStep;

  fx.clock.advance(5_000); // same 30 s step
  await rejectsWith(() => fx.login.login({ email: alice.email, password: alice.password, totp: code, source: '10.0.0.1' }), 'AUTH_FAILED');

  assert.equal((await auditOf(fx.store, 'login', 'success')).length, 1, 'a second session was created');
  assert.equal((await fx.store.owners.get(alice.ownerId))?.totpLastStep, stepAfterFirst);
  const [failure] = await auditOf(fx.store, 'login', 'failure');
  assert.equal(failure?.details?.['reason'], 'totp_reused');
  await fx.store.close();
});

test('TOTP window at login: ±2 rejected, −1, 0, +1 accepted in order, then an older code refused', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const attempt = (steps: number) => () =>
    fx.login.login({ email: alice.email, password: alice.password, totp: codeFor(fx, alice, steps), source: '10.0.0.2' });
  await rejectsWith(attempt(-2), 'AUTH_FAILED');
  await rejectsWith(attempt(2), 'AUTH_FAILED');
  assert.equal((await fx.store.owners.get(alice.ownerId))?.totpLastStep, 0, '±2 moved the step');
  for (const steps of [-1, 0, 1]) {
    await attempt(steps)();
    assert.equal((await fx.store.owners.get(alice.ownerId))?.totpLastStep, totpStep(fx.clock.now()) + steps);
  }
  await rejectsWith(attempt(0), 'AUTH_FAILED'); // older than the +1 code just used
  assert.equal((await auditOf(fx.store, 'login', 'success')).length, 3);
  await fx.store.close();
});

test('TOTP race: 10 concurrent uses of one code, exactly one is accepted', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const owner = (await fx.store.owners.get(alice.ownerId))!;
  const code = codeFor(fx, alice);
  const deps = { owners: fx.store.owners, sealer: fx.deps.sealer, clock: fx.clock };
  const outcomes = await Promise.all(Array.from({ length: 10 }, () => acceptTotp(owner, code, deps)));
  assert.equal(outcomes.filter((o) => o === 'accepted').length, 1);
  assert.equal(outcomes.filter((o) => o === 'reused').length, 9);
  await fx.store.close();
});

test('sealed TOTP seed moved to another owner does not open (aad totp:<ownerId>)', async () => {
  const fx = await makeAccounts();
  const alice = await makeOwner(fx);
  const bob = await makeOwner(fx, 'bob@example.com');
  const aliceRow = (await fx.store.owners.get(alice.ownerId))!;
  assert.deepEqual(openTotpSecret(fx.deps.sealer, aliceRow), alice.secret);
  assert.throws(() => openTotpSecret(fx.deps.sealer, { id: bob.ownerId, totpSealed: aliceRow.totpSealed }), /sealed secret/);
  assert.throws(() => openTotpSecret(new AesGcmSealer(AesGcmSealer.generateKey()), aliceRow), /sealed secret/);
  await fx.store.close();
});
