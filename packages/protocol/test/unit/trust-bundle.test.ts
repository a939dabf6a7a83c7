// The trust bundle verifier against the attacks of TUF root rotation (ADR 0020). Each refusal
// asserts the code and reason, that no bundle came back, and that the trusted bundle is unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FleetkeyError, MAX_BUNDLE_BYTES, activePins, computePin, decodeCandidate, encodeCanonical, signBundle, verifyChain,
  verifyInitial, verifyNext, type BundleContent, type TrustBundle,
} from '../../src/index.js';
import { makeKey, type TestKey } from './fixtures.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2027, 0, 1);
const root1 = makeKey('p384');
const root2 = makeKey('p384');
const root3 = makeKey('p256');
const recovery1 = makeKey('p384');
const recovery2 = makeKey('p384');
const attacker = makeKey('p384');

function content(version: number, roots: readonly TestKey[], recovery: readonly TestKey[], extra: Partial<BundleContent> = {}): BundleContent {
  return {
    version, issuedAt: NOW - DAY, expires: NOW + 365 * DAY,
    rootKeys: roots.map((k) => k.spki), recoveryKeys: recovery.map((k) => k.spki), threshold: 1,
    pins: roots.map((k) => ({ pin: computePin(k.spki) })), ...extra,
  };
}

const v1 = await signBundle(content(1, [root1], [recovery1]), [root1]);
const v2 = await signBundle(content(2, [root2], [recovery1], { pins: [{ pin: computePin(root2.spki) }, { pin: computePin(root1.spki), until: NOW + 30 * DAY }] }), [root1, root2]);
const v3 = await signBundle(content(3, [root3], [recovery1]), [root2, root3]);

function refuses(trusted: TrustBundle, attempt: () => unknown, reason: string): void {
  const before = Buffer.from(trusted.bytes);
  let result: unknown;
  assert.throws(() => {
    result = attempt();
  }, (err: unknown) => err instanceof FleetkeyError && err.code === 'TRUST_BUNDLE_REJECTED' && err.details?.reason === reason);
  assert.equal(result, undefined, 'no bundle is returned');
  assert.ok(trusted.bytes.equals(before), 'the trusted bundle did not change');
}

test('a rotation signed by the old and the new root is accepted, with both pins during the overlap', () => {
  const next = verifyNext(v1, v2.bytes, NOW);
  assert.equal(next.content.version, 2);
  assert.deepEqual(activePins(next, NOW), [computePin(root2.spki), computePin(root1.spki)]);
  assert.deepEqual(activePins(next, NOW + 31 * DAY), [computePin(root2.spki)], 'the old pin ends with the overlap');
});

test('rollback: an older or the same version is refused', () => {
  refuses(v2, () => verifyNext(v2, v1.bytes, NOW), 'rollback');
  refuses(v2, () => verifyNext(v2, v2.bytes, NOW), 'rollback');
});

test('freeze: an expired successor is refused', async () => {
  const stale = await signBundle(content(2, [root2], [recovery1], { issuedAt: NOW - 10 * DAY, expires: NOW - DAY }), [root1, root2]);
  refuses(v1, () => verifyNext(v1, stale.bytes, NOW), 'expired');
  refuses(v1, () => verifyChain(v1, [stale.bytes], NOW), 'expired');
});

test('mix-and-match: skipping a version, or a successor from another lineage, is refused', async () => {
  const skip = await signBundle(content(3, [root3], [recovery1]), [root1, root3]);
  refuses(v1, () => verifyNext(v1, skip.bytes, NOW), 'version-gap');
  const otherV2 = await signBundle(content(2, [attacker], [recovery1]), [root1, attacker]);
  refuses(v1, () => verifyChain(v1, [otherV2.bytes, v3.bytes], NOW), 'threshold-trusted');
});

test('threshold counted with duplicate keys: one key signing twice is one signature', async () => {
  const two = await signBundle(content(5, [root1, root2], [recovery1], { threshold: 2 }), [root1, root2]);
  const next = content(6, [root1, root2], [recovery1], { threshold: 2 });
  const dup = await signBundle(next, [root1, root1, root1]);
  refuses(two, () => verifyNext(two, dup.bytes, NOW), 'threshold-trusted');
  assert.equal(verifyNext(two, (await signBundle(next, [root1, root2])).bytes, NOW).content.version, 6);
});

