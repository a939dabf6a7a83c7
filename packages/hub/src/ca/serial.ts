/**
 * Certificate serial numbers (RFC 5280 §4.1.2.2): 16 random bytes from the CSPRNG, so at least
 * 120 bits of entropy (CA/Browser Forum BR §7.1 asks for 64), positive (top bit cleared) and with
 * a non-zero first octet, so the bytes are already a minimal DER INTEGER of exactly 16 octets.
 */
import { randomBytes } from 'node:crypto';

export const SERIAL_BYTES = 16;

export function randomSerial(): Buffer {
  const serial = randomBytes(SERIAL_BYTES);
  serial[0] = serial[0]! & 0x7f;
  if (serial[0] === 0) serial[0] = 1 + (randomBytes(1)[0]! % 0x7f); // 0x01..0x7f
  return serial;
}
