/**
 * Wires the device CA (ca/issuance.ts) to the hub: its signer is the device CA key from the data
 * folder, and its record step writes device + certificate + audit (+ the claim-token use the
 * grant names) as one durable store unit.
 */
import { FleetkeyError, fail, type Clock, type KeyAlgorithm } from '@fleetkey/protocol';
import type { Grant } from './ca/grant.js';
import type { CsrVerifierPool } from './ca/csr-verifier-pool.js';
import { CertificateAuthority, type IssuanceRecorder, type IssuedCertificate, type VerifiedCsr } from './ca/issuance.js';
import type { EstCa } from './est/routes.js';
import type { HubConfig } from './config/load.js';
import type { HubPki } from './pki/bootstrap.js';
import type { NewEnrollment, Store } from './storage/types.js';

export function storeRecorder(store: Store, clock: Clock): IssuanceRecorder {
  return {
    record: async (issued, grant) => {
      const now = clock.now();
      try {
        await store.devices.recordEnrollment({ ...enrollmentOf(issued, grant, now), ...(grant.redeem ? { redeem: { ...grant.redeem, now } } : {}) });
      } catch (err) {
        // The token was redeemable at authorisation and was used up, revoked or expired since.
        if (err instanceof FleetkeyError && err.code === 'CLAIM_TOKEN_INVALID') await auditLateRedeemFailure(store, grant);
        throw err;
      }
    },
  };
}

function enrollmentOf(issued: IssuedCertificate, grant: Grant, now: number): NewEnrollment {
  return {
    device: {
      id: grant.deviceId, tenantId: grant.tenantId, status: 'active', createdAt: now, enrolledVia: grant.method,
      claimTokenId: grant.context?.claimTokenId ?? null, label: null, currentSerial: issued.serialHex,
      keyProtection: grant.keyProtection ?? 'file',
    },
    certificate: {
      serial: issued.serialHex, deviceId: issued.deviceId, tenantId: grant.tenantId, spkiSha256: issued.spkiSha256Hex,
      keyAlgorithm: issued.keyAlgorithm, notBefore: issued.notBefore.getTime(), notAfter: issued.notAfter.getTime(),
      issuedAt: now, der: issued.der, revokedAt: null, revocationReason: null,
    },
    audit: {
      category: 'certificate', type: 'certificate.issue', result: 'success', actor: `device:${grant.deviceId}`,
      source: grant.context?.source ?? 'unknown', tenantId: grant.tenantId,
      details: {
        method: grant.method, serial: issued.serialHex, keyAlgorithm: issued.keyAlgorithm,
        notAfter: issued.notAfter.toISOString(), claimTokenId: grant.context?.claimTokenId ?? null,
        previousSerial: grant.context?.previousSerial ?? null, keyProtection: grant.keyProtection ?? 'file',
        renewal: grant.context?.renewal ?? null,
      },
    },
  };
}

async function auditLateRedeemFailure(store: Store, grant: Grant): Promise<void> {
  await store.audit.append({
    category: 'claim', type: 'claim_token.redeem', result: 'failure', actor: 'anonymous',
    source: grant.context?.source ?? 'unknown', tenantId: grant.tenantId, code: 'CLAIM_TOKEN_INVALID',
    details: { reason: 'used up, revoked or expired while enrolling', claimTokenId: grant.context?.claimTokenId ?? null },
  });
}

export function createEnrollmentCa(o: { pki: HubPki; store: Store; clock: Clock; config: HubConfig; csrVerifier?: CsrVerifierPool }): CertificateAuthority {
  return new CertificateAuthority({
    ...(o.csrVerifier === undefined ? {} : { csrVerifier: o.csrVerifier }),
    signer: o.pki.deviceCa.signer,
    certificate: o.pki.deviceCa.certificate,
    recorder: storeRecorder(o.store, o.clock),
    clock: o.clock,
    policy: {
      allowedKeyAlgorithms: o.config.allowedDeviceKeys as KeyAlgorithm[],
      minRsaBits: o.config.minRsaBits,
      defaultValidityMs: o.config.deviceCertValidityDays * 86_400_000,
      // RFC 5280 §4.2.1.13 / §4.2.2.1: where relying parties find revocation (ADR 0011).
      crlUrl: `${o.config.publicUrl}/crl`,
      ocspUrl: `${o.config.publicUrl}/ocsp`,
    },
  });
}

/**
 * The device CA as EST sees it, bound once the public URL is known: with `--api-port 0` that is
 * only after listen, and every certificate names `<publicUrl>/crl` and `/ocsp`. No request can
 * arrive before `bind` (the hub binds synchronously after listen resolves); one that did would
 * get INTERNAL rather than a certificate without revocation pointers.
 */
export function lateBoundCa(): { readonly ca: EstCa<VerifiedCsr>; bind(ca: CertificateAuthority): void } {
  let bound: CertificateAuthority | undefined;
  const get = (): CertificateAuthority => bound ?? fail('INTERNAL', { cause: new Error('device CA not bound yet') });
  return {
    ca: { prepare: (der) => get().prepare(der), prepareAsync: (der) => get().prepareAsync(der), issue: (grant, csr) => get().issue(grant, csr) },
    bind: (ca) => {
      bound = ca;
    },
  };
}
