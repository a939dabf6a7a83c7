/**
 * TPM2_MakeCredential done by the hub in node:crypto (TPM 2.0 Library Part 3 §12.6; the
 * protection of the credential is Part 1 §24 "Credential Protection", the key derivations
 * Part 1 §11.4.10).
 *
 * Invariants:
 * - Only a TPM that holds the private EK *and* has loaded an object whose name is `objectName`
 *   can recover `credential` (TPM2_ActivateCredential checks the outer HMAC over the name first).
 * - The seed is fresh for every call (32 random bytes for SHA-256, ...): two credentials for the
 *   same AK never share keys.
 * - The EK parameters follow the TCG EK Credential Profile default templates: RSA 2048 and
 *   ECC P-256 EKs use SHA-256 and AES-128-CFB (templates L-1, L-2); ECC P-384 uses SHA-384 and
 *   AES-256-CFB (template H-3). Other EKs are refused.
 * - Pure apart from the random seed / ephemeral key.
 */
import { constants, createCipheriv, createECDH, createHash, createHmac, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { hashOf, TPM_ALG, TpmFormatError, tpm2b, u16, u32 } from './structures.js';

export interface EkParameters {
  readonly key: KeyObject;
  readonly nameAlg: number;
  /** AES key size of the EK's symmetric (storage) definition. */
  readonly symmetricBits: 128 | 256;
}

export interface MadeCredential {
  /** TPM2B_ID_OBJECT: integrity HMAC + encrypted identity. */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET: the seed, encrypted to the EK. */
  readonly secret: Buffer;
}

/** The EK parameters of the profile's default template for this key (see the invariants). */
export function ekParametersOf(key: KeyObject): EkParameters {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa' && details.modulusLength === 2048) return { key, nameAlg: TPM_ALG.SHA256, symmetricBits: 128 };
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') return { key, nameAlg: TPM_ALG.SHA256, symmetricBits: 128 };
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1') return { key, nameAlg: TPM_ALG.SHA384, symmetricBits: 256 };
  throw new TpmFormatError('the EK is not an RSA 2048, ECC P-256 or ECC P-384 key');
}

/** KDFa (Part 1 §11.4.10.2): HMAC-based counter-mode KDF (SP 800-108). Labels get their NUL. */
export function kdfA(hashAlg: number, key: Buffer, label: string, contextU: Buffer, contextV: Buffer, bits: number): Buffer {
  const hash = hashOf(hashAlg);
  const out: Buffer[] = [];
  const labelBytes = Buffer.concat([Buffer.from(label, 'ascii'), Buffer.from([0])]);
  for (let i = 1, have = 0; have < bits / 8; i++, have += hash.size) {
    out.push(createHmac(hash.name, key).update(Buffer.concat([u32(i), labelBytes, contextU, contextV, u32(bits)])).digest());
  }
  return Buffer.concat(out).subarray(0, bits / 8);
}

/** KDFe (Part 1 §11.4.10.3): the ECDH one-step KDF (SP 800-56A §5.8.1). */
export function kdfE(hashAlg: number, z: Buffer, label: string, partyU: Buffer, partyV: Buffer, bits: number): Buffer {
  const hash = hashOf(hashAlg);
  const out: Buffer[] = [];
  const labelBytes = Buffer.concat([Buffer.from(label, 'ascii'), Buffer.from([0])]);
  for (let i = 1, have = 0; have < bits / 8; i++, have += hash.size) {
    out.push(createHash(hash.name).update(Buffer.concat([u32(i), z, labelBytes, partyU, partyV])).digest());
  }
  return Buffer.concat(out).subarray(0, bits / 8);
}

/** The seed and its encryption to the EK (Part 1 §24.4: RSA-OAEP or ECDH, label "IDENTITY"). */
function seedFor(ek: EkParameters): { seed: Buffer; encrypted: Buffer } {
  const size = hashOf(ek.nameAlg).size;
  if (ek.key.asymmetricKeyType === 'rsa') {
    const seed = randomBytes(size);
    const encrypted = publicEncrypt({ key: ek.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hashOf(ek.nameAlg).name, oaepLabel: Buffer.from('IDENTITY\0', 'ascii') }, seed);
    return { seed, encrypted };
  }
  const jwk = ek.key.export({ format: 'jwk' });
  const curve = jwk.crv === 'P-256' ? 'prime256v1' : 'secp384r1';
  const ekX = Buffer.from(jwk.x ?? '', 'base64url');
  const ekY = Buffer.from(jwk.y ?? '', 'base64url');
  const ephemeral = createECDH(curve);
  ephemeral.generateKeys();
  const z = ephemeral.computeSecret(Buffer.concat([Buffer.from([4]), ekX, ekY]));
  const point = ephemeral.getPublicKey();
  const half = (point.length - 1) / 2;
  const [x, y] = [point.subarray(1, 1 + half), point.subarray(1 + half)];
  return { seed: kdfE(ek.nameAlg, z, 'IDENTITY', x, ekX, size * 8), encrypted: Buffer.concat([tpm2b(x), tpm2b(y)]) };
}

/**
 * TPM2_MakeCredential(handle = EK, credential, objectName) → (credentialBlob, secret).
 *
 * @example
 * const made = makeCredential(ekParametersOf(ekCert.publicKey), randomBytes(32), akPublic.name);
 */
export function makeCredential(ek: EkParameters, credential: Buffer, objectName: Buffer): MadeCredential {
  const hash = hashOf(ek.nameAlg);
  if (credential.length === 0 || credential.length > hash.size) throw new TpmFormatError('credential size out of range');
  const { seed, encrypted } = seedFor(ek);
  // Part 1 §24.4: symKey = KDFa(nameAlg, seed, "STORAGE", name, NULL, symBits); CFB with a zero IV.
  const symKey = kdfA(ek.nameAlg, seed, 'STORAGE', objectName, Buffer.alloc(0), ek.symmetricBits);
  const cipher = createCipheriv(`aes-${ek.symmetricBits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(tpm2b(credential)), cipher.final()]);
  // Part 1 §24.5: outerHMAC = HMAC(KDFa(nameAlg, seed, "INTEGRITY", NULL, NULL, bits), encIdentity ‖ name).
  const hmacKey = kdfA(ek.nameAlg, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), hash.size * 8);
  const integrity = createHmac(hash.name, hmacKey).update(Buffer.concat([encIdentity, objectName])).digest();
  const idObject = Buffer.concat([tpm2b(integrity), encIdentity]);
  return { credentialBlob: tpm2b(idObject), secret: tpm2b(encrypted) };
}

/** The file `tpm2_activatecredential -i` reads (tpm2-tools: magic 0xBADCC0DE, version 1). */
export function toolsCredentialFile(made: MadeCredential): Buffer {
  return Buffer.concat([u32(0xbadcc0de), u32(1), made.credentialBlob, made.secret]);
}

