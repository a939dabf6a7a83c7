/**
 * The TPM attestation checks (TCG "TPM 2.0 Keys for Device Identity and Attestation" §5, the
 * WebAuthn "tpm" statement checks): the hub proves that the operational key lives in the TPM
 * whose EK certificate chains to a vendor root of the organisation.
 *
 * Steps (each refusal names one check; ATTESTATION_FAILED reaches the client):
 * challenge: EK certificate path → owned-chip list → AK public area (restricted, sign, fixedTPM,
 *   fixedParent, sensitiveDataOrigin, not decrypt) → MakeCredential(EK, fresh 32-byte secret,
 *   name(AK)) → single-use challenge.
 * enroll: challenge taken (single use, unexpired, same claim token) → credential proof equals the
 *   secret (only that TPM could activate it for that AK) → TPMS_ATTEST magic TPM_GENERATED_VALUE
 *   and type TPM_ST_ATTEST_CERTIFY (a restricted key signs only TPM-made structures with this
 *   magic) → AK signature over it → certified name = name(key public area) → key attributes
 *   fixedTPM|fixedParent|sensitiveDataOrigin → key = the CSR key → CSR bound to this TLS session.
 *
 * Invariants: pure checks over bytes; no storage, no I/O. tpm2_certify (tools 5.4) takes no
 * qualifying data, so freshness comes from the activated secret and the channel binding.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ekParametersOf, makeCredential } from './make-credential.js';
import {
  hasAttributes, hashOf, parseTpm2bPublic, parseTpmsAttest, parseTpmtSignature, TPM_ALG, TPM_GENERATED_VALUE, TPM_ST_ATTEST_CERTIFY, TPMA,
  TpmFormatError, type TpmPublic,
} from './structures.js';
import { curveBytes, refuse, verifySignature } from '../evidence.js';

export const AK_REQUIRED = TPMA.restricted | TPMA.sign | TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin;
export const KEY_REQUIRED = TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.sign;

export interface TpmChallengeMaterial {
  readonly ak: TpmPublic;
  readonly secret: Buffer;
  readonly credentialBlob: Buffer;
  readonly encryptedSecret: Buffer;
}

export interface TpmEvidence {
  readonly activatedSecret: Buffer;
  /** TPM2B_PUBLIC of the operational key. */
  readonly keyPublic: Buffer;
  /** TPMS_ATTEST from TPM2_Certify. */
  readonly certifyInfo: Buffer;
  /** TPMT_SIGNATURE by the AK over `certifyInfo`. */
  readonly certifySignature: Buffer;
}

function parsed<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (cause) {
    if (cause instanceof TpmFormatError) refuse(`${what}: ${cause.message}`);
    throw cause;
  }
}

/** Checks the AK and makes the credential for it (the EK key comes from the validated EK certificate). */
export function tpmChallenge(ekCertificateKey: import('node:crypto').KeyObject, akPublicBytes: Buffer): TpmChallengeMaterial {
  const ak = parsed('AK public area', () => parseTpm2bPublic(akPublicBytes));
  if (!hasAttributes(ak, AK_REQUIRED) || (ak.attributes & TPMA.decrypt) !== 0) refuse('the AK is not a restricted, fixed, TPM-generated signing key');
  const ek = parsed('EK', () => ekParametersOf(ekCertificateKey));
  const secret = randomBytes(32);
  const made = makeCredential(ek, secret, ak.name);
  return { ak, secret, credentialBlob: made.credentialBlob, encryptedSecret: made.secret };
}

/** The enroll-time checks after the challenge was taken; returns the certified key's SPKI. */
export function verifyTpmEvidence(ak: TpmPublic, secret: Buffer, evidence: TpmEvidence): Buffer {
  if (evidence.activatedSecret.length !== secret.length || !timingSafeEqual(evidence.activatedSecret, secret)) refuse('wrong credential proof (the secret was not activated by this TPM for this AK)');
  const attest = parsed('TPMS_ATTEST', () => parseTpmsAttest(evidence.certifyInfo));
  if (attest.magic !== TPM_GENERATED_VALUE) refuse('attestation magic is not TPM_GENERATED_VALUE');
  if (attest.type !== TPM_ST_ATTEST_CERTIFY) refuse('attestation type is not TPM_ST_ATTEST_CERTIFY');
  const signature = parsed('TPMT_SIGNATURE', () => parseTpmtSignature(evidence.certifySignature, curveBytes(ak.key)));
  if (ak.scheme !== TPM_ALG.NULL && (signature.sigAlg !== ak.scheme || signature.hashAlg !== ak.schemeHash)) refuse('signature scheme is not the AK scheme');
  const hash = parsed('signature hash', () => hashOf(signature.hashAlg)).name;
  const kind = signature.ecdsa ? 'ecdsa-p1363' : signature.sigAlg === TPM_ALG.RSAPSS ? 'rsapss' : 'rsassa';
  if (!verifySignature(hash, evidence.certifyInfo, ak.key, signature.value, kind)) refuse('certify signature does not verify under the AK');
  const key = parsed('key public area', () => parseTpm2bPublic(evidence.keyPublic));
  if (!attest.certifiedName.equals(key.name)) refuse('certified name is not the name of the presented key');
  if (!hasAttributes(key, KEY_REQUIRED)) refuse('the key is not fixedTPM|fixedParent|sensitiveDataOrigin (exportable or imported)');
  return key.spki;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
