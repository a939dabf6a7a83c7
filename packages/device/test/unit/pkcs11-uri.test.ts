/**
 * RFC 7512 store URIs as fleetkey accepts them (ADR 0024): what is refused, what is canonical,
 * and the engine identifier OpenSSL's pkcs11 engine gets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetkeyError } from '@fleetkey/protocol';
import { engineKeyUri, formatPkcs11StoreUri, parsePkcs11StoreUri, percentEncode } from '../../src/keystore/pkcs11/uri.js';
import { identityShapeError } from '../../src/state/identity.js';

const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const isKeystoreError = (err: unknown): boolean => err instanceof FleetkeyError && err.code === 'KEYSTORE_ERROR';

test('a store URI with token, module-path and a file pin-source parses and formats canonically', () => {
  const uri = parsePkcs11StoreUri(`pkcs11:token=my%20token;serial=0011?module-path=${MODULE}&pin-source=file:/etc/fleetkey/pin`);
  assert.deepEqual(uri, { token: 'my token', serial: '0011', modulePath: MODULE, pinSource: { kind: 'file', path: '/etc/fleetkey/pin' } });
  assert.equal(formatPkcs11StoreUri(uri), `pkcs11:token=my%20token;serial=0011?module-path=${MODULE}&pin-source=file:/etc/fleetkey/pin`);
  assert.deepEqual(parsePkcs11StoreUri(formatPkcs11StoreUri(uri)), uri, 'format is parse-stable');
});

test('PIN disclosure: pin-value in the URI is refused (the URI is recorded in identity.json and logs)', () => {
  assert.throws(() => parsePkcs11StoreUri(`pkcs11:token=t?module-path=${MODULE}&pin-value=1234`), (e: unknown) => isKeystoreError(e) && !String((e as Error).cause).includes('1234'));
  assert.throws(() => parsePkcs11StoreUri(`pkcs11:token=t;pin-value=1234?module-path=${MODULE}&pin-source=env:PIN`), isKeystoreError);
});

test('a store URI naming an object, id or type is refused: fleetkey chooses key labels', () => {
  for (const extra of ['object=k1', 'id=%01', 'type=private']) {
    assert.throws(() => parsePkcs11StoreUri(`pkcs11:token=t;${extra}?module-path=${MODULE}&pin-source=env:PIN`), isKeystoreError, extra);
  }
});

test('missing or malformed token, module-path and pin-source are refused; repeats and unknown attributes too', () => {
  const bad = [
    'pkcs11:?module-path=/m.so&pin-source=env:P',
    'pkcs11:token=t?pin-source=env:P',
    'pkcs11:token=t?module-path=relative.so&pin-source=env:P',
    'pkcs11:token=t?module-path=/m.so',
    'pkcs11:token=t?module-path=/m.so&pin-source=file:relative',
    'pkcs11:token=t?module-path=/m.so&pin-source=|/bin/pin-program',
    'pkcs11:token=t?module-path=/m.so&pin-source=env:1BAD',
    'pkcs11:token=t;token=u?module-path=/m.so&pin-source=env:P',
    'pkcs11:token=t;slot-id=1?module-path=/m.so&pin-source=env:P',
    'pkcs11:token=%zz?module-path=/m.so&pin-source=env:P',
    'pkcs12:token=t?module-path=/m.so&pin-source=env:P',
  ];
  for (const uri of bad) assert.throws(() => parsePkcs11StoreUri(uri), isKeystoreError, uri);
});

test('the engine identifier names the private key object; env PINs travel as pin-value, file PINs as pin-source', () => {
  const fileUri = parsePkcs11StoreUri(`pkcs11:token=fleet;key?module-path=${MODULE}&pin-source=file:/run/pin`.replace(';key', '%3Bkey'));
  assert.equal(engineKeyUri(fileUri, 'dev-1', 'ignored'), 'pkcs11:token=fleet%3Bkey;object=dev-1;type=private?pin-source=file:/run/pin');
  const envUri = parsePkcs11StoreUri(`pkcs11:token=fleet?module-path=${MODULE}&pin-source=env:PIN`);
  assert.equal(engineKeyUri(envUri, 'dev-1', '12&34'), 'pkcs11:token=fleet;object=dev-1;type=private?pin-value=12%2634');
});

test('percent-encoding keeps RFC 7512 literal characters and encodes the rest as UTF-8 octets', () => {
  assert.equal(percentEncode('a-b_c.d~e'), 'a-b_c.d~e');
  assert.equal(percentEncode('a b;c?d%e'), 'a%20b%3Bc%3Fd%25e');
  assert.equal(percentEncode('ü'), '%C3%BC');
  assert.equal(percentEncode('/a&b', false), '%2Fa%26b');
  assert.equal(percentEncode('/a&b', true), '/a%26b');
});

test('identity.json refuses a key store locator that carries a PIN value', () => {
  const base = {
    version: 1, deviceId: 'dev-0123456789abcdef', hubUrl: 'https://hub:8443',
    pins: ['sha256//' + Buffer.alloc(32).toString('base64')], keyAlgorithm: 'p256', certificateSha256: '0'.repeat(64),
    notBefore: '2026-01-01T00:00:00Z', notAfter: '2027-01-01T00:00:00Z', enrolledAt: '2026-01-01T00:00:00Z',
  };
  const locator = (l: string): unknown => ({ ...base, keyStore: { kind: 'pkcs11', label: 'k1', locator: l } });
  assert.equal(identityShapeError(locator(`pkcs11:token=t?module-path=${MODULE}&pin-source=env:PIN`)), undefined);
  assert.equal(identityShapeError(locator(`pkcs11:token=t?module-path=${MODULE}&pin-value=1`)), 'keyStore');
});
