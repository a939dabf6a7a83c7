/** Key generation and signing with node:crypto for the hub's own keys (root, device CA, TLS). */
import { generateKeyPairSync, randomBytes, sign as signAsync, type KeyObject } from 'node:crypto';
import { signatureAlgorithmFor, type CertificateSigner, type KeyAlgorithm } from '@fleetkey/protocol';

const CURVE: Readonly<Record<Exclude<KeyAlgorithm, 'ed25519' | 'rsa'>, string>> = {
  p256: 'P-256',
  p384: 'P-384',
  p521: 'P-521',
};

export function generateKey(algorithm: Exclude<KeyAlgorithm, 'rsa'>): { privateKey: KeyObject; spki: Buffer } {
  const pair = algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: CURVE[algorithm] });
  return { privateKey: pair.privateKey, spki: pair.publicKey.export({ type: 'spki', format: 'der' }) };
}

/** A CertificateSigner over a node KeyObject; signing runs on libuv's thread pool. */
export function keySigner(algorithm: KeyAlgorithm, key: KeyObject): CertificateSigner {
  const { hash } = signatureAlgorithmFor(algorithm);
  return {
    algorithm,
    sign: (tbs) =>
      new Promise((resolve, reject) => {
        signAsync(hash, tbs, { key, dsaEncoding: 'der' }, (err, sig) => (err ? reject(err) : resolve(sig)));
      }),
  };
}

/** RFC 5280 §4.1.2.2: positive, ≤ 20 octets; 127+ bits from the CSPRNG (CA/B BR: ≥ 64 bits). */
export function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  return serial;
}
