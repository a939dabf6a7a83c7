/**
 * A small pool of worker threads that parse CSRs and verify their signatures, so the event loop
 * spends no time on OpenSSL's public-key import (~90 µs per P-256 key, bench/enroll) or ECDSA
 * verification. Used by `CertificateAuthority.prepareAsync` when the hub provides one.
 *
 * Invariants: a result says exactly what `prepare` would (same checks, same error codes); a
 * crashed worker fails its pending tasks with INTERNAL and is replaced; `close()` ends all
 * workers; the pool never keeps the process alive by itself (workers are unref'd).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FleetkeyError, isErrorCode, type KeyDescription } from '@fleetkey/protocol';

export interface VerifiedCsrFacts {
  readonly spki: Buffer;
  readonly key: KeyDescription;
  /** SHA-256 of `spki`, hex, when the verifier already computed it (the worker does). */
  readonly spkiSha256Hex?: string;
}

interface Pending {
  readonly resolve: (facts: VerifiedCsrFacts) => void;
  readonly reject: (err: FleetkeyError) => void;
}

interface Reply {
  readonly id: number;
  readonly spki?: Uint8Array;
  readonly key?: KeyDescription;
  readonly spkiSha256Hex?: string;
  readonly code?: string;
}

const WORKER_URL = new URL('./csr-verifier-worker.js', import.meta.url);

export class CsrVerifierPool {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, { worker: Worker } & Pending>();
  #next = 0;
  #closed = false;

  constructor(size: number = Math.max(1, availableParallelism() - 1)) {
    for (let i = 0; i < size; i++) this.#workers.push(this.#spawn());
  }

  verify(der: Buffer): Promise<VerifiedCsrFacts> {
    if (this.#closed) return Promise.reject(new FleetkeyError('INTERNAL', { cause: new Error('CSR verifier pool closed') }));
    const id = ++this.#next;
    const worker = this.#workers[id % this.#workers.length]!;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { worker, resolve, reject });
      worker.postMessage({ id, der });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.terminate()));
    this.#failAll(undefined, new FleetkeyError('INTERNAL', { cause: new Error('CSR verifier pool closed') }));
  }

  #spawn(): Worker {
    const worker = new Worker(WORKER_URL);
    worker.unref();
    worker.on('message', (reply: Reply) => this.#settle(reply));
    worker.on('error', (cause) => this.#replace(worker, cause));
    worker.on('exit', (code) => {
      if (!this.#closed) this.#replace(worker, new Error(`CSR worker exited with ${code}`));
    });
    return worker;
  }

  #settle(reply: Reply): void {
    const task = this.#pending.get(reply.id);
    if (task === undefined) return;
    this.#pending.delete(reply.id);
    if (reply.spki !== undefined && reply.key !== undefined) {
      const spki = Buffer.from(reply.spki.buffer, reply.spki.byteOffset, reply.spki.byteLength);
      task.resolve(reply.spkiSha256Hex === undefined ? { spki, key: reply.key } : { spki, key: reply.key, spkiSha256Hex: reply.spkiSha256Hex });
    } else {
      task.reject(new FleetkeyError(isErrorCode(reply.code) ? reply.code : 'INTERNAL'));
    }
  }

  #replace(worker: Worker, cause: unknown): void {
    const at = this.#workers.indexOf(worker);
    if (at < 0 || this.#closed) return;
    this.#failAll(worker, new FleetkeyError('INTERNAL', { cause }));
    this.#workers[at] = this.#spawn();
  }

  #failAll(worker: Worker | undefined, err: FleetkeyError): void {
    for (const [id, task] of this.#pending) {
      if (worker !== undefined && task.worker !== worker) continue;
      this.#pending.delete(id);
      task.reject(err);
    }
  }
}
