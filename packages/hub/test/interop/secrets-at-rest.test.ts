/**
 * Secrets at rest (checklist rows 5 and 33): after owners, logins, logouts, claim tokens and
 * enrollments on a real hub, every byte of every file under the data folder (fleetkey.db, its -wal
 * and -shm, pki/*, secrets/*) is searched for each plaintext secret the run handled. The only
 * private key in clear is the recovery key file, written once for the operator to take offline.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as OTPAuth from 'otpauth';
import { ManualClock, buildCsr } from '@fleetkey/protocol';
import { OWNER_PASSWORD, startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** PKCS#8 `version 0, AlgorithmIdentifier { id-ecPublicKey | id-Ed25519 }`: an unsealed private key in DER. */
const PKCS8_DER_PREFIXES = [
  Buffer.from('020100301306072a8648ce3d0201', 'hex'), // P-256 / secp256k1
  Buffer.from('020100301006072a8648ce3d0201', 'hex'), // P-384 / P-521
  Buffer.from('020100300506032b6570', 'hex'), // Ed25519
];

interface Needle {
  readonly label: string;
  readonly bytes: Buffer;
}

describe('secrets at rest in the data folder', () => {
  let t: TestHub;
  let clock: ManualClock;
  let running = true;
  const needles: Needle[] = [];
  const add = (label: string, value: string | Uint8Array) => needles.push({ label, bytes: typeof value === 'string' ? Buffer.from(value) : Buffer.from(value) });

  const enroll = async (token: string) => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
    const csr = await buildCsr({ spki, subject: [['CN', 'd']], algorithm: 'p256', sign: async (d) => sign('sha256', d, pair.privateKey) });
    return t.request('POST', '/.well-known/est/simpleenroll', {
      headers: { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from(`any:${token}`).toString('base64')}` },
      body: csr.toString('base64'),
    });
  };

  const addOwnerSecrets = (o: TestOwner) => {
    const seed = new URL(o.otpauthUri).searchParams.get('secret');
    assert.ok(seed !== null && seed.length >= 16);
    add(`TOTP seed (base32) of ${o.email}`, seed);
    add(`TOTP seed (base32, lower case) of ${o.email}`, seed.toLowerCase());
    add(`TOTP seed (raw bytes) of ${o.email}`, OTPAuth.Secret.fromBase32(seed).bytes);
    add(`session token of ${o.email}`, o.token);
    add(`session token body of ${o.email}`, o.token.slice('fks_'.length));
  };

  before(async () => {
    clock = new ManualClock(Date.now());
    t = await startTestHub({}, { clock });
    add('owner password', OWNER_PASSWORD);
    const owners = [await t.owner('Rest Org A'), await t.owner('Rest Org B')];
    for (const o of owners) addOwnerSecrets(o);
    // A second session per owner (a new TOTP step), one of them logged out again.
    clock.advance(30_000);
    for (const o of owners) {
      const r = await t.api('POST', '/api/v1/sessions', { email: o.email, password: OWNER_PASSWORD, totp: t.totp(o.otpauthUri) });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      add(`second session of ${o.email}`, r.body.token);
    }
    assert.equal((await t.api('DELETE', '/api/v1/sessions/current', undefined, owners[1]!.token)).status, 204);
    // A failed login with another password: its text must not land anywhere either.
    const wrong = 'an entirely wrong password 1234';
    add('wrong password tried at login', wrong);
    assert.equal((await t.api('POST', '/api/v1/sessions', { email: owners[0]!.email, password: wrong, totp: '000000' })).status, 401);
    // Claim tokens: redeemed, partly redeemed, revoked, expired, untouched.
    const [a] = owners;
    const used = await t.claimToken(a!.token);
    const multi = await t.claimToken(a!.token, { maxUses: 3, label: 'line 4' });
    const revoked = await t.claimToken(a!.token);
    const expiring = await t.claimToken(a!.token, { ttlSeconds: 60 });
    const idle = await t.claimToken(a!.token, { ttlSeconds: 86400 });
    for (const c of [used, multi, revoked, expiring, idle]) {
      add(`claim token ${c.id}`, c.token);
      add(`claim token body ${c.id}`, c.token.slice('fkct_'.length));
      add(`claim URI ${c.id}`, c.claimUri);
    }
    assert.equal((await enroll(used.token)).status, 200);
    assert.equal((await enroll(multi.token)).status, 200);
    assert.equal((await enroll(multi.token)).status, 200);
    assert.equal((await t.api('DELETE', `/api/v1/claim-tokens/${revoked.id}`, undefined, a!.token)).status, 204);
    assert.equal((await enroll(revoked.token)).status, 401);
    clock.advance(61_000);
    assert.equal((await enroll(expiring.token)).status, 401);
    assert.equal((await enroll(used.token)).status, 401);
    const masterKey = readFileSync(t.hub.config.masterKeyFile, 'utf8').trim();
    add('master key (base64)', masterKey);
    add('master key (raw)', Buffer.from(masterKey, 'base64'));
  });

  after(async () => {
    if (running) await t.hub.close();
    rmSync(t.dir, { recursive: true, force: true });
  });

  /** Searches every file for every needle; the master key file is allowed to hold the master key. */
  function scan(phase: string): string[] {
    const dataDir = t.hub.config.dataDir;
    const files = filesUnder(dataDir);
    assert.ok(files.some((f) => f.endsWith('fleetkey.db')), `${phase}: database present`);
    assert.ok(files.some((f) => f.includes(`${join(dataDir, 'pki')}`)), `${phase}: pki files present`);
    const problems: string[] = [];
    for (const file of files) {
      const bytes = readFileSync(file);
      const name = relative(dataDir, file);
      for (const needle of needles) {
        if (file === t.hub.config.masterKeyFile && needle.label.startsWith('master key')) continue;
        if (bytes.includes(needle.bytes)) problems.push(`${phase}: ${needle.label} found in ${name}`);
      }
      const isRecoveryKey = file === t.hub.recoveryKeyFile;
      if (!isRecoveryKey && bytes.includes(Buffer.from('PRIVATE KEY'))) problems.push(`${phase}: PRIVATE KEY PEM in ${name}`);
      if (!isRecoveryKey && PKCS8_DER_PREFIXES.some((p) => bytes.includes(p))) problems.push(`${phase}: unsealed PKCS#8 key DER in ${name}`);
    }
    return problems;
  }

  test('no claim token, session token, password, TOTP seed or private key in clear anywhere in the data folder (hub running, WAL live)', () => {
    const files = filesUnder(t.hub.config.dataDir).map((f) => relative(t.hub.config.dataDir, f));
    assert.ok(files.includes('fleetkey.db-wal'), `WAL file is part of the scan: ${files.join(', ')}`);
    assert.deepEqual(scan('running'), []);
  });

  test('the same holds after a clean shutdown (WAL checkpointed into the database)', async () => {
    await t.hub.close();
    running = false;
    assert.deepEqual(scan('stopped'), []);
  });

  test('the recovery key file is the one intended private key in clear: PKCS#8 PEM, mode 0600', () => {
    const file = t.hub.recoveryKeyFile;
    assert.ok(file !== undefined, 'the first start reports the recovery key file');
    assert.ok(file.startsWith(t.hub.config.dataDir), 'it lies in the scanned folder, so the scan exempted exactly it');
    assert.match(readFileSync(file, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  test('the scan finds a secret planted in the data folder (control for the empty results above)', () => {
    const planted = join(t.hub.config.dataDir, 'pki', 'planted.bin');
    const claimToken = needles.find((n) => n.label.startsWith('claim token '))!;
    writeFileSync(planted, Buffer.concat([Buffer.from('xx'), claimToken.bytes, Buffer.from('-----BEGIN PRIVATE KEY-----')]));
    try {
      const problems = scan('control');
      const where = join('pki', 'planted.bin');
      assert.ok(problems.includes(`control: ${claimToken.label} found in ${where}`), problems.join('; '));
      assert.ok(problems.includes(`control: PRIVATE KEY PEM in ${where}`), problems.join('; '));
      assert.ok(problems.every((p) => p.endsWith(where)), problems.join('; '));
    } finally {
      unlinkSync(planted);
    }
  });
});
