/**
 * The native ECDSA verifier (docs/adr/0034) gives node:crypto's verdict for every proof of
 * possession: valid, forged, malformed and non-canonical signatures, off-curve points, every
 * allowed curve and hash. It must also be the verifier this build actually runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import {
  FleetkeyError, buildCsr, parseCsr, verifyCsrSignatureSync,
  type EcCurveAlgorithm, type EcdsaHash, type ParsedCsr,
} from '@fleetkey/protocol';
import { NATIVE_ECDSA_PATH, nativeEcdsa, nativeEcdsaStatus } from '../../src/ca/native-ecdsa.js';

// Group orders and field primes: SEC 2 §2.4.2, §2.5.1, §2.6.1 (as `openssl ecparam -param_enc explicit -text`).
const CURVES: Readonly<Record<EcCurveAlgorithm, { name: string; order: bigint; prime: bigint; bytes: number }>> = {
  p256: {
    name: 'P-256', bytes: 32,
    order: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    prime: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
  },
  p384: {
    name: 'P-384', bytes: 48,
    order: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    prime: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
  },
  p521: {
    name: 'P-521', bytes: 66,
    order: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
    prime: (1n << 521n) - 1n,
  },
};
const CSR_HASH: Readonly<Record<EcCurveAlgorithm, EcdsaHash>> = { p256: 'sha256', p384: 'sha384', p521: 'sha512' };
const HASH_OID: Readonly<Record<EcdsaHash, string>> = {
  sha256: '1.2.840.10045.4.3.2', sha384: '1.2.840.10045.4.3.3', sha512: '1.2.840.10045.4.3.4',
};

// ------------------------------------------------------------ DER for ECDSA-Sig-Value (RFC 3279 §2.2.3)

const len = (n: number): Buffer => (n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]));
const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), len(body.length), body]);
function intBytes(v: bigint): Buffer {
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  const b = Buffer.from(hex, 'hex');
  return (b[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
}
const sigDer = (r: bigint, s: bigint, pad = 0): Buffer =>
  tlv(0x30, Buffer.concat([tlv(0x02, Buffer.concat([Buffer.alloc(pad), intBytes(r)])), tlv(0x02, intBytes(s))]));
function readSig(der: Buffer): { r: bigint; s: bigint } {
  let at = der[1] === 0x81 ? 3 : 2;
  const next = (): bigint => {
    const n = der[at + 1] ?? 0;
    const v = BigInt('0x' + der.subarray(at + 2, at + 2 + n).toString('hex'));
    at += 2 + n;
    return v;
  };
  return { r: next(), s: next() };
}

// ------------------------------------------------------------ the two paths

type Outcome = 'ok' | string;
function outcome(csr: ParsedCsr, native: boolean): Outcome {
  try {
    verifyCsrSignatureSync(csr, native ? nativeEcdsa : undefined);
    return 'ok';
  } catch (err) {
    return err instanceof FleetkeyError ? err.code : `not a FleetkeyError: ${String(err)}`;
  }
}

async function csrFor(curve: EcCurveAlgorithm): Promise<{ csr: ParsedCsr; key: KeyObject }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: CURVES[curve].name });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const der = await buildCsr({ spki, subject: [['CN', 'native-verify']], algorithm: curve, sign: async (d) => sign(CSR_HASH[curve], d, privateKey) });
  return { csr: parseCsr(der), key: privateKey };
}

const signedWith = (csr: ParsedCsr, key: KeyObject, hash: EcdsaHash): ParsedCsr => ({
  ...csr,
  signatureAlgorithm: { ...csr.signatureAlgorithm, oid: HASH_OID[hash], parameters: 'absent' },
  signatureAlgorithmOid: HASH_OID[hash],
  signature: sign(hash, csr.tbs, key),
});

function flip(buf: Buffer, at: number, mask = 0x01): Buffer {
  const b = Buffer.from(buf);
  b[at] = (b[at] ?? 0) ^ mask;
  return b;
}

/** Every way this test breaks a good CSR; each must get the same outcome on both paths. */
function variants(csr: ParsedCsr, curve: EcCurveAlgorithm): Array<[string, ParsedCsr]> {
  const { order, prime, bytes } = CURVES[curve];
  const { r, s } = readSig(csr.signature);
  const point = csr.spki.subarray(csr.spki.length - (1 + 2 * bytes));
  const withPoint = (p: Buffer): ParsedCsr => ({ ...csr, spki: Buffer.concat([csr.spki.subarray(0, csr.spki.length - p.length), p]) });
  const yPlusOne = BigInt('0x' + point.subarray(1 + bytes).toString('hex')) + 1n;
  const coord = (v: bigint): Buffer => Buffer.from(v.toString(16).padStart(2 * bytes, '0'), 'hex');
  const at = randomBytes(2).readUInt16BE() % csr.signature.length;
  return [
    ['as signed', csr],
    ['high-S twin (n − s)', { ...csr, signature: sigDer(r, order - s) }],
    ['signature bit flipped', { ...csr, signature: flip(csr.signature, csr.signature.length - 1) }],
    [`signature byte ${at} flipped`, { ...csr, signature: flip(csr.signature, at, 0x5a) }],
    ['signature truncated', { ...csr, signature: csr.signature.subarray(0, csr.signature.length - 1) }],
    ['signature with a trailing byte', { ...csr, signature: Buffer.concat([csr.signature, Buffer.from([0])]) }],
    ['r with a redundant leading zero (BER, not DER)', { ...csr, signature: sigDer(r, s, 1) }],
    ['r = 0', { ...csr, signature: sigDer(0n, s) }],
    ['s = 0', { ...csr, signature: sigDer(r, 0n) }],
    ['r = n', { ...csr, signature: sigDer(order, s) }],
    ['r + n', { ...csr, signature: sigDer(r + order, s) }],
    ['empty signature', { ...csr, signature: Buffer.alloc(0) }],
    ['oversized signature (2 KiB: the signature followed by zeros)', { ...csr, signature: Buffer.concat([csr.signature, Buffer.alloc(2048)]) }],
    ['oversized DER signature (r of 1,100 bytes)', { ...csr, signature: sigDer(r << 8800n, s) }],
    ['signed bytes changed', { ...csr, tbs: flip(csr.tbs, csr.tbs.length - 1) }],
    ['point off the curve (y + 1)', withPoint(Buffer.concat([point.subarray(0, 1 + bytes), coord(yPlusOne % prime)]))],
    ['x coordinate = p (not a field element)', withPoint(Buffer.concat([Buffer.from([4]), coord(prime), point.subarray(1 + bytes)]))],
    ['point (0, 0)', withPoint(Buffer.concat([Buffer.from([4]), Buffer.alloc(2 * bytes)]))],
  ];
}

