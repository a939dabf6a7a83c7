export * from './canonical-json.js';
export * from './shape.js';
export * from './bundle.js';
export * from './verify.js';
