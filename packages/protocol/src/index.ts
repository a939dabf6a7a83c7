export * from './errors.js';
export * from './clock.js';
export * from './claim-uri.js';
export * from './der/index.js';
export * from './x509/index.js';
export * from './telemetry-envelope.js';
export * from './factory/index.js';
export * from './trust-bundle/index.js';
