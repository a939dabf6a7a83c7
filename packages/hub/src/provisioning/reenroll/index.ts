/**
 * The `reenroll` provisioning method: EST `simplereenroll` over mutual TLS (RFC 7030 §4.2.2).
 * The device proves its current identity with its certificate on this TLS connection; the new
 * certificate keeps the same device id (so Subject and SAN are identical by construction).
 *
 * Invariants (RFC 7030 §3.3.2, §4.2.2; checklist rows 9 and 44):
 * - The client certificate must be issued by this hub's device CA (signature verified here, not
 *   only by the TLS stack), be within its validity, carry EKU clientAuth, and map to a device id.
 * - It must be a certificate this hub recorded for that device, not revoked, and the device must
 *   be active. The grant is for the same device and tenant only.
 */
import { X509Certificate } from 'node:crypto';
import { FleetkeyError, deviceIdFromCertificate, type Clock } from '@fleetkey/protocol';
import type { Grant } from '../../ca/grant.js';
import type { KeyProtection, Store } from '../../storage/types.js';
import type { EnrollmentRequest, ProvisioningMethod } from '../method.js';

export interface ReenrollMethodDeps {
  readonly store: Store;
  readonly clock: Clock;
  /** The device CA certificates whose device certificates may re-enroll; live (read per request). */
  readonly deviceCaCerts: () => readonly X509Certificate[];
  readonly deviceValidityMs: number;
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
    if (reason !== undefined) return this.#deny(request, reason);
    const deviceId = this.#deviceId(request.credential.der);
    if (deviceId === undefined) return this.#deny(request, 'no device identity in certificate');
    const serial = cert.serialNumber.toLowerCase();
    const record = await this.#deps.store.devices.certificateBySerial(serial);
    if (record === undefined || record.deviceId !== deviceId) return this.#deny(request, 'certificate not issued by this hub');
    if (record.revokedAt !== null) return this.#deny(request, 'certificate revoked');
    const device = await this.#deps.store.devices.get(record.tenantId, deviceId);
    if (device === undefined || device.status !== 'active') return this.#deny(request, 'device not active');
    return {
      method: this.name,
      tenantId: device.tenantId,
      deviceId,
      maxValidityMs: this.#deps.deviceValidityMs,
      context: { previousSerial: serial, source: request.source },
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

  #checkCertificate(cert: X509Certificate): string | undefined {
    const issuer = this.#deps.deviceCaCerts().find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
    if (issuer === undefined) return 'not issued by the device CA';
    const now = this.#deps.clock.now();
    if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) return 'outside validity';
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

  async #deny(request: EnrollmentRequest, reason: string): Promise<never> {
    await this.#deps.store.audit.append({
      category: 'enrollment', type: 'certificate.reenroll', result: 'failure', actor: 'anonymous',
      source: request.source, code: 'CERT_INVALID', details: { reason },
    });
    throw new FleetkeyError('CERT_INVALID', { cause: new Error(reason) });
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
