/**
 * The CA signing key seam. Implementations: `software-signer.ts` (a node KeyObject, sealed at
 * rest); PKCS#11 later. Every implementation runs `test/unit/signer.contract.ts`.
 *
 * Invariants:
 * - `sign` returns the X.509 form of the signature: DER Ecdsa-Sig-Value for ECDSA (RFC 5480
 *   §2.2 / RFC 5758 §3.2), the 64-byte signature for Ed25519 (RFC 8410 §6), PKCS#1 v1.5 for RSA.
 * - The hash is fixed by `algorithm` (`signatureAlgorithmFor`): callers pass the data, not a digest.
 * - `spki` is the DER SubjectPublicKeyInfo of the signing key and never changes.
 */
import type { KeyAlgorithm } from '@fleetkey/protocol';

export interface Signer {
  readonly algorithm: KeyAlgorithm;
  readonly spki: Buffer;
  sign(data: Buffer): Promise<Buffer>;
}
