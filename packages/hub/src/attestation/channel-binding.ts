/**
 * The TLS channel binding of an attestation request: RFC 9266 `tls-exporter` — the TLS 1.3
 * exporter (RFC 8446 §7.5) with label "EXPORTER-Channel-Binding", no context, 32 bytes.
 *
 * Invariants:
 * - Only TLS 1.3 connections have a binding (RFC 9266 §3: tls-exporter is defined for TLS 1.3;
 *   TLS 1.2 without extended master secret is unsafe); anything else is refused.
 * - The CSR carries the binding base64-encoded in its challengePassword (RFC 7030 §3.5), so the
 *   key's own signature binds the CSR to this connection; evidence made on another connection
 *   (a relay) carries that connection's value and fails the comparison.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

export const EXPORTER_LABEL = 'EXPORTER-Channel-Binding';
export const EXPORTER_LENGTH = 32;

/** The binding of this connection, or undefined when it has none (not TLS 1.3). */
export function channelBindingOf(socket: Socket): Buffer | undefined {
  const tls = socket as TLSSocket;
  if (typeof tls.getProtocol !== 'function' || tls.getProtocol() !== 'TLSv1.3') return undefined;
  // RFC 8446 §7.5: in TLS 1.3 "no context" and an empty context give the same exporter.
  return tls.exportKeyingMaterial(EXPORTER_LENGTH, EXPORTER_LABEL, Buffer.alloc(0));
}

/** True when `challengePassword` is exactly base64(binding). */
export function csrCarriesBinding(challengePassword: string | undefined, binding: Buffer): boolean {
  if (challengePassword === undefined) return false;
  const expected = Buffer.from(binding.toString('base64'), 'ascii');
  const actual = Buffer.from(challengePassword, 'utf8');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
