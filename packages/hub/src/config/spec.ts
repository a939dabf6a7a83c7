/**
 * Every hub setting in one table, with its unit, limits, environment variable and CLI flag.
 * `docs/config.md` is generated from this table (`npm run docs:config`); a test keeps them in sync.
 * Precedence: CLI flag > environment variable > default. Validated once at start-up, then frozen.
 */

export type SettingType = 'string' | 'int' | 'list' | 'enum';

export interface SettingSpec {
  readonly key: string;
  readonly env: string;
  readonly flag?: string;
  readonly type: SettingType;
  /** Default as a string, parsed like any other input; `''` for "derived" (see description). */
  readonly default: string;
  readonly min?: number;
  readonly max?: number;
  readonly values?: readonly string[];
  readonly unit?: string;
  readonly description: string;
}

export const CONFIG_SPEC: readonly SettingSpec[] = [
  { key: 'dataDir', env: 'FLEETKEY_DATA_DIR', flag: 'data-dir', type: 'string', default: './data', description: 'Folder for the SQLite database, sealed keys and the master key.' },
  { key: 'host', env: 'FLEETKEY_HOST', flag: 'host', type: 'string', default: '127.0.0.1', description: 'Address the listeners bind to.' },
  { key: 'apiPort', env: 'FLEETKEY_API_PORT', flag: 'api-port', type: 'int', default: '8443', min: 0, max: 65535, description: 'HTTPS port of the owner API and EST (0 = ephemeral, for tests).' },
  { key: 'mqttPort', env: 'FLEETKEY_MQTT_PORT', flag: 'mqtt-port', type: 'int', default: '8883', min: 0, max: 65535, description: 'MQTT 3.1.1 over mutual TLS port (0 = ephemeral, for tests). There is no plaintext MQTT listener.' },
  { key: 'mqttMaxPacketBytes', env: 'FLEETKEY_MQTT_MAX_PACKET', type: 'int', default: '131072', min: 1024, max: 16777216, unit: 'bytes', description: 'Largest MQTT control packet accepted (fixed header included); a larger one closes the connection before it is buffered (ADR 0012).' },
  { key: 'mqttMaxQueuedPackets', env: 'FLEETKEY_MQTT_MAX_QUEUED', type: 'int', default: '16', min: 1, max: 1000, description: 'Packets a client may send before its CONNECT is processed; more closes the connection.' },
  { key: 'mqttMaxInflight', env: 'FLEETKEY_MQTT_MAX_INFLIGHT', type: 'int', default: '100', min: 1, max: 10000, description: 'Commands handed to one device connection and not yet written; further commands are dropped and audited (`mqtt`/`command.dropped`).' },
  { key: 'mqttMaxSubscriptions', env: 'FLEETKEY_MQTT_MAX_SUBSCRIPTIONS', type: 'int', default: '16', min: 1, max: 1000, description: 'Topic filters one device connection may hold; more get SUBACK 0x80.' },
  { key: 'mqttConnectTimeoutSeconds', env: 'FLEETKEY_MQTT_CONNECT_TIMEOUT', type: 'int', default: '10', min: 1, max: 300, unit: 'seconds', description: 'Time for the TLS handshake, and then for the CONNECT packet, before the connection is closed.' },
  { key: 'mqttKeepAliveMaxSeconds', env: 'FLEETKEY_MQTT_KEEPALIVE_MAX', type: 'int', default: '300', min: 10, max: 65535, unit: 'seconds', description: 'Keep-alive cap: a CONNECT asking for 0 or more gets this instead; a client silent for 1.5× its keep-alive is disconnected.' },
  { key: 'mqttRatePerSecond', env: 'FLEETKEY_MQTT_RATE', type: 'int', default: '100', min: 1, max: 100000, unit: 'messages/s', description: 'Sustained PUBLISH rate per device (token bucket refill); a device over its rate is disconnected, unacknowledged (ADR 0012).' },
  { key: 'mqttRateBurst', env: 'FLEETKEY_MQTT_RATE_BURST', type: 'int', default: '1000', min: 1, max: 1000000, unit: 'messages', description: 'Token bucket size of the per-device PUBLISH rate (a reconnecting SDK flushing its outbox needs headroom).' },
  { key: 'publicUrl', env: 'FLEETKEY_PUBLIC_URL', flag: 'public-url', type: 'string', default: '', description: 'Hub URL that devices use (claim URIs); default `https://<host>:<apiPort>`.' },
  { key: 'tlsDnsNames', env: 'FLEETKEY_TLS_DNS_NAMES', type: 'list', default: 'localhost', description: 'Comma-separated DNS names in the hub TLS certificate.' },
  { key: 'tlsIps', env: 'FLEETKEY_TLS_IPS', type: 'list', default: '127.0.0.1,::1', description: 'Comma-separated IP addresses in the hub TLS certificate (the bind host is added).' },
  { key: 'tlsCertValidityHours', env: 'FLEETKEY_TLS_CERT_VALIDITY_HOURS', type: 'int', default: '168', min: 1, max: 2160, unit: 'hours', description: 'Lifetime of the hub TLS certificate (HTTPS and MQTT listeners), issued at every start and renewed live before it expires (ADR 0017).' },
  { key: 'tlsRenewAtPercent', env: 'FLEETKEY_TLS_RENEW_AT_PERCENT', type: 'int', default: '67', min: 10, max: 90, unit: 'percent', description: 'Share of the hub TLS certificate lifetime after which a new key and certificate are issued and applied to both listeners without a restart (open connections stay up; ADR 0017).' },
  { key: 'tlsRenewCheckSeconds', env: 'FLEETKEY_TLS_RENEW_CHECK', type: 'int', default: '60', min: 1, max: 3600, unit: 'seconds', description: 'How often the hub compares its clock with the TLS renewal time; also the retry interval after a failed renewal.' },
  { key: 'retiredRootSessionSpreadSeconds', env: 'FLEETKEY_RETIRED_ROOT_SESSION_SPREAD', type: 'int', default: '30', min: 0, max: 3600, unit: 'seconds', description: 'When a root is retired (the end of a rotation overlap, or a recovery), MQTT sessions whose TLS handshake was served under it are closed at random times within this window, so devices reconnect under the new root without a thundering herd (ADR 0026). 0 = all at once.' },
  { key: 'trustBundleValidityDays', env: 'FLEETKEY_TRUST_BUNDLE_VALIDITY_DAYS', type: 'int', default: '365', min: 7, max: 3650, unit: 'days', description: 'Lifetime (expires − issuedAt) of each trust bundle; the hub signs a fresh version with the same keys when a third of it is left (ADR 0020, 0021).' },
  { key: 'deviceCertValidityDays', env: 'FLEETKEY_DEVICE_CERT_VALIDITY_DAYS', type: 'int', default: '90', min: 1, max: 825, unit: 'days', description: 'Validity of device certificates.' },
  { key: 'renewalGraceDays', env: 'FLEETKEY_RENEWAL_GRACE_DAYS', type: 'int', default: '30', min: 0, max: 365, unit: 'days', description: 'Default grace period after a device certificate expired in which the device may still renew it with the same key (`simplereenroll`); an organisation may set its own (`PUT /api/v1/organisation/renewal`; ADR 0025). 0 = no grace.' },
  { key: 'renewCommandMinIntervalSeconds', env: 'FLEETKEY_RENEW_COMMAND_MIN_INTERVAL', type: 'int', default: '60', min: 1, max: 86400, unit: 'seconds', description: 'Shortest interval between two early-renewal commands to the same device (`POST /api/v1/devices/{id}/renew`); sooner is RATE_LIMITED (ADR 0025).' },
  { key: 'crlNextUpdateHours', env: 'FLEETKEY_CRL_NEXT_UPDATE_HOURS', type: 'int', default: '168', min: 1, max: 720, unit: 'hours', description: 'nextUpdate − thisUpdate of the device CA CRL (`GET /crl`); a new CRL is signed on every revocation and once half of this has passed (ADR 0011).' },
  { key: 'ocspValiditySeconds', env: 'FLEETKEY_OCSP_VALIDITY', type: 'int', default: '3600', min: 60, max: 604800, unit: 'seconds', description: 'nextUpdate − thisUpdate of OCSP responses (`/ocsp`), and their HTTP max-age (ADR 0011).' },
  { key: 'rootKeyAlgorithm', env: 'FLEETKEY_ROOT_KEY_ALGORITHM', type: 'enum', default: 'p384', values: ['p256', 'p384', 'p521', 'ed25519'], description: 'Key type of the hub root, used at first start only.' },
  { key: 'deviceCaKeyAlgorithm', env: 'FLEETKEY_DEVICE_CA_KEY_ALGORITHM', type: 'enum', default: 'p256', values: ['p256', 'p384', 'p521', 'ed25519'], description: 'Key type of the device CA, used at first start only (P-256 = 128-bit strength and the fastest issuance).' },
  { key: 'caSigner', env: 'FLEETKEY_CA_SIGNER', flag: 'ca-signer', type: 'string', default: 'software', description: 'Where the root and device CA keys are made at first start: `software` (sealed with the master key) or `pkcs11:token=…?module-path=…&pin-source=file:…|env:…` (generated inside the token, never extractable; ADR 0028).' },
  { key: 'allowedDeviceKeys', env: 'FLEETKEY_ALLOWED_DEVICE_KEYS', type: 'list', default: 'p256,p384,p521,ed25519,rsa', description: 'Device key types accepted at enrollment.' },
  { key: 'minRsaBits', env: 'FLEETKEY_MIN_RSA_BITS', type: 'int', default: '2048', min: 2048, max: 16384, unit: 'bits', description: 'Smallest RSA modulus accepted.' },
  { key: 'claimTokenDefaultTtlSeconds', env: 'FLEETKEY_CLAIM_TOKEN_DEFAULT_TTL', type: 'int', default: '900', min: 60, max: 86400, unit: 'seconds', description: 'Claim token lifetime when none is asked for.' },
  { key: 'claimTokenMaxTtlSeconds', env: 'FLEETKEY_CLAIM_TOKEN_MAX_TTL', type: 'int', default: '86400', min: 60, max: 86400, unit: 'seconds', description: 'Longest claim token lifetime an owner may ask for.' },
  { key: 'claimTokenMaxUses', env: 'FLEETKEY_CLAIM_TOKEN_MAX_USES', type: 'int', default: '10000', min: 1, max: 1000000, description: 'Largest `maxUses` of one claim token.' },
  { key: 'lockoutMaxFailures', env: 'FLEETKEY_LOCKOUT_MAX_FAILURES', type: 'int', default: '5', min: 1, max: 100, description: 'Failed logins (per account, and per source) before a lock; hard cap 100 (NIST SP 800-63B §5.2.2).' },
  { key: 'lockoutWindowSeconds', env: 'FLEETKEY_LOCKOUT_WINDOW', type: 'int', default: '900', min: 1, max: 86400, unit: 'seconds', description: 'Window in which failures are counted.' },
  { key: 'lockoutSeconds', env: 'FLEETKEY_LOCKOUT_DURATION', type: 'int', default: '900', min: 1, max: 86400, unit: 'seconds', description: 'How long a lock lasts.' },
  { key: 'enrollFailureLimit', env: 'FLEETKEY_ENROLL_FAILURE_LIMIT', type: 'int', default: '20', min: 1, max: 100, description: 'Failed claim-token redemptions per source address within the lockout window before that source is locked.' },
  { key: 'sessionAbsoluteSeconds', env: 'FLEETKEY_SESSION_ABSOLUTE', type: 'int', default: '43200', min: 60, max: 604800, unit: 'seconds', description: 'Owner session lifetime.' },
  { key: 'sessionIdleSeconds', env: 'FLEETKEY_SESSION_IDLE', type: 'int', default: '1800', min: 60, max: 86400, unit: 'seconds', description: 'Owner session idle timeout.' },
  { key: 'maxJsonBodyBytes', env: 'FLEETKEY_MAX_JSON_BODY', type: 'int', default: '65536', min: 1024, max: 10485760, unit: 'bytes', description: 'Largest JSON request body.' },
  { key: 'groupCommitMaxWaitMs', env: 'FLEETKEY_GROUP_COMMIT_MAX_WAIT_MS', type: 'int', default: '30', min: 0, max: 1000, unit: 'ms', description: 'Longest a SQLite group-commit batch stays open while writes keep joining it: under load one COMMIT + fsync then covers several event-loop turns; a lone write still commits at the end of its turn. 0 = commit every turn (ADR 0030).' },
  { key: 'maxCsrBytes', env: 'FLEETKEY_MAX_CSR_BYTES', type: 'int', default: '16384', min: 1024, max: 1048576, unit: 'bytes', description: 'Largest EST request body (base64 PKCS#10).' },
  { key: 'telemetryMaxPayloadBytes', env: 'FLEETKEY_TELEMETRY_MAX_PAYLOAD', type: 'int', default: '65536', min: 16, max: 1048576, unit: 'bytes', description: 'Largest telemetry payload stored (after the fleetkey envelope is removed); larger messages are refused with BODY_TOO_LARGE and not acknowledged.' },
  { key: 'telemetryDupWindowSeconds', env: 'FLEETKEY_TELEMETRY_DUP_WINDOW', type: 'int', default: '600', min: 1, max: 86400, unit: 'seconds', description: 'A PUBLISH with DUP set and no envelope is a duplicate when the same device stored the same topic and payload within this window (ADR 0010).' },
  { key: 'commandMaxPayloadBytes', env: 'FLEETKEY_COMMAND_MAX_PAYLOAD', type: 'int', default: '16384', min: 16, max: 262144, unit: 'bytes', description: 'Largest command payload accepted by POST /api/v1/devices/{id}/commands (decoded bytes).' },
  { key: 'sseHeartbeatSeconds', env: 'FLEETKEY_SSE_HEARTBEAT', type: 'int', default: '15', min: 1, max: 300, unit: 'seconds', description: 'Interval of heartbeat comments on telemetry streams; the session is re-checked at each one.' },
  { key: 'batchMaxCount', env: 'FLEETKEY_BATCH_MAX_COUNT', type: 'int', default: '10000', min: 1, max: 100000, description: 'Most identities in one batch (`POST /api/v1/batches`, ADR 0014).' },
  { key: 'batchMaxBodyBytes', env: 'FLEETKEY_BATCH_MAX_BODY', type: 'int', default: '33554432', min: 65536, max: 268435456, unit: 'bytes', description: 'Largest body of `POST /api/v1/batches` (uploaded CSRs) and `POST /api/v1/batches/import` (a factory manifest).' },
  { key: 'batchBundleMaxDownloads', env: 'FLEETKEY_BATCH_BUNDLE_DOWNLOADS', type: 'int', default: '1', min: 1, max: 10, description: 'How often the bundle of a batch may be downloaded; hub-generated keys are erased with the last download (ADR 0014).' },
  { key: 'factoryKitMaxDays', env: 'FLEETKEY_FACTORY_KIT_MAX_DAYS', type: 'int', default: '90', min: 1, max: 365, unit: 'days', description: 'Longest issuance window of a factory kit (`fleetkey factory init --valid-for`, ADR 0015).' },
  { key: 'masterKeyFile', env: 'FLEETKEY_MASTER_KEY_FILE', type: 'string', default: '', description: 'File holding the 32-byte key that seals hub private keys and TOTP seeds; default `<dataDir>/secrets/master.key`. Keep it on another volume in production.' },
  { key: 'logLevel', env: 'FLEETKEY_LOG_LEVEL', flag: 'log-level', type: 'enum', default: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'silent'], description: 'Log level (JSON lines on stderr).' },
];
