export * from './keystore/types.js';
