// The device trust state (ADR 0022): atomic storage of the bundle, catch-up through the signed
// chain, and the attacks on it. Each refusal asserts the code, that the pins in use did not
// widen, and that trust.json kept its bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetkeyError, ManualClock, computePin, signBundle, type BundleContent, type BundleSigner, type TrustBundle } from '@fleetkey/protocol';
import { TrustFollower, type BundleSource } from '../../src/trust/follow.js';
import { TRUST_FILE, loadTrustBundle, saveTrustBundle } from '../../src/trust/trust-store.js';

const DAY = 86_400_000;
const clock = new ManualClock(Date.UTC(2027, 0, 1));

function key(): BundleSigner {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  return { spki: publicKey.export({ format: 'der', type: 'spki' }), sign: async (d) => sign('sha384', d, privateKey) };
}
const [r1, r2, r3, rec, attacker] = [key(), key(), key(), key(), key()];

function content(version: number, root: BundleSigner, extra: Partial<BundleContent> = {}): BundleContent {
  return {
    version, issuedAt: clock.now() - DAY, expires: clock.now() + 365 * DAY, rootKeys: [root.spki], recoveryKeys: [rec.spki],
    threshold: 1, pins: [{ pin: computePin(root.spki) }], ...extra,
  };
}

const v1 = await signBundle(content(1, r1), [r1]);
const v2 = await signBundle(content(2, r2, { pins: [{ pin: computePin(r2.spki) }, { pin: computePin(r1.spki), until: clock.now() + 30 * DAY }] }), [r1, r2]);
const v3 = await signBundle(content(3, r3), [r2, r3]);

function source(bundles: readonly TrustBundle[]): BundleSource & { fetched: Array<number | 'latest'> } {
  const fetched: Array<number | 'latest'> = [];
  return {
    fetched,
    fetch: async (v) => {
      fetched.push(v);
      const b = v === 'latest' ? bundles[bundles.length - 1] : bundles.find((x) => x.content.version === v);
      if (b === undefined) throw new FleetkeyError('HUB_PROTOCOL_ERROR');
      return b.bytes;
    },
  };
}

async function stateDir(): Promise<string> {
  return fs.mkdtemp(join(tmpdir(), 'fleetkey-trust-'));
}

test('a device that slept through two rotations catches up from its stored v1 to v3 and pins the new root', async () => {
  const dir = await stateDir();
  await saveTrustBundle(dir, v1);
  const src = source([v1, v2, v3]);
  const follower = await TrustFollower.open({ stateDir: dir, identityPins: [computePin(r1.spki)], source: src, clock });
  assert.equal(await follower.onUnpinned(), true);
  assert.deepEqual(follower.pins().toArray(), [computePin(r3.spki)]);
  assert.deepEqual(src.fetched, ['latest', 2, 3]);
  assert.equal((await loadTrustBundle(dir))?.content.version, 3);
});

test('a device with only its claim pin walks from v1 when the latest bundle no longer lists its root', async () => {
  const dir = await stateDir();
  const follower = await TrustFollower.open({ stateDir: dir, identityPins: [computePin(r1.spki)], source: source([v1, v2, v3]), clock });
  assert.equal(await follower.onUnpinned(), true);
  assert.equal(follower.version, 3);
});

test('a man-in-the-middle serving a forged successor is refused; pins and trust.json do not change', async () => {
  const dir = await stateDir();
  await saveTrustBundle(dir, v1);
  const before = await fs.readFile(join(dir, TRUST_FILE));
  const forged = await signBundle(content(2, attacker), [attacker]);
  const errors: unknown[] = [];
  const follower = await TrustFollower.open({ stateDir: dir, identityPins: [computePin(r1.spki)], source: source([v1, forged]), clock, onError: (e) => errors.push(e) });
  assert.equal(await follower.onUnpinned(), false);
  assert.ok(errors[0] instanceof FleetkeyError && errors[0].code === 'TRUST_BUNDLE_REJECTED');
  assert.deepEqual(follower.pins().toArray(), [computePin(r1.spki)]);
  assert.ok((await fs.readFile(join(dir, TRUST_FILE))).equals(before));
});

test('the retained $fleetkey/trust bundle v2 is applied directly; both pins hold during the overlap only', async () => {
  const dir = await stateDir();
  await saveTrustBundle(dir, v1);
  const follower = await TrustFollower.open({ stateDir: dir, identityPins: [computePin(r1.spki)], source: source([v1]), clock });
  assert.equal(await follower.onBundle(v2.bytes), true);
  assert.deepEqual(follower.pins().toArray(), [computePin(r2.spki), computePin(r1.spki)]);
  assert.equal(await follower.onBundle(v2.bytes), false, 'the retained copy again changes nothing');
  const later = new ManualClock(clock.now() + 31 * DAY);
  const reopened = await TrustFollower.open({ stateDir: dir, identityPins: [computePin(r1.spki)], source: source([v1]), clock: later });
  assert.deepEqual(reopened.pins().toArray(), [computePin(r2.spki)]);
});

test('power loss during bundle update: a half-written temporary file never becomes the trust state', async () => {
  const dir = await stateDir();
  await saveTrustBundle(dir, v1);
  // What a crash between write and rename leaves: a partial temporary beside the intact trust.json.
  await fs.writeFile(join(dir, `${TRUST_FILE}.0a1b2c3d4e5f.tmp`), v2.bytes.subarray(0, v2.bytes.length >> 1));
  assert.equal((await loadTrustBundle(dir))?.content.version, 1);
  const follower = await TrustFollower.open({ stateDir: dir, identityPins: [computePin(r1.spki)], source: source([v1]), clock });
  assert.deepEqual(follower.pins().toArray(), [computePin(r1.spki)]);
  await saveTrustBundle(dir, v2);
  assert.deepEqual((await fs.readdir(dir)).sort(), [TRUST_FILE], 'the stale temporary is gone after the next save');
  assert.equal((await loadTrustBundle(dir))?.content.version, 2);
});

test('a modified trust.json is refused at load, never used', async () => {
  const dir = await stateDir();
  const text = v2.bytes.toString('utf8').replace(computePin(r2.spki), computePin(attacker.spki));
  await fs.writeFile(join(dir, TRUST_FILE), text);
  await assert.rejects(loadTrustBundle(dir), (e: unknown) => e instanceof FleetkeyError && e.code === 'TRUST_BUNDLE_REJECTED');
});

test('rollback of the stored bundle is refused and trust.json keeps its bytes', async () => {
  const dir = await stateDir();
  await saveTrustBundle(dir, v2);
  const before = await fs.readFile(join(dir, TRUST_FILE));
  await assert.rejects(saveTrustBundle(dir, v1), (e: unknown) => e instanceof FleetkeyError && e.code === 'TRUST_BUNDLE_REJECTED' && e.details?.reason === 'rollback');
  assert.ok((await fs.readFile(join(dir, TRUST_FILE))).equals(before));
});
