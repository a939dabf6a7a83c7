/**
 * What a failed connection attempt means for the reconnect loop: retry later, or stop.
 *
 * Invariants:
 * - The hub refusing this device's certificate — a TLS alert about the client certificate
 *   (RFC 8446 §6.2: bad_certificate, certificate_revoked, certificate_expired, unknown_ca,
 *   certificate_unknown, access_denied, certificate_required) or CONNACK return code 2, 4 or 5
 *   (MQTT 3.1.1 §3.2.2.3) — is DEVICE_REVOKED and stops the loop: retrying would only hammer the
 *   hub with a credential it already refused. The cause names the alert or return code.
 * - CONNACK 1 (protocol version) is HUB_PROTOCOL_ERROR and stops too: it can't fix itself.
 * - PIN_MISMATCH is retried with backoff (a captive portal or a transient interception must not
 *   strand a gateway), but it never lets a byte reach the unverified server (connectPinned).
 * - Everything else (TCP errors, timeouts, CONNACK 3, connection closed) is HUB_UNREACHABLE or
 *   kept as it is, and retried with backoff.
 */
import { FleetkeyError } from '@fleetkey/protocol';

export interface ConnectFailure {
  readonly error: FleetkeyError;
  /** False: stop reconnecting. */
  readonly retry: boolean;
}

const REFUSED_CERTIFICATE_ALERT = /ALERT_(BAD_CERTIFICATE|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED|UNKNOWN_CA|CERTIFICATE_UNKNOWN|ACCESS_DENIED|CERTIFICATE_REQUIRED|UNSUPPORTED_CERTIFICATE)$/;
const REFUSED_CERTIFICATE_TEXT = /alert (bad certificate|certificate revoked|certificate expired|unknown ca|certificate unknown|access denied|certificate required|unsupported certificate)/i;

/** The MQTT 3.1.1 CONNACK return code an MQTT.js error carries, if it is one. */
export function connackCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && Number.isInteger(code) && code >= 1 && code <= 5 ? code : undefined;
}

/** True if `err` (or a cause of it) is a TLS alert refusing our client certificate. */
export function isCertificateRefusal(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && REFUSED_CERTIFICATE_ALERT.test(code)) return true;
    if (REFUSED_CERTIFICATE_TEXT.test(e.message)) return true;
  }
  return false;
}

/**
 * Classifies why a connection attempt or session ended.
 *
 * @example
 * const { error, retry } = classifyFailure(err);
 * if (!retry) stop(error); // DEVICE_REVOKED, HUB_PROTOCOL_ERROR
 */
export function classifyFailure(err: unknown): ConnectFailure {
  if (isCertificateRefusal(err)) return { error: new FleetkeyError('DEVICE_REVOKED', { cause: err }), retry: false };
  const rc = connackCode(err);
  if (rc === 2 || rc === 4 || rc === 5) {
    return { error: new FleetkeyError('DEVICE_REVOKED', { cause: new Error(`CONNACK return code ${rc}`, { cause: err }) }), retry: false };
  }
  if (rc === 1) return { error: new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error('CONNACK return code 1 (unacceptable protocol version)', { cause: err }) }), retry: false };
  if (err instanceof FleetkeyError) return { error: err, retry: err.code === 'PIN_MISMATCH' || err.code === 'HUB_UNREACHABLE' || err.code === 'HUB_PROTOCOL_ERROR' };
  return { error: new FleetkeyError('HUB_UNREACHABLE', { cause: err }), retry: true };
}
