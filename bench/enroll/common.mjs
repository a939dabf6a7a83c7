// Shared by both enrollment benchmarks (run.mjs with the Node load generator, run-wrk.mjs with
// wrk): the crypto ceiling measured in the same run and the CSR pool generation.
//
// Invariants:
//  * Ceiling = 1 / (1/sign + 1/verify), as run.mjs: sign with the device CA's key type (it signs every
//    device key type), verify with the device key type; node:crypto, one core, synchronous,
//    pre-imported KeyObjects, 450-byte message.
//  * makeCsrs returns distinct keys only (one generateKeyPair per CSR): `{ der, spki }`, where the
//    base64 of `der` is the EST simpleenroll body (RFC 7030 §4.2.1); bounded in time.
import { generateKeyPair, generateKeyPairSync, sign, verify } from 'node:crypto';
import { buildCsr } from '../../packages/protocol/dist/src/index.js';

export const LABEL = { p256: 'P-256', p384: 'P-384', p521: 'P-521', ed25519: 'Ed25519' };
export const HASH = { p256: 'sha256', p384: 'sha384', p521: 'sha512', ed25519: null };
const CURVE = { p256: 'P-256', p384: 'P-384', p521: 'P-521' };

const keyGenOptions = (type) => (type === 'ed25519' ? ['ed25519', {}] : ['ec', { namedCurve: CURVE[type] }]);
const genKeyPair = (type) => new Promise((res, rej) => generateKeyPair(...keyGenOptions(type), (e, publicKey, privateKey) => (e ? rej(e) : res({ publicKey, privateKey }))));
const signAsync = (hash, data, key) => new Promise((res, rej) => sign(hash, data, key, (e, s) => (e ? rej(e) : res(s))));

/** Synchronous operations per second on this thread: bounded by `seconds` and `maxCount`. */
function syncRate(op, seconds, maxCount = 1e7) {
  for (let i = 0; i < 200; i++) op(); // warm-up
  const start = performance.now();
  const end = start + seconds * 1000;
  let n = 0;
  while (n < maxCount) {
    for (let i = 0; i < 50; i++) op();
    n += 50;
    if (performance.now() >= end) break;
  }
  return n / ((performance.now() - start) / 1000);
}

function measureCrypto(type) {
  const { publicKey, privateKey } = generateKeyPairSync(...keyGenOptions(type));
  const data = Buffer.alloc(450, 7); // about a device TBSCertificate / CSR info
  const signature = sign(HASH[type], data, privateKey);
  return {
    signPerS: syncRate(() => sign(HASH[type], data, privateKey), 1),
    verifyPerS: syncRate(() => verify(HASH[type], data, publicKey, signature), 2),
  };
}

/** Per device key type: the one-core ceiling and the machine ceiling (× cores). */
export function measureCeilings(caAlg, keys, cores) {
  const crypto = {};
  for (const t of new Set([caAlg, ...keys])) crypto[t] = measureCrypto(t);
  const ceilings = {};
  for (const t of keys) {
    const perCore = 1 / (1 / crypto[caAlg].signPerS + 1 / crypto[t].verifyPerS);
    ceilings[t] = { signAlgorithm: caAlg, signPerS: crypto[caAlg].signPerS, verifyPerS: crypto[t].verifyPerS, perCore, machine: perCore * cores };
  }
  return { crypto, ceilings };
}

/**
 * Up to `n` CSRs, each for a fresh key, within `budgetSeconds` (a pool cut short says so in its
 * phase); 16 in flight on the libuv pool.
 */
export async function makeCsrs(type, n, budgetSeconds = 60) {
  const out = [];
  const deadline = performance.now() + budgetSeconds * 1000;
  let started = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (started < n && performance.now() < deadline) {
      started++;
      const { publicKey, privateKey } = await genKeyPair(type);
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      const der = await buildCsr({ spki, subject: [['CN', 'bench-device']], algorithm: type, sign: (d) => signAsync(HASH[type], d, privateKey) });
      out.push({ der: Buffer.from(der), spki });
    }
  }));
  return out;
}