test('a bundle signed only by the new key is refused', async () => {
  const onlyNew = await signBundle(content(2, [root2], [recovery1]), [root2]);
  refuses(v1, () => verifyNext(v1, onlyNew.bytes, NOW), 'threshold-trusted');
});

test('a bundle signed only by the old key is refused', async () => {
  const onlyOld = await signBundle(content(2, [root2], [recovery1]), [root1]);
  refuses(v1, () => verifyNext(v1, onlyOld.bytes, NOW), 'threshold-own');
});

test('a forged signature under a trusted key id counts zero', async () => {
  const forged = await signBundle(content(2, [root2], [recovery1]), [{ spki: root1.spki, sign: attacker.sign }, root2]);
  refuses(v1, () => verifyNext(v1, forged.bytes, NOW), 'threshold-trusted');
});

test('an oversized bundle is refused before it is parsed', () => {
  const huge = Buffer.alloc(MAX_BUNDLE_BYTES + 1, 0x20);
  refuses(v1, () => verifyNext(v1, huge, NOW), 'oversized');
});

test('an unknown critical extension is refused; an unknown non-critical one is carried', async () => {
  const critical = await signBundle(content(2, [root1], [recovery1], { critical: ['geo-fence'], extensions: { 'geo-fence': 'eu' } }), [root1]);
  refuses(v1, () => verifyNext(v1, critical.bytes, NOW), 'unknown-critical');
  const plain = await signBundle(content(2, [root1], [recovery1], { extensions: { note: 'hello' } }), [root1]);
  assert.deepEqual(verifyNext(v1, plain.bytes, NOW).content.extensions, { note: 'hello' });
});

test('a stolen root alone cannot replace the recovery key', async () => {
  const takeover = await signBundle(content(2, [attacker], [recovery2]), [root1, attacker]);
  refuses(v1, () => verifyNext(v1, takeover.bytes, NOW), 'recovery-not-signed');
});

test('recovery: the offline key installs a new root and recovery key; the stolen root then signs nothing', async () => {
  const recovered = await signBundle(content(2, [root3], [recovery2]), [recovery1, root3]);
  const next = verifyNext(v1, recovered.bytes, NOW);
  assert.deepEqual(activePins(next, NOW), [computePin(root3.spki)]);
  const byStolen = await signBundle(content(3, [attacker], [recovery2]), [root1, attacker]);
  refuses(next, () => verifyNext(next, byStolen.bytes, NOW), 'threshold-trusted');
});

test('non-canonical bytes and members outside the schema are malformed', () => {
  const text = v2.bytes.toString('utf8');
  refuses(v1, () => verifyNext(v1, Buffer.from(text.replace('{"signatures"', '{ "signatures"')), NOW), 'malformed');
  refuses(v1, () => verifyNext(v1, Buffer.from(text.replace('"threshold":1', '"threshold":1,"threshold":1')), NOW), 'malformed');
  const signed = JSON.parse(text) as { signed: Record<string, unknown>; signatures: unknown };
  signed.signed.extra = 'x';
  refuses(v1, () => verifyNext(v1, encodeCanonical(signed), NOW), 'malformed');
});

test('catch-up: a device at v1 walks v2 and v3 and ends at v3 with its root pinned', () => {
  const last = verifyChain(v1, [v2.bytes, v3.bytes], NOW);
  assert.equal(last.content.version, 3);
  assert.deepEqual(activePins(last, NOW), [computePin(root3.spki)]);
  assert.equal(verifyChain(v1, [], NOW), v1, 'nothing to walk: the trusted bundle');
});

test('a first bundle is accepted only when one of its roots is pinned', () => {
  assert.equal(verifyInitial([computePin(root1.spki)], v1.bytes, NOW).content.version, 1);
  refuses(v1, () => verifyInitial([computePin(attacker.spki)], v1.bytes, NOW), 'unpinned');
  assert.equal(decodeCandidate(v1.bytes).bytes.equals(v1.bytes), true);
});
