/**
 * The hub's live TLS trust: its current server identity (one certificate for the HTTPS and the
 * MQTT listener) and the device CA certificates that client certificates are verified against.
 * Every consumer reads this one state; changing it never needs a restart (ADR 0017).
 *
 * Invariants:
 * - One state, many consumers: the HTTPS listener, the MQTT listener (`MqttBroker.reloadTrust`),
 *   EST re-enrollment and MQTT device authentication all see the same device CA set, through
 *   `deviceCaCerts` (read on every check, never copied at start-up).
 * - A change is all-or-nothing: every target first builds its secure context from the new state
 *   (`tls.createSecureContext` throws on a key that does not match its certificate, on bad PEM);
 *   only when all of them succeeded is the state replaced and applied to every target.
 * - Applying is `server.setSecureContext`: new handshakes only; established connections keep the
 *   context they were made with. The new context has fresh session-ticket keys, so no session
 *   resumed from before the change skips the new certificate or the new client trust
 *   (RFC 8446 §2.2: a resumed handshake carries no Certificate).
 * - No secure context gets a `crl`: a CRL there would be a snapshot from when it was built.
 *   Revocation is decided per connection from the store and the live revocation marks
 *   (mqtt/device-auth.ts, provisioning/reenroll), so it is always the live state.
 * - The device CA set is never empty and holds only CA certificates (RFC 5280 §4.2.1.9).
 */
import type { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { FleetkeyError } from '@fleetkey/protocol';
import type { TlsServerIdentity } from '../pki/bootstrap.js';

export interface TrustState {
  /** The hub's TLS server key and chain (leaf then root), shared by both listeners. */
  readonly server: TlsServerIdentity;
  /** Device CA certificates whose leaves may authenticate (MQTT, EST re-enrollment). */
  readonly deviceCaCerts: readonly X509Certificate[];
  /** PEM hub root: the self-signed anchor OpenSSL needs above the hub's own device CAs. */
  readonly rootPem: string;
}

/** One listener (or other consumer) that follows the trust state. */
export interface TrustTarget {
  readonly name: string;
  /** The secure-context options this target would use for `state` (validated before apply). */
  contextOptions(state: TrustState): SecureContextOptions;
  /** Switches the target to `state`; called only after every target's options were validated. */
  apply(state: TrustState): void;
}

/** Concatenated PEM of the device CA certificates. */
export function deviceCaPem(state: TrustState): string {
  return state.deviceCaCerts.map((c) => c.toString()).join('');
}

function checkDeviceCas(certs: readonly X509Certificate[]): void {
  if (certs.length === 0) throw new FleetkeyError('CONFIG_INVALID', { details: { setting: 'deviceCaCerts', problem: 'empty' } });
  for (const c of certs) {
    if (!c.ca) throw new FleetkeyError('CONFIG_INVALID', { details: { setting: 'deviceCaCerts', problem: `not a CA certificate: ${c.serialNumber}` } });
  }
}

export class LiveTrust {
  #state: TrustState;
  readonly #targets: TrustTarget[] = [];

  constructor(initial: TrustState) {
    checkDeviceCas(initial.deviceCaCerts);
    this.#state = initial;
  }

  get state(): TrustState {
    return this.#state;
  }

  /** The current device CA set; consumers call this on every verification. */
  get deviceCaCerts(): readonly X509Certificate[] {
    return this.#state.deviceCaCerts;
  }

  /** Adds a target that already runs with the current state (its listener was built from it). */
  attach(target: TrustTarget): void {
    this.#targets.push(target);
  }

  /** A renewed hub TLS identity for new handshakes on every listener. */
  setServerIdentity(server: TlsServerIdentity): void {
    this.#change({ ...this.#state, server });
  }

  /** A new device CA verification set (new, cross-signed or imported CA; a retired one). */
  setDeviceCas(deviceCaCerts: readonly X509Certificate[]): void {
    checkDeviceCas(deviceCaCerts);
    this.#change({ ...this.#state, deviceCaCerts: Object.freeze([...deviceCaCerts]) });
  }

  /** Server identity, device CA set and roots together, all-or-nothing (a root rotation, ADR 0021). */
  replace(next: TrustState): void {
    checkDeviceCas(next.deviceCaCerts);
    this.#change({ ...next, deviceCaCerts: Object.freeze([...next.deviceCaCerts]) });
  }

  #change(next: TrustState): void {
    for (const t of this.#targets) {
      try {
        createSecureContext(t.contextOptions(next));
      } catch (cause) {
        throw new FleetkeyError('CONFIG_INVALID', { cause, details: { setting: 'tls', problem: `unusable for ${t.name}` } });
      }
    }
    this.#state = next;
    for (const t of this.#targets) t.apply(next);
  }
}
