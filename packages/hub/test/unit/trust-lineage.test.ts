// Which past roots a factory kit may be certified by at import (ADR 0026, trust/lineage.ts):
// every root since the latest recovery; a recovery distrusts all earlier roots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { computePin, signBundle, type BundleSigner, type TrustBundle } from '@fleetkey/protocol';
import { rootsSinceRecovery } from '../../src/trust/lineage.js';

const DAY = 86_400_000;
const now = Date.UTC(2027, 0, 1);
function key(): BundleSigner {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  return { spki: publicKey.export({ format: 'der', type: 'spki' }), sign: async (d) => sign('sha384', d, privateKey) };
}
const [r1, r2, r3, r4, rec1, rec2] = [key(), key(), key(), key(), key(), key()];
const bundle = (version: number, root: BundleSigner, recovery: BundleSigner): Promise<TrustBundle> => signBundle({
  version, issuedAt: now, expires: now + DAY, rootKeys: [root.spki], recoveryKeys: [recovery.spki], threshold: 1, pins: [{ pin: computePin(root.spki) }],
}, [root]);
const ids = (keys: readonly Buffer[]): string[] => keys.map((k) => computePin(k));

test('planned rotations keep the lineage: every root of the history is still trusted, newest first', async () => {
  const history = [await bundle(1, r1, rec1), await bundle(2, r2, rec1), await bundle(3, r3, rec1)];
  assert.deepEqual(ids(rootsSinceRecovery(history)), ids([r3.spki, r2.spki, r1.spki]));
});

test('attack: a root from before hub recover (the stolen one, and the ones sealed beside it) is not trusted', async () => {
  const history = [await bundle(1, r1, rec1), await bundle(2, r2, rec1), await bundle(3, r3, rec2), await bundle(4, r4, rec2)];
  const trusted = ids(rootsSinceRecovery(history));
  assert.deepEqual(trusted, ids([r4.spki, r3.spki]));
  assert.ok(!trusted.includes(computePin(r2.spki)) && !trusted.includes(computePin(r1.spki)));
});

test('a refresh (same keys, next version) changes nothing; an empty history trusts nothing', async () => {
  assert.deepEqual(ids(rootsSinceRecovery([await bundle(1, r1, rec1), await bundle(2, r1, rec1)])), ids([r1.spki]));
  assert.deepEqual(rootsSinceRecovery([]), []);
});
