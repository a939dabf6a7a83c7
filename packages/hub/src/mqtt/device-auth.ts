/**
 * Who is on this MQTT connection: the device identity from the verified TLS client certificate,
 * never from the client id or the username/password (which are ignored).
 *
 * Invariants (checklist rows 4, 9, 26; the same checks as provisioning/reenroll):
 * - The TLS stack already verified the chain against the device CA (`requestCert`,
 *   `rejectUnauthorized`); the issuer signature is verified here again with the device CA key,
 *   so a wrong `ca` option or a same-name CA can never let a certificate through.
 * - The certificate must be within its validity (injected clock), not a CA certificate, carry
 *   EKU clientAuth, and be the very certificate (same DER) this hub recorded under its serial,
 *   not revoked (in the store, nor in the live revocation list fed by `device.revoked`), and the
 *   device must be active; a pre-provisioned device (batch, factory) becomes active here, on its
 *   first connection.
 * - The device id is the record's: a recorded DER holds exactly one device id (CN = SAN URI) and
 *   it is that record's — the hub wrote it from its own profile, or factory import checked it with
 *   `deviceIdFromCertificate` — so the byte comparison proves the identity without re-parsing the
 *   certificate in JS (~200 µs per connection). Refusals parse it, to name the claimed device in
 *   the log and audit.
 * - Every refusal has one public outcome (CONNACK 5, CERT_INVALID); the reason is for the log
 *   and audit only.
 * - The issuer signature is verified once per certificate and CA (VerifiedIssuerCache); all other
 *   checks run on every connection.
 */
import { X509Certificate } from 'node:crypto';
import { deviceIdFromCertificate, type Clock } from '@fleetkey/protocol';
import type { Store } from '../storage/types.js';

export interface DeviceIdentity {
  readonly deviceId: string;
  readonly tenantId: string;
  /** Lower-case hex, as the store records it. */
  readonly serial: string;
}

export type DeviceAuthResult =
  | { readonly ok: true; readonly identity: DeviceIdentity }
  | { readonly ok: false; readonly reason: string; readonly deviceId?: string; readonly tenantId?: string };

export interface DeviceAuthDeps {
  readonly store: Store;
  readonly clock: Clock;
  /** Device CA certificates; reloadable (trust rotation), so read on every check. */
  readonly deviceCaCerts: () => readonly X509Certificate[];
  /** The live revocation list (events may arrive before the store says so). */
  readonly isRevoked: (deviceId: string, serial: string) => boolean;
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'; // RFC 5280 §4.2.1.12 id-kp-clientAuth

/**
 * Which device CA signed a certificate already checked once, so a reconnecting device does not
 * pay the ECDSA re-verification again (~110 µs of event loop per connection; ADR 0023). Only the
 * signature result is remembered; everything else is checked on every connection.
 * - An entry is added only after `checkIssued && verify` succeeded; failures are never kept.
 * - Key: the SHA-256 fingerprint of the whole DER. A hit counts only while that CA object is in
 *   the current trust list (a reload replaces the list) and `checkIssued` still holds.
 * - At most `capacity` entries, least recently used dropped first.
 */
export class VerifiedIssuerCache {
  readonly #capacity: number;
  readonly #byFingerprint = new Map<string, X509Certificate>();

  constructor(capacity = 10_000) {
    this.#capacity = capacity;
  }

  /** The device CA in `cas` that signed `cert`, verifying the signature only on a miss. */
  issuerOf(cert: X509Certificate, cas: readonly X509Certificate[]): X509Certificate | undefined {
    const key = cert.fingerprint256;
    const known = this.#byFingerprint.get(key);
    if (known !== undefined && cas.includes(known) && cert.checkIssued(known)) {
      this.#byFingerprint.delete(key);
      this.#byFingerprint.set(key, known);
      return known;
    }
    const issuer = cas.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
    if (issuer !== undefined) this.#remember(key, issuer);
    return issuer;
  }

  get size(): number {
    return this.#byFingerprint.size;
  }

  #remember(key: string, issuer: X509Certificate): void {
    this.#byFingerprint.delete(key);
    this.#byFingerprint.set(key, issuer);
    if (this.#byFingerprint.size > this.#capacity) {
      const oldest = this.#byFingerprint.keys().next();
      if (oldest.done !== true) this.#byFingerprint.delete(oldest.value);
    }
  }
}


