/** The worker pool answers exactly what the in-thread `prepare` path answers, for good and bad CSRs. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FleetkeyError, fromPem, parseCsr, verifyCsrSignatureSync } from '@fleetkey/protocol';
import { CsrVerifierPool } from '../../src/ca/csr-verifier-pool.js';

const dir = fileURLToPath(new URL('../../../../../packages/protocol/test/fixtures/csr/', import.meta.url));
const pool = new CsrVerifierPool(2);
after(() => pool.close());

function inThread(der: Buffer): { code: string } | { spki: string; algorithm: string } {
  try {
    const csr = parseCsr(der);
    verifyCsrSignatureSync(csr);
    return { spki: csr.spki.toString('hex'), algorithm: csr.key.algorithm };
  } catch (err) {
    return { code: err instanceof FleetkeyError ? err.code : 'not a FleetkeyError' };
  }
}

async function inPool(der: Buffer): Promise<{ code: string } | { spki: string; algorithm: string }> {
  try {
    const facts = await pool.verify(der);
    return { spki: facts.spki.toString('hex'), algorithm: facts.key.algorithm };
  } catch (err) {
    return { code: err instanceof FleetkeyError ? err.code : 'not a FleetkeyError' };
  }
}

test('every fixture CSR (accepted and refused kinds) gets the same answer from the pool as in-thread', async () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.csr.pem'));
  assert.ok(files.length >= 10);
  for (const f of files) {
    const der = fromPem(readFileSync(dir + f, 'utf8'), 'CERTIFICATE REQUEST');
    assert.deepEqual(await inPool(der), inThread(der), f);
  }
});

test('forged proof of possession and garbage are refused with the same codes as in-thread', async () => {
  const der = fromPem(readFileSync(dir + 'p256.csr.pem', 'utf8'), 'CERTIFICATE REQUEST');
  const forged = Buffer.from(der);
  forged[forged.length - 3]! ^= 0x01;
  const r1 = await inPool(forged);
  assert.deepEqual(r1, inThread(forged));
  assert.equal((r1 as { code: string }).code, 'CSR_SIGNATURE_INVALID');
  const garbage = Buffer.from('not DER at all');
  assert.deepEqual(await inPool(garbage), { code: 'CSR_MALFORMED' });
  assert.deepEqual(inThread(garbage), { code: 'CSR_MALFORMED' });
});

test('many concurrent verifications all settle, each with its own answer', async () => {
  const good = fromPem(readFileSync(dir + 'p256.csr.pem', 'utf8'), 'CERTIFICATE REQUEST');
  const bad = Buffer.from('x');
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => inPool(i % 2 ? bad : good)));
  assert.equal(results.filter((r) => 'spki' in r).length, 100);
  assert.equal(results.filter((r) => 'code' in r && r.code === 'CSR_MALFORMED').length, 100);
});
