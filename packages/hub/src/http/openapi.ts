/** The published OpenAPI 3.1 document, built from the same schemas fastify validates with. */
import { schemas } from './schemas.js';
import { revocationSchemas } from './revocation-routes.js';
import { batchSchemas } from './batch-schemas.js';

const bearer = [{ bearerAuth: [] }];
const errors = {
  '400': { $ref: '#/components/responses/Error' },
  '401': { $ref: '#/components/responses/Error' },
  '404': { $ref: '#/components/responses/Error' },
  '429': { $ref: '#/components/responses/Error' },
};
const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const pkcs7 = { description: 'certs-only PKCS#7, base64 (RFC 7030 §4.1.3)', content: { 'application/pkcs7-mime': { schema: { type: 'string' } } } };
const query = (schema: { properties: Record<string, unknown> }) => Object.entries(schema.properties).map(([name, s]) => ({ name, in: 'query', required: false, schema: s }));
const ocsp = { description: 'OCSPResponse, DER (malformedRequest etc. are OCSP statuses, still HTTP 200)', content: { 'application/ocsp-response': { schema: { type: 'string', format: 'binary' } } } };
const idParam = [{ name: 'id', in: 'path', required: true, schema: schemas.idParam.properties.id }];

export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: { title: 'fleetkey hub API', version, description: 'Owner API and EST (RFC 7030) enrollment. Errors use the codes of docs/errors.md.' },
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'Owner session token from POST /api/v1/sessions' },
        claimToken: { type: 'http', scheme: 'basic', description: 'EST: any username, the claim token as password' },
      },
      responses: { Error: { description: 'A coded error', ...json(schemas.errorBody) } },
    },
    paths: {
      '/api/v1/sessions': { post: { summary: 'Log in with password + TOTP', requestBody: json(schemas.loginBody), responses: { '201': { description: 'Session', ...json(schemas.session) }, ...errors } } },
      '/api/v1/sessions/current': { delete: { summary: 'Log out', security: bearer, responses: { '204': { description: 'Logged out' }, ...errors } } },
      '/api/v1/claim-tokens': {
        post: { summary: 'Create a claim token (shown once)', security: bearer, requestBody: json(schemas.createClaimTokenBody), responses: { '201': { description: 'Created', ...json(schemas.createdClaimToken) }, ...errors } },
        get: { summary: 'List claim tokens (no secrets)', security: bearer, responses: { '200': { description: 'Tokens', ...json({ type: 'object', properties: { items: { type: 'array', items: schemas.claimToken } } }) }, ...errors } },
      },
      '/api/v1/claim-tokens/{id}': { delete: { summary: 'Revoke a claim token', security: bearer, parameters: idParam, responses: { '204': { description: 'Revoked' }, ...errors } } },
      '/api/v1/devices': { get: { summary: "The organisation's devices", security: bearer, responses: { '200': { description: 'Devices', ...json({ type: 'object', properties: { items: { type: 'array', items: schemas.device }, next: { type: ['string', 'null'] } } }) }, ...errors } } },
      '/api/v1/devices/{id}': { get: { summary: 'One device of the organisation', security: bearer, parameters: idParam, responses: { '200': { description: 'Device', ...json(schemas.device) }, ...errors } } },
      '/api/v1/devices/{id}/telemetry': { get: { summary: "A device's stored telemetry, oldest first, paged (docs/telemetry.md)", security: bearer, parameters: [...idParam, ...query(schemas.telemetryQuery)], responses: { '200': { description: 'Messages; `next` is the cursor of the following page or null', ...json({ type: 'object', properties: { items: { type: 'array', items: schemas.telemetryMessage }, next: { type: ['string', 'null'] } } }) }, ...errors } } },
      '/api/v1/devices/{id}/telemetry/stream': { get: { summary: 'Live telemetry as server-sent events (`event: telemetry`, `id` = seq; `Last-Event-ID` replays)', security: bearer, parameters: idParam, responses: { '200': { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors } } },
      '/api/v1/devices/{id}/commands': { post: { summary: 'Send a command to devices/{id}/commands/{topic} (not queued: delivered to a live session)', security: bearer, parameters: idParam, requestBody: json(schemas.commandBody), responses: { '202': { description: 'Accepted', ...json(schemas.commandAccepted) }, ...errors } } },
      '/api/v1/devices/{id}/revoke': { post: { summary: 'Revoke a device and all its certificates (idempotent; ADR 0011)', security: bearer, parameters: idParam, requestBody: json(revocationSchemas.revokeBody), responses: { '200': { description: 'Revoked (or already revoked)', ...json(revocationSchemas.revocation) }, ...errors } } },
      '/api/v1/batches': { post: { summary: 'Create a batch of pre-provisioned identities (device-keys: uploaded CSRs, all-or-none; hub-keys: keys made by the hub); runs as a job (ADR 0014)', security: bearer, requestBody: json(batchSchemas.createBody), responses: { '202': { description: 'Accepted; poll GET /api/v1/batches/{id}', ...json(batchSchemas.batch) }, ...errors } } },
      '/api/v1/batches/{id}': { get: { summary: 'Batch progress (done/total) and status', security: bearer, parameters: idParam, responses: { '200': { description: 'Batch', ...json(batchSchemas.batch) }, ...errors } } },
      '/api/v1/batches/{id}/bundle': { get: { summary: 'The .tar.gz bundle (one folder per device); batchBundleMaxDownloads times, audited', security: bearer, parameters: idParam, responses: { '200': { description: 'application/gzip', content: { 'application/gzip': { schema: { type: 'string', format: 'binary' } } } }, '409': { $ref: '#/components/responses/Error' }, '410': { $ref: '#/components/responses/Error' }, ...errors } } },
      '/api/v1/batches/{id}/revoke': { post: { summary: 'Revoke the never-connected identities of a batch or factory kit together (cancels a running job)', security: bearer, parameters: idParam, requestBody: json(batchSchemas.revokeBody), responses: { '200': { description: 'Revoked', ...json(batchSchemas.revocation) }, ...errors } } },
      '/api/v1/batches/import': { post: { summary: 'Import a signed factory manifest (idempotent; ADR 0015)', security: bearer, requestBody: json(batchSchemas.importBody), responses: { '200': { description: 'Imported', ...json(batchSchemas.imported) }, '403': { $ref: '#/components/responses/Error' }, '409': { $ref: '#/components/responses/Error' }, ...errors } } },
      '/api/v1/factory-kits': { post: { summary: 'Issue a factory sub-CA for the organisation from the kit key CSR (ADR 0015)', security: bearer, requestBody: json(batchSchemas.kitBody), responses: { '201': { description: 'Kit material (no private key)', ...json(batchSchemas.kit) }, '403': { $ref: '#/components/responses/Error' }, ...errors } } },
      '/crl': { get: { summary: 'Device CA CRL (RFC 5280 §5), DER', responses: { '200': { description: 'CRL', content: { 'application/pkix-crl': { schema: { type: 'string', format: 'binary' } } } } } } },
      '/ocsp': { post: { summary: 'OCSP responder (RFC 6960)', requestBody: { content: { 'application/ocsp-request': { schema: { type: 'string', format: 'binary' } } } }, responses: { '200': ocsp, ...errors } } },
      '/ocsp/{request}': { get: { summary: 'OCSP GET form (RFC 6960 §A.1): URL-encoded base64 (or base64url) DER OCSPRequest', parameters: [{ name: 'request', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': ocsp } } },
      '/.well-known/est/cacerts': { get: { summary: 'EST CA certificates', responses: { '200': pkcs7 } } },
      '/.well-known/est/csrattrs': { get: { summary: 'EST CSR attributes', responses: { '204': { description: 'No particular attributes' } } } },
      '/.well-known/est/simpleenroll': { post: { summary: 'EST enrollment with a claim token', security: [{ claimToken: [] }], requestBody: { content: { 'application/pkcs10': { schema: { type: 'string', description: 'base64 PKCS#10' } } } }, responses: { '200': pkcs7, ...errors } } },
      '/.well-known/est/simplereenroll': { post: { summary: 'EST re-enrollment over mutual TLS', requestBody: { content: { 'application/pkcs10': { schema: { type: 'string' } } } }, responses: { '200': pkcs7, ...errors } } },
      '/.well-known/fleetkey/trust/latest': { get: { summary: 'The latest trust bundle, canonical JSON (ADR 0020, 0021); no authentication', responses: { '200': { description: 'Trust bundle', content: { 'application/json': { schema: { type: 'object' } } } }, ...errors } } },
      '/.well-known/fleetkey/trust/{version}': { get: { summary: 'Trust bundle of one version (immutable)', parameters: [{ name: 'version', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } }], responses: { '200': { description: 'Trust bundle', content: { 'application/json': { schema: { type: 'object' } } } }, ...errors } } },
      '/healthz': { get: { summary: 'Readiness', responses: { '200': { description: 'Ready' } } } },
      ...attestationPaths(),
      ...renewalPaths(),
    },
  };
}

/** ADR 0027: attestation enrollment (claim token) and the owner's attestation trust (bearer). */
function attestationPaths(): Record<string, unknown> {
  const token = [{ claimToken: [] }];
  const obj = json({ type: 'object' });
  const device = (summary: string) => ({ post: { summary, security: token, requestBody: obj, responses: { '200': { description: 'Answer', ...obj }, '403': { $ref: '#/components/responses/Error' }, ...errors } } });
  const owned = (summary: string) => ({ security: bearer, responses: { '200': { description: summary, ...obj }, ...errors } });
  return {
    '/.well-known/fleetkey/attest/tpm/challenge': device('TPM: EK certificate + AK public area → credential for the AK (TPM2_MakeCredential)'),
    '/.well-known/fleetkey/attest/tpm/enroll': device('TPM: activated secret + TPM2_Certify of the CSR key, bound to this TLS session → {pkcs7}'),
    '/.well-known/fleetkey/attest/se/challenge': device('Secure element: factory certificate → nonce'),
    '/.well-known/fleetkey/attest/se/enroll': device('Secure element: signature over nonce ‖ tls-exporter + CSR for the factory key → {pkcs7}'),
    '/api/v1/attestation/vendor-roots': { get: { summary: "The organisation's vendor roots", ...owned('Vendor roots') }, post: { summary: 'Register a vendor root (PEM CA certificate; kind tpm or se)', requestBody: obj, ...owned('Added') } },
    '/api/v1/attestation/vendor-roots/{id}': { delete: { summary: 'Remove a vendor root', security: bearer, parameters: idParam, responses: { '204': { description: 'Removed' }, ...errors } } },
    '/api/v1/attestation/owned-chips': { get: { summary: 'Owned chips (when non-empty, only these chips are accepted)', ...owned('Owned chips') }, post: { summary: 'Add owned chips (SHA-256, serial, or a vendor manifest PEM)', requestBody: obj, ...owned('Added') } },
    '/api/v1/attestation/owned-chips/{id}': { delete: { summary: 'Remove an owned chip', security: bearer, parameters: idParam, responses: { '204': { description: 'Removed' }, ...errors } } },
    '/api/v1/attestation/policy': { get: { summary: 'Attestation policy', ...owned('Policy') }, put: { summary: 'Set requireAttestation', requestBody: obj, ...owned('Policy') } },
  };
}

/** Renewal (ADR 0025): the organisation's grace, early renewal, and the device's proof/retire steps. */
function renewalPaths(): Record<string, unknown> {
  const grace = { type: 'object', properties: { graceDays: { type: 'integer' }, source: { type: 'string', enum: ['organisation', 'default'] }, updatedAt: { type: ['string', 'null'] } } };
  const reason = { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: 64 } } };
  const deviceTls = 'mutual TLS with a current device certificate (an expired one is refused here; only simplereenroll accepts it within the grace)';
  return {
    '/api/v1/organisation/renewal': {
      get: { summary: "The organisation's renewal grace after expiry (default renewalGraceDays)", security: bearer, responses: { '200': { description: 'Policy', ...json(grace) }, ...errors } },
      put: { summary: 'Set the renewal grace after expiry, 0–365 days (0 = none); audited', security: bearer, requestBody: json({ type: 'object', required: ['graceDays'], properties: { graceDays: { type: 'integer', minimum: 0, maximum: 365 } } }), responses: { '200': { description: 'Policy', ...json(grace) }, ...errors } },
    },
    '/api/v1/devices/{id}/renew': { post: { summary: 'Ask a device to renew now (command fleetkey/renew; rate-limited, audited)', security: bearer, parameters: idParam, requestBody: json(reason), responses: { '202': { description: 'Published', ...json({ type: 'object', properties: { deviceId: { type: 'string' }, commandId: { type: 'string' }, topic: { type: 'string' }, requestedAt: { type: 'string' } } }) }, '403': { $ref: '#/components/responses/Error' }, ...errors } } },
    '/api/v1/devices/renew': { post: { summary: 'Ask every active device of the organisation to renew now (e.g. after a device-CA rotation)', security: bearer, requestBody: json(reason), responses: { '202': { description: 'Counts', ...json({ type: 'object', properties: { requested: { type: 'integer' }, rateLimited: { type: 'integer' } } }) }, ...errors } } },
    '/.well-known/fleetkey/device': { get: { summary: `Renewal proof: the device this certificate authenticates, over ${deviceTls}`, responses: { '200': { description: 'Device', ...json({ type: 'object', properties: { deviceId: { type: 'string' }, serial: { type: 'string' }, notAfter: { type: 'string' } } }) }, ...errors } } },
    '/.well-known/fleetkey/device/retire-previous': { post: { summary: `Retire (revoke as superseded) this device's older certificates, over ${deviceTls}`, responses: { '200': { description: 'Retired serials', ...json({ type: 'object', properties: { retired: { type: 'array', items: { type: 'string' } } } }) }, ...errors } } },
  };
}
