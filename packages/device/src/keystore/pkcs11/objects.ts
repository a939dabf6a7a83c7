/**
 * PKCS#11 key objects for fleetkey's algorithms: generation templates, reading the public key
 * back as SPKI, and the signing mechanism.
 *
 * Invariants:
 * - Private keys are generated with CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true and
 *   CKA_EXTRACTABLE false (PKCS#11 v2.40 §4.9): the token never reveals them, and neither can
 *   a later C_SetAttributeValue (SENSITIVE may only be set, EXTRACTABLE only cleared).
 * - A key counts as hardware-held only if the token reports CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE
 *   and CKA_NEVER_EXTRACTABLE true and CKA_EXTRACTABLE false; anything else is refused on open.
 * - ECDSA is CKM_ECDSA over a digest made in Node (SoftHSM 2.6 lacks CKM_ECDSA_SHA256; the
 *   hash matches the curve, RFC 5758 §3.2), and the raw r‖s is converted to DER. Ed25519 is
 *   CKM_EDDSA over the message (PKCS#11 v3.0 §2.3.14); RSA is CKM_SHA256_RSA_PKCS (PKCS#1 v1.5).
 * - The constants below are the OASIS pkcs11t.h values, plain numbers, so that importing this
 *   module loads no native addon (pkcs11js is imported lazily by token.ts only).
 */
import { createHash, createPublicKey } from 'node:crypto';
import { decodeOid, oid, readSingle, Tag, type KeyAlgorithm } from '@fleetkey/protocol';
import { digestFor, ecdsaRawToDer } from '../algorithms.js';

/** PKCS#11 v2.40 §3–§4 and v3.0 §2.3 (EdDSA) constants fleetkey uses. */
export const CK = Object.freeze({
  CKA_CLASS: 0x0,
  CKA_TOKEN: 0x1,
  CKA_PRIVATE: 0x2,
  CKA_LABEL: 0x3,
  CKA_VALUE: 0x11,
  CKA_KEY_TYPE: 0x100,
  CKA_ID: 0x102,
  CKA_SENSITIVE: 0x103,
  CKA_SIGN: 0x108,
  CKA_VERIFY: 0x10a,
  CKA_MODULUS: 0x120,
  CKA_MODULUS_BITS: 0x121,
  CKA_PUBLIC_EXPONENT: 0x122,
  CKA_EXTRACTABLE: 0x162,
  CKA_NEVER_EXTRACTABLE: 0x164,
  CKA_ALWAYS_SENSITIVE: 0x165,
  CKA_EC_PARAMS: 0x180,
  CKA_EC_POINT: 0x181,
  CKO_PUBLIC_KEY: 0x2,
  CKO_PRIVATE_KEY: 0x3,
  CKK_RSA: 0x0,
  CKK_EC: 0x3,
  CKK_EC_EDWARDS: 0x40,
  CKM_RSA_PKCS_KEY_PAIR_GEN: 0x0,
  CKM_SHA256_RSA_PKCS: 0x40,
  CKM_EC_KEY_PAIR_GEN: 0x1040,
  CKM_ECDSA: 0x1041,
  CKM_EC_EDWARDS_KEY_PAIR_GEN: 0x1055,
  CKM_EDDSA: 0x1057,
  CKF_OS_LOCKING_OK: 0x2,
  CKF_RW_SESSION: 0x2,
  CKF_SERIAL_SESSION: 0x4,
  CKU_USER: 0x1,
  CKR_ATTRIBUTE_SENSITIVE: 0x11,
  CKR_USER_ALREADY_LOGGED_IN: 0x100,
  CKR_CRYPTOKI_ALREADY_INITIALIZED: 0x191,
  CKR_PIN_INCORRECT: 0xa0,
});

/** A PKCS#11 attribute as pkcs11js takes it. */
export interface Attribute {
  readonly type: number;
  readonly value?: number | boolean | string | Buffer;
}

const RSA_MODULUS_BITS = 3072;

const CURVE_OIDS: Readonly<Record<string, KeyAlgorithm>> = {
  '1.2.840.10045.3.1.7': 'p256', '1.3.132.0.34': 'p384', '1.3.132.0.35': 'p521', '1.3.101.112': 'ed25519',
};
const JWK_CURVES: Partial<Record<KeyAlgorithm, string>> = { p256: 'P-256', p384: 'P-384', p521: 'P-521', ed25519: 'Ed25519' };

function curveOid(algorithm: KeyAlgorithm): string {
  const found = Object.entries(CURVE_OIDS).find(([, alg]) => alg === algorithm);
  if (found === undefined) throw new RangeError(`${algorithm} has no curve`);
  return found[0];
}

export interface GenerationTemplates {
  readonly mechanism: number;
  readonly publicKey: Attribute[];
  readonly privateKey: Attribute[];
}

