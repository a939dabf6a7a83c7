/** What both attestation flows share: the refusal type and signature checks. */
import { constants, verify, type KeyObject } from 'node:crypto';

/** An attestation check failed; `reason` goes to the audit record, the client sees ATTESTATION_FAILED. */
export class AttestationError extends Error {}

export function refuse(reason: string): never {
  throw new AttestationError(reason);
}

/** Bytes of one ECDSA component for the key's curve (r and s are padded to it). */
export function curveBytes(key: KeyObject): number {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve === 'secp384r1' ? 48 : curve === 'secp521r1' ? 66 : 32;
}

/** Verifies an ECDSA (r ‖ s) or RSA signature; never throws. */
export function verifySignature(hash: string, data: Buffer, key: KeyObject, signature: Buffer, kind: 'ecdsa-p1363' | 'ecdsa-der' | 'rsassa' | 'rsapss'): boolean {
  try {
    if (kind === 'ecdsa-p1363') return verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    if (kind === 'rsapss') return verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature);
    return verify(hash, data, key, signature);
  } catch {
    return false;
  }
}
