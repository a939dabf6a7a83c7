/**
 * A streaming check of MQTT 3.1.1 control-packet framing, run on every byte a device sends
 * before the packet parser sees it. The parser (mqtt-packet) buffers a packet until its claimed
 * Remaining Length has arrived, so without this a client could claim 256 MB and make the hub
 * hold it; here such a packet is refused as soon as its fixed header is read.
 *
 * Invariants (MQTT 3.1.1 §2.2):
 * - Fixed header = 1 byte type/flags + Remaining Length as 1–4 bytes of 7-bit groups, low group
 *   first, high bit = "more" (§2.2.3); a 4th byte with the high bit set is malformed.
 * - Packet types 0 and 15 are reserved in 3.1.1 (§2.2.1): malformed.
 * - A whole packet (fixed header + Remaining Length) larger than `maxPacketBytes` is refused.
 * - The guard keeps O(1) state and never copies: payload bytes are skipped by counting.
 * - Once it reported a violation it stays failed (the connection is being closed).
 */

export type FrameViolation = 'packet too large' | 'malformed remaining length' | 'reserved packet type';

const enum State { Header, Length, Body }

export class FrameGuard {
  readonly #maxPacketBytes: number;
  #state: State = State.Header;
  #length = 0;
  #multiplier = 1;
  #lengthBytes = 0;
  #bodyLeft = 0;
  #failed: FrameViolation | undefined;

  constructor(maxPacketBytes: number) {
    this.#maxPacketBytes = maxPacketBytes;
  }

  /** Checks the next bytes of the stream; returns the first violation, if any. */
  feed(chunk: Uint8Array): FrameViolation | undefined {
    let i = 0;
    while (this.#failed === undefined && i < chunk.length) {
      if (this.#state === State.Body) {
        const skip = Math.min(this.#bodyLeft, chunk.length - i);
        this.#bodyLeft -= skip;
        i += skip;
        if (this.#bodyLeft === 0) this.#state = State.Header;
      } else if (this.#state === State.Header) {
        this.#header(chunk[i++]!);
      } else {
        this.#lengthByte(chunk[i++]!);
      }
    }
    return this.#failed;
  }

  #header(byte: number): void {
    const type = byte >> 4;
    if (type === 0 || type === 15) {
      this.#failed = 'reserved packet type';
      return;
    }
    this.#state = State.Length;
    this.#length = 0;
    this.#multiplier = 1;
    this.#lengthBytes = 0;
  }

  #lengthByte(byte: number): void {
    this.#length += (byte & 0x7f) * this.#multiplier;
    this.#multiplier *= 128;
    this.#lengthBytes++;
    if ((byte & 0x80) !== 0) {
      if (this.#lengthBytes === 4) this.#failed = 'malformed remaining length'; // §2.2.3
      return;
    }
    if (1 + this.#lengthBytes + this.#length > this.#maxPacketBytes) {
      this.#failed = 'packet too large';
      return;
    }
    this.#bodyLeft = this.#length;
    this.#state = this.#length === 0 ? State.Header : State.Body;
  }
}
