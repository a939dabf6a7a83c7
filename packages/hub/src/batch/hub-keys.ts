/**
 * Device keys the hub makes for `hub-keys` batches (ADR 0014), as the DER the job needs: the
 * SPKI for the certificate and the PKCS#8 to seal.
 *
 * Invariants:
 * - Keys come from node:crypto `generateKeyPair` (OpenSSL's CSPRNG), run on the libuv pool, which
 *   also exports them as JWK there: the event loop only assembles bytes.
 * - The DER forms are assembled from the key's JWK members (RFC 7518 §6.2: fixed-length x, y, d;
 *   RFC 8037 §2 for Ed25519), not by OpenSSL's encoders, which cost ~260 µs per key and were the
 *   batch job's main hot spot (docs/benchmarks.md). SPKI: RFC 5480 §2 (EC), RFC 8410 §4 (Ed25519).
 *   PKCS#8: RFC 5208 §5 around ECPrivateKey (RFC 5915 §3: version 1, the private key, the public
 *   key [1]; the curve only in the AlgorithmIdentifier) or CurvePrivateKey (RFC 8410 §7).
 *   The unit test checks both byte for byte against OpenSSL's own encoding of the same key.
 * - The private key exists only in the returned `pkcs8` buffer (and the JWK, dropped here); the
 *   caller seals it and zeroes the buffer.
 */
import { generateKeyPair, type JsonWebKey } from 'node:crypto';
import { bitString, explicit, integer, octetString, oid, sequence, FleetkeyError } from '@fleetkey/protocol';

// @types/node 20 lacks the overloads for the 'jwk' key encoding of generateKeyPair (Node ≥ 15.12).
type JwkKeygen = (type: string, options: Record<string, unknown>, cb: (err: Error | null, publicKey: JsonWebKey, privateKey: JsonWebKey) => void) => void;
const keygenJwk = generateKeyPair as unknown as JwkKeygen;
const EC_PUBLIC_KEY = '1.2.840.10045.2.1'; // RFC 5480 §2.1.1
const CURVES = { p256: ['P-256', '1.2.840.10045.3.1.7'], p384: ['P-384', '1.3.132.0.34'], p521: ['P-521', '1.3.132.0.35'] } as const;
const ED25519 = '1.3.101.112'; // RFC 8410 §3

export type HubKeyAlgorithm = keyof typeof CURVES | 'ed25519';

export interface HubKey {
  readonly spki: Buffer;
  readonly pkcs8: Buffer;
}

const b64u = (v: string | undefined): Buffer => {
  if (v === undefined) throw new FleetkeyError('INTERNAL', { cause: new Error('JWK member missing') });
  return Buffer.from(v, 'base64url');
};

const algorithmIds = new Map<HubKeyAlgorithm, Buffer>();
function algorithmId(alg: HubKeyAlgorithm): Buffer {
  let id = algorithmIds.get(alg);
  if (id === undefined) {
    id = alg === 'ed25519' ? sequence(oid(ED25519)) : sequence(oid(EC_PUBLIC_KEY), oid(CURVES[alg][1]));
    algorithmIds.set(alg, id);
  }
  return id;
}

/** SPKI and PKCS#8 DER of the private JWK of an `alg` key (module invariants). */
export function encodeHubKey(alg: HubKeyAlgorithm, jwk: JsonWebKey): HubKey {
  const d = b64u(jwk.d);
  const algId = algorithmId(alg);
  if (alg === 'ed25519') {
    const pkcs8 = sequence(integer(0), algId, octetString(octetString(d)));
    d.fill(0);
    return { spki: sequence(algId, bitString(b64u(jwk.x))), pkcs8 };
  }
  const point = Buffer.concat([Buffer.from([0x04]), b64u(jwk.x), b64u(jwk.y)]); // SEC 1 §2.3.3, uncompressed
  const ecPrivateKey = sequence(integer(1), octetString(d), explicit(1, bitString(point)));
  const pkcs8 = sequence(integer(0), algId, octetString(ecPrivateKey));
  d.fill(0);
  return { spki: sequence(algId, bitString(point)), pkcs8 };
}

/** A fresh key of `alg`, generated and exported off the event loop, as DER (module invariants). */
export function newHubKey(alg: HubKeyAlgorithm): Promise<HubKey> {
  const jwk = { format: 'jwk' };
  const [type, options] = alg === 'ed25519' ? ['ed25519', {}] : ['ec', { namedCurve: CURVES[alg][0] }];
  return new Promise((resolve, reject) => {
    keygenJwk(type, { ...options, publicKeyEncoding: jwk, privateKeyEncoding: jwk }, (err, _publicKey, privateKey) => {
      if (err !== null) return reject(err);
      try {
        resolve(encodeHubKey(alg, privateKey));
      } catch (e) {
        reject(e);
      }
    });
  });
}
