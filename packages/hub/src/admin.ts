/**
 * Operator access to a data folder without a running server (`fleetkey owner add`, `audit verify`).
 * Safe beside a running hub: SQLite WAL + busy timeout, and the audit chain head is read inside
 * each write transaction.
 */
import { existsSync } from 'node:fs';
import { FleetkeyError, systemClock, type Clock } from '@fleetkey/protocol';
import {
  CommonPasswordBlocklist, PasswordHasher, createOrganisationWithOwner, validateAccountsConfig,
  type CreatedOrganisation, type NewOrganisation,
} from './accounts/index.js';
import type { HubConfig } from './config/load.js';
import { dbPath, loadMasterKey } from './datadir.js';
import { hubPkiExists } from './pki/bootstrap.js';
import { openSqliteStore } from './storage/sqlite/index.js';
import type { Store } from './storage/types.js';

export interface AdminContext {
  readonly store: Store;
  createOrganisationWithOwner(input: NewOrganisation): Promise<CreatedOrganisation>;
  close(): Promise<void>;
}

export async function openAdminContext(config: HubConfig, clock: Clock = systemClock): Promise<AdminContext> {
  if (!hubPkiExists(config.dataDir) || !existsSync(dbPath(config.dataDir))) {
    throw new FleetkeyError('CONFIG_INVALID', { details: { setting: 'dataDir', problem: 'no hub here; run fleetkey hub start first' } });
  }
  const sealer = loadMasterKey(config.masterKeyFile, false);
  const store = await openSqliteStore({ path: dbPath(config.dataDir), clock });
  let hasher: PasswordHasher | undefined;
  return {
    store,
    createOrganisationWithOwner: async (input) => {
      hasher ??= await PasswordHasher.create(validateAccountsConfig({}).argon2);
      return createOrganisationWithOwner(input, { store, clock, hasher, sealer, blocklist: new CommonPasswordBlocklist() });
    },
    close: () => store.close(),
  };
}
