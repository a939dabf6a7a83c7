/**
 * Worker thread of CsrVerifierPool: parses a CSR and verifies its proof of possession (the same
 * protocol functions `CertificateAuthority.prepare` uses), off the event loop. Answers with the
 * facts issuance needs — the SPKI, its key description and its SHA-256 — or the FleetkeyError code.
 */
import { parentPort } from 'node:worker_threads';
import { FleetkeyError, parseCsr, spkiSha256, verifyCsrSignatureSync } from '@fleetkey/protocol';

interface Task {
  readonly id: number;
  readonly der: Uint8Array;
}

parentPort?.on('message', (task: Task) => {
  try {
    const csr = parseCsr(Buffer.from(task.der.buffer, task.der.byteOffset, task.der.byteLength));
    verifyCsrSignatureSync(csr);
    parentPort?.postMessage({ id: task.id, spki: csr.spki, key: csr.key, spkiSha256Hex: spkiSha256(csr.spki).toString('hex') });
  } catch (err) {
    parentPort?.postMessage({ id: task.id, code: err instanceof FleetkeyError ? err.code : 'CSR_MALFORMED' });
  }
});
