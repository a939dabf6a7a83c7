/**
 * JSON schemas of the batch and factory routes (batch-routes.ts); openapi.ts publishes the same
 * objects, so validation and the document cannot drift.
 */
import { REVOCATION_REASONS } from '../revocation/service.js';

const b64 = { type: 'string', pattern: '^[A-Za-z0-9+/]+={0,2}$' } as const;

export const batchSchemas = {
  createBody: {
    type: 'object',
    additionalProperties: false,
    required: ['count', 'keyAlg', 'mode'],
    properties: {
      count: { type: 'integer', minimum: 1 },
      keyAlg: { type: 'string', enum: ['p256', 'p384', 'p521', 'ed25519', 'rsa'] },
      mode: { type: 'string', enum: ['device-keys', 'hub-keys'], description: 'device-keys (preferred): CSRs made on the line; hub-keys: the hub makes the keys' },
      label: { type: 'string', minLength: 1, maxLength: 100 },
      csrs: { type: 'array', items: { type: 'string', maxLength: 16384 }, description: 'device-keys: one PEM or base64 DER PKCS#10 per device' },
      csrsPem: { type: 'string', description: 'device-keys: newline-separated PEM CSRs (instead of csrs)' },
      passphrase: { type: 'string', minLength: 12, maxLength: 1024, description: 'hub-keys: key.pem files are encrypted with it (PKCS#8, AES-256-CBC)' },
    },
  },
  batch: {
    type: 'object',
    required: ['id', 'mode', 'keyAlg', 'status', 'done', 'total', 'createdAt'],
    properties: {
      id: { type: 'string' },
      label: { type: ['string', 'null'] },
      mode: { type: 'string', enum: ['device-keys', 'hub-keys'] },
      keyAlg: { type: 'string' },
      status: { type: 'string', enum: ['running', 'done', 'failed', 'cancelled'] },
      done: { type: 'integer' },
      total: { type: 'integer' },
      failureCode: { type: ['string', 'null'] },
      createdAt: { type: 'string', format: 'date-time' },
      completedAt: { type: ['string', 'null'], format: 'date-time' },
      downloads: { type: 'integer' },
      encrypted: { type: 'boolean' },
    },
  },
  revokeBody: {
    type: 'object',
    additionalProperties: false,
    properties: { reason: { type: 'string', enum: [...REVOCATION_REASONS] } },
  },
  revocation: {
    type: 'object',
    required: ['id', 'revoked', 'cancelled', 'devices'],
    properties: { id: { type: 'string' }, revoked: { type: 'integer' }, cancelled: { type: 'boolean' }, devices: { type: 'array', items: { type: 'string' } } },
  },
  kitBody: {
    type: 'object',
    additionalProperties: false,
    required: ['orgName', 'count', 'validForSeconds', 'csr'],
    properties: {
      orgName: { type: 'string', minLength: 1, maxLength: 64, description: "Must be the session's organisation" },
      count: { type: 'integer', minimum: 1, maximum: 100000 },
      validForSeconds: { type: 'integer', minimum: 3600 },
      csr: { ...b64, maxLength: 16384, description: 'base64 DER PKCS#10 of the kit key (made by the CLI; the hub never sees the private key)' },
    },
  },
  kit: {
    type: 'object',
    required: ['kitId', 'tenantId', 'orgName', 'maxCount', 'windowStart', 'windowEnd', 'deviceValidityDays', 'caCertificatePem', 'rootCertificatePem', 'hubUrl', 'pin'],
    properties: {
      kitId: { type: 'string' }, tenantId: { type: 'string' }, orgName: { type: 'string' }, maxCount: { type: 'integer' },
      windowStart: { type: 'string', format: 'date-time' }, windowEnd: { type: 'string', format: 'date-time' },
      deviceValidityDays: { type: 'integer' }, caCertificatePem: { type: 'string' }, rootCertificatePem: { type: 'string' },
      hubUrl: { type: 'string' }, pin: { type: 'string' },
    },
  },
  importBody: {
    type: 'object',
    required: ['format', 'body', 'signature', 'signerCertificate'],
    additionalProperties: false,
    properties: { format: { type: 'string' }, body: b64, signature: { ...b64, maxLength: 1024 }, signerCertificate: { ...b64, maxLength: 16384 } },
  },
  imported: {
    type: 'object',
    required: ['kitId', 'counter', 'imported', 'total'],
    properties: { kitId: { type: 'string' }, counter: { type: 'integer' }, imported: { type: 'integer' }, total: { type: 'integer' }, alreadyImported: { type: 'boolean' } },
  },
} as const;
