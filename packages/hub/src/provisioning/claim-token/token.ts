/**
 * Claim token format (ADR 0007): `fkct_` + base64url(32 random bytes) — 256 bits from the CSPRNG.
 * Only SHA-256(token) is stored: the token has full entropy, so a slow KDF adds nothing, and a
 * fast hash lets redemption be one indexed, atomic UPDATE.
 */
import { createHash, randomBytes } from 'node:crypto';

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

/** Random public ids: `<prefix>` + 16 base32 characters (80 bits). */
export function randomId(prefix: string): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(10);
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
  return prefix + out;
}
