/**
 * Pure parts of attestation (ADR 0027): single-use, short-lived, bounded challenges; TPM structure
 * parsing refusing truncation and trailing bytes; KDFa's known shape; key-protection renewal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { FleetkeyError, ManualClock } from '@fleetkey/protocol';
import { ChallengeStore } from '../../src/attestation/challenges.js';
import { csrCarriesBinding } from '../../src/attestation/channel-binding.js';
import { kdfA } from '../../src/attestation/tpm/make-credential.js';
import { parseTpm2bPublic, parseTpmsAttest, TPM_ALG, TpmFormatError, tpm2b, u16, u32 } from '../../src/attestation/tpm/structures.js';
import { renewedKeyProtection } from '../../src/provisioning/reenroll/index.js';

test('a challenge is single use: the second take of one id finds nothing', () => {
  const store = new ChallengeStore<string>({ clock: new ManualClock(1000), ttlMs: 60_000, maxPending: 10 });
  const id = store.put('state');
  assert.equal(store.take(id), 'state');
  assert.equal(store.take(id), undefined);
});

test('an expired challenge is gone, and taking it removes it', () => {
  const clock = new ManualClock(1000);
  const store = new ChallengeStore<string>({ clock, ttlMs: 60_000, maxPending: 10 });
  const id = store.put('state');
  clock.advance(60_000);
  assert.equal(store.take(id), undefined);
  assert.equal(store.size, 0);
});

test('challenge flooding: beyond maxPending live challenges is RATE_LIMITED, expired ones make room', () => {
  const clock = new ManualClock(1000);
  const store = new ChallengeStore<number>({ clock, ttlMs: 1000, maxPending: 3 });
  for (let i = 0; i < 3; i++) store.put(i);
  assert.throws(() => store.put(4), (e: unknown) => e instanceof FleetkeyError && e.code === 'RATE_LIMITED');
  assert.equal(store.size, 3, 'no live challenge was evicted');
  clock.advance(1000);
  store.put(5);
  assert.equal(store.size, 1);
});

function eccPublic(attributes: number, extra = Buffer.alloc(0)): Buffer {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const tpmt = Buffer.concat([
    u16(TPM_ALG.ECC), u16(TPM_ALG.SHA256), u32(attributes), tpm2b(Buffer.alloc(0)), u16(TPM_ALG.NULL), u16(TPM_ALG.ECDSA), u16(TPM_ALG.SHA256),
    u16(0x0003), u16(TPM_ALG.NULL), tpm2b(Buffer.from(jwk.x!, 'base64url')), tpm2b(Buffer.from(jwk.y!, 'base64url')), extra,
  ]);
  return tpm2b(tpmt);
}

test('TPM2B_PUBLIC: a well-formed ECC area parses; truncated or with trailing bytes it is refused', () => {
  const area = eccPublic(0x00050072);
  const parsed = parseTpm2bPublic(area);
  assert.equal(parsed.type, 'ecc');
  assert.equal(parsed.name.length, 34);
  assert.throws(() => parseTpm2bPublic(area.subarray(0, area.length - 1)), TpmFormatError);
  assert.throws(() => parseTpm2bPublic(eccPublic(0x00050072, Buffer.from([0]))), TpmFormatError);
  assert.throws(() => parseTpm2bPublic(Buffer.concat([area, Buffer.from([0])])), TpmFormatError);
});

test('TPMS_ATTEST: truncated structures are refused', () => {
  assert.throws(() => parseTpmsAttest(Buffer.from('ff54434780170022', 'hex')), TpmFormatError);
});

test('KDFa output has the requested size and changes with label and context', () => {
  const key = Buffer.alloc(32, 7);
  const a = kdfA(TPM_ALG.SHA256, key, 'STORAGE', Buffer.from('name'), Buffer.alloc(0), 128);
  assert.equal(a.length, 16);
  assert.notDeepEqual(a, kdfA(TPM_ALG.SHA256, key, 'INTEGRITY', Buffer.from('name'), Buffer.alloc(0), 128));
  assert.notDeepEqual(a, kdfA(TPM_ALG.SHA256, key, 'STORAGE', Buffer.from('other'), Buffer.alloc(0), 128));
  assert.equal(kdfA(TPM_ALG.SHA256, key, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), 256).length, 32);
});

test('channel binding in the CSR must be exactly base64 of this connection\'s exporter', () => {
  const binding = Buffer.alloc(32, 1);
  assert.equal(csrCarriesBinding(binding.toString('base64'), binding), true);
  assert.equal(csrCarriesBinding(Buffer.alloc(32, 2).toString('base64'), binding), false);
  assert.equal(csrCarriesBinding(undefined, binding), false);
});

test('renewal keeps attested protection only for the same key; a new key falls back to device-reported', () => {
  assert.equal(renewedKeyProtection('tpm-attested', true, undefined), 'tpm-attested');
  assert.equal(renewedKeyProtection('tpm-attested', false, undefined), 'tpm');
  assert.equal(renewedKeyProtection('se-attested', false, undefined), 'pkcs11');
  assert.equal(renewedKeyProtection('tpm-attested', false, 'file'), 'file');
});
