/**
 * Sealing of secrets at rest (hub private keys, TOTP seeds) with AES-256-GCM.
 *
 * Invariants:
 * - Every sealed value is bound to its purpose by associated data (`aad`), so a sealed TOTP seed
 *   cannot be replayed as a CA key, nor one owner's seed as another's.
 * - A fresh 96-bit random nonce per seal; the format is versioned: 0x01 ‖ nonce(12) ‖ tag(16) ‖ ct.
 * - Opening with the wrong key or tampered data fails with SECRET_UNREADABLE, never returns bytes.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';

export interface SecretSealer {
  seal(plain: Buffer, aad: string): Buffer;
  open(sealed: Buffer, aad: string): Buffer;
}

const VERSION = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const MASTER_KEY_BYTES = 32;

export class AesGcmSealer implements SecretSealer {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== MASTER_KEY_BYTES) {
      throw new FleetkeyError('CONFIG_INVALID', { cause: new Error('master key must be 32 bytes') });
    }
    this.#key = Buffer.from(key);
  }

  static generateKey(): Buffer {
    return randomBytes(MASTER_KEY_BYTES);
  }

  seal(plain: Buffer, aad: string): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), nonce, cipher.getAuthTag(), ct]);
  }

  open(sealed: Buffer, aad: string): Buffer {
    if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] !== VERSION) {
      throw new FleetkeyError('SECRET_UNREADABLE', { cause: new Error('bad sealed format') });
    }
    const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
    const tag = sealed.subarray(1 + NONCE_BYTES, 1 + NONCE_BYTES + TAG_BYTES);
    const ct = sealed.subarray(1 + NONCE_BYTES + TAG_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, nonce);
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ct), decipher.final()]);
    } catch (cause) {
      throw new FleetkeyError('SECRET_UNREADABLE', { cause });
    }
  }
}
