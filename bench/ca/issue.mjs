#!/usr/bin/env node
// Micro-benchmark of the CA hot path: parse + verify a CSR and sign a device leaf (no storage).
// Prints issuances/s per key algorithm (device key and device CA key of the same algorithm) and
// the ratio to the node:crypto ceiling measured in the same run: 1 / (1/sign + 1/verify), where
// sign and verify rates are measured the same way (async, on the libuv thread pool, 64 in flight).
// `prepare+issue/s` is the EST path (CSR verified synchronously before a claim token is spent).
// Usage: npx tsc -b packages/protocol packages/hub && node bench/ca/issue.mjs [seconds-per-case]
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { buildCsr } from '../../packages/protocol/dist/src/index.js';
import { CertificateAuthority, createHubPki } from '../../packages/hub/dist/src/ca/index.js';

const seconds = Number(process.argv[2] ?? 2);
const IN_FLIGHT = 64;
const HASH = { p256: 'sha256', p384: 'sha384', p521: 'sha512', ed25519: null };
const CURVE = { p256: 'P-256', p384: 'P-384', p521: 'P-521' };

function keyPair(algorithm) {
  return algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: CURVE[algorithm] });
}

/** Runs `op` with IN_FLIGHT concurrent callers for `seconds`; returns operations per second. */
async function rate(op) {
  const end = performance.now() + seconds * 1000;
  let count = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (performance.now() < end) {
      await op();
      count++;
    }
  }));
  return count / ((performance.now() - started) / 1000);
}

const promisify = (fn) => (...args) => new Promise((resolve, reject) => fn(...args, (e, r) => (e ? reject(e) : resolve(r))));
const signAsync = promisify(sign);
const verifyAsync = promisify(verify);

async function bench(algorithm) {
  const clock = { now: () => Date.now() };
  const pki = await createHubPki({ clock, orgName: 'Bench', rootAlgorithm: 'p384', deviceCaAlgorithm: algorithm });
  const ca = new CertificateAuthority({ signer: pki.deviceCa.signer, certificate: pki.deviceCa.certificate,
    recorder: { record: async () => {} }, clock });
  const device = keyPair(algorithm);
  const spki = device.publicKey.export({ format: 'der', type: 'spki' });
  const csr = await buildCsr({ spki, subject: [['CN', 'bench']], algorithm, sign: async (d) => sign(HASH[algorithm], d, device.privateKey) });
  const data = Buffer.alloc(450, 7); // about the size of a device TBSCertificate
  const signature = sign(HASH[algorithm], data, device.privateKey);
  const signRate = await rate(() => signAsync(HASH[algorithm], data, device.privateKey));
  const verifyRate = await rate(() => verifyAsync(HASH[algorithm], data, device.publicKey, signature));
  const ceiling = 1 / (1 / signRate + 1 / verifyRate);
  const grant = { method: 'bench', tenantId: 't', deviceId: 'bench-device' };
  const issueRate = await rate(() => ca.issue(grant, csr));
  // The EST path: prepare() verifies on the main thread before the credential is spent.
  const estRate = await rate(() => ca.issue(grant, ca.prepare(csr)));
  return { algorithm, signRate, verifyRate, ceiling, issueRate, estRate, ratio: issueRate / ceiling };
}

console.log(`node ${process.version}, ${availableParallelism()} cores, ${seconds}s per case, ${IN_FLIGHT} in flight`);
console.log('alg      sign/s  verify/s  ceiling/s  issue/s  issue/ceiling  prepare+issue/s');
for (const algorithm of ['p256', 'p384', 'p521', 'ed25519']) {
  const r = await bench(algorithm);
  const f = (n, w) => String(Math.round(n)).padStart(w);
  console.log(`${algorithm.padEnd(8)}${f(r.signRate, 7)}${f(r.verifyRate, 10)}${f(r.ceiling, 11)}${f(r.issueRate, 9)}  ${(r.ratio * 100).toFixed(0).padStart(12)}%${f(r.estRate, 17)}`);
}
