/**
 * Composition of a running hub from its configuration: the only place that wires modules
 * together. Side effects (listening, signals) stay in the CLI's `hub start`.
 */
import { X509Certificate } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { encodeCertsOnly, fail, systemClock, toPem, type Clock, type KeyAlgorithm } from '@fleetkey/protocol';
import { LoginService, PasswordHasher, validateAccountsConfig } from './accounts/index.js';
import { withBoundPort, type HubConfig } from './config/load.js';
import { acquireLock, dbPath, ensureDir, loadMasterKey } from './datadir.js';
import { buildApp } from './http/app.js';
import { hubPkiExists, issueTlsServerIdentity, loadOrCreateHubPki, type HubPki } from './pki/bootstrap.js';
import { ClaimTokenMethod } from './provisioning/claim-token/index.js';
import { ClaimTokenService } from './provisioning/claim-token/service.js';
import { ProvisioningRegistry } from './provisioning/registry.js';
import { ReenrollMethod } from './provisioning/reenroll/index.js';
import { openSqliteStore } from './storage/sqlite/index.js';
import type { Store } from './storage/types.js';
import { createEnrollmentCa, lateBoundCa } from './enrollment-ca.js';
import { CsrVerifierPool } from './ca/csr-verifier-pool.js';
import { nativeEcdsaStatus } from './ca/native-ecdsa.js';
import { createRevocation } from './revocation/index.js';
import type { VerifiedCsr } from './ca/issuance.js';
import { InProcessEventBus, type EventBus } from './events/bus.js';
import { StoringTelemetrySink } from './telemetry/sink.js';
import type { TelemetrySink } from './telemetry/types.js';
import { startMqttBroker, mqttLimitsOf } from './mqtt/index.js';
import { httpTlsOf, mqttTlsMaterial, startTrustFollowers, tlsServerOf } from './tls/hub-trust.js';
import { LiveTrust } from './tls/live-trust.js';
import { nodeTimers, type IntervalTimers } from './tls/renewal.js';
import { loadTrust, refreshIfDue, type TrustContext } from './trust/bundles.js';
import { startRootFollower } from './trust/hub-wiring.js';
import type { TrustMaterial } from './trust/material.js';
import { registerTrustRoutes } from './trust/routes.js';
import { trustedRootKeys } from './trust/lineage.js';
import { BatchJobs, createBatchCa } from './batch/job.js';
import { BatchService } from './batch/service.js';
import { FactoryService } from './batch/factory-kits.js';
import type { CertificateAuthority } from './ca/issuance.js';
import { AttestationMethod } from './provisioning/attestation/index.js';
import { AttestationService } from './attestation/service.js';
import { registerAttestationRoutes } from './attestation/routes.js';
import { AttestationOwnerService } from './attestation/owner-service.js';
import { registerAttestationOwnerRoutes } from './attestation/owner-routes.js';
import { DeviceAuthenticator } from './mqtt/device-auth.js';
import { RenewalService } from './renewal/service.js';
import { registerRenewalRoutes } from './renewal/routes.js';

export const HUB_VERSION = '0.1.0';
const SESSION_SWEEP_MS = 10 * 60_000;

export interface StartHubOptions {
  readonly config: HubConfig;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** True when the operator set publicUrl; otherwise it follows the bound port. */
  readonly explicitPublicUrl?: boolean;
  /** Timers of the TLS renewal check (tests); default Node's, unref'd. */
  readonly timers?: IntervalTimers;
}

