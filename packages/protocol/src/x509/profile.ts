/**
 * The fleetkey certificate profiles: device leaf, hub root, device CA, hub TLS server.
 * These functions are the only place that decides which fields and extensions a fleetkey
 * certificate carries; nothing from a CSR other than its public key ever reaches a template.
 *
 * Invariants:
 * - Device leaf: subject CN = device id; SAN = exactly one URI `urn:fleetkey:device:<id>`;
 *   EKU clientAuth; KU digitalSignature (critical); basicConstraints cA=false (critical);
 *   SKI (RFC 5280 §4.2.1.2 method 1); AKI = issuer SKI; optional CRL DP and OCSP AIA.
 * - CA: KU keyCertSign + cRLSign (critical), basicConstraints cA=true (critical) with pathLen.
 * - TLS server: EKU serverAuth, KU digitalSignature, SAN dNSName/iPAddress.
 * - `DeviceLeafProfile` encodes every constant extension once per issuer, so issuing is the
 *   per-device parts (serial, validity, CN, SAN, SKI) plus concatenation.
 * - `DeviceLeafProfile.encodeTbs` gives the same bytes as `encodeTbsCertificate(template(...))`;
 *   for the common shape it copies a cached TBSCertificate of the same field lengths and writes the
 *   per-device bytes at their offsets (leaf-stamp.ts), checked against the generic encoder once
 *   per shape.
 */
import {
  authorityInfoAccess, authorityKeyIdentifier, basicConstraints, crlDistributionPoints, extKeyUsage,
  keyIdentifier, keyUsage, subjectAltName, subjectKeyIdentifier, type EncodedExtension,
} from './extensions.js';
import { encodeName, type NameEntry } from './name.js';
import {
  checkSerial, checkValidity, encodeTbsCertificate, signatureAlgorithmIdentifier, type CertificateTemplate,
} from './certificate.js';
import { deviceUri, isDeviceId } from './identity.js';
import { DerError } from '../der/index.js';
import type { KeyAlgorithm } from './keys.js';
import { LeafStamp, stampable, type StampLayout, type StampParams } from './leaf-stamp.js';
import { tlvSize } from '../der/length.js';

export interface IssuerParams {
  /** DER subject Name of the issuing CA certificate (copied as the issuer field). */
  readonly issuerName: Buffer;
  /** DER SPKI of the issuing CA key (its key identifier becomes the AKI). */
  readonly issuerSpki: Buffer;
}

export interface Validity {
  readonly serial: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface DeviceLeafParams extends IssuerParams, Validity {
  readonly deviceId: string;
  readonly spki: Buffer;
  readonly crlUrl?: string;
  readonly ocspUrl?: string;
}

/** The device-leaf profile with its constant extensions encoded once for one issuer. */
export class DeviceLeafProfile {
  readonly #issuerName: Buffer;
  readonly #head: readonly EncodedExtension[];
  readonly #tail: readonly EncodedExtension[];
  /** Stamps by algorithm, SPKI length and device-id length (a handful per hub). */
  readonly #stamps = new Map<string, LeafStamp>();

  constructor(issuer: IssuerParams & { readonly crlUrl?: string; readonly ocspUrl?: string }) {
    this.#issuerName = issuer.issuerName;
    this.#head = [
      basicConstraints({ cA: false }), // RFC 5280 §4.2.1.9
      keyUsage(['digitalSignature']), // RFC 5280 §4.2.1.3; TLS 1.3 needs nothing else
      extKeyUsage(['clientAuth']), // RFC 5280 §4.2.1.12
    ];
    const tail = [authorityKeyIdentifier(keyIdentifier(issuer.issuerSpki))]; // RFC 5280 §4.2.1.1
    if (issuer.crlUrl !== undefined) tail.push(crlDistributionPoints(issuer.crlUrl));
    if (issuer.ocspUrl !== undefined) tail.push(authorityInfoAccess({ ocsp: issuer.ocspUrl }));
    this.#tail = tail;
  }

  template(params: Validity & { readonly deviceId: string; readonly spki: Buffer }): CertificateTemplate {
    if (!isDeviceId(params.deviceId)) throw new DerError('invalid device id');
    return {
      serial: params.serial,
      issuerName: this.#issuerName,
      subjectName: encodeName([['CN', params.deviceId]]),
      notBefore: params.notBefore,
      notAfter: params.notAfter,
      spki: params.spki,
      extensions: [
        ...this.#head,
        subjectKeyIdentifier(keyIdentifier(params.spki)),
        subjectAltName({ uris: [deviceUri(params.deviceId)] }),
        ...this.#tail,
      ],
    };
  }

