/**
 * The README's five-minute walkthrough, end to end, with the real `fleetkey` binary as a child
 * process against a real hub: owner add → login (pinned) → claim create → device enroll →
 * device status → devices list → device renew → devices revoke (renew refused) → audit verify. Children run asynchronously
 * (the hub serves from this process).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { loadConfig, startHub, type RunningHub } from '@fleetkey/hub';
import { runCli } from '../helpers/cli.js';

const PASSWORD = 'walkthrough password 2026';

const fleetkey = (args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) => runCli(args, opts.stdin ?? '', opts.env ?? {});

describe('README walkthrough with the fleetkey CLI against a running hub', () => {
  let dir: string;
  let hub: RunningHub;
  let env: Record<string, string>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetkey-walk-'));
    hub = await startHub({ config: loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, {}), logger: pino({ level: 'silent' }) });
    env = { FLEETKEY_SESSION_FILE: join(dir, 'session.json') };
  });
  after(async () => {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('owner → claim token → enrolled device → renewal, all through the CLI', async () => {
    const data = join(dir, 'data');
    const pin = await fleetkey(['hub', 'pin', '--data-dir', data]);
    assert.equal(pin.code, 0, pin.stderr);
    assert.equal(pin.stdout.trim(), hub.pin);

    const added = await fleetkey(['owner', 'add', '--data-dir', data, '--org', 'Walkthrough Works', '--email', 'ops@walk.example', '--json'], { stdin: PASSWORD + '\n' });
    assert.equal(added.code, 0, added.stderr);
    const { otpauthUri } = JSON.parse(added.stdout) as { otpauthUri: string };
    assert.ok(!added.stdout.includes(PASSWORD));

    const totp = OTPAuth.URI.parse(otpauthUri).generate();
    const login = await fleetkey(['login', '--hub', hub.url, '--pin', hub.pin, '--email', 'ops@walk.example', '--totp', totp, '--json'], { stdin: PASSWORD + '\n', env });
    assert.equal(login.code, 0, login.stderr);
    assert.equal(statSync(env.FLEETKEY_SESSION_FILE!).mode & 0o777, 0o600);

    const claim = await fleetkey(['claim', 'create', '--label', 'line 3 gateway', '--json'], { env });
    assert.equal(claim.code, 0, claim.stderr);
    const { token, claimUri } = JSON.parse(claim.stdout) as { token: string; claimUri: string };
    assert.ok(claimUri.includes(encodeURIComponent(hub.pin)));

    const stateDir = join(dir, 'gw1');
    const enrolled = await fleetkey(['device', 'enroll', '--hub', hub.url, '--pin', hub.pin, '--state-dir', stateDir, '--json'], { env: { ...env, FLEETKEY_CLAIM_TOKEN: token } });
    assert.equal(enrolled.code, 0, enrolled.stderr);
    assert.ok(!enrolled.stdout.includes(token) && !enrolled.stderr.includes(token), 'the token is never printed');
    const { deviceId } = JSON.parse(enrolled.stdout) as { deviceId: string };
    assert.match(deviceId, /^dev-[a-z2-7]{26}$/);

    const st = await fleetkey(['device', 'status', '--state-dir', stateDir, '--json']);
    assert.equal(st.code, 0, st.stderr);
    assert.equal(JSON.parse(st.stdout).deviceId, deviceId);

    const devices = await fleetkey(['devices', 'list', '--json'], { env });
    assert.equal(devices.code, 0, devices.stderr);
    const listed = JSON.parse(devices.stdout) as { items: Array<{ id: string; certificate: { serial: string } }> };
    assert.deepEqual(listed.items.map((d) => d.id), [deviceId]);
    const serialBefore = listed.items[0]!.certificate.serial;

    const renewed = await fleetkey(['device', 'renew', '--state-dir', stateDir, '--json']);
    assert.equal(renewed.code, 0, renewed.stderr);
    assert.equal(JSON.parse(renewed.stdout).deviceId, deviceId);
    const after = JSON.parse((await fleetkey(['devices', 'list', '--json'], { env })).stdout) as typeof listed;
    assert.notEqual(after.items[0]!.certificate.serial, serialBefore, 'renewal issued a new certificate');

    const again = await fleetkey(['device', 'enroll', '--hub', hub.url, '--pin', hub.pin, '--state-dir', join(dir, 'gw2'), '--json'], { env: { ...env, FLEETKEY_CLAIM_TOKEN: token } });
    assert.equal(again.code, 4, 'a used single-use token is refused');
    assert.match(again.stderr, /CLAIM_TOKEN_INVALID/);

    const revoked = await fleetkey(['devices', 'revoke', deviceId, '--reason', 'keyCompromise', '--json'], { env });
    assert.equal(revoked.code, 0, revoked.stderr);
    const revocation = JSON.parse(revoked.stdout) as { status: string; reason: string; alreadyRevoked: boolean };
    assert.deepEqual([revocation.status, revocation.reason, revocation.alreadyRevoked], ['revoked', 'keyCompromise', false]);
    const refused = await fleetkey(['device', 'renew', '--state-dir', stateDir, '--json']);
    assert.notEqual(refused.code, 0, 'a revoked device cannot renew');
    assert.match(refused.stderr, /"code":"CERT_INVALID"/);

    const audit = await fleetkey(['audit', 'verify', '--data-dir', data, '--json']);
    assert.equal(audit.code, 0, audit.stderr);
    assert.equal(JSON.parse(audit.stdout).ok, true);
  });

  test('login against a server whose key is not the pin is refused before the password is sent', async () => {
    const wrongPin = 'sha256//' + Buffer.alloc(32, 1).toString('base64');
    const r = await fleetkey(['login', '--hub', hub.url, '--pin', wrongPin, '--email', 'x@walk.example', '--totp', '000000'], { stdin: 'some password\n', env: { FLEETKEY_SESSION_FILE: join(dir, 'never.json') } });
    assert.equal(r.code, 6);
    assert.match(r.stderr, /^error PIN_MISMATCH/m);
    assert.throws(() => readFileSync(join(dir, 'never.json')), 'no session file is written');
  });

  test('an unknown command exits 2 with a coded error', async () => {
    const r = await fleetkey(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error VALIDATION_FAILED/m);
  });
});
