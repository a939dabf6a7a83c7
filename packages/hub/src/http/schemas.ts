/**
 * JSON schemas of the owner API: used by fastify for validation and by openapi.ts for the
 * published OpenAPI document, so the two cannot drift.
 */
const errorBody = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: { type: 'object', additionalProperties: true },
        requestId: { type: 'string' },
      },
    },
  },
} as const;

export const schemas = {
  errorBody,
  loginBody: {
    type: 'object',
    additionalProperties: false,
    required: ['email', 'password', 'totp'],
    properties: {
      email: { type: 'string', minLength: 3, maxLength: 254 },
      password: { type: 'string', minLength: 1, maxLength: 1024 },
      totp: { type: 'string', pattern: '^[0-9]{6}$' },
    },
  },
  session: {
    type: 'object',
    required: ['token', 'expiresAt'],
    properties: { token: { type: 'string' }, expiresAt: { type: 'string', format: 'date-time' } },
  },
  createClaimTokenBody: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ttlSeconds: { type: 'integer', minimum: 60, maximum: 86400 },
      maxUses: { type: 'integer', minimum: 1 },
      label: { type: 'string', minLength: 1, maxLength: 100 },
    },
  },
  createdClaimToken: {
    type: 'object',
    required: ['id', 'token', 'expiresAt', 'claimUri'],
    properties: {
      id: { type: 'string' },
      token: { type: 'string', description: 'Shown once; only its hash is stored.' },
      expiresAt: { type: 'string', format: 'date-time' },
      maxUses: { type: 'integer' },
      claimUri: { type: 'string', description: 'fleetkey://claim?v=1&hub=…&pin=…&token=…' },
    },
  },
  claimToken: {
    type: 'object',
    required: ['id', 'maxUses', 'uses', 'createdAt', 'expiresAt', 'status'],
    properties: {
      id: { type: 'string' },
      label: { type: ['string', 'null'] },
      maxUses: { type: 'integer' },
      uses: { type: 'integer' },
      createdAt: { type: 'string', format: 'date-time' },
      expiresAt: { type: 'string', format: 'date-time' },
      revokedAt: { type: ['string', 'null'], format: 'date-time' },
      status: { type: 'string', enum: ['active', 'expired', 'used', 'revoked'] },
    },
  },
  device: {
    type: 'object',
    required: ['id', 'status', 'createdAt', 'enrolledVia'],
    properties: {
      id: { type: 'string' },
      status: { type: 'string', enum: ['active', 'revoked'] },
      label: { type: ['string', 'null'] },
      createdAt: { type: 'string', format: 'date-time' },
      enrolledVia: { type: 'string' },
      certificate: {
        type: ['object', 'null'],
        properties: {
          serial: { type: 'string' },
          notBefore: { type: 'string', format: 'date-time' },
          notAfter: { type: 'string', format: 'date-time' },
          keyAlgorithm: { type: 'string' },
          spkiSha256: { type: 'string' },
        },
      },
    },
  },
  idParam: {
    type: 'object',
    required: ['id'],
    properties: { id: { type: 'string', minLength: 1, maxLength: 80, pattern: '^[A-Za-z0-9_-]+$' } },
  },
  listQuery: {
    type: 'object',
    additionalProperties: false,
    properties: {
      limit: { type: 'integer', minimum: 1, maximum: 1000 },
      after: { type: 'string', maxLength: 80, pattern: '^[A-Za-z0-9_-]*$' },
    },
  },
} as const;
