import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Secret } from 'otpauth';
import { createOrganisationWithOwner, normalizeEmail } from '../../src/accounts/index.js';
import { DEFAULT_PASSWORD, auditOf, codeFor, makeAccounts, makeOwner, rejectsWith } from './accounts-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'fleetkey-accounts-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

test('at rest: a dump of the database files holds no plaintext password, TOTP seed or session token', async () => {
  const path = join(dir, 'at-rest.db');
  const fx = await makeAccounts({ path });
  const password = 'Unique-Marker-Password-4711';
  const alice = await makeOwner(fx, 'alice@example.com', password);
  const { token } = await fx.login.login({ email: alice.email, password, totp: codeFor(fx, alice), source: '10.0.0.1' });
  await fx.login.login({ email: alice.email, password: `${password}x`, totp: '000000', source: '10.0.0.1' }).catch(() => undefined);
  const dumpBeforeClose = readDir(dir, 'at-rest.db');
  await fx.store.close();
  const dumps = [dumpBeforeClose, readDir(dir, 'at-rest.db')];

  const secretForms = new Map<string, Buffer>([
    ['password', Buffer.from(password)],
    ['wrong password', Buffer.from(`${password}x`)],
    ['password utf16le', Buffer.from(password, 'utf16le')],
    ['session token', Buffer.from(token)],
    ['session token body', Buffer.from(token.slice(4))],
    ['totp seed raw', alice.secret],
    ['totp seed hex', Buffer.from(alice.secret.toString('hex'))],
    ['totp seed base64', Buffer.from(alice.secret.toString('base64'))],
    ['totp seed base32', Buffer.from(base32(alice.secret))],
  ]);
  for (const dump of dumps) {
    assert.ok(dump.length > 4096, 'nothing was dumped');
    assert.ok(dump.includes(Buffer.from('alice@example.com')), 'the dump does not see the data at all');
    for (const [name, bytes] of secretForms) assert.equal(dump.includes(bytes), false, `${name} found in the database files`);
  }
});

test('disabled owner: the right password and code give AUTH_FAILED, and live sessions stop working', async () => {
  const path = join(dir, 'disabled.db');
  const fx = await makeAccounts({ path });
  const alice = await makeOwner(fx);
  const { token } = await fx.login.login({ email: alice.email, password: alice.password, totp: codeFor(fx, alice), source: '10.0.0.2' });
  const raw = new Database(path);
  raw.prepare('UPDATE owners SET disabled = 1 WHERE id = ?').run(alice.ownerId);
  raw.close();

  await rejectsWith(() => fx.login.authenticate(token), 'AUTH_REQUIRED');
  fx.clock.advance(30_000);
  const stepBefore = (await fx.store.owners.get(alice.ownerId))?.totpLastStep;
  await rejectsWith(
    () => fx.login.login({ email: alice.email, password: alice.password, totp: codeFor(fx, alice), source: '10.0.0.2' }),
    'AUTH_FAILED',
  );
  assert.equal((await auditOf(fx.store, 'login', 'failure')).at(-1)?.details?.['reason'], 'disabled');
  assert.equal((await fx.store.owners.get(alice.ownerId))?.totpLastStep, stepBefore, 'TOTP consumed for a disabled owner');
  assert.equal((await auditOf(fx.store, 'login', 'success')).length, 1);
  await fx.store.close();
});

test('create organisation: emails are normalised, the owner.create record is written with the tenant', async () => {
  const fx = await makeAccounts();
  const created = await createOrganisationWithOwner(
    { orgName: '  Acme Plant 3 ', email: '  Alice.Smith@Example.COM ', password: DEFAULT_PASSWORD },
    fx.deps,
  );
  assert.match(created.tenantId, /^org_[0-9a-f]{20}$/);
  assert.match(created.ownerId, /^own_[0-9a-f]{20}$/);
  assert.match(created.otpauthUri, /^otpauth:\/\/totp\/fleetkey:alice\.smith%40example\.com\?/);
  const owner = await fx.store.owners.getByEmail('alice.smith@example.com');
  assert.equal(owner?.id, created.ownerId);
  assert.equal((await fx.store.tenants.get(created.tenantId))?.name, 'Acme Plant 3');
  const records = (await fx.store.audit.list({ limit: 100 })).filter((r) => r.type === 'owner.create');
  assert.equal(records.length, 1);
  assert.equal(records[0]?.category, 'owner');
  assert.equal(records[0]?.actor, 'operator');
  assert.equal(records[0]?.source, 'cli');
  await fx.store.close();
});

test('create organisation: invalid input writes nothing (weak password, bad email, org name length, duplicates)', async () => {
  const fx = await makeAccounts();
  await makeOwner(fx, 'alice@example.com');
  const before = await fx.store.audit.count();
  const attempt = (orgName: string, email: string, password = DEFAULT_PASSWORD) => () =>
    createOrganisationWithOwner({ orgName, email, password }, fx.deps);

  await rejectsWith(attempt('Weak Co', 'weak@example.com', 'password1'), 'PASSWORD_POLICY');
  await rejectsWith(attempt('Short Co', 'short@example.com', 'abc1234'), 'PASSWORD_POLICY');
  for (const email of ['no-at-sign', 'a@b', 'a b@example.com', '@example.com', `${'a'.repeat(250)}@example.com`]) {
    await rejectsWith(attempt('Bad Mail Co', email), 'VALIDATION_FAILED');
  }
  for (const orgName of ['', '   ', 'x'.repeat(101), 'tab\tname']) {
    await rejectsWith(attempt(orgName, 'org@example.com'), 'VALIDATION_FAILED');
  }
  await createOrganisationWithOwner({ orgName: 'x'.repeat(100), email: 'max@example.com', password: DEFAULT_PASSWORD }, fx.deps);
  const afterValid = await fx.store.audit.count();
  assert.equal(afterValid, before + 1, 'an invalid attempt wrote an audit record');

  await rejectsWith(attempt('Other Co', 'ALICE@example.com'), 'CONFLICT');
  await rejectsWith(attempt('Org of alice@example.com', 'new@example.com'), 'CONFLICT');
  assert.equal(await fx.store.owners.getByEmail('new@example.com'), undefined);
  assert.equal(await fx.store.tenants.getByName('Other Co'), undefined);
  assert.equal(await fx.store.audit.count(), afterValid);
  await fx.store.close();
});

test('email normalisation', () => {
  assert.equal(normalizeEmail(' Bob@Example.ORG '), 'bob@example.org');
  assert.equal(normalizeEmail('bob@example'), undefined);
  assert.equal(normalizeEmail(42), undefined);
});

function readDir(folder: string, prefix: string): Buffer {
  return Buffer.concat(readdirSync(folder).filter((f) => f.startsWith(prefix)).map((f) => readFileSync(join(folder, f))));
}

/** RFC 4648 base32 without padding, as authenticator apps show it. */
function base32(bytes: Buffer): string {
  return Secret.fromHex(bytes.toString('hex')).base32;
}
