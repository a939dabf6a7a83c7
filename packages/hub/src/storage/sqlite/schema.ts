/**
 * SQLite schema, as ordered migrations tracked with `PRAGMA user_version`.
 * A migration is appended, never edited, once released.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

  CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE owners (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    totp_sealed TEXT NOT NULL,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
  ) STRICT;

  CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES owners(id),
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX sessions_expiry ON sessions(expires_at);

  CREATE TABLE throttle (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE claim_tokens (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT,
    max_uses INTEGER NOT NULL CHECK (max_uses >= 1),
    uses INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER
  ) STRICT;
  CREATE INDEX claim_tokens_tenant ON claim_tokens(tenant_id, created_at);

  CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at INTEGER NOT NULL,
    enrolled_via TEXT NOT NULL,
    claim_token_id TEXT,
    label TEXT,
    current_serial TEXT
  ) STRICT;
  CREATE INDEX devices_tenant ON devices(tenant_id, id);

  CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id),
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    spki_sha256 TEXT NOT NULL,
    key_algorithm TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    der BLOB NOT NULL,
    revoked_at INTEGER,
    revocation_reason TEXT
  ) STRICT;
  CREATE INDEX certificates_device ON certificates(device_id, issued_at);
  CREATE INDEX certificates_spki ON certificates(spki_sha256);

  CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    category TEXT NOT NULL,
    type TEXT NOT NULL,
    result TEXT NOT NULL,
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    tenant_id TEXT,
    session TEXT,
    code TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
  ) STRICT;
  -- Append-only: the database refuses updates and deletes of audit records.
  CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
  CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
  `,
  // Telemetry (ADR 0010). seq AUTOINCREMENT so a cursor never points at a reused seq.
  `
  CREATE TABLE telemetry (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    payload_json TEXT,
    qos INTEGER NOT NULL CHECK (qos IN (0, 1)),
    received_at INTEGER NOT NULL,
    dedup_key TEXT,
    -- Only for messages without an envelope (ADR 0010); matched by the time index, no own index.
    content_hash BLOB
  ) STRICT;
  CREATE UNIQUE INDEX telemetry_dedup ON telemetry(device_id, dedup_key) WHERE dedup_key IS NOT NULL;
  CREATE INDEX telemetry_device_seq ON telemetry(device_id, seq);
  CREATE INDEX telemetry_device_time ON telemetry(device_id, received_at);
  `,
  // Revocation (ADR 0011): the cRLNumber counter (one row) and an index of revoked certificates.
  `
  CREATE TABLE crl_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    crl_number INTEGER NOT NULL CHECK (crl_number >= 0)
  ) STRICT;
  INSERT INTO crl_state (id, crl_number) VALUES (1, 0);
  CREATE INDEX certificates_revoked ON certificates(serial) WHERE revoked_at IS NOT NULL;
  `,
  // Batches and factory kits (ADRs 0014, 0015). A pre-provisioned device is `active` with
  // pre_provisioned = 1 until its first MQTT connection (an added column: the status CHECK of
  // migration 1 stays as released).
  `
  ALTER TABLE devices ADD COLUMN pre_provisioned INTEGER NOT NULL DEFAULT 0 CHECK (pre_provisioned IN (0, 1));
  ALTER TABLE devices ADD COLUMN batch_id TEXT;
  CREATE INDEX devices_batch ON devices(batch_id) WHERE batch_id IS NOT NULL;
  CREATE TABLE batches (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    label TEXT,
    mode TEXT NOT NULL CHECK (mode IN ('device-keys', 'hub-keys')),
    key_algorithm TEXT NOT NULL,
    count INTEGER NOT NULL CHECK (count >= 1),
    done INTEGER NOT NULL DEFAULT 0 CHECK (done >= 0 AND done <= count),
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled')),
    failure_code TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    completed_at INTEGER,
    downloads INTEGER NOT NULL DEFAULT 0,
    passphrase_sealed BLOB
  ) STRICT;
  CREATE INDEX batches_running ON batches(status) WHERE status = 'running';
  CREATE TABLE batch_items (
    batch_id TEXT NOT NULL REFERENCES batches(id),
    idx INTEGER NOT NULL,
    device_id TEXT NOT NULL UNIQUE,
    csr BLOB,
    done INTEGER NOT NULL DEFAULT 0,
    key_sealed BLOB,
    PRIMARY KEY (batch_id, idx)
  ) STRICT;
  CREATE TABLE factory_kits (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    certificate BLOB NOT NULL,
    max_count INTEGER NOT NULL CHECK (max_count >= 1),
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    imported_counter INTEGER NOT NULL DEFAULT 0,
    imported_digest TEXT
  ) STRICT;
  `,
  // Trust bundles and rotated hub roots (ADR 0020, 0021). Versions only grow; rows are never changed.
  `
  CREATE TABLE trust_bundles (
    version INTEGER PRIMARY KEY CHECK (version >= 1),
    bundle BLOB NOT NULL,
    issued_at INTEGER NOT NULL,
    expires INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE hub_roots (
    key_id TEXT PRIMARY KEY,
    certificate BLOB NOT NULL,
    cross_certificate BLOB,
    sealed_key BLOB NOT NULL,
    device_ca_certificate BLOB NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE TRIGGER trust_bundles_no_update BEFORE UPDATE ON trust_bundles
    BEGIN SELECT RAISE(ABORT, 'trust_bundles is append-only'); END;
  CREATE TRIGGER trust_bundles_no_delete BEFORE DELETE ON trust_bundles
    BEGIN SELECT RAISE(ABORT, 'trust_bundles is append-only'); END;
  `,
  // Hardware attestation (ADR 0027): vendor roots, owned chips, policy per organisation, and how
  // each device's key is protected (existing devices: what they were, a software key).
  `
  CREATE TABLE vendor_roots (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL CHECK (kind IN ('tpm', 'se')),
    label TEXT,
    subject TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    der BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, kind, sha256)
  ) STRICT;
  CREATE TABLE owned_chips (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    match TEXT NOT NULL CHECK (match IN ('sha256', 'serial')),
    value TEXT NOT NULL,
    label TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, match, value)
  ) STRICT;
  CREATE TABLE attestation_policies (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    require_attestation INTEGER NOT NULL CHECK (require_attestation IN (0, 1)),
    updated_at INTEGER NOT NULL
  ) STRICT;
  ALTER TABLE devices ADD COLUMN key_protection TEXT NOT NULL DEFAULT 'file'
    CHECK (key_protection IN ('file', 'pkcs11', 'tpm', 'tpm-attested', 'se-attested'));
  `,
  // Telemetry ingest (ADR 0029): the (device_id, received_at) index served only the rare DUP
  // content lookup, which now walks telemetry_device_seq; one B-tree less per stored message.
  `
  DROP INDEX IF EXISTS telemetry_device_time;
  `,
  // Device certificate renewal (ADR 0025): an organisation's own grace after expiry; no row = hub default.
  `
  CREATE TABLE renewal_policies (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    grace_days INTEGER NOT NULL CHECK (grace_days BETWEEN 0 AND 365),
    updated_at INTEGER NOT NULL
  ) STRICT;
  `,
];
