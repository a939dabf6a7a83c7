/**
 * Test-time certificates for the MQTT tests: device leaves from any issuer, and the bad set
 * (self-signed, another CA with the same name, expired, not yet valid, serverAuth-only EKU,
 * a CA certificate as leaf). Everything in-process (node:crypto + the protocol encoder), so it
 * can run while a hub lives in the same process.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import {
  basicConstraints, caTemplate, deviceLeafTemplate, extKeyUsage, keyUsage, parseCertificate, signCertificate, toPem,
  encodeName, type CertificateTemplate,
} from '@fleetkey/protocol';
import { SoftwareSigner } from '../../src/ca/software-signer.js';
import type { Signer } from '../../src/ca/signer.js';

export interface Issuer {
  readonly signer: Signer;
  /** DER certificate of the issuer. */
  readonly certificate: Buffer;
}

export interface LeafCredential {
  readonly deviceId: string;
  readonly der: Buffer;
  readonly certPem: string;
  readonly keyPem: string;
  /** Lower-case hex, as the store records it. */
  readonly serial: string;
  readonly spki: Buffer;
}

export type LeafKind = 'device' | 'serverAuth-only' | 'ca-as-leaf';

const DAY = 86_400_000;

export function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  return serial;
}

function ecKey(): { privateKey: KeyObject; spki: Buffer } {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey: pair.privateKey, spki: pair.publicKey.export({ type: 'spki', format: 'der' }) };
}

function withKind(t: CertificateTemplate, kind: LeafKind): CertificateTemplate {
  if (kind === 'device') return t;
  const ext = [...t.extensions];
  if (kind === 'serverAuth-only') ext[2] = extKeyUsage(['serverAuth']); // [BC, KU, EKU, …]
  else {
    ext[0] = basicConstraints({ cA: true });
    ext[1] = keyUsage(['digitalSignature', 'keyCertSign', 'cRLSign']);
  }
  return { ...t, extensions: ext };
}

export interface LeafOptions {
  readonly deviceId: string;
  /** Omit for a self-signed leaf. */
  readonly issuer?: Issuer;
  readonly kind?: LeafKind;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

export async function makeLeaf(o: LeafOptions): Promise<LeafCredential> {
  const key = ecKey();
  const serial = randomSerial();
  const ownName = encodeName([['CN', o.deviceId]]);
  const issuerName = o.issuer === undefined ? ownName : parseCertificate(o.issuer.certificate).subject;
  const issuerSpki = o.issuer === undefined ? key.spki : o.issuer.signer.spki;
  const template = withKind(deviceLeafTemplate({
    issuerName, issuerSpki, deviceId: o.deviceId, spki: key.spki, serial,
    notBefore: o.notBefore ?? new Date(Date.now() - DAY), notAfter: o.notAfter ?? new Date(Date.now() + 30 * DAY),
  }), o.kind ?? 'device');
  const signer = o.issuer?.signer ?? SoftwareSigner.fromPrivateKey(key.privateKey);
  const der = await signCertificate(template, signer);
  return {
    deviceId: o.deviceId, der, certPem: toPem('CERTIFICATE', der), spki: key.spki,
    keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, serial: serial.toString('hex'),
  };
}

/** A self-signed CA whose subject is byte-for-byte `subjectOf`'s (the "fake root, same name" case). */
export async function sameNameCa(subjectOf: Buffer): Promise<Issuer> {
  const signer = SoftwareSigner.generate('p256');
  const subject = parseCertificate(subjectOf).subject;
  const base = caTemplate({ subject: [['CN', 'placeholder']], spki: signer.spki, serial: randomSerial(), notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 365 * DAY), pathLen: 0 });
  const certificate = await signCertificate({ ...base, subjectName: subject, issuerName: subject }, signer);
  return { signer, certificate };
}

/**
 * A second device CA under the hub root (a new or cross-signed device CA, pathLen 0, RFC 5280
 * §4.2.1.9), for trust changes at runtime; `pem` is its certificate for a client's chain.
 */
export async function makeSecondDeviceCa(root: Issuer): Promise<Issuer & { readonly pem: string }> {
  const signer = SoftwareSigner.generate('p256');
  const certificate = await signCertificate(caTemplate({
    subject: [['O', 'fleetkey'], ['CN', 'fleetkey device CA 2']], spki: signer.spki, serial: randomSerial(),
    notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 365 * DAY), pathLen: 0,
    issuer: { issuerName: parseCertificate(root.certificate).subject, issuerSpki: root.signer.spki },
  }), root.signer);
  return { signer, certificate, pem: toPem('CERTIFICATE', certificate) };
}
