/**
 * The set of hub public-key pins a device trusts, in curl's `sha256//BASE64` form.
 *
 * Invariants:
 * - A PinSet is never empty and holds only canonical pins (parsePin accepted them); it is frozen
 *   after construction, so a verified connection cannot have its trust widened afterwards.
 * - A pin is the SHA-256 of a SubjectPublicKeyInfo DER (RFC 7469 §2.4), so it survives
 *   re-issuance of the hub root certificate with the same key.
 * - At most MAX_PINS pins: one current hub root, its successor during a rotation, and the
 *   offline recovery key, with room to spare.
 */
import { X509Certificate } from 'node:crypto';
import { computePin, FleetkeyError, parsePin } from '@fleetkey/protocol';

export const MAX_PINS = 8;

/**
 * An immutable, validated set of `sha256//…` pins.
 *
 * @example
 * const pins = PinSet.parse(['sha256//current-root…', 'sha256//next-root…']);
 * pins.hasSpki(rootSpkiDer); // true when the root's key is pinned
 */
export class PinSet {
  readonly #pins: ReadonlySet<string>;

  private constructor(pins: ReadonlySet<string>) {
    this.#pins = pins;
    Object.freeze(this);
  }

  /** Validates `pins` (one pin, or a list); VALIDATION_FAILED (field `pin`) when any is malformed. */
  static parse(pins: string | readonly string[]): PinSet {
    const list = typeof pins === 'string' ? [pins] : pins;
    if (list.length === 0 || list.length > MAX_PINS) {
      throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'pin', min: 1, max: MAX_PINS } });
    }
    for (const pin of list) {
      try {
        parsePin(pin);
      } catch (cause) {
        throw new FleetkeyError('VALIDATION_FAILED', { cause, details: { field: 'pin' } });
      }
    }
    return new PinSet(new Set(list));
  }

  /** True if the SHA-256 of `spkiDer` is one of the pins. */
  hasSpki(spkiDer: Uint8Array): boolean {
    return this.#pins.has(computePin(spkiDer));
  }

  /** True if the certificate's public key is pinned. */
  matchesCertificate(certificate: X509Certificate): boolean {
    return this.hasSpki(certificate.publicKey.export({ type: 'spki', format: 'der' }));
  }

  /** The pins, in the order they were given. */
  toArray(): string[] {
    return [...this.#pins];
  }

  get size(): number {
    return this.#pins.size;
  }
}
