/**
 * Which hub roots are still trusted for what they certified in the past (ADR 0026): the roots of
 * every trust bundle since the latest recovery. Used by factory manifest import, where a kit
 * sub-CA certified before a rotation must still import after it.
 *
 * Invariants:
 * - A recovery is the bundle whose recovery key set differs from its predecessor's: only the
 *   offline recovery key can make that change (ADR 0020, verify.ts), and `hub recover` always
 *   does. Every root of a bundle before the latest recovery is distrusted, not only the one that
 *   was current then: the roots before it were sealed in the same data folder, so whoever stole
 *   one could have taken all of them.
 * - A planned rotation keeps the lineage: the retired root was never compromised, and what it
 *   certified (a kit made before the rotation) stays valid after the overlap.
 * - Pure over decoded bundles, oldest first; keys are returned once each, newest bundle first.
 */
import { decodeBundle, keyIdOf, type TrustBundle } from '@fleetkey/protocol';
import type { Store } from '../storage/types.js';

const sameKeys = (a: readonly Buffer[], b: readonly Buffer[]): boolean =>
  a.length === b.length && a.every((k) => b.some((o) => o.equals(k)));

/** Root SPKIs of every bundle from the latest recovery on (see the module invariants). */
export function rootsSinceRecovery(bundles: readonly TrustBundle[]): Buffer[] {
  let start = 0;
  for (let i = 1; i < bundles.length; i++) {
    if (!sameKeys(bundles[i]!.content.recoveryKeys, bundles[i - 1]!.content.recoveryKeys)) start = i;
  }
  const seen = new Set<string>();
  const out: Buffer[] = [];
  for (const b of bundles.slice(start).reverse()) {
    for (const key of b.content.rootKeys) {
      if (!seen.has(keyIdOf(key))) out.push(key);
      seen.add(keyIdOf(key));
    }
  }
  return out;
}

/** The same over the store's bundle history. */
export async function trustedRootKeys(store: Store): Promise<Buffer[]> {
  return rootsSinceRecovery((await store.trust.list()).map((s) => decodeBundle(s.bytes)));
}
