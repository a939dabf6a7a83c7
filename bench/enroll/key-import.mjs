#!/usr/bin/env node
// CPU cost of getting a fresh P-256 device key into OpenSSL and verifying one signature with it, per
// import path that Node 20 offers (the CSR verifier worker does this once per enrollment, ADR 0030):
//  * jwk — createPublicKey({format:'jwk'}): EC_KEY_set_public_key_affine_coordinates, which runs
//    OpenSSL's full public-key check (on-curve and n·Q = O, a scalar multiplication); a legacy EC_KEY
//    that is exported to the provider on its first use (verify #1 > verify #2).
//  * der — createPublicKey({format:'der', type:'spki'}): d2i_PUBKEY, an on-curve check only.
// Each path runs in its own child process (no cache shared between them), 3 rounds interleaved.
// Usage: node bench/enroll/key-import.mjs [N=3000]   (prints µs of CPU per key; single thread)
import { generateKeyPairSync, sign, verify, createPublicKey } from 'node:crypto';
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const N = Number(process.argv[2] === "--child" ? process.argv[4] : process.argv[2] ?? 3000);
const cpu = () => { const c = process.cpuUsage(); return c.user + c.system; };

function child(mode) {
  const items = [];
  for (let i = 0; i < N; i++) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const data = Buffer.alloc(300, i);
    items.push({ spki: publicKey.export({ format: 'der', type: 'spki' }), jwk: publicKey.export({ format: 'jwk' }), data, sig: sign('sha256', data, privateKey) });
  }
  const keys = [];
  let t = cpu();
  for (const it of items) keys.push(mode === 'der' ? createPublicKey({ key: it.spki, format: 'der', type: 'spki' }) : createPublicKey({ key: it.jwk, format: 'jwk' }));
  const importUs = (cpu() - t) / N;
  const verifyAll = () => { const t0 = cpu(); for (let i = 0; i < N; i++) if (!verify('sha256', items[i].data, keys[i], items[i].sig)) throw new Error('bad signature'); return (cpu() - t0) / N; };
  const first = verifyAll();
  const second = verifyAll();
  process.send({ mode, importUs, first, second });
}

if (process.argv[2] === '--child') {
  child(process.argv[3] === 'der' ? 'der' : 'jwk');
} else {
  const self = fileURLToPath(import.meta.url);
  const run = (mode) => new Promise((res, rej) => {
    const c = fork(self, ['--child', mode, String(N)]);
    c.once('message', res);
    c.once('exit', (code) => (code === 0 ? undefined : rej(new Error(`child ${mode} exited ${code}`))));
  });
  console.log(`P-256 key import + verify, ${N} fresh keys per run, node ${process.version}, OpenSSL ${process.versions.openssl}, load ${loadavg()[0].toFixed(2)}`);
  for (let round = 1; round <= 3; round++) {
    for (const mode of ['jwk', 'der']) {
      const r = await run(mode);
      console.log(`  round ${round} ${mode}: import ${r.importUs.toFixed(0)} µs, verify #1 ${r.first.toFixed(0)} µs, verify #2 ${r.second.toFixed(0)} µs, import + first verify ${(r.importUs + r.first).toFixed(0)} µs`);
    }
  }
  console.log(`load ${loadavg()[0].toFixed(2)} at the end`);
}
