export * from './kit.js';
export * from './manifest.js';
