import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetkeyError, buildCsr, parseCsr, verifyCsrSignature, type ErrorCode } from '../../src/index.js';
import { ALL_ALGORITHMS, csrFixture, makeKey } from './fixtures.js';

async function refusal(der: Buffer): Promise<ErrorCode | 'accepted'> {
  try {
    await verifyCsrSignature(parseCsr(der));
    return 'accepted';
  } catch (err) {
    assert.ok(err instanceof FleetkeyError, `non-FleetkeyError thrown: ${String(err)}`);
    return err.code;
  }
}

test('openssl CSRs for P-256/384/521, Ed25519 and RSA-2048 parse and verify', async () => {
  const expected = { p256: 'p256', 'p384': 'p384', 'p384-sha256': 'p384', p521: 'p521', ed25519: 'ed25519', rsa2048: 'rsa' };
  for (const [name, algorithm] of Object.entries(expected)) {
    const csr = parseCsr(csrFixture(name));
    assert.equal(csr.key.algorithm, algorithm, name);
    assert.deepEqual(csr.subject, [['CN', 'fixture-device'], ['O', 'Fleetkey Fixtures']]);
    await verifyCsrSignature(csr);
  }
});

test('weak keys are KEY_NOT_ALLOWED: RSA-1024, RSA e=3, P-192, P-224, secp256k1, explicit-curve P-256, compressed point', async () => {
  for (const name of ['rsa1024', 'rsa-e3', 'p192', 'p224', 'secp256k1', 'explicit-p256', 'compressed-p256']) {
    assert.equal(await refusal(csrFixture(name)), 'KEY_NOT_ALLOWED', name);
  }
});

test('SHA-1 and RSA-PSS signatures are SIGNATURE_ALGORITHM_NOT_ALLOWED', async () => {
  for (const name of ['p256-sha1', 'rsa2048-sha1', 'rsa-pss']) {
    assert.equal(await refusal(csrFixture(name)), 'SIGNATURE_ALGORITHM_NOT_ALLOWED', name);
  }
});

test('a forged proof of possession is CSR_SIGNATURE_INVALID (flipped signature byte, flipped CRI byte)', async () => {
  for (const name of ['p256', 'p521', 'ed25519', 'rsa2048']) {
    const der = csrFixture(name);
    const sig = Buffer.from(der);
    sig[sig.length - 5]! ^= 0x01;
    assert.equal(await refusal(sig), 'CSR_SIGNATURE_INVALID', name); // a byte inside r||s, s, or the RSA value
    const csr = parseCsr(der);
    const cri = Buffer.from(der);
    const subjectAt = cri.indexOf(Buffer.from('fixture-device'));
    cri[subjectAt]! ^= 0x20; // 'f' -> 'F': still a valid name, different bytes
    assert.ok(parseCsr(cri).tbs.length === csr.tbs.length);
    assert.equal(await refusal(cri), 'CSR_SIGNATURE_INVALID', name);
  }
});

test('truncated, oversized, garbage-suffixed and empty DER is CSR_MALFORMED', async () => {
  const der = csrFixture('p256');
  const cases: Record<string, Buffer> = {
    empty: Buffer.alloc(0),
    truncated: der.subarray(0, der.length - 1),
    halved: der.subarray(0, der.length >> 1),
    'length claims more than sent': Buffer.concat([Buffer.from([0x30, 0x82, 0xff, 0xff]), der.subarray(4)]),
    'trailing garbage': Buffer.concat([der, Buffer.from([0x00])]),
    'trailing second request': Buffer.concat([der, der]),
    'too large': Buffer.alloc(64 * 1024, 0x30),
    'PEM instead of DER': Buffer.from(der.toString('base64')),
  };
  for (const [why, bad] of Object.entries(cases)) assert.equal(await refusal(bad), 'CSR_MALFORMED', why);
});

test('requested extensions are returned raw, for logs only', () => {
  const csr = parseCsr(csrFixture('hostile-p256'));
  assert.ok(csr.requestedExtensions !== undefined && csr.requestedExtensions.includes(Buffer.from('hub.example.com')));
  assert.equal(parseCsr(csrFixture('p256')).requestedExtensions, undefined);
});

test('buildCsr makes requests that our parser and verifier accept, for every algorithm', async () => {
  for (const algorithm of ALL_ALGORITHMS) {
    const key = makeKey(algorithm);
    const der = await buildCsr({ spki: key.spki, subject: [['CN', 'dev-1']], algorithm, sign: key.sign });
    const csr = parseCsr(der);
    assert.equal(csr.key.algorithm, algorithm);
    assert.deepEqual(csr.subject, [['CN', 'dev-1']]);
    await verifyCsrSignature(csr);
  }
});
