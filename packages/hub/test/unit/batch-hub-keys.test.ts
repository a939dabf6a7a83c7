/**
 * Hub-made batch keys (batch/hub-keys.ts): the SPKI and PKCS#8 assembled from the JWK are byte
 * for byte what OpenSSL's own encoders produce for the same key, for every hub-keys algorithm;
 * node:crypto reads them back and a signature by the PKCS#8 key verifies under the SPKI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { encodeHubKey, newHubKey, type HubKeyAlgorithm } from '../../src/batch/hub-keys.js';

const CASES: Array<[HubKeyAlgorithm, string | null, () => ReturnType<typeof generateKeyPairSync>]> = [
  ['p256', 'sha256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
  ['p384', 'sha384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' })],
  ['p521', 'sha512', () => generateKeyPairSync('ec', { namedCurve: 'P-521' })],
  ['ed25519', null, () => generateKeyPairSync('ed25519')],
];

for (const [alg, hash, make] of CASES) {
  test(`${alg}: SPKI and PKCS#8 equal OpenSSL's encoding of the same key (20 keys)`, () => {
    for (let i = 0; i < 20; i++) {
      const { publicKey, privateKey } = make();
      const { spki, pkcs8 } = encodeHubKey(alg, privateKey.export({ format: 'jwk' }));
      assert.deepEqual(spki, publicKey.export({ type: 'spki', format: 'der' }));
      assert.deepEqual(pkcs8, privateKey.export({ type: 'pkcs8', format: 'der' }));
    }
  });

  test(`${alg}: a fresh key reads back and signs verifiably`, async () => {
    const { spki, pkcs8 } = await newHubKey(alg);
    const priv = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
    const pub = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    const data = Buffer.from('batch identity');
    assert.equal(verify(hash, data, pub, sign(hash, data, priv)), true);
    assert.deepEqual(createPublicKey(priv).export({ type: 'spki', format: 'der' }), spki);
  });
}