// ------------------------------------------------------------ tests

test('the native ECDSA verifier is built and loads, on the event loop and in a worker thread (the CSR worker uses it)', async () => {
  assert.equal(nativeEcdsaStatus.available, true, `native verifier not available: ${nativeEcdsaStatus.reason ?? ''}`);
  const url = new URL('../../src/ca/native-ecdsa.js', import.meta.url).href;
  const worker = new Worker(`import(${JSON.stringify(url)}).then((m) => require('node:worker_threads').parentPort.postMessage(m.nativeEcdsaStatus))`, { eval: true });
  const status = await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  await worker.terminate();
  assert.deepEqual(status, { available: true });
});

for (const curve of ['p256', 'p384', 'p521'] as const) {
  test(`${curve}: the native verifier and node:crypto agree on valid, forged, malformed and off-curve proofs of possession`, async () => {
    const rounds = curve === 'p256' ? 12 : 5;
    let valid = 0;
    for (let i = 0; i < rounds; i++) {
      const { csr, key } = await csrFor(curve);
      const hashed = (['sha256', 'sha384', 'sha512'] as const).map((h): [string, ParsedCsr] => [`ecdsa-with-${h}`, signedWith(csr, key, h)]);
      for (const [label, variant] of [...variants(csr, curve), ...hashed]) {
        const expected = outcome(variant, false);
        assert.equal(outcome(variant, true), expected, `${curve} ${label}`);
        if (expected === 'ok') valid++;
      }
      // The refusals are the ones node:crypto gives, not just "the same".
      const named = new Map(variants(csr, curve));
      const pick = (label: string): ParsedCsr => named.get(label) ?? assert.fail(`no variant ${label}`);
      assert.equal(outcome(pick('signature bit flipped'), true), 'CSR_SIGNATURE_INVALID');
      assert.equal(outcome(pick('oversized signature (2 KiB: the signature followed by zeros)'), true), 'CSR_SIGNATURE_INVALID');
      assert.equal(outcome(pick('point off the curve (y + 1)'), true), 'KEY_NOT_ALLOWED');
    }
    assert.equal(valid, rounds * 5, 'as signed, the high-S twin and three hashes verify in every round');
  });
}

test('random bytes as a signature are refused by both paths', async () => {
  const { csr } = await csrFor('p256');
  for (let i = 0; i < 300; i++) {
    const forged = { ...csr, signature: randomBytes(1 + (i % 80)) };
    assert.equal(outcome(forged, true), 'CSR_SIGNATURE_INVALID');
    assert.equal(outcome(forged, false), 'CSR_SIGNATURE_INVALID');
  }
});

test('the addon refuses arguments of the wrong type, size or range with a TypeError, and verifies nothing', async () => {
  const addon = createRequire(import.meta.url)(NATIVE_ECDSA_PATH) as { verify(...args: unknown[]): number };
  const { csr } = await csrFor('p256');
  const point = csr.spki.subarray(csr.spki.length - 65);
  assert.equal(addon.verify(0, 0, point, csr.tbs, csr.signature), 1);
  const bad: Array<[string, unknown[]]> = [
    ['curve index 3', [3, 0, point, csr.tbs, csr.signature]],
    ['hash index -1', [0, -1, point, csr.tbs, csr.signature]],
    ['P-256 point for P-384', [1, 0, point, csr.tbs, csr.signature]],
    ['compressed point prefix', [0, 0, flip(point, 0, 0x06), csr.tbs, csr.signature]],
    ['point as a string', [0, 0, point.toString('hex'), csr.tbs, csr.signature]],
    ['data as an array', [0, 0, point, [...csr.tbs], csr.signature]],
    ['signature over 1 KiB', [0, 0, point, csr.tbs, Buffer.alloc(1025)]],
    ['four arguments', [0, 0, point, csr.tbs]],
  ];
  for (const [label, args] of bad) assert.throws(() => addon.verify(...args), TypeError, label);
});
