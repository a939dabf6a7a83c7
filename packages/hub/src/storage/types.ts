/**
 * The storage seam: repositories over one store, implemented once per engine
 * (`storage/sqlite/` today; `storage/postgres/` next). One contract suite
 * (`test/unit/storage.contract.ts`) runs against every engine.
 *
 * Invariants every engine keeps:
 * - Each mutating repository method is one atomic unit, and resolves only after that unit is
 *   durably committed. A method that takes `audit` appends that audit record in the same unit:
 *   the change and its audit record land together or not at all.
 * - A claim token is spent by `devices.recordEnrollment` (`redeem`) with a single conditional
 *   statement in the same unit as the device, certificate and audit record (never read-then-
 *   write): of N concurrent enrollments on a token with k uses left, exactly k are recorded, and a
 *   use is spent only by an enrollment that is recorded.
 * - Secrets are stored only hashed (tokens, sessions) or sealed (TOTP seeds, keys): the store
 *   never sees them in clear.
 * - The audit log is append-only and hash-chained: record n stores sha256(prev hash ‖ canonical
 *   record n). No method updates or deletes audit records.
 * - Times are milliseconds since the epoch, UTC; ids are opaque strings.
 */
import type { AttestationRepo, KeyProtection } from './attestation-types.js';
import type { BatchRepo } from './batch-types.js';
import type { RenewalRepo } from './renewal-types.js';

export type * from './batch-types.js';
export type * from './attestation-types.js';
export type * from './renewal-types.js';

export interface Tenant {
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
}

export interface Owner {
  readonly id: string;
  readonly tenantId: string;
  /** Normalised: trimmed, lower case. */
  readonly email: string;
  /** argon2id PHC string. */
  readonly passwordHash: string;
  /** TOTP seed sealed with the hub's master key (base64). */
  readonly totpSealed: string;
  /** Last accepted TOTP time step, so a code is accepted once (RFC 6238 §5.2). */
  readonly totpLastStep: number;
  readonly createdAt: number;
  readonly disabled: boolean;
}

export interface Session {
  /** SHA-256 (hex) of the bearer token; the token itself is never stored. */
  readonly tokenHash: string;
  readonly ownerId: string;
  readonly tenantId: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly idleExpiresAt: number;
}

export interface ClaimToken {
  readonly id: string;
  readonly tenantId: string;
  /** SHA-256 (hex) of the token. */
  readonly tokenHash: string;
  readonly label: string | null;
  readonly maxUses: number;
  readonly uses: number;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly createdBy: string;
  readonly revokedAt: number | null;
}

/** `pre-provisioned`: issued in a batch or by a factory, never connected yet (ADR 0014). */
export type DeviceStatus = 'active' | 'revoked' | 'pre-provisioned';

export interface Device {
  readonly id: string;
  readonly tenantId: string;
  readonly status: DeviceStatus;
  readonly createdAt: number;
  /** Provisioning method that created the device (e.g. `claim-token`). */
  readonly enrolledVia: string;
  readonly claimTokenId: string | null;
  readonly label: string | null;
  readonly currentSerial: string | null;
  /** How the current key is protected (ADR 0027); absent on input means `file`. */
  readonly keyProtection?: KeyProtection;
}

export interface CertificateRecord {
  /** Lower-case hex, no leading zeros stripped (as encoded). */
  readonly serial: string;
  readonly deviceId: string;
  readonly tenantId: string;
  readonly spkiSha256: string;
  readonly keyAlgorithm: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly issuedAt: number;
  /** The certificate DER (public data). */
  readonly der: Buffer;
  readonly revokedAt: number | null;
  readonly revocationReason: string | null;
}

export type AuditResult = 'success' | 'failure';

/** What a caller supplies; the store adds seq, time, hashes. */
export interface AuditEventInput {
  /** Broad class: `auth`, `claim`, `enrollment`, `certificate`, `owner`, `config`, `audit`, `system`. */
  readonly category: string;
  /** Specific event, e.g. `login`, `claim_token.create`, `certificate.issue`. */
  readonly type: string;
  readonly result: AuditResult;
  /** Who acted: `owner:<id>`, `device:<id>`, `operator`, `anonymous`, `hub` (automatic, e.g. TLS renewal). */
  readonly actor: string;
  /** Where from: remote address or `cli`. */
  readonly source: string;
  readonly tenantId?: string | null;
  /** Session id hash prefix, when a session was involved. */
  readonly session?: string | null;
  /** Error code on failure. */
  readonly code?: string | null;
  /** Non-secret details. */
  readonly details?: Readonly<Record<string, string | number | boolean | null>>;
}

export interface AuditRecord extends AuditEventInput {
  readonly seq: number;
  /** ISO 8601 UTC. */
  readonly time: string;
  readonly eventId: string;
  readonly prevHash: string;
  readonly hash: string;
}

export interface AuditVerification {
  readonly ok: boolean;
  readonly records: number;
  /** First record that does not verify. */
  readonly firstBrokenSeq?: number;
  readonly reason?: string;
}

