/**
 * The `claim-token` provisioning method: an owner-created, short-lived, N-use token redeemed over
 * EST `simpleenroll` (HTTP Basic password or Bearer). The device gets a fresh id in the token's
 * organisation.
 *
 * Invariants:
 * - `authorize` spends nothing: it checks that the token can be redeemed now and returns a grant
 *   whose `redeem` the store spends with one conditional UPDATE in the same unit that records the
 *   certificate. Of N concurrent enrollments on a k-use token exactly k are recorded; a use is
 *   spent only by an enrollment that is recorded (a refused key or a failed issuance spends
 *   none); expired, revoked and used-up tokens never win.
 * - Unknown, malformed, expired, used-up and revoked tokens all answer CLAIM_TOKEN_INVALID; the
 *   reason goes to the audit record only. The token itself is never logged or audited.
 * - A source with too many failed redemptions is locked (RATE_LIMITED) before any lookup.
 * - When the token's organisation requires attestation, a token alone is ATTESTATION_REQUIRED
 *   (nothing spent); the attestation method builds on `grantForToken` instead (ADR 0027).
 */
import { FleetkeyError, type Clock } from '@fleetkey/protocol';
import type { Grant } from '../../ca/grant.js';
import type { Store, ThrottlePolicy } from '../../storage/types.js';
import type { EnrollmentRequest, ProvisioningMethod } from '../method.js';
import { hashClaimToken, isClaimTokenShape, sortableId } from './token.js';

export interface ClaimTokenMethodDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly deviceValidityMs: number;
  /** Failed redemptions per source before that source is locked. */
  readonly sourcePolicy: ThrottlePolicy;
}

export function newDeviceId(): string {
  return sortableId('dev-');
}

export class ClaimTokenMethod implements ProvisioningMethod {
  readonly name = 'claim-token';
  readonly #deps: ClaimTokenMethodDeps;

  constructor(deps: ClaimTokenMethodDeps) {
    this.#deps = deps;
  }

  accepts(request: EnrollmentRequest): boolean {
    return request.operation === 'simpleenroll' && request.credential.kind === 'secret';
  }

  async authorize(request: EnrollmentRequest): Promise<Grant> {
    if (request.credential.kind !== 'secret') throw new FleetkeyError('AUTH_REQUIRED');
    const grant = await this.grantForToken(request.credential.secret, request.source);
    // ADR 0027: an organisation that requires attestation refuses a token without a chip's proof.
    if ((await this.#deps.store.attestation.getPolicy(grant.tenantId)).requireAttestation) {
      await this.#auditFailure(request.source, 'ATTESTATION_REQUIRED', 'organisation requires attestation; claim token only', grant.tenantId);
      throw new FleetkeyError('ATTESTATION_REQUIRED');
    }
    return { ...grant, keyProtection: request.reportedKeyProtection ?? 'file' };
  }

  /**
   * The grant a redeemable token gives, before any attestation policy: the attestation method
   * (provisioning/attestation/) adds the chip's proof to it. Throttles and audits like `authorize`.
   */
  async grantForToken(secret: string, source: string): Promise<Grant> {
    const { store, clock } = this.#deps;
    const sourceKey = `enroll-source:${source}`;
    const now = clock.now();
    if ((await store.throttle.get(sourceKey, now)).lockedUntil > now) {
      await this.#auditFailure(source, 'RATE_LIMITED', 'source locked');
      throw new FleetkeyError('RATE_LIMITED');
    }
    const tokenHash = isClaimTokenShape(secret) ? hashClaimToken(secret) : undefined;
    const token = tokenHash === undefined ? undefined : await store.claimTokens.findRedeemable(tokenHash, now);
    if (token === undefined || tokenHash === undefined) {
      await store.throttle.recordFailure(sourceKey, now, this.#deps.sourcePolicy);
      await this.#auditFailure(source, 'CLAIM_TOKEN_INVALID', isClaimTokenShape(secret) ? 'unknown, expired, used up or revoked' : 'malformed');
      throw new FleetkeyError('CLAIM_TOKEN_INVALID');
    }
    return {
      method: this.name,
      tenantId: token.tenantId,
      deviceId: newDeviceId(),
      maxValidityMs: this.#deps.deviceValidityMs,
      context: { claimTokenId: token.id, source },
      redeem: { claimTokenHash: tokenHash },
    };
  }

  async #auditFailure(source: string, code: string, reason: string, tenantId?: string): Promise<void> {
    await this.#deps.store.audit.append({
      category: 'claim', type: 'claim_token.redeem', result: 'failure', actor: 'anonymous',
      source, code, details: { reason }, ...(tenantId === undefined ? {} : { tenantId }),
    });
  }
}
