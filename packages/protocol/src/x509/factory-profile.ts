/**
 * The factory sub-CA profile (ADR 0015): a CA certificate the hub root signs for one
 * organisation's production line, usable for device identities only.
 *
 * Invariants:
 * - basicConstraints cA=true, pathLen 0 (critical, RFC 5280 §4.2.1.9): it signs leaves only.
 * - keyUsage keyCertSign + digitalSignature (critical, §4.2.1.3): certificates, and the signed
 *   factory manifest (factory/manifest.ts). No cRLSign: the hub, not the line, revokes.
 * - extendedKeyUsage clientAuth (§4.2.1.12): relying parties that chain EKUs (OpenSSL's purpose
 *   check, most TLS stacks) refuse it for anything but client identities.
 * - nameConstraints (critical, §4.2.1.10) exclude every dNSName, rfc822Name and iPAddress, so no
 *   certificate below it can name a server, a mailbox or an address: the device profile names a
 *   device only by its `urn:fleetkey:device:` URI and CN.
 * - Subject O = the organisation's name, CN names the kit, so a kit is never confused with the
 *   device CA or another kit (chain builders match names first).
 */
import { Tag, implicit, sequence } from '../der/index.js';
import type { CertificateTemplate } from './certificate.js';
import {
  authorityKeyIdentifier, basicConstraints, extension, extKeyUsage, keyIdentifier, keyUsage, subjectKeyIdentifier,
  type EncodedExtension,
} from './extensions.js';
import { encodeName } from './name.js';
import { OID } from './oids.js';
import type { IssuerParams, Validity } from './profile.js';

/** GeneralSubtree ::= SEQUENCE { base GeneralName, minimum [0] DEFAULT 0, maximum [1] OPTIONAL } (§4.2.1.10). */
const subtree = (base: Buffer): Buffer => sequence(base);

/**
 * nameConstraints with excludedSubtrees [1] only: rfc822Name "" and dNSName "" (an empty
 * constraint matches every name of that form), iPAddress 0.0.0.0/0 and ::/0 (address ‖ mask).
 */
export function deviceOnlyNameConstraints(): EncodedExtension {
  const excluded = [
    subtree(implicit(1, Buffer.alloc(0), false)), // rfc822Name
    subtree(implicit(2, Buffer.alloc(0), false)), // dNSName
    subtree(implicit(7, Buffer.alloc(8), false)), // iPAddress IPv4 0.0.0.0/0
    subtree(implicit(7, Buffer.alloc(32), false)), // iPAddress IPv6 ::/0
  ];
  const value = sequence(implicit(1, excluded, true));
  return extension(OID.nameConstraints, true, value);
}

export interface FactoryCaParams extends Validity, IssuerParams {
  readonly orgName: string;
  readonly kitId: string;
  readonly spki: Buffer;
}

/** The TBS template of a factory sub-CA certificate (see the module invariants). */
export function factoryCaTemplate(p: FactoryCaParams): CertificateTemplate {
  return {
    serial: p.serial,
    issuerName: p.issuerName,
    subjectName: encodeName([['O', p.orgName], ['CN', `fleetkey factory ${p.kitId}`]]),
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    spki: p.spki,
    extensions: [
      basicConstraints({ cA: true, pathLen: 0 }),
      keyUsage(['digitalSignature', 'keyCertSign']),
      extKeyUsage(['clientAuth']),
      subjectKeyIdentifier(keyIdentifier(p.spki)),
      authorityKeyIdentifier(keyIdentifier(p.issuerSpki)),
      deviceOnlyNameConstraints(),
    ],
  };
}

/** True when `value` (an extension's extnValue) is exactly the device-only constraint above. */
export function isDeviceOnlyNameConstraints(value: Buffer): boolean {
  const expected = deviceOnlyNameConstraints();
  // The extension TLV ends with the OCTET STRING holding the value: compare that tail.
  const tail = Buffer.concat([Buffer.of(Tag.OCTET_STRING, value.length), value]);
  return value.length < 128 && expected.subarray(expected.length - tail.length).equals(tail);
}
