/**
 * Operator access to the trust bundles of a data folder (`fleetkey hub trust show|history`,
 * `hub rotate-root`, `hub recover`), with or without a running hub.
 *
 * Invariants (ADR 0021):
 * - The CLI never talks to the running hub: it writes the new root and bundle N+1 into the store
 *   in one durable unit (storage/sqlite/trust.ts), and the running hub's follower applies it
 *   live at its next check (`tlsRenewCheckSeconds`); a stopped hub applies it at its next start.
 *   Two writers racing for N+1: one wins, the other is CONFLICT and wrote nothing.
 * - Opening needs an existing identity (pki/ and the database); nothing is created here except
 *   the genesis bundle of a hub from before trust bundles.
 * - The new recovery key of a recovery is written once to a new file (O_EXCL, 0600) before the
 *   bundle is stored: a crash in between leaves an unused key file, never a bundle whose recovery
 *   key nobody holds.
 */
import { existsSync } from 'node:fs';
import { FleetkeyError, decodeBundle, keyIdOf, systemClock, type Clock } from '@fleetkey/protocol';
import type { HubConfig } from '../config/load.js';
import { dbPath, loadMasterKey } from '../datadir.js';
import { hubPkiExists, loadOrCreateHubPki, readRootCertificate, spkiOfCertificate } from '../pki/bootstrap.js';
import { openSqliteStore } from '../storage/sqlite/index.js';
import type { Store } from '../storage/types.js';
import { loadTrust, type TrustContext } from './bundles.js';
import type { TrustMaterial } from './material.js';

export interface TrustAdmin {
  readonly context: TrustContext;
  readonly store: Store;
  current(): Promise<TrustMaterial>;
  close(): Promise<void>;
}

export async function openTrustAdmin(config: HubConfig, clock: Clock = systemClock): Promise<TrustAdmin> {
  if (!hubPkiExists(config.dataDir) || !existsSync(dbPath(config.dataDir))) {
    throw new FleetkeyError('CONFIG_INVALID', { details: { setting: 'dataDir', problem: 'no hub here; run fleetkey hub start first' } });
  }
  const sealer = loadMasterKey(config.masterKeyFile, false);
  const store = await openSqliteStore({ path: dbPath(config.dataDir), clock });
  try {
    const genesis = await loadOrCreateHubPki({ dataDir: config.dataDir, sealer, clock, rootAlgorithm: config.rootKeyAlgorithm, deviceCaAlgorithm: config.deviceCaKeyAlgorithm, caSigner: config.caSigner });
    const context: TrustContext = { store, genesis, sealer, clock, validityMs: config.trustBundleValidityDays * 86_400_000 };
    return { context, store, current: () => loadTrust(context), close: () => store.close() };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * The current root certificate (DER): the latest bundle's first root key, from pki/ (genesis) or
 * the store (rotated); pki/root.crt when there is no bundle yet. Needs no master key.
 */
export async function currentRootCertificate(config: HubConfig, clock: Clock = systemClock): Promise<Buffer> {
  const genesis = readRootCertificate(config.dataDir);
  if (!existsSync(dbPath(config.dataDir))) return genesis;
  const store = await openSqliteStore({ path: dbPath(config.dataDir), clock });
  try {
    const latest = await store.trust.latest();
    const key = latest === undefined ? undefined : decodeBundle(latest.bytes).content.rootKeys[0];
    if (key === undefined || keyIdOf(key) === keyIdOf(spkiOfCertificate(genesis))) return genesis;
    const row = (await store.trust.roots()).find((r) => r.keyId === keyIdOf(key));
    if (row === undefined) throw new FleetkeyError('CONFIG_INVALID', { details: { setting: 'trust', problem: 'the latest trust bundle names a root this hub does not hold' } });
    return row.certificate;
  } finally {
    await store.close();
  }
}
