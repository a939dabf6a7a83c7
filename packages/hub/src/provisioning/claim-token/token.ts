/**
 * Claim token format (ADR 0007): `fkct_` + base64url(32 random bytes) — 256 bits from the CSPRNG.
 * Only SHA-256(token) is stored: the token has full entropy, so a slow KDF adds nothing, and a
 * fast hash lets redemption be one indexed, atomic UPDATE.
 */
import { createHash, randomBytes } from 'node:crypto';
import { randomBytesPooled } from '../../random.js';

const PREFIX = 'fkct_';
const TOKEN_RE = /^fkct_[A-Za-z0-9_-]{43}$/;

export function generateClaimToken(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

export function isClaimTokenShape(value: string): boolean {
  return TOKEN_RE.test(value);
}

export function hashClaimToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** The same 32 symbols in ASCII order, so the time prefix sorts as text (`2` < `a`). */
const BASE32_SORTED = '234567abcdefghijklmnopqrstuvwxyz';

/** Random public ids: `<prefix>` + 16 base32 characters (80 bits). */
export function randomId(prefix: string): string {
  return prefix + base32(randomBytes(10));
}

/**
 * Time-ordered public ids (ULID layout): `<prefix>` + 10 characters of the wall-clock
 * milliseconds (50 bits, in an ASCII-ordered base32 alphabet so ids sort by time as text) + 16 characters from the CSPRNG (80 bits).
 * Used for ids that are primary keys of tables written on every enrollment: consecutive ids land
 * on the same B-tree leaf (ADR 0003 amendment). Ids stay unguessable by their random part.
 */
export function sortableId(prefix: string, nowMs: number = Date.now()): string {
  let time = '';
  let t = Math.max(0, Math.floor(nowMs));
  for (let i = 0; i < 10; i++) {
    time = BASE32_SORTED[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  return prefix + time + base32(randomBytesPooled(10));
}

function base32(bytes: Buffer): string {
  const alphabet = BASE32;
  let bits = 0;
  let acc = 0;
  let out = '';
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += alphabet[(acc >> bits) & 31];
    }
  }
  return out;
}
