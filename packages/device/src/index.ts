/**
 * @fleetkey/device — the device SDK: key stores, pinned hub trust, EST enrollment, identity state,
 * MQTT over pinned mutual TLS with a durable outbox.
 * See docs/device-sdk.md. Nothing here has side effects on import.
 */
export { enroll, type EnrollOptions, type IdentitySummary } from './api/enroll.js';
export { enrollWithTpmAttestation, enrollWithSeAttestation, type TpmAttestedEnrollOptions, type SeAttestedEnrollOptions } from './api/enroll-attested.js';
export { AttestHub, ATTEST_PATH, type AttestConnection } from './attest/hub-channel.js';
export { TpmAttester, EK_HANDLES, type EkKind } from './attest/tpm-evidence.js';
export { renew, retirePreviousCertificates, type RenewOptions, type RenewResult } from './api/renew.js';
export { renewalTime, renewalWindow, seededRandom, DEFAULT_JITTER_FRACTION, type RenewalWindow, type Validity } from './renewal/schedule.js';
export { RenewalScheduler, MAX_TIMER_MS, type RenewalEvent, type RenewalSchedulerOptions, type RenewalTrigger } from './renewal/scheduler.js';
export { AutoRenewal, RenewCommandGate, startAutoRenewal, DEFAULT_MIN_COMMAND_INTERVAL_MS, type AutoRenewalEvent, type AutoRenewalOptions } from './renewal/agent.js';
export { proveIdentity, DEVICE_PATH } from './renewal/proof.js';
export { status, RENEW_AT_FRACTION, type CertificateState, type DeviceStatus, type StatusOptions } from './api/status.js';

export type { KeyHandle, KeyStore, TlsKeyCapability, TlsKeyOptions } from './keystore/types.js';
export { hasTlsKeyCapability, isValidKeyLabel, KEY_LABEL_PATTERN } from './keystore/types.js';
export { FileKeyStore, type FileKeyStoreOptions } from './keystore/file/file-keystore.js';
export { Pkcs11KeyStore, type Pkcs11KeyStoreOptions } from './keystore/pkcs11/pkcs11-keystore.js';
export { TpmKeyStore, TpmKeyHandle, DEFAULT_TCTI, type TpmKeyStoreOptions } from './keystore/tpm/tpm-keystore.js';
export { KEY_STORE_KINDS, openKeyStore, parseKeyStoreSpec, type KeyStoreContext, type KeyStoreFactory } from './keystore/registry.js';

export { PinSet, MAX_PINS } from './trust/pin-set.js';
export { connectPinned, DEFAULT_CONNECT_TIMEOUT_MS, type ConnectPinnedOptions } from './trust/connect.js';
export { verifyPinnedPath, PathError, type PinnedPath, type PinnedPathInput, type PathPurpose } from './trust/pinned-path.js';

export { EstClient, parseHubUrl, type EstClientOptions, type HubAddress, type MutualTlsIdentity } from './enroll/est-client.js';
export { MAX_RESPONSE_BYTES, requestOverSocket, type HttpRequest, type HttpResponse } from './enroll/http-over-socket.js';
export { errorFromResponse } from './enroll/est-wire.js';

export { loadIdentity, type DeviceIdentity, type KeyStoreRecord, type StoredIdentity } from './state/identity.js';
export { adoptBundle, readBundleDevice, BUNDLE_DEVICE_FILE, type AdoptBundleOptions, type BundleDevice } from './state/bundle.js';

export { connect, loadClientIdentity, DEFAULT_MQTT_PORT, type ConnectOptions } from './mqtt/connect.js';
export { DeviceClient, type ClientIdentity, type DeviceClientEvents, type PublishResult } from './mqtt/client.js';
export { Backoff, systemTimers, type BackoffOptions, type Timers } from './mqtt/backoff.js';
export { classifyFailure, type ConnectFailure } from './mqtt/refusal.js';
export { checkPublishTopic, commandsFilter, telemetryTopic, TRUST_TOPIC, type DeviceCommand } from './mqtt/topics.js';
export { FileOutbox, outboxDirectory, type OutboxOptions, type OutboxStats, type OverflowPolicy, type QueuedMessage } from './outbox/outbox.js';
export { TrustFollower, catchUp, httpsBundleSource, MAX_CATCH_UP, type BundleSource } from './trust/follow.js';
export { loadTrustBundle, saveTrustBundle, TRUST_FILE } from './trust/trust-store.js';