export interface ThrottleState {
  readonly failures: number;
  readonly lockedUntil: number;
}

export interface ThrottlePolicy {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly lockMs: number;
}

export interface TenantRepo {
  get(id: string): Promise<Tenant | undefined>;
  getByName(name: string): Promise<Tenant | undefined>;
  /** Creates a tenant and its first owner atomically; CONFLICT if the name or email exists. */
  createWithOwner(tenant: Tenant, owner: Owner, audit: AuditEventInput): Promise<void>;
}

export interface OwnerRepo {
  get(id: string): Promise<Owner | undefined>;
  getByEmail(email: string): Promise<Owner | undefined>;
  /** Accepts TOTP step `step` only if it is newer than the last accepted one (single statement). */
  advanceTotpStep(ownerId: string, step: number): Promise<boolean>;
}

export interface SessionRepo {
  create(session: Session, audit: AuditEventInput): Promise<void>;
  get(tokenHash: string): Promise<Session | undefined>;
  touch(tokenHash: string, idleExpiresAt: number): Promise<void>;
  delete(tokenHash: string, audit: AuditEventInput): Promise<void>;
  deleteExpired(now: number): Promise<number>;
}

export interface ThrottleRepo {
  get(key: string, now: number): Promise<ThrottleState>;
  /** Records one failure atomically and returns the new state (locked when the limit is hit). */
  recordFailure(key: string, now: number, policy: ThrottlePolicy): Promise<ThrottleState>;
  reset(key: string): Promise<void>;
}

export interface ClaimTokenRepo {
  create(token: ClaimToken, audit: AuditEventInput): Promise<void>;
  get(tenantId: string, id: string): Promise<ClaimToken | undefined>;
  list(tenantId: string): Promise<ClaimToken[]>;
  /** Revokes a token of this tenant; false when no such token. */
  revoke(tenantId: string, id: string, now: number, audit: AuditEventInput): Promise<boolean>;
  /**
   * The token with this hash if it could be redeemed at `now` (not revoked, not expired, uses
   * left). A read: the use is spent by `devices.recordEnrollment` with `redeem`.
   */
  findRedeemable(tokenHash: string, now: number): Promise<ClaimToken | undefined>;
}

export interface NewEnrollment {
  readonly device: Device;
  readonly certificate: CertificateRecord;
  readonly audit: AuditEventInput;
  /**
   * Spend one use of this claim token in the same unit: `uses += 1` where the hash matches, not
   * revoked, `expires_at > now` and uses < maxUses. When no use can be spent nothing is recorded
   * and the method rejects with CLAIM_TOKEN_INVALID.
   */
  readonly redeem?: { readonly claimTokenHash: string; readonly now: number };
}

export interface DeviceRepo {
  get(tenantId: string, id: string): Promise<Device | undefined>;
  /** Lookup without tenant scope: for the hub's own device authentication only. */
  getAnyTenant(id: string): Promise<Device | undefined>;
  list(tenantId: string, opts?: { limit?: number; after?: string }): Promise<Device[]>;
  /**
   * Records an issued certificate and creates (first enrollment) or updates (re-enrollment) the
   * device, atomically with the audit record (and the claim-token use of `redeem`). Rejects with
   * KEY_ALREADY_ENROLLED when the public key is enrolled on another device, CONFLICT when the
   * device exists in another tenant or state, CLAIM_TOKEN_INVALID when `redeem` cannot be spent.
   */
  recordEnrollment(enrollment: NewEnrollment): Promise<void>;
  certificates(tenantId: string, deviceId: string): Promise<CertificateRecord[]>;
  certificateBySerial(serial: string): Promise<CertificateRecord | undefined>;
  certificateBySpki(spkiSha256: string): Promise<CertificateRecord | undefined>;
}

export interface AuditRepo {
  append(event: AuditEventInput): Promise<AuditRecord>;
  list(opts?: { afterSeq?: number; limit?: number }): Promise<AuditRecord[]>;
  count(): Promise<number>;
  verify(): Promise<AuditVerification>;
}

export interface MetaRepo {
  get(key: string): Promise<string | undefined>;
  /** Sets a value only if absent; returns the value now stored. */
  setIfAbsent(key: string, value: string): Promise<string>;
}

export interface TelemetryRecord {
  /** Store-wide, strictly increasing (AUTOINCREMENT: never reused). */
  readonly seq: number;
  readonly tenantId: string;
  readonly deviceId: string;
  readonly topic: string;
  /** The application payload (envelope removed), opaque bytes. */
  readonly payload: Buffer;
  /** The payload text when it is a valid UTF-8 JSON object or array, else null. */
  readonly payloadJson: string | null;
  readonly qos: 0 | 1;
  readonly receivedAt: number;
  /** `id:<messageId>` for enveloped messages, else null. */
  readonly dedupKey: string | null;
}

export interface NewTelemetry extends Omit<TelemetryRecord, 'seq'> {
  /**
   * When set (a DUP redelivery without an envelope): a duplicate if this device stored a message
   * without an envelope with the same topic and payload bytes at or after this time.
   */
  readonly contentDedupSince: number | null;
}

