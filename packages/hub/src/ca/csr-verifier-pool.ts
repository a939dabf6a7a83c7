/**
 * A small pool of worker threads that parse CSRs and verify their signatures, so the event loop
 * spends no time on ECDSA verification (~100 µs per P-256 CSR with the native verifier, ADR 0034;
 * ~2× that through node:crypto's key import). Used by `CertificateAuthority.prepareAsync` when
 * the hub provides one.
 *
 * Tasks go to a worker in batches: those queued during one event-loop turn leave together at its
 * end (setImmediate), at most MAX_BATCH per message, and come back as one message. Each message
 * costs both threads a wake-up and a (de)serialisation (~90 µs of CPU per CSR when sent one by one,
 * bench/enroll, ADR 0031); under load a turn queues several CSRs.
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
const MAX_BATCH = 8;

interface Task {
  readonly id: number;
  readonly der: Buffer;
}

export class CsrVerifierPool {
  readonly #workers: Worker[] = [];
  /** `worker` is set when the task's batch is posted. */
  readonly #pending = new Map<number, { worker?: Worker } & Pending>();
  /** Tasks queued this turn, not posted yet. */
  #queued: Task[] = [];
  #flushScheduled = false;
  #rotation = 0;
  #next = 0;
  #closed = false;

  constructor(size: number = Math.max(1, availableParallelism() - 1)) {
    for (let i = 0; i < size; i++) this.#workers.push(this.#spawn());
  }

  verify(der: Buffer): Promise<VerifiedCsrFacts> {
    if (this.#closed) return Promise.reject(new FleetkeyError('INTERNAL', { cause: new Error('CSR verifier pool closed') }));
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#queued.push({ id, der });
      if (this.#queued.length >= MAX_BATCH) this.#send();
      else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => {
          this.#flushScheduled = false;
          this.#send();
        });
      }
    });
  }

  /** Posts the queued tasks as one batch to the next worker in turn. */
  #send(): void {
    const batch = this.#queued;
    this.#queued = [];
    if (batch.length === 0 || this.#closed) return;
    const worker = this.#workers[this.#rotation++ % this.#workers.length]!;
    for (const t of batch) {
      const task = this.#pending.get(t.id);
      if (task !== undefined) task.worker = worker;
    }
    worker.postMessage(batch);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.terminate()));
    this.#failAll(undefined, new FleetkeyError('INTERNAL', { cause: new Error('CSR verifier pool closed') }));
  }

  #spawn(): Worker {
    const worker = new Worker(WORKER_URL);
    worker.unref();
    worker.on('message', (replies: readonly Reply[]) => {
      for (const reply of replies) this.#settle(reply);
    });
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
