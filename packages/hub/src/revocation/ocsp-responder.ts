/**
 * The OCSP responder (RFC 6960) for the device CA, answering from the store on every request.
 *
 * Invariants:
 * - Responses are signed directly by the device CA key (RFC 6960 §4.2.2.2: the CA that issued
 *   the certificate may sign), ResponderID byKey, with the device CA certificate in `certs`.
 * - Per CertID (hash SHA-1 or SHA-256, §4.1.1): issuerNameHash and issuerKeyHash must both be
 *   the device CA's, else `unknown` ("an unrecognized issuer that is not served by this
 *   responder", §2.2). A serial this CA never issued is `unknown`, never `good` (checklist row
 *   45). A recorded certificate is `revoked` (time + reason) or `good`.
 * - A request none of whose CertIDs names the device CA is answered `unauthorized` (§2.3), so the
 *   responder never signs statements about certificates that are not its own.
 * - Any malformed request is `malformedRequest`; a storage failure is `tryLater`; anything else
 *   `internalError` (logged). `respond` never throws.
 * - thisUpdate = producedAt = now (whole seconds); nextUpdate = now + validityMs.
 */
import {
  DerError, FleetkeyError, issuerHashes, ocspErrorResponse, parseCertificate, parseOcspRequest,
  responderKeyHash, signOcspResponse, type CertId, type CertStatus, type Clock, type OcspHash, type OcspRequest,
  type OcspResponseStatus, type SingleResponse,
} from '@fleetkey/protocol';
import type { Signer } from '../ca/signer.js';
import type { DeviceRepo } from '../storage/types.js';
import { reasonOf } from './crl-publisher.js';

export interface OcspResponderDeps {
  readonly devices: Pick<DeviceRepo, 'certificateBySerial'>;
  readonly signer: Signer;
  readonly caCertificate: Buffer;
  readonly clock: Clock;
  readonly validityMs: number;
  readonly onError?: (err: unknown) => void;
}

export interface OcspAnswer {
  readonly der: Buffer;
  readonly status: OcspResponseStatus;
  /** Seconds a cache may keep a successful answer (≤ nextUpdate − now); 0 for errors. */
  readonly maxAgeSeconds: number;
}

export class OcspResponder {
  readonly #deps: OcspResponderDeps;
  readonly #issuer: ReadonlyMap<OcspHash, { nameHash: Buffer; keyHash: Buffer }>;
  readonly #responderKeyHash: Buffer;

  constructor(deps: OcspResponderDeps) {
    if (!Number.isSafeInteger(deps.validityMs) || deps.validityMs < 1000) throw new RangeError('validityMs');
    this.#deps = deps;
    const ca = parseCertificate(deps.caCertificate);
    this.#issuer = new Map((['sha1', 'sha256'] as const).map((h) => [h, issuerHashes(ca.subject, ca.spki, h)]));
    this.#responderKeyHash = responderKeyHash(deps.signer.spki);
  }

  async respond(requestDer: Buffer): Promise<OcspAnswer> {
    let request: OcspRequest;
    try {
      request = parseOcspRequest(requestDer);
    } catch (err) {
      if (err instanceof DerError) return this.#error('malformedRequest');
      return this.#failure(err);
    }
    if (!request.certIds.some((id) => this.#isOurs(id))) return this.#error('unauthorized');
    try {
      return await this.#answer(request);
    } catch (err) {
      return this.#failure(err);
    }
  }

  #isOurs(id: CertId): boolean {
    const ours = id.hash === undefined ? undefined : this.#issuer.get(id.hash);
    return ours !== undefined && ours.nameHash.equals(id.issuerNameHash) && ours.keyHash.equals(id.issuerKeyHash);
  }

  async #status(id: CertId): Promise<CertStatus> {
    // RFC 5280 §4.1.2.2: at most 20 octets; fleetkey serials are positive.
    if (!this.#isOurs(id) || id.negativeSerial || id.serial.length > 20) return { kind: 'unknown' };
    const record = await this.#deps.devices.certificateBySerial(id.serial.toString('hex'));
    if (record === undefined) return { kind: 'unknown' };
    if (record.revokedAt === null) return { kind: 'good' };
    return { kind: 'revoked', revocationTime: new Date(record.revokedAt), reason: reasonOf(record.revocationReason ?? 'unspecified') };
  }

  async #answer(request: OcspRequest): Promise<OcspAnswer> {
    const now = this.#deps.clock.now();
    const thisUpdate = new Date(now - (now % 1000));
    const nextUpdate = new Date(thisUpdate.getTime() + this.#deps.validityMs);
    const responses: SingleResponse[] = [];
    for (const id of request.certIds) {
      responses.push({ certIdRaw: id.raw, status: await this.#status(id), thisUpdate, nextUpdate });
    }
    const template = { responderKeyHash: this.#responderKeyHash, producedAt: thisUpdate, responses, nonce: request.nonce };
    const der = await signOcspResponse(template, this.#deps.signer, [this.#deps.caCertificate]);
    return { der, status: 'successful', maxAgeSeconds: Math.floor(this.#deps.validityMs / 1000) };
  }

  #error(status: Exclude<OcspResponseStatus, 'successful'>): OcspAnswer {
    return { der: ocspErrorResponse(status), status, maxAgeSeconds: 0 };
  }

  #failure(err: unknown): OcspAnswer {
    this.#deps.onError?.(err);
    const storage = err instanceof FleetkeyError && err.code === 'STORAGE_UNAVAILABLE';
    return this.#error(storage ? 'tryLater' : 'internalError');
  }
}
