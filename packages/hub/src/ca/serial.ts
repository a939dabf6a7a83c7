/**
 * Certificate serial numbers (RFC 5280 §4.1.2.2), 16 octets:
 *   octets 0–5   the issuing time in milliseconds since the epoch, big-endian (48 bits);
 *   octets 6–15  80 bits from the CSPRNG (CA/Browser Forum BR §7.1 asks for at least 64).
 *
 * Invariants:
 * - Positive with a non-zero first octet (0x01..0x7f), so the bytes are already a minimal DER
 *   INTEGER of exactly 16 octets: the time prefix gives 0x01 from 2004 to 2039 and stays below
 *   0x80 until the year 6429; a clock before 2004 still gets 0x01.
 * - Unpredictable: the 80 random bits alone decide uniqueness and guessability.
 * - Why the time prefix (ADR 0003, amendment): serials are the primary key of the certificate
 *   table. Random keys put every insert on a different B-tree leaf, so each group commit wrote a
 *   4 KiB page per certificate; time-ordered keys land on the rightmost leaves. The time is the
 *   wall clock, a locality hint only (the certificate's notBefore is the authoritative time).
 */
import { fillRandom } from '../random.js';

export const SERIAL_BYTES = 16;
const TIME_BYTES = 6;

export function randomSerial(nowMs: number = Date.now()): Buffer {
  const serial = Buffer.allocUnsafe(SERIAL_BYTES);
  serial.writeUIntBE(Math.max(0, Math.floor(nowMs)) % 2 ** 47, 0, TIME_BYTES);
  if (serial[0] === 0) serial[0] = 1;
  fillRandom(serial, TIME_BYTES);
  return serial;
}
