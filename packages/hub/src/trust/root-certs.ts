/**
 * Certificates a root rotation needs (ADR 0021): the new self-signed root, the same root
 * cross-signed by the previous one, and the unchanged device CA key certified by the new root.
 *
 * Invariants:
 * - The new root gets a name carrying its own key identifier (hub-pki.ts), so it never shares a
 *   subject with the previous root; the cross certificate has exactly the new root's subject and
 *   key, so a path leaf → cross → old root and a path leaf → new root both verify (RFC 5280 §6.1).
 * - The device CA keeps its key and subject: every device certificate it ever signed verifies
 *   under the re-certified device CA, so no device re-enrolls because of a rotation.
 * - No certificate outlives its issuer (notAfter clamped); notBefore is backdated by BACKDATE_MS.
 */
import { caTemplate, parseCertificate, signCertificate, type Clock, type KeyAlgorithm } from '@fleetkey/protocol';
import { BACKDATE_MS, DEVICE_CA_VALIDITY_MS, ROOT_VALIDITY_MS, clampTo, nameFor, type CaIdentity } from '../ca/hub-pki.js';
import { randomSerial } from '../ca/serial.js';
import { SoftwareSigner } from '../ca/software-signer.js';

export interface NewRoot {
  /** Rotated roots are software keys, sealed into hub_roots (ADR 0028: refused with a pkcs11 signer). */
  readonly root: CaIdentity & { readonly signer: SoftwareSigner };
  /** The new root's subject and key, signed by the previous root; absent for a recovery. */
  readonly crossCertificate?: Buffer;
  /** The device CA key certified by the new root. */
  readonly deviceCaCertificate: Buffer;
}

export interface NewRootInput {
  readonly algorithm: KeyAlgorithm;
  readonly clock: Clock;
  readonly deviceCaCertificate: Buffer;
  /** Cross-sign with the previous root (rotation); omit for a recovery from a stolen root. */
  readonly previousRoot?: CaIdentity;
}

async function selfSignedRoot(signer: SoftwareSigner, now: number): Promise<Buffer> {
  return signCertificate(caTemplate({
    subject: nameFor('fleetkey', 'hub root', signer.spki), spki: signer.spki, serial: randomSerial(),
    notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + ROOT_VALIDITY_MS),
  }), signer);
}

async function crossSign(newRoot: SoftwareSigner, previous: CaIdentity, now: number): Promise<Buffer> {
  const old = parseCertificate(previous.certificate);
  return signCertificate(caTemplate({
    subject: nameFor('fleetkey', 'hub root', newRoot.spki), spki: newRoot.spki, serial: randomSerial(),
    notBefore: new Date(now - BACKDATE_MS), notAfter: clampTo(old.notAfter, now + ROOT_VALIDITY_MS),
    issuer: { issuerName: old.subject, issuerSpki: previous.signer.spki },
  }), previous.signer);
}

async function recertifyDeviceCa(deviceCaCertificate: Buffer, root: CaIdentity, now: number): Promise<Buffer> {
  const ca = parseCertificate(deviceCaCertificate);
  const rootCert = parseCertificate(root.certificate);
  const template = caTemplate({
    subject: [], spki: ca.spki, serial: randomSerial(), pathLen: 0,
    notBefore: new Date(now - BACKDATE_MS), notAfter: clampTo(rootCert.notAfter, now + DEVICE_CA_VALIDITY_MS),
    issuer: { issuerName: rootCert.subject, issuerSpki: root.signer.spki },
  });
  return signCertificate({ ...template, subjectName: ca.subject }, root.signer);
}

/** A new root key with its certificates; see the module invariants. */
export async function createNextRoot(input: NewRootInput): Promise<NewRoot> {
  const now = input.clock.now();
  const signer = SoftwareSigner.generate(input.algorithm);
  const root = { signer, certificate: await selfSignedRoot(signer, now) };
  return {
    root,
    ...(input.previousRoot === undefined ? {} : { crossCertificate: await crossSign(signer, input.previousRoot, now) }),
    deviceCaCertificate: await recertifyDeviceCa(input.deviceCaCertificate, root, now),
  };
}
