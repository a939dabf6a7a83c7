/**
 * The `reenroll` provisioning method: EST `simplereenroll` over mutual TLS (RFC 7030 §4.2.2).
 * The device proves its current identity with its certificate on this TLS connection; the new
 * certificate keeps the same device id (so Subject and SAN are identical by construction).
 *
 * Invariants (RFC 7030 §3.3.2, §4.2.2; checklist rows 9 and 44; ADR 0025):
 * - The client certificate must be issued by this hub's device CA (signature verified here, not
 *   only by the TLS stack), carry EKU clientAuth, not be a CA, and map to a device id.
 * - It must be the very certificate this hub recorded (same DER) for that device, not revoked, and the device must
 *   be active — checked before any question of time, so a revoked or foreign certificate is
 *   refused as CERT_INVALID however old it is. The grant is for the same device and tenant only.
 * - Time (grace.ts): inside validity any proven key; after notAfter only within the tenant's
 *   grace and only for the same key (the grant binds it: `boundSpkiSha256`), else
 *   RENEWAL_NEEDS_CLAIM. The HTTPS listener lets expired client certificates through the
 *   handshake (`rejectUnauthorized: false`) precisely so that this method can decide; MQTT and
 *   the proof endpoint refuse them.
 * - Every refusal is audited (`certificate.reenroll`, failure, with its code and reason); an
 *   accepted renewal is audited by the issuance record (`certificate.issue`, details.renewal).
 */
import { X509Certificate } from 'node:crypto';
import { FleetkeyError, deviceIdFromCertificate, type Clock, type ErrorCode } from '@fleetkey/protocol';
import type { Grant } from '../../ca/grant.js';
import type { CertificateRecord, KeyProtection, Store } from '../../storage/types.js';
import type { EnrollmentRequest, ProvisioningMethod } from '../method.js';
import { decideRenewal } from './grace.js';

export interface ReenrollMethodDeps {
  readonly store: Store;
  readonly clock: Clock;
  /** The device CA certificates whose device certificates may re-enroll; live (read per request). */
  readonly deviceCaCerts: () => readonly X509Certificate[];
  readonly deviceValidityMs: number;
  /** The renewal grace after expiry of this tenant (its own policy, else the hub default), ms. */
  readonly graceMs: (tenantId: string) => Promise<number>;
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export class ReenrollMethod implements ProvisioningMethod {
  readonly name = 'reenroll';
  readonly #deps: ReenrollMethodDeps;

  constructor(deps: ReenrollMethodDeps) {
    this.#deps = deps;
  }

  accepts(request: EnrollmentRequest): boolean {
    return request.operation === 'simplereenroll' && request.credential.kind === 'certificate';
  }

  async authorize(request: EnrollmentRequest): Promise<Grant> {
    if (request.credential.kind !== 'certificate') throw new FleetkeyError('CERT_REQUIRED');
    const cert = this.#parse(request.credential.der);
    const reason = this.#checkCertificate(cert);
    if (reason !== undefined) return this.#deny(request, 'CERT_INVALID', reason);
    const deviceId = this.#deviceId(request.credential.der);
    if (deviceId === undefined) return this.#deny(request, 'CERT_INVALID', 'no device identity in certificate');
    const serial = cert.serialNumber.toLowerCase();
    const record = await this.#deps.store.devices.certificateBySerial(serial);
    if (record === undefined || record.deviceId !== deviceId) return this.#deny(request, 'CERT_INVALID', 'certificate not issued by this hub');
    // The very certificate recorded, not a look-alike another trusted CA (a tenant's factory
    // sub-CA) signed with the same serial and device id.
    if (!record.der.equals(cert.raw)) return this.#deny(request, 'CERT_INVALID', 'certificate differs from the one recorded under its serial');
    if (record.revokedAt !== null) return this.#deny(request, 'CERT_INVALID', 'certificate revoked', record);
    const device = await this.#deps.store.devices.get(record.tenantId, deviceId);
    if (device === undefined || device.status !== 'active') return this.#deny(request, 'CERT_INVALID', 'device not active', record);
    const decision = decideRenewal({
      now: this.#deps.clock.now(), notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo),
      graceMs: await this.#deps.graceMs(device.tenantId), certSpkiSha256: record.spkiSha256, csrSpkiSha256: request.csrSpkiSha256,
    });
    if (decision.kind === 'refuse') return this.#deny(request, decision.code, decision.reason, record);
    return {
      method: this.name,
      tenantId: device.tenantId,
      deviceId,
      maxValidityMs: this.#deps.deviceValidityMs,
      // A renewal after expiry is for the very key the handshake proved (ADR 0025).
      ...(decision.kind === 'grace' ? { boundSpkiSha256: record.spkiSha256 } : {}),
      context: { previousSerial: serial, source: request.source, renewal: decision.kind },
      keyProtection: renewedKeyProtection(device.keyProtection ?? 'file', record.spkiSha256 === request.csrSpkiSha256, request.reportedKeyProtection),
    };
  }

  #parse(der: Buffer): X509Certificate {
    try {
      return new X509Certificate(der);
    } catch (cause) {
      throw new FleetkeyError('CERT_INVALID', { cause });
    }
  }

  /** Everything but time: that is grace.ts's question, asked once the certificate is known ours. */
  #checkCertificate(cert: X509Certificate): string | undefined {
    const issuer = this.#deps.deviceCaCerts().find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
    if (issuer === undefined) return 'not issued by the device CA';
    if (cert.ca) return 'a CA certificate is not a device identity';
    const eku = cert.keyUsage ?? [];
    if (!eku.includes(CLIENT_AUTH)) return 'no clientAuth EKU';
    return undefined;
  }

  #deviceId(der: Buffer): string | undefined {
    try {
      return deviceIdFromCertificate(der);
    } catch {
      return undefined;
    }
  }

  async #deny(request: EnrollmentRequest, code: ErrorCode, reason: string, record?: CertificateRecord): Promise<never> {
    await this.#deps.store.audit.append({
      category: 'enrollment', type: 'certificate.reenroll', result: 'failure', actor: record === undefined ? 'anonymous' : `device:${record.deviceId}`,
      source: request.source, code, details: { reason, ...(record === undefined ? {} : { serial: record.serial }) },
      // Only a certificate this hub recorded names a tenant; a foreign one is audited without.
      ...(record === undefined ? {} : { tenantId: record.tenantId }),
    });
    throw new FleetkeyError(code, { cause: new Error(reason) });
  }
}

/**
 * ADR 0027: an attested key stays attested only while it is the same key; a new key is only as
 * good as the device says (the attested kind's device-reported counterpart, or what it reports).
 */
export function renewedKeyProtection(current: KeyProtection, sameKey: boolean, reported: EnrollmentRequest['reportedKeyProtection']): KeyProtection {
  if (sameKey) return current;
  if (reported !== undefined) return reported;
  return current === 'tpm-attested' ? 'tpm' : current === 'se-attested' ? 'pkcs11' : current;
}
