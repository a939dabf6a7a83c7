/**
 * Worker thread of CsrVerifierPool: parses CSRs and verifies their proofs of possession (the same
 * protocol functions and native ECDSA verifier `CertificateAuthority.prepare` uses), off the event
 * loop. Each message is a batch of tasks; the answer is one message with a reply per task, in order — the SPKI, its key
 * description and its SHA-256, or the FleetkeyError code.
 */
import { parentPort } from 'node:worker_threads';
import { FleetkeyError, parseCsr, spkiSha256, verifyCsrSignatureSync } from '@fleetkey/protocol';
import { nativeEcdsa } from './native-ecdsa.js';

interface Task {
  readonly id: number;
  readonly der: Uint8Array;
}

function answer(task: Task): object {
  try {
    const csr = parseCsr(Buffer.from(task.der.buffer, task.der.byteOffset, task.der.byteLength));
    verifyCsrSignatureSync(csr, nativeEcdsa);
    return { id: task.id, spki: csr.spki, key: csr.key, spkiSha256Hex: spkiSha256(csr.spki).toString('hex') };
  } catch (err) {
    return { id: task.id, code: err instanceof FleetkeyError ? err.code : 'CSR_MALFORMED' };
  }
}

parentPort?.on('message', (tasks: readonly Task[]) => {
  parentPort?.postMessage(tasks.map(answer));
});
