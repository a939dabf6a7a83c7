export type { Grant } from './grant.js';
export type { Signer } from './signer.js';
export * from './software-signer.js';
export * from './serial.js';
export * from './policy.js';
export * from './hub-pki.js';
export * from './issuance.js';
