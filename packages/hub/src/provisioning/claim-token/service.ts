/**
 * Owner operations on claim tokens: create (the token is returned once, then only its hash
 * exists), list (never with secrets), revoke. Every operation is tenant-scoped and audited.
 */
import { FleetkeyError, formatClaimUri, type Clock } from '@fleetkey/protocol';
import type { ClaimToken, Store } from '../../storage/types.js';
import { generateClaimToken, hashClaimToken, randomId } from './token.js';

export interface OwnerContext {
  readonly tenantId: string;
  readonly ownerId: string;
  /** A short, non-secret session reference for the audit trail. */
  readonly session: string;
  readonly source: string;
}

export interface ClaimTokenLimits {
  readonly defaultTtlSeconds: number;
  readonly maxTtlSeconds: number;
  readonly maxUses: number;
}

export interface CreateClaimTokenInput {
  readonly ttlSeconds?: number | undefined;
  readonly maxUses?: number | undefined;
  readonly label?: string | undefined;
}

export interface CreatedClaimToken {
  readonly id: string;
  readonly token: string;
  readonly expiresAt: string;
  readonly maxUses: number;
  readonly claimUri: string;
}

export interface ClaimTokenView {
  readonly id: string;
  readonly label: string | null;
  readonly maxUses: number;
  readonly uses: number;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly revokedAt: string | null;
  readonly status: 'active' | 'expired' | 'used' | 'revoked';
}

const iso = (ms: number): string => new Date(ms).toISOString();

export class ClaimTokenService {
  constructor(
    private readonly deps: { store: Store; clock: Clock; limits: ClaimTokenLimits; hubUrl: () => string; pin: () => string },
  ) {}

  async create(owner: OwnerContext, input: CreateClaimTokenInput): Promise<CreatedClaimToken> {
    const { limits, clock, store } = this.deps;
    const ttl = input.ttlSeconds ?? limits.defaultTtlSeconds;
    const maxUses = input.maxUses ?? 1;
    if (!Number.isInteger(ttl) || ttl < 60 || ttl > limits.maxTtlSeconds) {
      throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'ttlSeconds', min: 60, max: limits.maxTtlSeconds } });
    }
    if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > limits.maxUses) {
      throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'maxUses', min: 1, max: limits.maxUses } });
    }
    const token = generateClaimToken();
    const now = clock.now();
    const record: ClaimToken = {
      id: randomId('ct_'), tenantId: owner.tenantId, tokenHash: hashClaimToken(token), label: input.label ?? null,
      maxUses, uses: 0, createdAt: now, expiresAt: now + ttl * 1000, createdBy: owner.ownerId, revokedAt: null,
    };
    await store.claimTokens.create(record, {
      category: 'claim', type: 'claim_token.create', result: 'success', actor: `owner:${owner.ownerId}`,
      source: owner.source, tenantId: owner.tenantId, session: owner.session,
      details: { claimTokenId: record.id, maxUses, ttlSeconds: ttl },
    });
    const claimUri = formatClaimUri({ hubUrl: this.deps.hubUrl(), pin: this.deps.pin(), token });
    return { id: record.id, token, expiresAt: iso(record.expiresAt), maxUses, claimUri };
  }

  async list(owner: OwnerContext): Promise<ClaimTokenView[]> {
    const now = this.deps.clock.now();
    return (await this.deps.store.claimTokens.list(owner.tenantId)).map((t) => this.view(t, now));
  }

  async revoke(owner: OwnerContext, id: string): Promise<void> {
    const ok = await this.deps.store.claimTokens.revoke(owner.tenantId, id, this.deps.clock.now(), {
      category: 'claim', type: 'claim_token.revoke', result: 'success', actor: `owner:${owner.ownerId}`,
      source: owner.source, tenantId: owner.tenantId, session: owner.session, details: { claimTokenId: id },
    });
    if (!ok) throw new FleetkeyError('NOT_FOUND');
  }

  view(t: ClaimToken, now: number): ClaimTokenView {
    const status = t.revokedAt !== null ? 'revoked' : t.uses >= t.maxUses ? 'used' : t.expiresAt <= now ? 'expired' : 'active';
    return {
      id: t.id, label: t.label, maxUses: t.maxUses, uses: t.uses, createdAt: iso(t.createdAt), expiresAt: iso(t.expiresAt),
      revokedAt: t.revokedAt === null ? null : iso(t.revokedAt), status,
    };
  }
}
