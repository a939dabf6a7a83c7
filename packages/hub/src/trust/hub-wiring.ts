/**
 * Wires the root follower (follower.ts) into a running hub: how a new trust material reaches the
 * listeners (LiveTrust.replace, all-or-nothing), the TLS renewer, EST cacerts and MQTT.
 *
 * Invariants:
 * - Apply order: issue a TLS identity from the new current root → replace server identity,
 *   device CA set and root anchors in one LiveTrust change → the renewer adopts that identity →
 *   the retained `$fleetkey/trust` message is the new bundle → MQTT sessions served under a root
 *   no longer in service are closed, spread over `retiredRootSessionSpreadSeconds` (ADR 0026).
 *   A failure before the replace changes nothing that is served.
 * - Every applied change is logged and audited (`system`/`trust.apply`, actor `hub`).
 */
import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { fromPemAll, type Clock } from '@fleetkey/protocol';
import type { HubConfig } from '../config/load.js';
import type { MqttBroker } from '../mqtt/index.js';
import { issueTlsServerIdentity } from '../pki/bootstrap.js';
import type { LiveTrust } from '../tls/live-trust.js';
import { servedCertificate, type IntervalTimers, type TlsRenewer } from '../tls/renewal.js';
import type { TrustContext } from './bundles.js';
import { RootFollower } from './follower.js';
import type { TrustMaterial } from './material.js';

/** The MQTT topic the hub's latest trust bundle is retained on (DESIGN flow 5). */
export const TRUST_TOPIC = '$fleetkey/trust';

export interface RootFollowerDeps {
  readonly context: TrustContext;
  readonly config: HubConfig;
  readonly clock: Clock;
  readonly timers: IntervalTimers;
  readonly trust: LiveTrust;
  readonly renewer: TlsRenewer;
  readonly mqtt: MqttBroker;
  readonly logger: Logger;
  /** Device CAs that are not part of the trust material (factory kit sub-CAs) and stay trusted. */
  readonly extraDeviceCas?: () => readonly X509Certificate[];
  /** Called with each material once it is in service (hub.ts keeps its `material`). */
  readonly onApplied: (material: TrustMaterial) => void;
}

/** Keeps a session whose served TLS certificate was issued by a root still in service (current or overlap). */
function servedUnder(m: TrustMaterial): (served: X509Certificate) => boolean {
  const roots = fromPemAll(m.rootPem, 'CERTIFICATE').map((der) => new X509Certificate(der));
  return (served) => roots.some((root) => served.checkIssued(root) && served.verify(root.publicKey));
}

async function applyMaterial(d: RootFollowerDeps, m: TrustMaterial): Promise<void> {
  const { config, clock } = d;
  const identity = await issueTlsServerIdentity(m.pki, { dnsNames: config.tlsDnsNames, ips: config.tlsIps, validityMs: config.tlsCertValidityHours * 3600_000, clock });
  d.trust.replace({ server: identity, deviceCaCerts: [...m.deviceCaCerts, ...(d.extraDeviceCas?.() ?? [])], rootPem: m.rootPem });
  d.renewer.adopt(servedCertificate(identity, clock.now()));
  d.onApplied(m);
  await d.mqtt.publishRetained(TRUST_TOPIC, m.bundle.bytes);
  const sessionsMoved = d.mqtt.moveSessions(servedUnder(m), config.retiredRootSessionSpreadSeconds * 1000);
  d.logger.info({ version: m.bundle.content.version, pin: m.pki.pin, chain: (m.pki.tlsChainTail ?? []).length, sessionsMoved }, 'hub trust bundle applied');
  await d.context.store.audit.append({
    category: 'system', type: 'trust.apply', result: 'success', actor: 'hub', source: 'hub:trust',
    details: { version: m.bundle.content.version, pin: m.pki.pin, sessionsMoved },
  });
}

/** Publishes the current bundle on MQTT and starts following the store. */
export async function startRootFollower(d: RootFollowerDeps, initial: TrustMaterial): Promise<RootFollower> {
  await d.mqtt.publishRetained(TRUST_TOPIC, initial.bundle.bytes);
  const follower = new RootFollower({
    context: d.context, timers: d.timers, checkIntervalMs: d.config.tlsRenewCheckSeconds * 1000,
    apply: (m) => applyMaterial(d, m),
    onError: (err) => d.logger.error({ err }, 'applying the trust bundle failed; retrying at the next check'),
  }, initial);
  follower.start();
  return follower;
}
