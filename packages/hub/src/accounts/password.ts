/**
 * Owner passwords: the policy (NIST SP 800-63B-4 §3.1.1.2, password used with a second factor)
 * and argon2id hashing.
 *
 * Invariants:
 * - A password is compared as NFC Unicode (SP 800-63B-4 §3.1.1.2): it is normalised before it is
 *   counted, checked against the blocklist, hashed and verified.
 * - Policy: 8 to 1,024 code points, no composition rules, not on the common-password blocklist
 *   (case-insensitive), not the email or the product name. Nothing is ever truncated: argon2id
 *   hashes every byte (unlike bcrypt's 72-byte limit), and a test proves it.
 * - Hashes are argon2id PHC strings; verifying reads the parameters from the string.
 * - At most `maxConcurrent` hashes run at once in a process; others queue, so a burst of logins
 *   costs queueing time, not memory (each hash holds `memoryKiB`).
 * - Unknown users are verified against a dummy hash made with the same parameters at start-up,
 *   so a login takes as long whether or not the email exists (ASVS V6.3.8).
 */
import { randomBytes } from 'node:crypto';
import { hash, verify, type Algorithm, type Options } from '@node-rs/argon2';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Argon2Config } from './config.js';

/** `Algorithm.Argon2id`; an ambient const enum cannot be read under verbatimModuleSyntax. */
const ARGON2ID = 2 as Algorithm;

export const PASSWORD_MIN_CODE_POINTS = 8;
export const PASSWORD_MAX_CODE_POINTS = 1024;

/** Words that are always refused besides the list: the product and its issuer label. */
const CONTEXT_WORDS = ['fleetkey', 'fleetkey1', 'fleetkey123'];

/** SP 800-63B-4 asks verifiers to apply NFC (or NFKC) before hashing. */
export function normalizePassword(password: string): string {
  return password.normalize('NFC');
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** A lone surrogate has no UTF-8 form; such a string cannot be a stable secret. */
function hasLoneSurrogate(s: string): boolean {
  return /[\uD800-\uDFFF]/u.test(s);
}

/**
 * The common-password blocklist (zxcvbn-ts "common" list, ~49k entries), loaded on first use
 * and kept for the life of the instance.
 */
export class CommonPasswordBlocklist {
  #words: Promise<ReadonlySet<string>> | undefined;

  async has(password: string): Promise<boolean> {
    const lower = normalizePassword(password).toLowerCase();
    return (await this.#get()).has(lower) || CONTEXT_WORDS.includes(lower);
  }

  async size(): Promise<number> {
    return (await this.#get()).size;
  }

  /** Loads once; a failed load is not cached, and fails closed (INTERNAL, nothing accepted). */
  #get(): Promise<ReadonlySet<string>> {
    this.#words ??= CommonPasswordBlocklist.#load().catch((cause: unknown) => {
      this.#words = undefined;
      throw new FleetkeyError('INTERNAL', { cause });
    });
    return this.#words;
  }

  static async #load(): Promise<ReadonlySet<string>> {
    const { dictionary } = await import('@zxcvbn-ts/language-common');
    return new Set(dictionary.passwords.map((w) => w.normalize('NFC').toLowerCase()));
  }
}

export interface PolicyContext {
  /** Values the password must not equal (case-insensitive): the email and its local part. */
  readonly email?: string;
}

/** Throws PASSWORD_POLICY (with `details.rule`) unless `password` meets the policy. */
export async function checkPasswordPolicy(
  password: string,
  blocklist: CommonPasswordBlocklist,
  context: PolicyContext = {},
): Promise<void> {
  const reject = (rule: string): never => {
    throw new FleetkeyError('PASSWORD_POLICY', { details: { rule } });
  };
  if (typeof password !== 'string' || hasLoneSurrogate(password)) reject('encoding');
  const pw = normalizePassword(password);
  const length = codePoints(pw);
  if (length < PASSWORD_MIN_CODE_POINTS) reject('too_short');
  if (length > PASSWORD_MAX_CODE_POINTS) reject('too_long');
  if (await blocklist.has(pw)) reject('common_password');
  const lower = pw.toLowerCase();
  const email = context.email?.toLowerCase();
  if (email !== undefined && (lower === email || lower === email.split('@')[0])) reject('matches_email');
}

/** A counting semaphore: at most `limit` tasks run at once, the rest wait in FIFO order. */
export class Semaphore {
  readonly #limit: number;
  #active = 0;
  #peak = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('semaphore limit must be >= 1');
    this.#limit = limit;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active < this.#limit) this.#active++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve)); // slot handed over
    this.#peak = Math.max(this.#peak, this.#active);
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next === undefined) this.#active--;
      else next(); // hand the slot straight over, so a newcomer cannot overtake the queue
    }
  }

  get load(): { readonly active: number; readonly queued: number; readonly peak: number } {
    return { active: this.#active, queued: this.#waiting.length, peak: this.#peak };
  }
}

/** argon2id hashing and verification behind a concurrency cap. Build with `create()`. */
export class PasswordHasher {
  readonly #options: Options;
  readonly #gate: Semaphore;
  readonly #dummyHash: string;

  private constructor(options: Options, gate: Semaphore, dummyHash: string) {
    this.#options = options;
    this.#gate = gate;
    this.#dummyHash = dummyHash;
  }

  /** Precomputes the dummy hash (one hash, ≈ 20 ms with the defaults). */
  static async create(config: Argon2Config): Promise<PasswordHasher> {
    const options: Options = {
      algorithm: ARGON2ID,
      memoryCost: config.memoryKiB,
      timeCost: config.timeCost,
      parallelism: config.parallelism,
      outputLen: 32,
    };
    const gate = new Semaphore(config.maxConcurrent);
    const dummy = await hash(randomBytes(32).toString('base64url'), options);
    return new PasswordHasher(options, gate, dummy);
  }

  /** Hashes a password (policy is checked by the caller) into an argon2id PHC string. */
  hashPassword(password: string): Promise<string> {
    return this.#gate.run(() => hash(normalizePassword(password), this.#options));
  }

  /** True only if `password` matches `phc`. Over-long input is refused without hashing. */
  async verifyPassword(phc: string, password: string): Promise<boolean> {
    if (typeof password !== 'string' || password.length > 4 * PASSWORD_MAX_CODE_POINTS) return false;
    const pw = normalizePassword(password);
    try {
      return await this.#gate.run(() => verify(phc, pw));
    } catch (cause) {
      throw new FleetkeyError('INTERNAL', { cause });
    }
  }

  /** Spends the same time as a real verification; always false. For unknown users. */
  async verifyDummy(password: string): Promise<false> {
    await this.verifyPassword(this.#dummyHash, password);
    return false;
  }

  get load(): { readonly active: number; readonly queued: number; readonly peak: number } {
    return this.#gate.load;
  }
}
