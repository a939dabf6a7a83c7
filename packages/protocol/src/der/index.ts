export * from './tags.js';
export * from './writer.js';
export * from './reader.js';
export { decodeOid, oidContent } from './oid.js';
export { decodeTime } from './time.js';
