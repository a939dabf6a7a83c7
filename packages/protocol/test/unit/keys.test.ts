import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import {
  FleetkeyError, computePin, createPublicKeyFromSpki, describeSpki, parsePin, signatureAlgorithmFor, spkiSha256,
} from '../../src/index.js';
import { ALL_ALGORITHMS, makeKey } from './fixtures.js';

const code = (c: string) => (err: unknown) => err instanceof FleetkeyError && err.code === c;

test('describeSpki names every allowed key made by node', () => {
  const expected = { p256: 'prime256v1', p384: 'secp384r1', p521: 'secp521r1' } as const;
  for (const algorithm of ALL_ALGORITHMS) {
    const key = makeKey(algorithm);
    const d = describeSpki(key.spki);
    assert.equal(d.algorithm, algorithm);
    if (algorithm in expected) assert.equal(d.curve, expected[algorithm as keyof typeof expected]);
    if (algorithm === 'rsa') {
      assert.equal(d.rsaBits, 2048);
      assert.equal(d.rsaExponent, 65537n);
    }
    const imported = createPublicKeyFromSpki(key.spki);
    assert.ok(imported.export({ format: 'der', type: 'spki' }).equals(key.spki), `${algorithm} fast import is the same key`);
  }
});

test('weak or unusual keys are KEY_NOT_ALLOWED: RSA-1024, P-192, P-224, secp256k1, X25519', () => {
  const spki = (pair: { publicKey: { export(o: { format: 'der'; type: 'spki' }): Buffer } }): Buffer =>
    pair.publicKey.export({ format: 'der', type: 'spki' });
  const weak = [
    spki(generateKeyPairSync('rsa', { modulusLength: 1024 })),
    spki(generateKeyPairSync('ec', { namedCurve: 'prime192v1' })),
    spki(generateKeyPairSync('ec', { namedCurve: 'secp224r1' })),
    spki(generateKeyPairSync('ec', { namedCurve: 'secp256k1' })),
    spki(generateKeyPairSync('x25519')),
    spki(generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 })),
  ];
  for (const k of weak) assert.throws(() => describeSpki(k), code('KEY_NOT_ALLOWED'));
});

test('an EC point off the curve is refused when the key is imported', () => {
  const spki = Buffer.from(makeKey('p256').spki);
  spki[spki.length - 1]! ^= 0x01; // y no longer matches x
  assert.equal(describeSpki(spki).algorithm, 'p256');
  assert.throws(() => createPublicKeyFromSpki(spki), code('KEY_NOT_ALLOWED'));
});

test('signatureAlgorithmFor pairs each key with its hash', () => {
  assert.deepEqual(signatureAlgorithmFor('p256'), { oid: '1.2.840.10045.4.3.2', hash: 'sha256', nullParams: false });
  assert.equal(signatureAlgorithmFor('p384').hash, 'sha384');
  assert.equal(signatureAlgorithmFor('p521').hash, 'sha512');
  assert.equal(signatureAlgorithmFor('ed25519').hash, null);
  assert.equal(signatureAlgorithmFor('rsa').nullParams, true);
});

test('pins are curl --pinnedpubkey form and parse back strictly', () => {
  const key = makeKey('p256');
  const pin = computePin(key.spki);
  assert.equal(pin, 'sha256//' + createHash('sha256').update(key.spki).digest('base64'));
  assert.ok(parsePin(pin).equals(spkiSha256(key.spki)));
  const bad = ['', 'sha256//', pin.slice(0, -1), pin + '=', pin.replace('sha256', 'sha1'), 'sha256//' + 'A'.repeat(42) + 'B=', ` ${pin}`];
  for (const b of bad) assert.throws(() => parsePin(b), code('VALIDATION_FAILED'), b);
});