/** The C_GenerateKeyPair mechanism and templates for `algorithm` under `label`/`id`. */
export function generationTemplates(algorithm: KeyAlgorithm, label: string, id: Buffer): GenerationTemplates {
  const common = [{ type: CK.CKA_TOKEN, value: true }, { type: CK.CKA_LABEL, value: label }, { type: CK.CKA_ID, value: id }];
  const privateKey = [...common, { type: CK.CKA_PRIVATE, value: true }, { type: CK.CKA_SENSITIVE, value: true },
    { type: CK.CKA_EXTRACTABLE, value: false }, { type: CK.CKA_SIGN, value: true }];
  const publicKey = [...common, { type: CK.CKA_PRIVATE, value: false }, { type: CK.CKA_VERIFY, value: true }];
  if (algorithm === 'rsa') {
    return { mechanism: CK.CKM_RSA_PKCS_KEY_PAIR_GEN, privateKey, publicKey: [...publicKey,
      { type: CK.CKA_MODULUS_BITS, value: RSA_MODULUS_BITS }, { type: CK.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }] };
  }
  const mechanism = algorithm === 'ed25519' ? CK.CKM_EC_EDWARDS_KEY_PAIR_GEN : CK.CKM_EC_KEY_PAIR_GEN;
  return { mechanism, privateKey, publicKey: [...publicKey, { type: CK.CKA_EC_PARAMS, value: oid(curveOid(algorithm)) }] };
}

/** The algorithm of a key from its CKA_KEY_TYPE and CKA_EC_PARAMS, or undefined if unsupported. */
export function algorithmOf(keyType: number, ecParams: Buffer | undefined): KeyAlgorithm | undefined {
  if (keyType === CK.CKK_RSA) return 'rsa';
  if ((keyType !== CK.CKK_EC && keyType !== CK.CKK_EC_EDWARDS) || ecParams === undefined) return undefined;
  try {
    // PKCS#11 v3.0 §2.3.5: Edwards curves may be named by a PrintableString (SoftHSM does so on private keys).
    if (ecParams[0] === Tag.PRINTABLE_STRING) return readSingle(ecParams, Tag.PRINTABLE_STRING).value.toString('latin1') === 'edwards25519' ? 'ed25519' : undefined;
    return CURVE_OIDS[decodeOid(readSingle(ecParams, Tag.OID).value)];
  } catch {
    return undefined;
  }
}

/** CKA_EC_POINT is a DER OCTET STRING (PKCS#11 v2.40 §2.3.3); a few tokens return it bare. */
function ecPoint(value: Buffer): Buffer {
  try {
    return readSingle(value, Tag.OCTET_STRING).value;
  } catch {
    return value;
  }
}

const b64url = (bytes: Buffer): string => bytes.toString('base64url');

/** The SPKI DER from the public key object's attributes (CKA_EC_POINT or modulus/exponent). */
export function spkiFrom(algorithm: KeyAlgorithm, attrs: { ecPoint?: Buffer; modulus?: Buffer; exponent?: Buffer }): Buffer {
  let jwk: Record<string, string>;
  if (algorithm === 'rsa') {
    if (attrs.modulus === undefined || attrs.exponent === undefined) throw new RangeError('RSA public key without modulus');
    jwk = { kty: 'RSA', n: b64url(attrs.modulus), e: b64url(attrs.exponent) };
  } else {
    if (attrs.ecPoint === undefined) throw new RangeError('EC public key without CKA_EC_POINT');
    const point = ecPoint(attrs.ecPoint);
    if (algorithm === 'ed25519') {
      jwk = { kty: 'OKP', crv: 'Ed25519', x: b64url(point) };
    } else {
      const half = (point.length - 1) / 2; // SEC 1 §2.3.3 uncompressed: 04 ‖ X ‖ Y
      if (point[0] !== 0x04 || !Number.isInteger(half)) throw new RangeError('EC point is not uncompressed');
      jwk = { kty: 'EC', crv: JWK_CURVES[algorithm] ?? '', x: b64url(point.subarray(1, 1 + half)), y: b64url(point.subarray(1 + half)) };
    }
  }
  return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}

/** What goes to C_Sign, with which mechanism, and how to turn the result into X.509 form. */
export function signingPlan(algorithm: KeyAlgorithm, data: Buffer): { mechanism: number; input: Buffer; finish: (raw: Buffer) => Buffer } {
  if (algorithm === 'rsa') return { mechanism: CK.CKM_SHA256_RSA_PKCS, input: data, finish: (raw) => raw };
  if (algorithm === 'ed25519') return { mechanism: CK.CKM_EDDSA, input: data, finish: (raw) => raw };
  const digest = createHash(digestFor(algorithm) ?? 'sha256').update(data).digest();
  return { mechanism: CK.CKM_ECDSA, input: digest, finish: (raw) => ecdsaRawToDer(raw, algorithm) };
}

/** Upper bound of a signature's raw size, for C_Sign's output buffer. */
export const MAX_SIGNATURE_BYTES = 1024;