export interface RunningHub {
  readonly url: string;
  readonly port: number;
  /** Bound MQTT-over-TLS port (config.mqttPort, or the ephemeral one when that is 0). */
  readonly mqttPort: number;
  /** Pin of the current hub root (changes at a rotation or recovery, ADR 0021). */
  readonly pin: string;
  readonly rootCertPem: string;
  /** Version of the trust bundle in service. */
  readonly trustVersion: number;
  readonly recoveryKeyFile: string | undefined;
  readonly config: HubConfig;
  readonly store: Store;
  /** The in-process EventBus (revocations, commands, live telemetry). */
  readonly bus: EventBus;
  /** Durable telemetry ingest; the MQTT broker calls `accept` (telemetry/types.ts). */
  readonly telemetry: TelemetrySink;
  /** The hub TLS certificate new handshakes get now (renewed live, ADR 0017). */
  readonly tlsCertificate: { readonly serial: string; readonly notAfter: Date };
  /** The device CA set client certificates are verified against now. */
  readonly deviceCaCerts: readonly X509Certificate[];
  /**
   * Replaces the device CA verification set (a new or cross-signed device CA, an imported
   * factory sub-CA, a retired one) on both listeners and in device authentication, for new
   * connections; live sessions are kept. Throws CONFIG_INVALID and changes nothing when unusable.
   */
  setDeviceTrust(deviceCaCerts: readonly X509Certificate[]): void;
  /**
   * Device certificate renewal (ADR 0025): grace policy and early-renew commands. After a
   * device-CA rotation: `renewal.requestRenewalAll({ tenantId, actor: 'hub', session: null, source: 'hub' }, 'device-ca-rotation')`.
   */
  readonly renewal: RenewalService;
  /** Batch jobs (ADR 0014); tests wait on `settled(batchId)`. */
  readonly batchJobs: BatchJobs;
  close(): Promise<void>;
}

function accountsConfig(c: HubConfig) {
  return validateAccountsConfig({
    lockout: { maxFailures: c.lockoutMaxFailures, windowMs: c.lockoutWindowSeconds * 1000, lockMs: c.lockoutSeconds * 1000 },
    session: { absoluteMs: c.sessionAbsoluteSeconds * 1000, idleMs: c.sessionIdleSeconds * 1000 },
  });
}

