/**
 * Issuance policy: validated once when the CA is built, then frozen (limits with units here).
 *
 * Invariants:
 * - minRsaBits is never below 2048 (protocol's floor); the allow-list is a subset of KeyAlgorithm.
 * - defaultValidityMs bounds every device certificate; a grant can only shorten it.
 */
import { FleetkeyError, KEY_ALGORITHMS, MIN_RSA_BITS, type KeyAlgorithm } from '@fleetkey/protocol';

export interface IssuancePolicy {
  readonly allowedKeyAlgorithms: readonly KeyAlgorithm[];
  readonly minRsaBits: number;
  /** Device certificate lifetime when the grant asks for nothing shorter. */
  readonly defaultValidityMs: number;
  /** notBefore = now − backdateMs, for devices whose clocks run slow. */
  readonly backdateMs: number;
  /** cRLDistributionPoints URI written into every device certificate. */
  readonly crlUrl?: string;
  /** authorityInfoAccess OCSP URI written into every device certificate. */
  readonly ocspUrl?: string;
}

export const DEFAULT_ISSUANCE_POLICY: IssuancePolicy = Object.freeze({
  allowedKeyAlgorithms: Object.freeze([...KEY_ALGORITHMS]),
  minRsaBits: MIN_RSA_BITS,
  defaultValidityMs: 90 * 86_400_000,
  backdateMs: 5 * 60_000,
});

function invalid(field: string): FleetkeyError {
  return new FleetkeyError('CONFIG_INVALID', { details: { field } });
}

export function resolvePolicy(overrides: Partial<IssuancePolicy> = {}): IssuancePolicy {
  const policy = { ...DEFAULT_ISSUANCE_POLICY, ...overrides };
  const algorithms = policy.allowedKeyAlgorithms;
  if (algorithms.length === 0 || algorithms.some((a) => !KEY_ALGORITHMS.includes(a))) throw invalid('allowedKeyAlgorithms');
  if (!Number.isSafeInteger(policy.minRsaBits) || policy.minRsaBits < MIN_RSA_BITS) throw invalid('minRsaBits');
  if (!Number.isSafeInteger(policy.defaultValidityMs) || policy.defaultValidityMs < 60_000) throw invalid('defaultValidityMs');
  if (!Number.isSafeInteger(policy.backdateMs) || policy.backdateMs < 0 || policy.backdateMs > 86_400_000) throw invalid('backdateMs');
  for (const field of ['crlUrl', 'ocspUrl'] as const) {
    const url = policy[field];
    if (url !== undefined && !/^https?:\/\/[^\s]+$/.test(url)) throw invalid(field);
  }
  return Object.freeze({ ...policy, allowedKeyAlgorithms: Object.freeze([...algorithms]) });
}
