/**
 * TPM 2.0 wire structures the hub reads (TPM 2.0 Library Part 2, "Structures", rev 1.59):
 * TPM2B_PUBLIC / TPMT_PUBLIC (§12.2), object names (Part 1 §16), TPMS_ATTEST (§10.12.12) and
 * TPMT_SIGNATURE (§11.3.4). Pure: no I/O.
 *
 * Invariants:
 * - Every reader is bounds-checked and requires the structure to end exactly where its size says;
 *   any fault throws `TpmFormatError` (callers turn it into ATTESTATION_FAILED with the reason).
 * - Only what fleetkey accepts is parsed: RSA and ECC (NIST P-256/P-384/P-521) keys with a
 *   SHA-256/384/512 name algorithm; everything else is a format error, never a guess.
 * - A name is nameAlg ‖ H_nameAlg(TPMT_PUBLIC bytes exactly as received) (Part 1 §16).
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';

export class TpmFormatError extends Error {}

/** TPM_ALG_ID values (Part 2 §6.3). */
export const TPM_ALG = { RSA: 0x0001, SHA256: 0x000b, SHA384: 0x000c, SHA512: 0x000d, NULL: 0x0010, RSASSA: 0x0014, RSAPSS: 0x0016, ECDSA: 0x0018, ECC: 0x0023, AES: 0x0006, CFB: 0x0043 } as const;
/** TPMA_OBJECT bits (Part 2 §8.3.2). */
export const TPMA = { fixedTPM: 1 << 1, stClear: 1 << 2, fixedParent: 1 << 4, sensitiveDataOrigin: 1 << 5, userWithAuth: 1 << 6, adminWithPolicy: 1 << 7, restricted: 1 << 16, decrypt: 1 << 17, sign: 1 << 18 } as const;
/** TPM_GENERATED_VALUE (Part 2 §6.2) and TPM_ST_ATTEST_CERTIFY (§6.9). */
export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_CERTIFY = 0x8017;

const HASHES: ReadonlyMap<number, { name: string; size: number }> = new Map([
  [TPM_ALG.SHA256, { name: 'sha256', size: 32 }], [TPM_ALG.SHA384, { name: 'sha384', size: 48 }], [TPM_ALG.SHA512, { name: 'sha512', size: 64 }],
]);
const CURVES: ReadonlyMap<number, string> = new Map([[0x0003, 'P-256'], [0x0004, 'P-384'], [0x0005, 'P-521']]);

export function hashOf(alg: number): { name: string; size: number } {
  const hash = HASHES.get(alg);
  if (hash === undefined) throw new TpmFormatError(`hash algorithm 0x${alg.toString(16)} is not supported`);
  return hash;
}

