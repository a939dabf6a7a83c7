/**
 * The secure-element attestation check: the chip's factory key signs the hub's nonce together
 * with the TLS channel binding (RFC 9266), and the operational certificate is for that same
 * factory key (ADR 0027: a generic SE cannot prove a second key is inside it).
 *
 * Signed message (domain-separated, fixed length): "FLEETKEY-SE-ATTEST-V1" ‖ 0x00 ‖ nonce (32) ‖
 * tls-exporter (32). ECDSA signatures are DER (X.509 form, what PKCS#11 stores give after r‖s → DER),
 * hashed with SHA-256/384/512 by curve; RSA is PKCS#1 v1.5 SHA-256.
 */
import type { X509Certificate } from 'node:crypto';
import { refuse, verifySignature } from './evidence.js';

export const SE_CONTEXT = Buffer.from('FLEETKEY-SE-ATTEST-V1\0', 'ascii');

export function seSignedMessage(nonce: Buffer, binding: Buffer): Buffer {
  return Buffer.concat([SE_CONTEXT, nonce, binding]);
}

function hashFor(cert: X509Certificate): string {
  const curve = cert.publicKey.asymmetricKeyDetails?.namedCurve;
  return curve === 'secp384r1' ? 'sha384' : curve === 'secp521r1' ? 'sha512' : 'sha256';
}

/** Refuses unless `signature` is the chip certificate's key over nonce ‖ binding. */
export function verifySeEvidence(chip: X509Certificate, nonce: Buffer, binding: Buffer, signature: Buffer): void {
  const key = chip.publicKey;
  const kind = key.asymmetricKeyType === 'rsa' ? 'rsassa' : key.asymmetricKeyType === 'ec' ? 'ecdsa-der' : undefined;
  if (kind === undefined) refuse('the chip key type is not supported (ECDSA or RSA)');
  if (!verifySignature(hashFor(chip), seSignedMessage(nonce, binding), key, signature, kind)) {
    refuse('the chip signature over nonce and channel binding does not verify');
  }
}