  /** The DER TBSCertificate of `template(params)` for a CA key of `algorithm`. */
  encodeTbs(params: Validity & { readonly deviceId: string; readonly spki: Buffer }, algorithm: KeyAlgorithm): Buffer {
    if (!stampable(params)) return encodeTbsCertificate(this.template(params), algorithm);
    // The checks encodeTbsCertificate makes and a stamp cannot (it copies bytes, it does not encode).
    if (!isDeviceId(params.deviceId)) throw new DerError('invalid device id');
    checkSerial(params.serial);
    checkValidity(params.notBefore, params.notAfter);
    const key = `${algorithm}|${params.spki.length}|${params.deviceId.length}|${params.serial.length}`;
    let stamp = this.#stamps.get(key);
    if (stamp === undefined) {
      stamp = new LeafStamp((p) => encodeTbsCertificate(this.template(p), algorithm), this.#layout(params, algorithm), params);
      if (this.#stamps.size < 64) this.#stamps.set(key, stamp);
    }
    return stamp.encode(params);
  }

  /**
   * Where `encodeTbsCertificate` puts the per-device bytes (RFC 5280 §4.1 field order): version
   * [0] (5 octets), serial INTEGER, signature AlgorithmIdentifier, issuer, validity (two
   * 15-octet UTCTimes in a 2-octet SEQUENCE header), subject (CN last), SPKI, then [3] { SEQUENCE
   * { extensions } } with the SKI's 20 octets and the SAN URI's device id each at the end of
   * their extension. LeafStamp checks the result against the generic encoder.
   */
  #layout(params: StampParams, algorithm: KeyAlgorithm): StampLayout {
    const t = this.template(params);
    const exts = t.extensions;
    const extLen = exts.reduce((n, e) => n + e.length, 0);
    const seqSize = tlvSize(extLen);
    const fields = [5, 2 + t.serial.length, signatureAlgorithmIdentifier(algorithm).length, t.issuerName.length, 32,
      t.subjectName.length, t.spki.length, tlvSize(seqSize)];
    const content = fields.reduce((n, f) => n + f, 0);
    const serialAt = tlvSize(content) - content + 5 + 2;
    const validityAt = serialAt + t.serial.length + fields[2]! + fields[3]!;
    const subjectAt = validityAt + 32;
    const spkiAt = subjectAt + t.subjectName.length;
    let extAt = spkiAt + t.spki.length + (tlvSize(seqSize) - seqSize) + (seqSize - extLen);
    const ends: number[] = [];
    for (const e of exts) ends.push((extAt += e.length));
    const ski = this.#head.length; // SKI, then SAN, follow the constant head (template order)
    return {
      serialAt,
      notBeforeAt: validityAt + 4,
      notAfterAt: validityAt + 4 + 15,
      cnIdAt: spkiAt - params.deviceId.length,
      spkiAt,
      skiAt: ends[ski]! - 20,
      sanIdAt: ends[ski + 1]! - params.deviceId.length,
    };
  }
}

/** One-off form of `DeviceLeafProfile` (the CA keeps a profile instance instead). */
export function deviceLeafTemplate(params: DeviceLeafParams): CertificateTemplate {
  return new DeviceLeafProfile(params).template(params);
}

export interface CaParams extends Validity {
  readonly subject: readonly NameEntry[];
  readonly spki: Buffer;
  /** Omit for a self-signed root. */
  readonly issuer?: IssuerParams;
  /** RFC 5280 §4.2.1.9 pathLenConstraint; the device CA uses 0. */
  readonly pathLen?: number;
}

/** Hub root (self-signed when `issuer` is absent) or device CA. */
export function caTemplate(params: CaParams): CertificateTemplate {
  const subjectName = encodeName(params.subject);
  const ownKeyId = keyIdentifier(params.spki);
  const issuerKeyId = params.issuer === undefined ? ownKeyId : keyIdentifier(params.issuer.issuerSpki);
  const bc = params.pathLen === undefined ? { cA: true } : { cA: true, pathLen: params.pathLen };
  return {
    serial: params.serial,
    issuerName: params.issuer?.issuerName ?? subjectName,
    subjectName,
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    spki: params.spki,
    extensions: [
      basicConstraints(bc),
      keyUsage(['keyCertSign', 'cRLSign']),
      subjectKeyIdentifier(ownKeyId),
      authorityKeyIdentifier(issuerKeyId),
    ],
  };
}

export interface TlsServerParams extends IssuerParams, Validity {
  readonly spki: Buffer;
  readonly dnsNames: readonly string[];
  readonly ips: readonly string[];
  readonly commonName?: string;
}

/** A hub listener certificate. */
export function tlsServerTemplate(params: TlsServerParams): CertificateTemplate {
  if (params.dnsNames.length + params.ips.length === 0) throw new DerError('TLS server needs a name');
  const first = params.dnsNames[0] ?? params.ips[0]!;
  const cn = params.commonName ?? (first.length <= 64 ? first : 'fleetkey hub'); // ub-common-name 64
  return {
    serial: params.serial,
    issuerName: params.issuerName,
    subjectName: encodeName([['CN', cn]]),
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    spki: params.spki,
    extensions: [
      basicConstraints({ cA: false }),
      keyUsage(['digitalSignature']),
      extKeyUsage(['serverAuth']),
      subjectKeyIdentifier(keyIdentifier(params.spki)),
      authorityKeyIdentifier(keyIdentifier(params.issuerSpki)),
      subjectAltName({ dnsNames: params.dnsNames, ips: params.ips }),
    ],
  };
}
