/**
 * The hub's native ECDSA verifier (packages/hub/native, docs/adr/0034): verifies a CSR's proof of
 * possession from the raw public point, without building a node KeyObject per key (OpenSSL 3.0's
 * key import costs about twice the ECDSA verification itself).
 *
 * Invariants:
 * - Optional: when the addon is not built or does not load, `nativeEcdsa` is undefined and callers
 *   verify with node:crypto (same verdicts, more CPU); `nativeEcdsaStatus` says why.
 * - Verdicts equal node:crypto's for every input (differential test, csr-native-verify.test.ts).
 * - Loaded once per thread (the CSR worker loads its own copy); no state across calls.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { EcCurveAlgorithm, EcdsaHash, EcdsaPointVerifier } from '@fleetkey/protocol';

interface Addon {
  /** 1 valid, 0 invalid, -1 point not on the curve. */
  verify(curve: number, hash: number, point: Buffer, data: Buffer, signature: Buffer): number;
}

export const NATIVE_ECDSA_PATH = fileURLToPath(new URL('../../../native/build/Release/fleetkey_ecdsa.node', import.meta.url));

const CURVE_INDEX: Readonly<Record<EcCurveAlgorithm, number>> = { p256: 0, p384: 1, p521: 2 };
const HASH_INDEX: Readonly<Record<EcdsaHash, number>> = { sha256: 0, sha384: 1, sha512: 2 };
const MAX_SIGNATURE_BYTES = 1024; // as the addon's own limit
const VERDICT = { 1: 'valid', 0: 'invalid', [-1]: 'bad-key' } as const;

function load(): { verifier?: EcdsaPointVerifier; reason?: string } {
  let addon: Addon;
  try {
    addon = createRequire(import.meta.url)(NATIVE_ECDSA_PATH) as Addon;
  } catch (err) {
    return { reason: `not loaded from ${NATIVE_ECDSA_PATH}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` };
  }
  return {
    verifier: (curve, hash, point, data, signature) => {
      // No DER ECDSA-Sig-Value of these curves is longer (P-521: ≤ 139 bytes); the addon refuses
      // longer input as a TypeError, node:crypto says "does not verify".
      if (signature.length > MAX_SIGNATURE_BYTES) return 'invalid';
      const verdict = VERDICT[addon.verify(CURVE_INDEX[curve], HASH_INDEX[hash], point, data, signature) as 1 | 0 | -1];
      if (verdict === undefined) throw new Error('native ECDSA verifier returned an unknown verdict');
      return verdict;
    },
  };
}

const loaded = load();

/** The native verifier, or undefined when the addon is not available (see `nativeEcdsaStatus`). */
export const nativeEcdsa: EcdsaPointVerifier | undefined = loaded.verifier;

export const nativeEcdsaStatus: { readonly available: boolean; readonly reason?: string } =
  loaded.reason === undefined ? { available: true } : { available: false, reason: loaded.reason };
