/**
 * Device-facing attestation routes (ADR 0027), beside EST under `/.well-known/fleetkey/attest/`:
 *
 *   POST tpm/challenge  {ekCertificate, ekChain?, akPublic}              → {challengeId, credentialBlob, encryptedSecret}
 *   POST tpm/enroll     {challengeId, csr, activatedSecret, keyPublic, certifyInfo, certifySignature} → {pkcs7}
 *   POST se/challenge   {deviceCertificate, chain?}                       → {challengeId, nonce}
 *   POST se/enroll      {challengeId, csr, signature}                     → {pkcs7}
 *
 * Invariants:
 * - Every binary field is strict base64 of bounded size (schema + decode); anything else is
 *   VALIDATION_FAILED before a token or challenge is touched.
 * - The claim token comes only from `Authorization` (Basic password or Bearer, as EST), never a body.
 * - The channel binding is taken from the request's own TLS socket (attestation/channel-binding.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FleetkeyError } from '@fleetkey/protocol';
import { secretFromAuthorization, type PreparedCsr } from '../est/routes.js';
import { channelBindingOf } from './channel-binding.js';
import type { AttestationCaller, AttestationService } from './service.js';

const PREFIX = '/.well-known/fleetkey/attest';
const B64 = '^[A-Za-z0-9+/]*={0,2}$';
const b64 = (maxBytes: number) => ({ type: 'string', minLength: 4, maxLength: Math.ceil(maxBytes / 3) * 4, pattern: B64 });
const CERT = b64(8192);
const CHAIN = { type: 'array', maxItems: 4, items: CERT };
const CSR = b64(16 * 1024);
const TPM_BLOB = b64(1024);
const ID = { type: 'string', minLength: 16, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' };
const body = (properties: Record<string, unknown>, required: string[]) => ({ type: 'object', additionalProperties: false, required, properties });

function bytes(field: string, value: string): Buffer {
  const out = Buffer.from(value, 'base64');
  if (out.length === 0 || out.toString('base64') !== value) throw new FleetkeyError('VALIDATION_FAILED', { details: { field } });
  return out;
}

function caller(request: FastifyRequest): AttestationCaller {
  const secret = secretFromAuthorization(request.headers.authorization);
  if (secret === undefined || secret.length === 0) throw new FleetkeyError('AUTH_REQUIRED');
  return { secret, source: request.ip, binding: channelBindingOf(request.raw.socket) };
}

/** `onRequest`: no credential → 401 AUTH_REQUIRED before the body is parsed (as the owner routes). */
async function requireToken(request: FastifyRequest): Promise<void> {
  const secret = secretFromAuthorization(request.headers.authorization);
  if (secret === undefined || secret.length === 0) throw new FleetkeyError('AUTH_REQUIRED');
}

export function registerAttestationRoutes<P extends PreparedCsr>(app: FastifyInstance, service: AttestationService<P>): void {
  const tpmChallengeBody = body({ ekCertificate: CERT, ekChain: CHAIN, akPublic: TPM_BLOB }, ['ekCertificate', 'akPublic']);
  app.post(`${PREFIX}/tpm/challenge`, { onRequest: requireToken, schema: { body: tpmChallengeBody } }, async (request) => {
    const b = request.body as { ekCertificate: string; ekChain?: string[]; akPublic: string };
    return service.tpmChallenge(caller(request), {
      ekCertificate: bytes('ekCertificate', b.ekCertificate), ekChain: (b.ekChain ?? []).map((c) => bytes('ekChain', c)), akPublic: bytes('akPublic', b.akPublic),
    });
  });

  const tpmEnrollBody = body(
    { challengeId: ID, csr: CSR, activatedSecret: TPM_BLOB, keyPublic: TPM_BLOB, certifyInfo: TPM_BLOB, certifySignature: TPM_BLOB },
    ['challengeId', 'csr', 'activatedSecret', 'keyPublic', 'certifyInfo', 'certifySignature'],
  );
  app.post(`${PREFIX}/tpm/enroll`, { onRequest: requireToken, schema: { body: tpmEnrollBody } }, async (request, reply) => {
    const b = request.body as Record<'challengeId' | 'csr' | 'activatedSecret' | 'keyPublic' | 'certifyInfo' | 'certifySignature', string>;
    const pkcs7 = await service.tpmEnroll(caller(request), {
      challengeId: b.challengeId, csr: bytes('csr', b.csr),
      evidence: {
        activatedSecret: bytes('activatedSecret', b.activatedSecret), keyPublic: bytes('keyPublic', b.keyPublic),
        certifyInfo: bytes('certifyInfo', b.certifyInfo), certifySignature: bytes('certifySignature', b.certifySignature),
      },
    });
    return reply.header('Cache-Control', 'no-store').send({ pkcs7: pkcs7.toString('base64') });
  });

  app.post(`${PREFIX}/se/challenge`, { onRequest: requireToken, schema: { body: body({ deviceCertificate: CERT, chain: CHAIN }, ['deviceCertificate']) } }, async (request) => {
    const b = request.body as { deviceCertificate: string; chain?: string[] };
    return service.seChallenge(caller(request), {
      deviceCertificate: bytes('deviceCertificate', b.deviceCertificate), chain: (b.chain ?? []).map((c) => bytes('chain', c)),
    });
  });

  app.post(`${PREFIX}/se/enroll`, { onRequest: requireToken, schema: { body: body({ challengeId: ID, csr: CSR, signature: b64(1024) }, ['challengeId', 'csr', 'signature']) } }, async (request, reply) => {
    const b = request.body as { challengeId: string; csr: string; signature: string };
    const pkcs7 = await service.seEnroll(caller(request), { challengeId: b.challengeId, csr: bytes('csr', b.csr), signature: bytes('signature', b.signature) });
    return reply.header('Cache-Control', 'no-store').send({ pkcs7: pkcs7.toString('base64') });
  });
}