export class DeviceAuthenticator {
  readonly #deps: DeviceAuthDeps;
  readonly #issuers = new VerifiedIssuerCache();

  constructor(deps: DeviceAuthDeps) {
    this.#deps = deps;
  }

  /**
   * Checks the client certificate of a TLS connection (`undefined` = none presented): the
   * socket's already decoded X509 object (`getPeerX509Certificate`), or DER bytes.
   */
  async authenticate(peer: X509Certificate | Buffer | undefined): Promise<DeviceAuthResult> {
    if (peer === undefined || (Buffer.isBuffer(peer) && peer.length === 0)) return { ok: false, reason: 'no client certificate' };
    let cert: X509Certificate;
    try {
      cert = Buffer.isBuffer(peer) ? new X509Certificate(peer) : peer;
    } catch {
      return { ok: false, reason: 'unparsable certificate' };
    }
    const der = Buffer.isBuffer(peer) ? peer : cert.raw;
    const reason = this.#checkCertificate(cert);
    if (reason !== undefined) return { ok: false, reason };
    return this.#checkRecord(cert.serialNumber.toLowerCase(), der);
  }

  #checkCertificate(cert: X509Certificate): string | undefined {
    const issuer = this.#issuers.issuerOf(cert, this.#deps.deviceCaCerts());
    if (issuer === undefined) return 'not issued by the device CA';
    const now = this.#deps.clock.now();
    if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) return 'outside validity'; // RFC 5280 §4.1.2.5
    if (cert.ca) return 'a CA certificate is not a device identity'; // RFC 5280 §4.2.1.9
    if (!(cert.keyUsage ?? []).includes(CLIENT_AUTH)) return 'no clientAuth EKU';
    return undefined;
  }

  async #checkRecord(serial: string, der: Buffer): Promise<DeviceAuthResult> {
    const record = await this.#deps.store.devices.certificateBySerial(serial);
    // The very certificate recorded, not a look-alike with its serial and device id signed by
    // another CA the hub trusts (e.g. another tenant's factory sub-CA); as in reenroll (ADR 0025).
    if (record === undefined || !record.der.equals(der)) {
      const claimed = claimedDeviceId(der);
      if (claimed === undefined) return { ok: false, reason: 'no device identity in certificate' };
      if (record === undefined || record.deviceId !== claimed) return { ok: false, reason: 'certificate not issued by this hub', deviceId: claimed };
      return { ok: false, reason: 'certificate differs from the one recorded under its serial', deviceId: claimed };
    }
    const deviceId = record.deviceId;
    const tenantId = record.tenantId;
    if (record.revokedAt !== null) return { ok: false, reason: 'certificate revoked', deviceId, tenantId };
    const device = await this.#deps.store.devices.get(tenantId, deviceId);
    if (device?.status === 'pre-provisioned' && !(await this.#activate(tenantId, deviceId, serial))) return { ok: false, reason: 'device not active', deviceId, tenantId };
    if (device === undefined || device.status === 'revoked') return { ok: false, reason: 'device not active', deviceId, tenantId };
    // Checked last, after every await: a revocation that arrived meanwhile is seen here.
    if (this.#deps.isRevoked(deviceId, serial)) return { ok: false, reason: 'certificate revoked', deviceId, tenantId };
    return { ok: true, identity: { deviceId, tenantId, serial } };
  }

  /** First connection of a batch or factory device: pre-provisioned → active (ADR 0014), one conditional unit. */
  async #activate(tenantId: string, deviceId: string, serial: string): Promise<boolean> {
    const activated = await this.#deps.store.batches.activateDevice(tenantId, deviceId, {
      category: 'mqtt', type: 'device.activate', result: 'success', actor: `device:${deviceId}`, source: 'mqtt', details: { serial },
    });
    // Lost a race with another first connection of the same device: active is fine, revoked is not.
    return activated || (await this.#deps.store.devices.get(tenantId, deviceId))?.status === 'active';
  }
}

/** The device id a refused certificate claims (CN = SAN URI), if it holds exactly one. */
function claimedDeviceId(der: Buffer): string | undefined {
  try {
    return deviceIdFromCertificate(der);
  } catch {
    return undefined;
  }
}
