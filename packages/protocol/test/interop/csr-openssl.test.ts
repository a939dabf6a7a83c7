// Interop: PKCS#10 both ways with the system openssl. Fresh requests from `openssl req` parse and
// verify here; requests from our `buildCsr` (the device SDK's path) pass `openssl req -verify`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FleetkeyError, buildCsr, fromPem, parseCsr, signatureAlgorithmFor, toPem, verifyCsrSignature, type KeyAlgorithm,
} from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'fleetkey-csr-interop-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const openssl = (...args: string[]): string =>
  execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const GENPKEY: Record<KeyAlgorithm, string[]> = {
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  p521: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521'],
  ed25519: ['-algorithm', 'ED25519'],
  rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
};
const ALGORITHMS = Object.keys(GENPKEY) as KeyAlgorithm[];

for (const algorithm of ALGORITHMS) {
  test(`a fresh openssl req (${algorithm}) parses and verifies; a tampered copy does not`, async () => {
    openssl('genpkey', ...GENPKEY[algorithm], '-out', `${algorithm}.key`);
    openssl('req', '-new', '-key', `${algorithm}.key`, '-subj', '/CN=fresh/O=Interop', '-out', `${algorithm}.csr`);
    const der = fromPem(readFileSync(join(dir, `${algorithm}.csr`), 'utf8'), 'CERTIFICATE REQUEST');
    const csr = parseCsr(der);
    assert.equal(csr.key.algorithm, algorithm);
    await verifyCsrSignature(csr);
    const tampered = Buffer.from(der);
    tampered[tampered.indexOf(Buffer.from('fresh'))]! ^= 0x20;
    await assert.rejects(verifyCsrSignature(parseCsr(tampered)),
      (e) => e instanceof FleetkeyError && e.code === 'CSR_SIGNATURE_INVALID');
  });

  test(`openssl req -verify accepts buildCsr output (${algorithm})`, async () => {
    openssl('genpkey', ...GENPKEY[algorithm], '-out', `sdk-${algorithm}.key`);
    const privateKey = createPrivateKey(readFileSync(join(dir, `sdk-${algorithm}.key`)));
    const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
    const der = await buildCsr({ spki, subject: [['CN', 'sdk-device'], ['O', 'Ünicode Org']], algorithm,
      sign: async (data) => sign(signatureAlgorithmFor(algorithm).hash, data, privateKey) });
    writeFileSync(join(dir, `sdk-${algorithm}.csr`), toPem('CERTIFICATE REQUEST', der));
    const out = openssl('req', '-in', `sdk-${algorithm}.csr`, '-verify', '-noout', '-subject', '-nameopt', 'utf8');
    assert.match(out, /CN ?= ?sdk-device/);
  });
}
