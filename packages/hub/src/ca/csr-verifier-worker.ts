/**
 * Worker thread of CsrVerifierPool: parses a CSR and verifies its proof of possession (the same
 * protocol functions `CertificateAuthority.prepare` uses), off the event loop. Answers with the
 * two facts issuance needs — the SPKI and its key description — or the FleetkeyError code.
 */
import { parentPort } from 'node:worker_threads';
import { FleetkeyError, parseCsr, verifyCsrSignatureSync } from '@fleetkey/protocol';

interface Task {
  readonly id: number;
  readonly der: Uint8Array;
}

parentPort?.on('message', (task: Task) => {
  try {
    const csr = parseCsr(Buffer.from(task.der.buffer, task.der.byteOffset, task.der.byteLength));
    verifyCsrSignatureSync(csr);
    parentPort?.postMessage({ id: task.id, spki: csr.spki, key: csr.key });
  } catch (err) {
    parentPort?.postMessage({ id: task.id, code: err instanceof FleetkeyError ? err.code : 'CSR_MALFORMED' });
  }
});
