/**
 * connect(): the device's MQTT connection to the hub from its state directory.
 *
 * Steps: load the identity → open the key (TLS capability required) → build the client TLS
 * context once (ADR 0008) → open the outbox → start the reconnect loop.
 *
 * Invariants:
 * - Trust comes from the stored trust bundle's active pins, else identity.json's (ADR 0022); a
 *   hub chain to an unpinned root makes the client catch up through the signed bundles before it
 *   retries once. chain.pem is offered as known issuers (the pinned root included), so a hub that
 *   omits its root still verifies (ADR 0006).
 * - The MQTT host defaults to the hub URL's host, the port to 8883 (IANA "secure-mqtt").
 * - The client certificate sent is the device leaf plus its device CA (not the root).
 * - Nothing is sent before connectPinned succeeded; connect() itself does no network I/O.
 */
import { createSecureContext, type SecureContext } from 'node:tls';
import { FleetkeyError, systemClock, toPem, type Clock } from '@fleetkey/protocol';
import { parseHubUrl } from '../enroll/est-client.js';
import { openKeyStore } from '../keystore/registry.js';
import { hasTlsKeyCapability, type KeyStore } from '../keystore/types.js';
import { FileOutbox, outboxDirectory, type OutboxOptions } from '../outbox/outbox.js';
import { adoptBundle, readBundleDevice } from '../state/bundle.js';
import { loadIdentity, type StoredIdentity } from '../state/identity.js';
import { PinSet } from '../trust/pin-set.js';
import { openFollower } from '../trust/follow.js';
import { Backoff, systemTimers, type BackoffOptions, type Timers } from './backoff.js';
import { DeviceClient, type ClientIdentity } from './client.js';

export const DEFAULT_MQTT_PORT = 8883;

export interface ConnectOptions {
  readonly stateDir: string;
  /** The hub's MQTT listener; defaults: a bundle's device.json `mqtt`, else the hub URL's host, port 8883. */
  readonly mqttHost?: string;
  readonly mqttPort?: number;
  /** Defaults to the kind recorded in identity.json. */
  readonly keyStore?: KeyStore;
  /** Outbox limits and overflow policy (docs/device-sdk.md, ADR 0013). */
  readonly outbox?: Omit<OutboxOptions, 'directory' | 'clock' | 'onDrop'>;
  readonly backoff?: BackoffOptions;
  /** TLS handshake and CONNACK timeout each; default 10 s. */
  readonly timeoutMs?: number;
  /** Default 60 s. */
  readonly keepaliveSeconds?: number;
  /** Unacknowledged QoS 1 PUBLISHes per session; default 32. */
  readonly maxInflight?: number;
  /** MQTT CleanSession; default true (subscriptions are renewed on every connect). */
  readonly cleanSession?: boolean;
  readonly clock?: Clock;
  readonly timers?: Timers;
  /** Passphrase of an encrypted key.pem when `stateDir` is an unpacked bundle folder (state/bundle.ts). */
  readonly bundlePassphrase?: string;
}

async function tlsContext(stateDir: string, stored: StoredIdentity, keyStore: KeyStore | undefined): Promise<SecureContext> {
  const { identity } = stored;
  const store = keyStore ?? openKeyStore(identity.keyStore.kind, { stateDir, locator: identity.keyStore.locator });
  const key = await store.open(identity.keyStore.label);
  if (!hasTlsKeyCapability(key)) {
    throw new FleetkeyError('KEYSTORE_ERROR', { cause: new Error(`key store kind '${store.kind}' cannot be used for mutual TLS`) });
  }
  const cert = [stored.certificateDer, ...stored.chainDers.slice(0, -1)].map((der) => toPem('CERTIFICATE', der)).join('');
  try {
    return createSecureContext({ ...key.tlsKeyOptions(), cert, minVersion: 'TLSv1.2' });
  } catch (cause) {
    throw new FleetkeyError('KEYSTORE_ERROR', { cause });
  }
}

/** The TLS context and known issuers of the identity stored now (after a renewal: the new one). */
export async function loadClientIdentity(stateDir: string, keyStore?: KeyStore): Promise<ClientIdentity> {
  const stored = await loadIdentity(stateDir);
  return { secureContext: await tlsContext(stateDir, stored, keyStore), knownCertificates: stored.chainDers };
}

function positive(value: number | undefined, fallback: number, field: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) throw new FleetkeyError('VALIDATION_FAILED', { details: { field } });
  return v;
}

/**
 * Connects this device to the hub's MQTT broker over pinned mutual TLS and starts delivering
 * its outbox. Resolves at once (the connection is made in the background, with backoff).
 *
 * @example
 * import { connect } from '@fleetkey/device';
 * const client = await connect({ stateDir: '/var/lib/fleetkey' });
 * client.on('command', (c) => console.log(c.name, c.payload.toString()));
 * await client.publish(`devices/${client.deviceId}/telemetry`, JSON.stringify({ t: 21.5 }));
 * const error = await client.stopped; // DEVICE_REVOKED when the hub refused the certificate
 */
export async function connect(options: ConnectOptions): Promise<DeviceClient> {
  // An unpacked bundle folder becomes a state directory on first use (ADR 0016).
  await adoptBundle({ stateDir: options.stateDir, ...(options.bundlePassphrase === undefined ? {} : { passphrase: options.bundlePassphrase }), ...(options.clock === undefined ? {} : { clock: options.clock }) });
  const stored = await loadIdentity(options.stateDir);
  const secureContext = await tlsContext(options.stateDir, stored, options.keyStore);
  const hub = parseHubUrl(stored.identity.hubUrl);
  const bundled = (await readBundleDevice(options.stateDir).catch(() => undefined))?.mqtt;
  const port = positive(options.mqttPort ?? bundled?.port, DEFAULT_MQTT_PORT, 'mqttPort');
  if (port > 65535) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'mqttPort' } });
  const clock = options.clock ?? systemClock;
  const timeoutMs = positive(options.timeoutMs, 10_000, 'timeoutMs');
  const trust = await openFollower({ stateDir: options.stateDir, hubUrl: stored.identity.hubUrl, pins: stored.identity.pins, clock, timeoutMs });
  let client: DeviceClient | undefined;
  const outbox = await FileOutbox.open({ ...options.outbox, directory: outboxDirectory(options.stateDir), clock, onDrop: (m) => client?.notifyDropped(m) });
  client = new DeviceClient({
    deviceId: stored.identity.deviceId,
    host: options.mqttHost ?? bundled?.host ?? hub.host,
    port,
    pins: PinSet.parse(stored.identity.pins),
    trust,
    knownCertificates: stored.chainDers,
    secureContext,
    outbox,
    backoff: new Backoff(options.backoff),
    clock,
    timers: options.timers ?? systemTimers,
    timeoutMs,
    keepaliveSeconds: positive(options.keepaliveSeconds, 60, 'keepaliveSeconds'),
    maxInflight: positive(options.maxInflight, 32, 'maxInflight'),
    cleanSession: options.cleanSession ?? true,
  });
  client.start();
  return client;
}
