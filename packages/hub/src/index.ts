export * from './storage/types.js';
export { openSqliteStore } from './storage/sqlite/index.js';
export * from './secrets/sealer.js';
