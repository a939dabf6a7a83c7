import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import {
  CommonPasswordBlocklist,
  LOCKOUT_HARD_CAP,
  PasswordHasher,
  Semaphore,
  checkPasswordPolicy,
  defaultAccountsConfig,
  validateAccountsConfig,
} from '../../src/accounts/index.js';
import { rejectsWith } from './accounts-fixture.js';

const blocklist = new CommonPasswordBlocklist();
const config = validateAccountsConfig();
const hasherP = PasswordHasher.create(config.argon2);
const randomText = (n: number): string => randomBytes(n).toString('base64url').slice(0, n);

async function policyRule(password: string, email?: string): Promise<string | null> {
  try {
    await checkPasswordPolicy(password, blocklist, email === undefined ? {} : { email });
    return null;
  } catch (err) {
    assert.ok(err instanceof FleetkeyError);
    assert.equal(err.code, 'PASSWORD_POLICY');
    return String(err.details?.['rule']);
  }
}

test('password policy table (SP 800-63B-4 with MFA): length in code points, blocklist, no composition rules', async () => {
  const table: Array<[label: string, password: string, rule: string | null]> = [
    ['7 chars', 'xq7#mzP', 'too_short'],
    ['8 chars', 'xq7#mzPa', null],
    ['64 chars', randomText(64), null],
    ['128 chars', randomText(128), null],
    ['1024 chars (the maximum)', randomText(1024), null],
    ['1025 chars', randomText(1025), 'too_long'],
    ['lower case only, no digits: no composition rule', 'lamp purple orbit', null],
    ['4 emoji = 8 UTF-16 units but 4 code points', '🔑🚀🌍🎉', 'too_short'],
    ['8 emoji', '🔑🚀🌍🎉🔑🚀🌍🎈', null],
    ['7 é decomposed (14 code points) → 7 after NFC', 'e\u0301'.repeat(7), 'too_short'],
    ['7 é decomposed + 1 → 8 after NFC', `${'e\u0301'.repeat(7)}x`, null],
    ['blocklisted', 'password1', 'common_password'],
    ['blocklisted, other case', 'BaseBall', 'common_password'],
    ['blocklisted, 10 chars', 'qwertyuiop', 'common_password'],
    ['the product name', 'FleetKey123', 'common_password'],
    ['lone surrogate', 'abcdefgh\uD800', 'encoding'],
  ];
  for (const [label, password, rule] of table) {
    assert.equal(await policyRule(password), rule, label);
  }
  assert.equal(await policyRule('Alice@Example.com', 'alice@example.com'), 'matches_email');
  assert.equal(await policyRule('alicesmith', 'alicesmith@example.com'), 'matches_email');
});

test('the blocklist is a real list: ≥ 3,000 entries, loaded once', async () => {
  const list = new CommonPasswordBlocklist();
  assert.ok((await list.size()) >= 3000, `only ${await list.size()} entries`);
  assert.equal(await list.has('ILOVEYOU'), true);
  assert.equal(await list.has('lamp purple orbit'), false);
});

test('no truncation: passwords equal in the first 72 bytes (bcrypt limit) and different after do not verify', async () => {
  const hasher = await hasherP;
  const prefixes = ['A'.repeat(72), '€'.repeat(24) /* 3 bytes each = 72 bytes */];
  for (const prefix of prefixes) {
    assert.equal(Buffer.byteLength(prefix), 72);
    const stored = await hasher.hashPassword(`${prefix}first`);
    assert.equal(await hasher.verifyPassword(stored, `${prefix}first`), true);
    assert.equal(await hasher.verifyPassword(stored, `${prefix}other`), false, 'suffix after byte 72 ignored');
    assert.equal(await hasher.verifyPassword(stored, prefix), false, 'prefix alone verified');
  }
});

