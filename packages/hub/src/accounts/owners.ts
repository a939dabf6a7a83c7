/**
 * Creating a customer organisation (tenant) together with its first owner.
 *
 * Invariants:
 * - Nothing is written unless every input is valid: email shape, password policy, org name.
 * - The tenant, the owner and the `owner.create` audit record are written in one atomic unit
 *   (`tenants.createWithOwner`); a duplicate org name or email is CONFLICT and writes nothing.
 * - Emails are stored normalised (trimmed, lower case), so lookups and lockout keys agree.
 * - The password is stored only as an argon2id hash and the TOTP seed only sealed; the seed
 *   leaves this module once, inside the `otpauth://` URI shown to the operator.
 * - Ids are random (80 bits), never derived from names or emails.
 */
import { randomBytes } from 'node:crypto';
import { FleetkeyError, type Clock } from '@fleetkey/protocol';
import type { SecretSealer } from '../secrets/sealer.js';
import type { Owner, Store, Tenant } from '../storage/types.js';
import { checkPasswordPolicy, type CommonPasswordBlocklist, type PasswordHasher } from './password.js';
import { generateTotpSecret, otpauthUri, sealTotpSecret } from './totp.js';

export const TOTP_ISSUER = 'fleetkey';
export const ORG_NAME_MAX_CODE_POINTS = 100;
/** RFC 5321 §4.5.3.1: a path is at most 256 octets, so an address at most 254. */
export const EMAIL_MAX_LENGTH = 254;

export interface AccountsDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly hasher: PasswordHasher;
  readonly blocklist: CommonPasswordBlocklist;
  readonly sealer: SecretSealer;
}

export interface NewOrganisation {
  readonly orgName: string;
  readonly email: string;
  readonly password: string;
}

export interface CreatedOrganisation {
  readonly tenantId: string;
  readonly ownerId: string;
  /** Contains the TOTP seed: show it once to the operator, never log it. */
  readonly otpauthUri: string;
}

/** `org_` / `own_` + 20 hex digits (80 random bits). */
export function newId(prefix: 'org' | 'own'): string {
  return `${prefix}_${randomBytes(10).toString('hex')}`;
}

/**
 * Trims and lower-cases `email`; returns undefined when it is not `local@domain.tld` shaped.
 * Deliberately simple (no quoted local parts): owners are engineers with ordinary addresses.
 */
export function normalizeEmail(email: unknown): string | undefined {
  if (typeof email !== 'string') return undefined;
  const e = email.trim().toLowerCase();
  if (e.length > EMAIL_MAX_LENGTH) return undefined;
  return /^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+\.[^\s@\p{Cc}.]+$/u.test(e) ? e : undefined;
}

function validOrgName(name: unknown): string {
  const n = typeof name === 'string' ? name.normalize('NFC').trim() : '';
  const length = [...n].length;
  if (length < 1 || length > ORG_NAME_MAX_CODE_POINTS || /\p{Cc}/u.test(n)) {
    throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'orgName', max: ORG_NAME_MAX_CODE_POINTS } });
  }
  return n;
}

/** Creates a tenant and its first owner (operator action, usually from the CLI). */
export async function createOrganisationWithOwner(
  input: NewOrganisation,
  deps: AccountsDeps,
): Promise<CreatedOrganisation> {
  const orgName = validOrgName(input.orgName);
  const email = normalizeEmail(input.email);
  if (email === undefined) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'email' } });
  await checkPasswordPolicy(input.password, deps.blocklist, { email });

  const now = deps.clock.now();
  const tenant: Tenant = { id: newId('org'), name: orgName, createdAt: now };
  const ownerId = newId('own');
  const secret = generateTotpSecret();
  try {
    const owner: Owner = {
      id: ownerId,
      tenantId: tenant.id,
      email,
      passwordHash: await deps.hasher.hashPassword(input.password),
      totpSealed: sealTotpSecret(deps.sealer, ownerId, secret),
      totpLastStep: 0,
      createdAt: now,
      disabled: false,
    };
    await deps.store.tenants.createWithOwner(tenant, owner, {
      category: 'owner',
      type: 'owner.create',
      result: 'success',
      actor: 'operator',
      source: 'cli',
      tenantId: tenant.id,
      details: { ownerId, orgName },
    });
    return { tenantId: tenant.id, ownerId, otpauthUri: otpauthUri({ issuer: TOTP_ISSUER, label: email, secret }) };
  } finally {
    secret.fill(0);
  }
}
