/**
 * The audit hash chain, shared by every storage engine (pure; no I/O).
 *
 * record.hash = SHA-256( record.prevHash ‖ "\n" ‖ canonical(record) ), hex.
 * The first record's prevHash is GENESIS. `canonical` is JSON with a fixed field order and sorted
 * detail keys, so any engine that stores the same fields computes the same hash.
 *
 * Invariants: seq starts at 1 and has no gaps; each prevHash equals the previous record's hash.
 * `verifyChain` reports the first record that breaks either rule or whose hash does not match.
 */
import { hash } from 'node:crypto';
import { randomBytesPooled } from '../random.js';
import type { AuditEventInput, AuditRecord, AuditVerification } from '../storage/types.js';

export const GENESIS = '0'.repeat(64);

export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

type DetailValue = string | number | boolean | null;

function sortedDetails(details: AuditEventInput['details']): Record<string, DetailValue> {
  const out: Record<string, DetailValue> = {};
  if (details === undefined) return out;
  for (const key of Object.keys(details).sort()) out[key] = details[key] ?? null;
  return out;
}

/** The canonical text; `details` must already have sorted keys (as every stored record has). */
function canonicalOf(r: Omit<AuditRecord, 'hash'>, details: Record<string, DetailValue>): string {
  return JSON.stringify([
    r.seq, r.time, r.eventId, r.category, r.type, r.result, r.actor, r.source,
    r.tenantId ?? null, r.session ?? null, r.code ?? null, details, r.prevHash,
  ]);
}

export function canonicalAudit(r: Omit<AuditRecord, 'hash'>): string {
  return canonicalOf(r, sortedDetails(r.details));
}

const sha256Hex = (text: string): string => hash('sha256', text, 'hex');

export function hashAudit(r: Omit<AuditRecord, 'hash'>): string {
  return sha256Hex(`${r.prevHash}\n${canonicalAudit(r)}`);
}

/**
 * RFC 9562 §5.7 UUIDv7: 48-bit Unix milliseconds, version 7, variant 10, 74 random bits. Event ids
 * are a unique index of the audit table; time-ordered ids append to its rightmost leaf instead of
 * writing a random page per record (ADR 0003 amendment).
 */
export function uuidV7(nowMs: number): string {
  const b = randomBytesPooled(16);
  b.writeUIntBE(Math.max(0, Math.floor(nowMs)) % 2 ** 48, 0, 6);
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Builds the next record of the chain (hot path: one per audited write). */
export function nextAuditRecord(head: ChainHead, event: AuditEventInput, nowMs: number): AuditRecord {
  const details = sortedDetails(event.details);
  const base: Omit<AuditRecord, 'hash'> = {
    seq: head.seq + 1,
    time: new Date(nowMs).toISOString(),
    eventId: uuidV7(nowMs),
    category: event.category,
    type: event.type,
    result: event.result,
    actor: event.actor,
    source: event.source,
    tenantId: event.tenantId ?? null,
    session: event.session ?? null,
    code: event.code ?? null,
    details,
    prevHash: head.hash,
  };
  return { ...base, hash: sha256Hex(`${head.hash}\n${canonicalOf(base, details)}`) };
}

/** Verifies records given in seq order (streamed by the caller). */
export class ChainVerifier {
  #expected: ChainHead = { seq: 0, hash: GENESIS };
  #count = 0;
  #broken: { seq: number; reason: string } | undefined;

  add(r: AuditRecord): boolean {
    if (this.#broken) return false;
    this.#count += 1;
    const reason =
      r.seq !== this.#expected.seq + 1
        ? `sequence gap: expected ${this.#expected.seq + 1}`
        : r.prevHash !== this.#expected.hash
          ? 'prevHash does not match the previous record'
          : hashAudit(r) !== r.hash
            ? 'record content does not match its hash'
            : undefined;
    if (reason !== undefined) {
      this.#broken = { seq: r.seq, reason };
      return false;
    }
    this.#expected = { seq: r.seq, hash: r.hash };
    return true;
  }

  result(): AuditVerification {
    return this.#broken
      ? { ok: false, records: this.#count, firstBrokenSeq: this.#broken.seq, reason: this.#broken.reason }
      : { ok: true, records: this.#count };
  }
}