test('hashes are argon2id with the documented parameters and NFC-normalised input', async () => {
  const hasher = await hasherP;
  const composed = 'caf\u00e9 au lait chaud';
  const stored = await hasher.hashPassword(composed);
  assert.match(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  assert.equal(await hasher.verifyPassword(stored, composed.normalize('NFD')), true, 'NFD form of the same text');
  assert.notEqual(await hasher.hashPassword(composed), stored, 'salted: same password, different hash');
  assert.equal(await hasher.verifyPassword(stored, `${composed} `), false);
});

test('over-long password at login is refused without running the KDF', async () => {
  const hasher = await hasherP;
  const stored = await hasher.hashPassword('lamp purple orbit');
  const started = performance.now();
  assert.equal(await hasher.verifyPassword(stored, 'x'.repeat(1_000_000)), false);
  assert.ok(performance.now() - started < 5, 'a 1 MB password reached argon2');
  assert.equal(await hasher.verifyDummy('lamp purple orbit'), false);
});

test('KDF concurrency cap: 60 parallel verifications never run more than maxConcurrent hashes at once', async (t) => {
  const capped = await PasswordHasher.create({ ...config.argon2, maxConcurrent: 2 });
  const stored = await capped.hashPassword('lamp purple orbit');
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: 60 }, (_, i) => capped.verifyPassword(stored, i % 2 === 0 ? 'lamp purple orbit' : 'wrong one!')),
  );
  const elapsed = performance.now() - started;
  assert.deepEqual(results, Array.from({ length: 60 }, (_, i) => i % 2 === 0));
  assert.equal(capped.load.peak, 2);
  assert.equal(capped.load.active, 0);
  assert.equal(capped.load.queued, 0);
  t.diagnostic(`argon2id m=19456 t=2 p=1: ${(elapsed / 60).toFixed(1)} ms per verification at 2 in parallel`);
});

test('argon2id cost on this machine (figure for the ADR)', async (t) => {
  const hasher = await hasherP;
  const n = 10;
  const started = performance.now();
  for (let i = 0; i < n; i++) await hasher.hashPassword('lamp purple orbit');
  const ms = (performance.now() - started) / n;
  t.diagnostic(`argon2id m=19456 t=2 p=1: ${ms.toFixed(1)} ms per hash, sequential`);
  assert.ok(ms > 2, 'suspiciously cheap: are the parameters applied?');
});

test('semaphore runs queued tasks one at a time in FIFO order, a late arrival after the queue', async () => {
  const gate = new Semaphore(1);
  const order: number[] = [];
  let release: () => void = () => undefined;
  const first = gate.run(() => new Promise<void>((resolve) => (release = resolve)));
  const queued = [1, 2, 3].map((n) => gate.run(async () => void order.push(n)));
  release();
  const late = gate.run(async () => void order.push(4));
  await Promise.all([first, ...queued, late]);
  assert.deepEqual(order, [1, 2, 3, 4]);
  assert.equal(gate.load.peak, 1);
});

test('lockout config above the hard cap of 100 failures is refused (SP 800-63B §5.2.2)', () => {
  const d = defaultAccountsConfig(2);
  assert.deepEqual(d.lockout, { maxFailures: 5, windowMs: 900_000, lockMs: 900_000 });
  assert.deepEqual(d.session, { absoluteMs: 43_200_000, idleMs: 1_800_000 });
  assert.deepEqual(d.argon2, { memoryKiB: 19_456, timeCost: 2, parallelism: 1, maxConcurrent: 4 });
  assert.equal(validateAccountsConfig({ lockout: { maxFailures: LOCKOUT_HARD_CAP } }).lockout.maxFailures, 100);
  const bad: Array<[Parameters<typeof validateAccountsConfig>[0], string]> = [
    [{ lockout: { maxFailures: 101 } }, 'lockout.maxFailures'],
    [{ lockout: { maxFailures: 0 } }, 'lockout.maxFailures'],
    [{ lockout: { lockMs: 1.5 } }, 'lockout.lockMs'],
    [{ session: { idleMs: 13 * 3_600_000 } }, 'session.idleMs'],
    [{ argon2: { memoryKiB: 4096 } }, 'argon2.memoryKiB'],
    [{ argon2: { memoryKiB: 7168, timeCost: 2 } }, 'argon2.timeCost'],
    [{ lockout: { maxFailure: 3 } as never }, 'lockout.maxFailure'],
  ];
  for (const [input, field] of bad) {
    assert.throws(() => validateAccountsConfig(input), (err: unknown) => {
      assert.ok(err instanceof FleetkeyError);
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.equal(err.details?.['field'], field);
      return true;
    });
  }
  const frozen = validateAccountsConfig();
  assert.ok(Object.isFrozen(frozen) && Object.isFrozen(frozen.lockout));
});

test('policy errors never echo the password', async () => {
  const err = await rejectsWith(() => checkPasswordPolicy('letmein1', blocklist), 'PASSWORD_POLICY');
  assert.doesNotMatch(JSON.stringify(err.toJSON()), /letmein1/);
});
