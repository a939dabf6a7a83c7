/**
 * A pinned TLS connection that follows the hub's trust bundles (ADR 0022, ADR 0026): the EST
 * client (enroll, renew) and the MQTT client both open their sockets here.
 *
 * Invariants:
 * - The socket returned passed connectPinned against the pins the trust source holds at that
 *   moment; nothing in this module widens them.
 * - A PIN_MISMATCH (the hub presented a chain to a root the device does not pin) makes the
 *   trust source catch up once through the signed bundles (TrustFollower.onUnpinned: fetch from
 *   the device's own version on, verify from what it already trusts). Only when that advanced
 *   the verified trust state is the connection retried, once, against the new pins; otherwise
 *   the original PIN_MISMATCH stands and nothing was sent to the server.
 * - Any other failure (HUB_UNREACHABLE, …) is passed through unchanged: no catch-up.
 */
import type { TLSSocket } from 'node:tls';
import { FleetkeyError } from '@fleetkey/protocol';
import { connectPinned, type ConnectPinnedOptions } from './connect.js';
import type { PinSet } from './pin-set.js';

/** What connectFollowing needs of a TrustFollower (tests may pass their own). */
export interface TrustSource {
  /** The pins in use now. */
  pins(): PinSet;
  /** Catch up after an unpinned root; true when the verified trust state advanced. */
  onUnpinned(): Promise<boolean>;
}

export type FollowingConnectOptions = Omit<ConnectPinnedOptions, 'pins'>;

/** True for the one error that means "the presented chain does not reach a pin". */
export function isUnpinned(err: unknown): boolean {
  return err instanceof FleetkeyError && err.code === 'PIN_MISMATCH';
}

/**
 * Connects with the trust source's pins; after PIN_MISMATCH catches up and retries once.
 *
 * @example
 * const socket = await connectFollowing({ host, port }, follower);
 */
export async function connectFollowing(options: FollowingConnectOptions, trust: TrustSource): Promise<TLSSocket> {
  try {
    return await connectPinned({ ...options, pins: trust.pins() });
  } catch (err) {
    if (!isUnpinned(err) || !(await trust.onUnpinned())) throw err;
    return connectPinned({ ...options, pins: trust.pins() });
  }
}

/** A fixed pin set as a trust source that never advances (enrollment without a follower). */
export function fixedTrust(pins: PinSet): TrustSource {
  return { pins: () => pins, onUnpinned: async () => false };
}
