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
      status: { type: 'string', enum: ['active', 'revoked', 'pre-provisioned'] },
      label: { type: ['string', 'null'] },
      createdAt: { type: 'string', format: 'date-time' },
      enrolledVia: { type: 'string' },
      keyProtection: { enum: ['file', 'pkcs11', 'tpm', 'tpm-attested', 'se-attested'] },
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
  telemetryQuery: {
    type: 'object',
    additionalProperties: false,
    properties: {
      since: { type: 'string', maxLength: 40, description: 'ISO 8601 date-time with offset; received at or after (inclusive)' },
      until: { type: 'string', maxLength: 40, description: 'ISO 8601 date-time with offset; received before (exclusive)' },
      limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
      cursor: { type: 'string', maxLength: 32, pattern: '^[A-Za-z0-9_-]+$', description: 'Opaque: `next` of the previous page (repeat the same since/until)' },
    },
  },
  telemetryMessage: {
    type: 'object',
    required: ['seq', 'topic', 'receivedAt', 'qos', 'messageId', 'payload'],
    properties: {
      seq: { type: 'integer' },
      topic: { type: 'string' },
      receivedAt: { type: 'string', format: 'date-time' },
      qos: { type: 'integer', enum: [0, 1] },
      messageId: { type: ['string', 'null'], description: 'The SDK message id (fleetkey envelope), else null' },
      payload: { type: 'string', contentEncoding: 'base64', description: 'The payload bytes, base64' },
      json: { description: 'The payload parsed, present only when it is a JSON object or array' },
    },
  },
  commandBody: {
    type: 'object',
    additionalProperties: false,
    required: ['topic'],
    properties: {
      topic: { type: 'string', maxLength: 520, pattern: '^[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64}){0,7}$', description: 'Delivered on devices/{id}/commands/{topic}' },
      payload: { type: 'string', description: 'UTF-8 text payload (exactly one of payload, payloadBase64)' },
      payloadBase64: { type: 'string', pattern: '^[A-Za-z0-9+/]*={0,2}$', description: 'Binary payload, base64' },
    },
  },
  commandAccepted: {
    type: 'object',
    required: ['id', 'topic', 'acceptedAt'],
    properties: { id: { type: 'string' }, topic: { type: 'string' }, acceptedAt: { type: 'string', format: 'date-time' } },
  },
} as const;
