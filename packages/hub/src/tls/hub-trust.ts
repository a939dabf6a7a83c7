/**
 * Wires the live trust (live-trust.ts) and the certificate renewal (renewal.ts) to the hub's two
 * listeners, its audit log and its logger. hub.ts calls `liveTrustOf` before the listeners exist
 * (they are built from its state) and `startTrustFollowers` once both listen.
 *
 * Invariants:
 * - The HTTPS listener gets the device CA set and the hub root as its client CA list (EST
 *   re-enrollment; the listener does not reject, reenroll verifies); the MQTT listener gets the device CA set and
 *   the hub root above it (tls.ts), and `reloadTrust` also hands the set to device-auth.ts.
 * - Every renewal leaves one audit record (`system`/`tls.renew`, success or failure) with the old
 *   and new serials; a failure is also an error log line, repeated at every retry.
 */
import type { X509Certificate } from 'node:crypto';
import { Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import { FleetkeyError, toPem, type Clock } from '@fleetkey/protocol';
import type { HubConfig } from '../config/load.js';
import { httpsContextOptions, type HttpTls } from '../http/app.js';
import type { MqttBroker, MqttTlsMaterial } from '../mqtt/index.js';
import { secureContextOptions } from '../mqtt/tls.js';
import { issueTlsServerIdentity, type HubPki, type TlsServerIdentity } from '../pki/bootstrap.js';
import type { Store } from '../storage/types.js';
import { LiveTrust, deviceCaPem, type TrustState, type TrustTarget } from './live-trust.js';
import { TlsRenewer, servedCertificate, type IntervalTimers, type ServedCertificate } from './renewal.js';

export function mqttTlsMaterial(s: TrustState): MqttTlsMaterial {
  // Device CAs only: client chains end there (partial chains, ADR 0032); the root, which also
  // signs the hub's own serverAuth certificates, is no client-certificate anchor.
  return { keyPem: s.server.keyPem, chainPem: s.server.chainPem, clientCaPem: deviceCaPem(s) };
}

export function httpTlsOf(s: TrustState): HttpTls {
  // The root above the device CAs, as on MQTT, so `socket.authorized` is the TLS stack's verdict
  // on a client certificate (the renewal proof route reads it; ADR 0025).
  return { key: s.server.keyPem, cert: s.server.chainPem, ca: deviceCaPem(s) + s.rootPem };
}

export function liveTrustOf(pki: HubPki, server: TlsServerIdentity, deviceCaCerts: readonly X509Certificate[]): LiveTrust {
  return new LiveTrust({ server, deviceCaCerts, rootPem: toPem('CERTIFICATE', pki.root.certificate) });
}

/** The listener under fastify, as the TLS server it must be (the hub never serves plain HTTP). */
export function tlsServerOf(server: unknown): TlsServer {
  if (server instanceof TlsServer) return server;
  throw new FleetkeyError('INTERNAL', { cause: new Error('the API listener is not a TLS server') });
}

function httpsTarget(server: TlsServer): TrustTarget {
  return {
    name: 'https',
    contextOptions: (s) => httpsContextOptions(httpTlsOf(s)),
    apply: (s) => server.setSecureContext(httpsContextOptions(httpTlsOf(s))),
  };
}

function mqttTarget(broker: MqttBroker): TrustTarget {
  return {
    name: 'mqtt',
    contextOptions: (s) => secureContextOptions(mqttTlsMaterial(s)),
    apply: (s) => broker.reloadTrust(mqttTlsMaterial(s), s.deviceCaCerts),
  };
}

export interface TrustFollowerDeps {
  readonly trust: LiveTrust;
  readonly https: TlsServer;
  readonly mqtt: MqttBroker;
  /** The PKI in service now (it changes at a root rotation, ADR 0021). */
  readonly pki: () => HubPki;
  readonly config: HubConfig;
  readonly clock: Clock;
  readonly timers?: IntervalTimers;
  readonly store: Store;
  readonly logger: Logger;
  /** Clock time at which the certificate in `trust` was issued. */
  readonly issuedAt: number;
}

function auditRenewal(d: TrustFollowerDeps, result: 'success' | 'failure', previous: ServedCertificate, next?: ServedCertificate): Promise<void> {
  return d.store.audit.append({
    category: 'system', type: 'tls.renew', result, actor: 'hub', source: 'hub:tls-renewal', code: result === 'failure' ? 'INTERNAL' : null,
    details: { previousSerial: previous.serial, serial: next?.serial ?? null, notAfter: (next ?? previous).identity.notAfter.toISOString() },
  }).then(() => undefined, (err: unknown) => d.logger.error({ err }, 'tls.renew audit record could not be written'));
}

/** Attaches both listeners to the live trust and starts the renewal tick. */
export function startTrustFollowers(d: TrustFollowerDeps): TlsRenewer {
  d.trust.attach(httpsTarget(d.https));
  d.trust.attach(mqttTarget(d.mqtt));
  const { config } = d;
  const renewer = new TlsRenewer({
    clock: d.clock, ...(d.timers !== undefined ? { timers: d.timers } : {}),
    checkIntervalMs: config.tlsRenewCheckSeconds * 1000, renewAtFraction: config.tlsRenewAtPercent / 100,
    issue: () => issueTlsServerIdentity(d.pki(), { dnsNames: config.tlsDnsNames, ips: config.tlsIps, validityMs: config.tlsCertValidityHours * 3600_000, clock: d.clock }),
    apply: (identity) => d.trust.setServerIdentity(identity),
    onRenewed: async (next, previous) => {
      d.logger.info({ serial: next.serial, previousSerial: previous.serial, notAfter: next.identity.notAfter }, 'hub TLS certificate renewed');
      await auditRenewal(d, 'success', previous, next);
    },
    onError: (err, current) => {
      d.logger.error({ err, serial: current.serial, notAfter: current.identity.notAfter }, 'hub TLS certificate renewal failed; retrying at the next check');
      void auditRenewal(d, 'failure', current);
    },
  }, servedCertificate(d.trust.state.server, d.issuedAt));
  renewer.start();
  return renewer;
}
