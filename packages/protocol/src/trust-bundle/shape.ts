/**
 * Strict shape checks for the trust bundle schema (bundle.ts) over parsed canonical JSON.
 *
 * Invariants:
 * - Every check either returns the value with its TypeScript type or throws BundleError; nothing
 *   is coerced (no number from a string, no default for a missing member).
 * - Objects may hold only the members named as required or optional; `optional === undefined`
 *   means "any further member" and is used only for the `extensions` object.
 * - Times are RFC 3339 UTC as `Date.prototype.toISOString` writes them (millisecond precision,
 *   `Z`), so each instant has one spelling and the canonical form stays unique.
 * - A BundleError carries a `reason` from BUNDLE_REASONS; the verifier reports it as a public
 *   detail of TRUST_BUNDLE_REJECTED.
 */
export const BUNDLE_REASONS = [
  'malformed', 'oversized', 'unknown-critical', 'rollback', 'version-gap', 'expired',
  'threshold-trusted', 'threshold-own', 'recovery-not-signed', 'unpinned',
] as const;
export type BundleReason = (typeof BUNDLE_REASONS)[number];

export class BundleError extends Error {
  override readonly name = 'BundleError';
  readonly reason: BundleReason;

  constructor(message: string, options: { reason?: BundleReason; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = options.reason ?? 'malformed';
  }
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function expectObject(value: unknown, field: string, required: readonly string[], optional: readonly string[] | undefined): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BundleError(`${field} is not an object`);
  const o = value as Record<string, unknown>;
  for (const k of required) if (!(k in o)) throw new BundleError(`${field}.${k} is missing`);
  if (optional !== undefined) {
    for (const k of Object.keys(o)) {
      if (!required.includes(k) && !optional.includes(k)) throw new BundleError(`${field}.${k} is not part of the schema`);
    }
  }
  return o;
}

export function expectArray(value: unknown, field: string, min: number, max: number): unknown[] {
  if (!Array.isArray(value)) throw new BundleError(`${field} is not an array`);
  if (value.length < min || value.length > max) throw new BundleError(`${field} must hold ${min}..${max} entries`);
  return value as unknown[];
}

export function expectString(value: unknown, field: string, pattern?: RegExp): string {
  if (typeof value !== 'string' || (pattern !== undefined && !pattern.test(value))) throw new BundleError(`${field} is not a valid string`);
  return value;
}

/** Canonical base64 (RFC 4648 §4 with padding; the bytes re-encode to the same text). */
export function expectBase64(value: unknown, field: string): Buffer {
  const text = expectString(value, field, /^[A-Za-z0-9+/]+={0,2}$/);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) throw new BundleError(`${field} is not canonical base64`);
  return bytes;
}

export function expectInteger(value: unknown, field: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw new BundleError(`${field} is not an integer ≥ ${min}`);
  return value;
}

export function expectTime(value: unknown, field: string): number {
  const text = expectString(value, field, ISO_UTC);
  const ms = Date.parse(text);
  if (Number.isNaN(ms) || new Date(ms).toISOString() !== text) throw new BundleError(`${field} is not an RFC 3339 UTC time`);
  return ms;
}