export async function startHub(o: StartHubOptions): Promise<RunningHub> {
  let config = o.config;
  const clock = o.clock ?? systemClock;
  const logger = o.logger ?? pino({ level: config.logLevel, redact: ['req.headers.authorization', '*.password', '*.token', '*.totp'] }, pino.destination(2));
  ensureDir(config.dataDir);
  const release = acquireLock(config.dataDir);
  try {
    const sealer = loadMasterKey(config.masterKeyFile, !hubPkiExists(config.dataDir));
    const store = await openSqliteStore({ path: dbPath(config.dataDir), clock, maxWaitMs: config.groupCommitMaxWaitMs });
    const genesis = await loadOrCreateHubPki({ dataDir: config.dataDir, sealer, clock, rootAlgorithm: config.rootKeyAlgorithm, deviceCaAlgorithm: config.deviceCaKeyAlgorithm, caSigner: config.caSigner });
    const trustContext: TrustContext = { store, genesis, sealer, clock, validityMs: config.trustBundleValidityDays * 86_400_000 };
    let material: TrustMaterial = await loadTrust(trustContext);
    if ((await refreshIfDue(trustContext, material)) !== undefined) material = await loadTrust(trustContext);
    const pki = material.pki; // the PKI at start; the live one is material.pki (ADR 0021)
    const tls = await issueTlsServerIdentity(pki, { dnsNames: config.tlsDnsNames, ips: config.tlsIps, validityMs: config.tlsCertValidityHours * 3600_000, clock });
    const tlsIssuedAt = clock.now();
    // Device trust: the device CA(s) of the trust material and every factory kit sub-CA (ADR 0015);
    // kits are added at creation and kept across root rotations.
    const kitCas = (await store.batches.listKits()).map((k) => new X509Certificate(k.certificate));
    const trust = new LiveTrust({ server: tls, deviceCaCerts: [...material.deviceCaCerts, ...kitCas], rootPem: material.rootPem });
    const hasher = await PasswordHasher.create(accountsConfig(config).argon2);
    const login = new LoginService({ store, clock, hasher, sealer, config: accountsConfig(config), log: logger });
    const validityMs = config.deviceCertValidityDays * 86_400_000;
    const claimTokens = new ClaimTokenService({
      store, clock, hubUrl: () => config.publicUrl, pin: () => material.pki.pin,
      limits: { defaultTtlSeconds: config.claimTokenDefaultTtlSeconds, maxTtlSeconds: config.claimTokenMaxTtlSeconds, maxUses: config.claimTokenMaxUses },
    });
    const sourcePolicy = { maxFailures: config.enrollFailureLimit, windowMs: config.lockoutWindowSeconds * 1000, lockMs: config.lockoutSeconds * 1000 };
    const claimTokenMethod = new ClaimTokenMethod({ store, clock, deviceValidityMs: validityMs, sourcePolicy });
    const provisioning = new ProvisioningRegistry([
      claimTokenMethod,
      new AttestationMethod(claimTokenMethod),
      new ReenrollMethod({ store, clock, deviceCaCerts: () => trust.deviceCaCerts, deviceValidityMs: validityMs, graceMs: (tenantId) => renewal.graceMs(tenantId) }),
    ]);
    const deviceCa = lateBoundCa(); // bound after listen: certificates name <publicUrl>/crl and /ocsp
    const bus = new InProcessEventBus((err, name) => logger.warn({ err, event: name }, 'event handler failed'));
    const telemetry = new StoringTelemetrySink({
      store, bus, onPublishError: (err) => logger.warn({ err }, 'telemetry.stored publish failed'),
      limits: { maxPayloadBytes: config.telemetryMaxPayloadBytes, dupWindowMs: config.telemetryDupWindowSeconds * 1000 },
    });
    const revocation = createRevocation({
      store, bus, signer: pki.deviceCa.signer, caCertificate: pki.deviceCa.certificate, clock,
      crlNextUpdateMs: config.crlNextUpdateHours * 3600_000, ocspValidityMs: config.ocspValiditySeconds * 1000,
      onError: (err) => logger.error({ err }, 'OCSP responder failed'),
    });
    // Device certificate renewal (ADR 0025): grace policy, early-renew commands, retiring superseded certificates.
    const renewal = new RenewalService({
      store, bus, clock, defaultGraceDays: config.renewalGraceDays, minIntervalMs: config.renewCommandMinIntervalSeconds * 1000,
      onRetired: () => {
        revocation.crl.invalidate();
        revocation.crl.regenerate().catch((err: unknown) => logger.warn({ err }, 'CRL re-sign after retirement failed'));
      },
    });
    let caCerts = encodeCertsOnly(material.caCertificates);
    let batchCa: CertificateAuthority | undefined;
    const getBatchCa = (): CertificateAuthority => batchCa ?? fail('INTERNAL', { cause: new Error('batch CA not bound yet') });
    const batchJobs = new BatchJobs({ store, ca: getBatchCa, sealer, clock, logger, deviceValidityMs: validityMs });
    let mqttPort = 0;
    const batches = new BatchService({
      store, ca: getBatchCa, jobs: batchJobs, sealer, clock, bus, maxCount: config.batchMaxCount, maxDownloads: config.batchBundleMaxDownloads,
      allowedKeys: config.allowedDeviceKeys,
      bundleContext: () => ({
        hubUrl: config.publicUrl, pin: material.pki.pin, rootPem: toPem('CERTIFICATE', material.pki.root.certificate),
        deviceCaPem: toPem('CERTIFICATE', material.pki.deviceCa.certificate), mqttHost: new URL(config.publicUrl).hostname, mqttPort,
      }),
    });
    const factory = new FactoryService({
      store, root: () => material.pki.root, importRoots: () => trustedRootKeys(store), clock, maxWindowMs: config.factoryKitMaxDays * 86_400_000,
      deviceValidityMs: validityMs, hubUrl: () => config.publicUrl, pin: () => material.pki.pin,
      onKitCreated: (certificate) => {
        const kit = new X509Certificate(certificate);
        kitCas.push(kit);
        // Live for new connections on both listeners and in device authentication (ADR 0017).
        trust.setDeviceCas([...trust.deviceCaCerts, kit]);
      },
    });
    const app = buildApp<VerifiedCsr>({
      tls: httpTlsOf(trust.state),
      logger, maxJsonBodyBytes: config.maxJsonBodyBytes,
      owner: { store, login, claimTokens },
      telemetry: { store, login, bus, clock, commandMaxPayloadBytes: config.commandMaxPayloadBytes, sseHeartbeatMs: config.sseHeartbeatSeconds * 1000 },
      revocation: { login, revocation },
      batch: { login, batches, factory, maxBodyBytes: config.batchMaxBodyBytes },
      est: { ca: deviceCa.ca, provisioning, caCertsPkcs7: () => caCerts, certsOnly: (certs) => encodeCertsOnly(certs), maxCsrBytes: config.maxCsrBytes },
    });
    registerTrustRoutes(app, store);
    // ADR 0027: attestation enrollment (device side) and its trust settings (owner side).
    registerAttestationRoutes(app, new AttestationService({
      store, clock, ca: deviceCa.ca, provisioning, claimTokens: claimTokenMethod, certsOnly: (certs) => encodeCertsOnly(certs), sourcePolicy,
      challengeTtlMs: 60_000, maxPendingChallenges: 1000,
    }));
    registerAttestationOwnerRoutes(app, { login, service: new AttestationOwnerService({ store, clock }) });
    registerRenewalRoutes(app, { login, renewal, devices: new DeviceAuthenticator({ store, clock, deviceCaCerts: () => trust.deviceCaCerts, isRevoked: () => false }) });
    const csrVerifier = new CsrVerifierPool();
    if (!nativeEcdsaStatus.available) logger.warn({ reason: nativeEcdsaStatus.reason }, 'native ECDSA verifier not available: CSRs are verified with node:crypto (slower; docs/adr/0034)');
    await app.listen({ host: config.host, port: config.apiPort });
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : config.apiPort;
    config = withBoundPort(config, port, o.explicitPublicUrl === true);
    deviceCa.bind(createEnrollmentCa({ pki, store, clock, config, csrVerifier }));
    batchCa = createBatchCa({ signer: pki.deviceCa.signer, certificate: pki.deviceCa.certificate, clock, csrVerifier, policy: batchPolicy(config) });
    const mqtt = await startMqttBroker({
      host: config.host, port: config.mqttPort, store, clock, logger, sink: telemetry, bus, limits: mqttLimitsOf(config),
      tls: mqttTlsMaterial(trust.state), deviceCaCerts: trust.deviceCaCerts,
    }).catch(async (err: unknown) => {
      await app.close();
      await csrVerifier.close();
      throw err;
    });
    const renewer = startTrustFollowers({ trust, https: tlsServerOf(app.server), mqtt, pki: () => material.pki, config, clock, store, logger, issuedAt: tlsIssuedAt, ...(o.timers !== undefined ? { timers: o.timers } : {}) });
    const follower = await startRootFollower({
      context: trustContext, config, clock, timers: o.timers ?? nodeTimers, trust, renewer, mqtt, logger, extraDeviceCas: () => kitCas,
      onApplied: (m) => {
        material = m;
        caCerts = encodeCertsOnly(m.caCertificates);
      },
    }, material);
    mqttPort = mqtt.port;
    await batchJobs.resumeAll();
    await store.audit.append({ category: 'system', type: 'hub.start', result: 'success', actor: 'operator', source: 'cli', details: { version: HUB_VERSION, port, mqttPort: mqtt.port } });
    // Expired sessions are refused on use anyway; the sweep keeps the table small.
    const sweep = setInterval(() => {
      store.sessions.deleteExpired(clock.now()).catch((err: unknown) => logger.warn({ err }, 'session sweep failed'));
    }, SESSION_SWEEP_MS);
    sweep.unref();
    logger.info({ url: config.publicUrl, pin: pki.pin, trustVersion: material.bundle.content.version }, 'hub ready');
    return {
      url: config.publicUrl, port, mqttPort: mqtt.port, recoveryKeyFile: genesis.recoveryKeyFile, config, store, bus, telemetry, batchJobs, renewal,
      get pin() {
        return material.pki.pin;
      },
      get rootCertPem() {
        return toPem('CERTIFICATE', material.pki.root.certificate);
      },
      get trustVersion() {
        return material.bundle.content.version;
      },
      get tlsCertificate() {
        return { serial: renewer.current.serial, notAfter: renewer.current.identity.notAfter };
      },
      get deviceCaCerts() {
        return trust.deviceCaCerts;
      },
      setDeviceTrust: (deviceCaCerts) => trust.setDeviceCas(deviceCaCerts),
      close: async () => {
        renewer.stop();
        follower.stop();
        clearInterval(sweep);
        await batchJobs.close();
        await mqtt.close();
        await app.close();
        await csrVerifier.close();
        revocation.close();
        await store.audit.append({ category: 'system', type: 'hub.stop', result: 'success', actor: 'operator', source: 'cli' });
        await store.close();
        release();
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}

/** The issuance policy of batch certificates: the enrollment policy of the same config. */
function batchPolicy(c: HubConfig) {
  return {
    allowedKeyAlgorithms: c.allowedDeviceKeys as KeyAlgorithm[], minRsaBits: c.minRsaBits,
    defaultValidityMs: c.deviceCertValidityDays * 86_400_000, crlUrl: `${c.publicUrl}/crl`, ocspUrl: `${c.publicUrl}/ocsp`,
  };
}

export type { HubPki };
