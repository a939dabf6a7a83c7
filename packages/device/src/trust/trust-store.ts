/**
 * The device's trust state on disk: `<stateDir>/trust.json`, the canonical bytes of the newest
 * trust bundle it verified (ADR 0022).
 *
 * Invariants:
 * - trust.json only ever holds a bundle that passed the verifier from what the device trusted
 *   before (verifyInitial from the pins, then verifyNext/verifyChain); this module never decides
 *   trust, it stores and re-checks.
 * - A save is writeFileAtomic: temporary file (O_EXCL) → write → fsync → rename over trust.json
 *   → fsync the directory. After power loss trust.json is the old bundle or the new one, never a
 *   mix; a half-written `trust.json.*.tmp` is never read (and is removed at the next save).
 * - A save never goes back: a bundle whose version is not above the stored one is refused.
 * - Loading re-checks the stored bytes (canonical, self-signed by its own threshold): a modified
 *   trust.json is TRUST_BUNDLE_REJECTED, never silently used (checklist row 31).
 * - Without trust.json the pins of identity.json are the trust state.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { FleetkeyError, activePins, verifyStored, type TrustBundle } from '@fleetkey/protocol';
import { readIfExists, writeFileAtomic } from '../durable-fs.js';
import { PinSet } from './pin-set.js';

export const TRUST_FILE = 'trust.json';
const PUBLIC_FILE_MODE = 0o644; // a bundle is public

/** The stored bundle, or undefined when the device has none yet. */
export async function loadTrustBundle(stateDir: string): Promise<TrustBundle | undefined> {
  const path = join(stateDir, TRUST_FILE);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return verifyStored(bytes);
}

async function removeStaleTemporaries(stateDir: string): Promise<void> {
  for (const name of await fs.readdir(stateDir)) {
    if (name.startsWith(`${TRUST_FILE}.`) && name.endsWith('.tmp')) await fs.rm(join(stateDir, name), { force: true });
  }
}

/** Stores a bundle the caller has verified; refuses to go back to a version ≤ the stored one. */
export async function saveTrustBundle(stateDir: string, bundle: TrustBundle): Promise<void> {
  const stored = await loadTrustBundle(stateDir);
  if (stored !== undefined && bundle.content.version <= stored.content.version) {
    throw new FleetkeyError('TRUST_BUNDLE_REJECTED', { details: { reason: 'rollback' } });
  }
  await removeStaleTemporaries(stateDir);
  await writeFileAtomic(join(stateDir, TRUST_FILE), bundle.bytes, PUBLIC_FILE_MODE);
}

/** The pins that count now: the stored bundle's active pins, else identity.json's. */
export function pinsAt(bundle: TrustBundle | undefined, identityPins: readonly string[], now: number): PinSet {
  return PinSet.parse(bundle === undefined ? identityPins : activePins(bundle, now));
}

/** True if identity.json's pins were ever replaced by a stored bundle (for status output). */
export async function hasTrustBundle(stateDir: string): Promise<boolean> {
  return (await readIfExists(join(stateDir, TRUST_FILE))) !== undefined;
}
