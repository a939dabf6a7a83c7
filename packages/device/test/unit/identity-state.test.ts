import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ManualClock, toPem } from '@fleetkey/protocol';
import { loadIdentity, saveIdentity, sha256Hex, type DeviceIdentity } from '../../src/state/identity.js';
import { status } from '../../src/api/status.js';
import { fleetkeyError } from '../helpers/pins.js';

const PIN = `sha256//${Buffer.alloc(32, 7).toString('base64')}`;
// The state layer stores certificates without parsing them; opaque DER-like bytes suffice here.
const cert = (): Buffer => Buffer.concat([Buffer.from([0x30, 0x20]), randomBytes(32)]);

function identityFor(der: Buffer, label = 'device-1'): DeviceIdentity {
  return {
    version: 1, deviceId: 'dev-1', hubUrl: 'https://hub.test:8443', pins: [PIN], keyStore: { kind: 'file', label },
    keyAlgorithm: 'p256', certificateSha256: sha256Hex(der),
    notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2026-01-31T00:00:00.000Z', enrolledAt: '2026-01-01T00:00:00.000Z',
  };
}

async function dir(): Promise<string> {
  return join(await fs.mkdtemp(join(tmpdir(), 'fleetkey-state-')), 'state');
}

test('save then load round-trips; identity.json is 0600 and the directory 0700', async () => {
  const stateDir = await dir();
  const der = cert();
  await saveIdentity(stateDir, { identity: identityFor(der), certificateDer: der, chainDers: [cert(), cert()] });
  const loaded = await loadIdentity(stateDir);
  assert.deepEqual(loaded.identity, identityFor(der));
  assert.deepEqual(loaded.certificateDer, der);
  assert.equal(loaded.chainDers.length, 2);
  assert.equal((await fs.stat(join(stateDir, 'identity.json'))).mode & 0o777, 0o600);
  assert.equal((await fs.stat(stateDir)).mode & 0o777, 0o700);
  assert.deepEqual((await fs.readdir(stateDir)).sort(), ['cert.pem', 'chain.pem', 'identity.json']);
});

test('an empty or missing state directory is DEVICE_NOT_ENROLLED', async () => {
  const stateDir = await dir();
  await assert.rejects(loadIdentity(stateDir), fleetkeyError('DEVICE_NOT_ENROLLED', /no identity.json/));
  await fs.mkdir(stateDir);
  await assert.rejects(status({ stateDir }), fleetkeyError('DEVICE_NOT_ENROLLED'));
});

test('a malformed identity.json is DEVICE_NOT_ENROLLED naming the bad field', async () => {
  const stateDir = await dir();
  const der = cert();
  await saveIdentity(stateDir, { identity: identityFor(der), certificateDer: der, chainDers: [cert()] });
  const broken = { ...identityFor(der), pins: ['sha256//nope'] };
  await fs.writeFile(join(stateDir, 'identity.json'), JSON.stringify(broken));
  await assert.rejects(loadIdentity(stateDir), fleetkeyError('DEVICE_NOT_ENROLLED', /'pins'/));
  await fs.writeFile(join(stateDir, 'identity.json'), '{');
  await assert.rejects(loadIdentity(stateDir), fleetkeyError('DEVICE_NOT_ENROLLED', /not JSON/));
});

test('a cert.pem swapped for another certificate is refused (it is not the one identity.json names)', async () => {
  const stateDir = await dir();
  const der = cert();
  await saveIdentity(stateDir, { identity: identityFor(der), certificateDer: der, chainDers: [cert()] });
  await fs.writeFile(join(stateDir, 'cert.pem'), toPem('CERTIFICATE', cert()));
  await assert.rejects(loadIdentity(stateDir), fleetkeyError('DEVICE_NOT_ENROLLED', /cert.pem/));
});

test('a crash after identity.json was committed but before cert.pem was renamed rolls forward on load', async () => {
  const stateDir = await dir();
  const oldDer = cert();
  await saveIdentity(stateDir, { identity: identityFor(oldDer), certificateDer: oldDer, chainDers: [cert()] });
  const newDer = cert();
  await fs.writeFile(join(stateDir, 'cert.pem.next'), toPem('CERTIFICATE', newDer));
  await fs.writeFile(join(stateDir, 'identity.json'), JSON.stringify(identityFor(newDer, 'device-2')));
  const loaded = await loadIdentity(stateDir);
  assert.deepEqual(loaded.certificateDer, newDer);
  assert.equal(loaded.identity.keyStore.label, 'device-2');
  assert.equal(await fs.readFile(join(stateDir, 'cert.pem'), 'utf8'), toPem('CERTIFICATE', newDer));
});

test('a crash before identity.json was committed keeps the previous identity in use', async () => {
  const stateDir = await dir();
  const oldDer = cert();
  await saveIdentity(stateDir, { identity: identityFor(oldDer), certificateDer: oldDer, chainDers: [cert()] });
  await fs.writeFile(join(stateDir, 'cert.pem.next'), toPem('CERTIFICATE', cert()));
  assert.deepEqual((await loadIdentity(stateDir)).certificateDer, oldDer);
});

test('status reports validity and renewal due from two thirds of the lifetime, on the injected clock', async () => {
  const stateDir = await dir();
  const der = cert();
  await saveIdentity(stateDir, { identity: identityFor(der), certificateDer: der, chainDers: [cert()] });
  const clock = new ManualClock(Date.UTC(2026, 0, 10));
  assert.deepEqual([(await status({ stateDir, clock })).state, (await status({ stateDir, clock })).renewalDue], ['valid', false]);
  clock.set(Date.UTC(2026, 0, 21));
  assert.equal((await status({ stateDir, clock })).renewalDue, true);
  clock.set(Date.UTC(2026, 1, 1));
  assert.equal((await status({ stateDir, clock })).state, 'expired');
  clock.set(Date.UTC(2025, 11, 1));
  assert.equal((await status({ stateDir, clock })).state, 'not-yet-valid');
});