export interface TelemetryQuery {
  /** Rows with seq greater than this (the cursor). */
  readonly afterSeq?: number;
  /** received_at >= since (inclusive). */
  readonly since?: number;
  /** received_at < until (exclusive). */
  readonly until?: number;
  /** 1..1000. */
  readonly limit: number;
}

export interface TelemetryRepo {
  /**
   * Stores one message durably, or reports the already stored copy: `duplicate` with the
   * original's seq when `dedupKey` exists for the device, or `contentDedupSince` matches.
   * Of N concurrent inserts of one message exactly one stores it.
   */
  insert(message: NewTelemetry): Promise<{ readonly seq: number; readonly duplicate: boolean }>;
  /** Oldest first (by seq); scoped to tenant and device. */
  list(tenantId: string, deviceId: string, query: TelemetryQuery): Promise<TelemetryRecord[]>;
  count(tenantId: string, deviceId: string): Promise<number>;
}

/** A revoked certificate as a CRL lists it. */
export interface RevokedCertificate {
  readonly serial: string;
  readonly revokedAt: number;
  /** An RFC 5280 §5.3.1 CRLReason name. */
  readonly reason: string;
  readonly notAfter: number;
}

export interface DeviceRevocationInput {
  readonly tenantId: string;
  readonly deviceId: string;
  /** An RFC 5280 §5.3.1 CRLReason name. */
  readonly reason: string;
  readonly now: number;
  /** Appended in the same unit; the store adds `certificates` and `alreadyRevoked` to its details. */
  readonly audit: AuditEventInput;
}

export interface DeviceRevocation {
  readonly device: Device;
  /** Every certificate serial of the device, all revoked now. */
  readonly serials: readonly string[];
  /** True when the device was revoked before: nothing changed (revokedAt and reason are the first revoke's). */
  readonly alreadyRevoked: boolean;
  readonly revokedAt: number;
  readonly reason: string;
}

export interface RevocationRepo {
  /**
   * One atomic unit: device status → revoked, every unrevoked certificate of it revoked at
   * `now` with `reason`, plus the audit record. Tenant-scoped: undefined (and nothing written,
   * not even audit) when this tenant has no such device. Repeating it changes nothing but the log.
   */
  revokeDevice(input: DeviceRevocationInput): Promise<DeviceRevocation | undefined>;
  /** Revoked certificates with notAfter >= `notAfterFrom` (expired ones may leave the CRL, RFC 5280 §3.3), by serial. */
  listRevoked(opts: { notAfterFrom: number }): Promise<RevokedCertificate[]>;
  /** Increments the persisted cRLNumber and returns it; durable before it resolves, so never reused. */
  nextCrlNumber(): Promise<bigint>;
}

/** A trust bundle as the hub published it (ADR 0020, 0021). */
export interface StoredTrustBundle {
  readonly version: number;
  /** Canonical bundle bytes, exactly as served. */
  readonly bytes: Buffer;
  readonly issuedAt: number;
  readonly expires: number;
}

/** A hub root created by rotation or recovery (the genesis root lives in pki/, ADR 0021). */
export interface HubRootRecord {
  /** Hex SHA-256 of the root SPKI (the bundle key id). */
  readonly keyId: string;
  /** Self-signed root certificate, DER. */
  readonly certificate: Buffer;
  /** The same subject and key signed by the previous root (served during the overlap), or null. */
  readonly crossCertificate: Buffer | null;
  /** PKCS#8 sealed by the master key, aad `fleetkey:ca-key:root:<keyId>`. */
  readonly sealedKey: Buffer;
  /** The device CA (same key as ever) certified by this root. */
  readonly deviceCaCertificate: Buffer;
  readonly createdAt: number;
}

export interface TrustRepo {
  latest(): Promise<StoredTrustBundle | undefined>;
  get(version: number): Promise<StoredTrustBundle | undefined>;
  /** Every version, ascending. */
  list(): Promise<StoredTrustBundle[]>;
  /**
   * One atomic unit: the bundle, the root it introduces (if any) and the audit record. The version
   * must be the latest + 1 (1 on an empty table), else CONFLICT and nothing is written.
   */
  append(input: { readonly bundle: StoredTrustBundle; readonly root?: HubRootRecord; readonly audit: AuditEventInput }): Promise<void>;
  roots(): Promise<HubRootRecord[]>;
}

export interface Store {
  readonly engine: string;
  readonly tenants: TenantRepo;
  readonly owners: OwnerRepo;
  readonly sessions: SessionRepo;
  readonly throttle: ThrottleRepo;
  readonly claimTokens: ClaimTokenRepo;
  readonly devices: DeviceRepo;
  readonly audit: AuditRepo;
  readonly meta: MetaRepo;
  readonly revocation: RevocationRepo;
  readonly telemetry: TelemetryRepo;
  readonly batches: BatchRepo;
  readonly trust: TrustRepo;
  readonly attestation: AttestationRepo;
  readonly renewal: RenewalRepo;
  close(): Promise<void>;
}