/** A bounds-checked big-endian reader over one TPM structure. */
export class TpmReader {
  #offset = 0;
  constructor(private readonly buf: Buffer) {}
  u16(): number { return this.#take(2).readUInt16BE(0); }
  u32(): number { return this.#take(4).readUInt32BE(0); }
  bytes(n: number): Buffer { return this.#take(n); }
  /** A TPM2B_*: UINT16 size then that many bytes. */
  sized(): Buffer { return this.#take(this.u16()); }
  get offset(): number { return this.#offset; }
  end(what: string): void {
    if (this.#offset !== this.buf.length) throw new TpmFormatError(`${what}: ${this.buf.length - this.#offset} trailing bytes`);
  }
  #take(n: number): Buffer {
    if (this.#offset + n > this.buf.length) throw new TpmFormatError('structure is truncated');
    const out = this.buf.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return out;
  }
}

export interface TpmPublic {
  /** TPMT_PUBLIC bytes exactly as received (what the name hashes). */
  readonly tpmt: Buffer;
  readonly type: 'rsa' | 'ecc';
  readonly nameAlg: number;
  readonly attributes: number;
  /** Signing scheme and its hash (TPM_ALG_NULL when the key has none). */
  readonly scheme: number;
  readonly schemeHash: number;
  readonly key: KeyObject;
  /** DER SubjectPublicKeyInfo of the key (what a CSR carries). */
  readonly spki: Buffer;
  /** nameAlg ‖ H(tpmt) (Part 1 §16). */
  readonly name: Buffer;
}

/** Parses a TPM2B_PUBLIC (as tpm2-tools writes `-u` files). */
export function parseTpm2bPublic(buf: Buffer): TpmPublic {
  const outer = new TpmReader(buf);
  const tpmt = outer.sized();
  outer.end('TPM2B_PUBLIC');
  return parseTpmtPublic(tpmt);
}

export function parseTpmtPublic(tpmt: Buffer): TpmPublic {
  const r = new TpmReader(tpmt);
  const typeId = r.u16();
  const nameAlg = r.u16();
  const hash = hashOf(nameAlg);
  const attributes = r.u32();
  r.sized(); // authPolicy
  const symmetric = r.u16();
  if (symmetric !== TPM_ALG.NULL) r.bytes(4); // keyBits + mode (Part 2 §11.1.7)
  const scheme = r.u16();
  const schemeHash = scheme === TPM_ALG.NULL ? TPM_ALG.NULL : r.u16();
  let jwk: Record<string, string>;
  if (typeId === TPM_ALG.RSA) {
    r.u16(); // keyBits (the modulus says it)
    const exponent = r.u32() || 65537; // 0 means the default 2^16 + 1 (Part 2 §12.2.3.5)
    const n = r.sized();
    jwk = { kty: 'RSA', n: n.toString('base64url'), e: Buffer.from(exponent.toString(16).padStart(6, '0'), 'hex').toString('base64url') };
  } else if (typeId === TPM_ALG.ECC) {
    const crv = CURVES.get(r.u16());
    if (crv === undefined) throw new TpmFormatError('unsupported ECC curve');
    if (r.u16() !== TPM_ALG.NULL) r.u16(); // kdf scheme + hash
    const x = r.sized();
    const y = r.sized();
    jwk = { kty: 'EC', crv, x: x.toString('base64url'), y: y.toString('base64url') };
  } else {
    throw new TpmFormatError(`public area type 0x${typeId.toString(16)} is not supported`);
  }
  r.end('TPMT_PUBLIC');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk, format: 'jwk' });
  } catch (cause) {
    throw new TpmFormatError('the public key is not a valid point or modulus', { cause });
  }
  const name = Buffer.concat([u16(nameAlg), createHash(hash.name).update(tpmt).digest()]);
  return { tpmt, type: typeId === TPM_ALG.RSA ? 'rsa' : 'ecc', nameAlg, attributes, scheme, schemeHash, key, spki: key.export({ format: 'der', type: 'spki' }), name };
}

export function hasAttributes(pub: TpmPublic, bits: number): boolean {
  return (pub.attributes & bits) >>> 0 === bits >>> 0;
}

export interface TpmsAttestCertify {
  readonly magic: number;
  readonly type: number;
  readonly qualifiedSigner: Buffer;
  readonly extraData: Buffer;
  /** TPMS_CERTIFY_INFO.name: the name of the certified object. */
  readonly certifiedName: Buffer;
  readonly certifiedQualifiedName: Buffer;
}

/** Parses TPMS_ATTEST (as `tpm2_certify -o` writes it); `attested` is read for CERTIFY only. */
export function parseTpmsAttest(buf: Buffer): TpmsAttestCertify {
  const r = new TpmReader(buf);
  const magic = r.u32();
  const type = r.u16();
  const qualifiedSigner = r.sized();
  const extraData = r.sized();
  r.bytes(17); // TPMS_CLOCK_INFO: clock(8) resetCount(4) restartCount(4) safe(1)
  r.bytes(8); // firmwareVersion
  if (type !== TPM_ST_ATTEST_CERTIFY) return { magic, type, qualifiedSigner, extraData, certifiedName: Buffer.alloc(0), certifiedQualifiedName: Buffer.alloc(0) };
  const certifiedName = r.sized();
  const certifiedQualifiedName = r.sized();
  r.end('TPMS_ATTEST');
  return { magic, type, qualifiedSigner, extraData, certifiedName, certifiedQualifiedName };
}

export interface TpmSignature {
  readonly sigAlg: number;
  readonly hashAlg: number;
  /** ECDSA: r ‖ s, each left-padded to the curve size; RSA: the signature. */
  readonly value: Buffer;
  readonly ecdsa: boolean;
}

/** Parses TPMT_SIGNATURE (`tpm2_certify -f tss`). */
export function parseTpmtSignature(buf: Buffer, curveBytes: number): TpmSignature {
  const r = new TpmReader(buf);
  const sigAlg = r.u16();
  const hashAlg = r.u16();
  let value: Buffer;
  if (sigAlg === TPM_ALG.ECDSA) {
    const pad = (b: Buffer): Buffer => {
      if (b.length > curveBytes) throw new TpmFormatError('ECDSA component too long');
      return Buffer.concat([Buffer.alloc(curveBytes - b.length), b]);
    };
    value = Buffer.concat([pad(r.sized()), pad(r.sized())]);
  } else if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
    value = r.sized();
  } else {
    throw new TpmFormatError(`signature algorithm 0x${sigAlg.toString(16)} is not supported`);
  }
  r.end('TPMT_SIGNATURE');
  return { sigAlg, hashAlg, value, ecdsa: sigAlg === TPM_ALG.ECDSA };
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** A TPM2B_* around `data`. */
export function tpm2b(data: Buffer): Buffer {
  return Buffer.concat([u16(data.length), data]);
}
