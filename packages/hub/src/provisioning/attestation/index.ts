/**
 * The attestation provisioning methods (`tpm-attestation`, `se-attestation`; ADR 0027): a claim
 * token (the owner's authorisation, and the organisation) plus a chip's proof that the CSR key
 * lives in the chip. The proof is checked by attestation/service.ts before this method runs;
 * here it becomes a grant bound to exactly that key.
 *
 * Invariants:
 * - Only credentials of kind `attested` are accepted; the hub builds them in-process after the
 *   evidence checks, never from request fields.
 * - The grant binds the key (`boundSpkiSha256` = the attested key), records `keyProtection`, and
 *   spends the claim token in the same unit as the certificate (claim-token method invariants).
 */
import { FleetkeyError } from '@fleetkey/protocol';
import type { Grant } from '../../ca/grant.js';
import type { ClaimTokenMethod } from '../claim-token/index.js';
import type { EnrollmentRequest, ProvisioningMethod } from '../method.js';

export class AttestationMethod implements ProvisioningMethod {
  readonly name = 'attestation';

  constructor(private readonly claimTokens: ClaimTokenMethod) {}

  accepts(request: EnrollmentRequest): boolean {
    return request.operation === 'simpleenroll' && request.credential.kind === 'attested';
  }

  async authorize(request: EnrollmentRequest): Promise<Grant> {
    if (request.credential.kind !== 'attested') throw new FleetkeyError('AUTH_REQUIRED');
    const { attestation, secret } = request.credential;
    if (attestation.spkiSha256 !== request.csrSpkiSha256) throw new FleetkeyError('ATTESTATION_FAILED', { cause: new Error('CSR key is not the attested key') });
    const grant = await this.claimTokens.grantForToken(secret, request.source);
    return {
      ...grant,
      method: attestation.keyProtection === 'tpm-attested' ? 'tpm-attestation' : 'se-attestation',
      boundSpkiSha256: attestation.spkiSha256,
      keyProtection: attestation.keyProtection,
      context: { ...grant.context, chipSha256: attestation.chipSha256, vendorRootId: attestation.vendorRootId },
    };
  }
}
