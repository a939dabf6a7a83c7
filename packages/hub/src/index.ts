export * from './storage/types.js';
export { openSqliteStore } from './storage/sqlite/index.js';
export * from './secrets/sealer.js';
export { loadConfig, type HubConfig } from './config/load.js';
export { CONFIG_SPEC } from './config/spec.js';
export { startHub, HUB_VERSION, type RunningHub, type StartHubOptions } from './hub.js';
export { openAdminContext, type AdminContext } from './admin.js';
export { readRootCertificate, spkiOfCertificate } from './pki/bootstrap.js';
export { writeFileAtomic } from './datadir.js';
