/**
 * A TLS connection to the hub that is trusted only through the pin set.
 *
 * Invariants (ADR 0006):
 * - The returned socket has passed verifyPinnedPath for purpose `server`: its presented chain
 *   leads by signatures from a serverAuth leaf to a certificate whose SPKI is pinned, every
 *   certificate is in its validity and every issuer is a CA. There is no hostname check: the
 *   pin is the identity, so the hub may be reached by IP, by any DNS name, or through NAT.
 * - The TLS handshake itself proves that the server holds the leaf's private key
 *   (CertificateVerify, RFC 8446 §4.4.3); Node checks it even with rejectUnauthorized false.
 * - Nothing is written to the socket by this module, and the socket is handed out only after
 *   verification: a claim token can never reach an unpinned server. On failure it is destroyed.
 * - Chain failures are PIN_MISMATCH (the cause says why, for logs); connect errors, handshake
 *   errors and timeouts are HUB_UNREACHABLE.
 * - Only Node's own CA store is bypassed (rejectUnauthorized false); the decision is ours alone,
 *   never OpenSSL's default trust, and checkServerIdentity is not relied upon.
 */
import { isIP } from 'node:net';
import { connect, type ConnectionOptions, type DetailedPeerCertificate, type SecureContext, type TLSSocket } from 'node:tls';
import { FleetkeyError, systemClock, type Clock } from '@fleetkey/protocol';
import type { TlsKeyOptions } from '../keystore/types.js';
import { PathError, verifyPinnedPath, type PinnedPath } from './pinned-path.js';
import type { PinSet } from './pin-set.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const MAX_PRESENTED_CERTIFICATES = 10;

export interface ConnectPinnedOptions {
  readonly host: string;
  readonly port: number;
  readonly pins: PinSet;
  /** For mutual TLS: the device key (from a key store's TLS capability)… */
  readonly clientKey?: TlsKeyOptions;
  /** …and its certificate PEM (optionally followed by the device CA). */
  readonly clientCert?: string | Buffer;
  /** A client context built once per identity (ADR 0008); replaces clientKey/clientCert. */
  readonly secureContext?: SecureContext;
  /** ALPN protocol ids (RFC 7301); default `http/1.1`, MQTT uses `mqtt`. */
  readonly alpnProtocols?: readonly string[];
  /** Issuer certificates the device already holds (chain.pem), in case the hub omits them. */
  readonly knownCertificates?: readonly Uint8Array[];
  readonly timeoutMs?: number;
  readonly clock?: Clock;
}

/** The DER certificates the server presented, leaf first (bounded, loop-safe). */
export function presentedChain(socket: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  let current: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (current?.raw !== undefined && out.length < MAX_PRESENTED_CERTIFICATES) {
    out.push(current.raw);
    const next: DetailedPeerCertificate | undefined = current.issuerCertificate;
    if (next === undefined || next === current || next.raw?.equals(current.raw)) break;
    current = next;
  }
  return out;
}

function tlsOptions(options: ConnectPinnedOptions): ConnectionOptions {
  return {
    host: options.host,
    port: options.port,
    // SNI only for names: RFC 6066 §3 forbids IP literals in server_name.
    ...(isIP(options.host) === 0 ? { servername: options.host } : {}),
    rejectUnauthorized: false, // our pin check below is the only trust decision
    minVersion: 'TLSv1.2',
    ALPNProtocols: [...(options.alpnProtocols ?? ['http/1.1'])],
    ...(options.secureContext === undefined ? (options.clientKey ?? {}) : { secureContext: options.secureContext }),
    ...(options.clientCert === undefined || options.secureContext !== undefined ? {} : { cert: options.clientCert }),
  };
}

function verifyPeer(socket: TLSSocket, options: ConnectPinnedOptions): PinnedPath {
  try {
    return verifyPinnedPath({
      presented: presentedChain(socket),
      known: options.knownCertificates ?? [],
      pins: options.pins,
      clock: options.clock ?? systemClock,
      purpose: 'server',
    });
  } catch (err) {
    throw new FleetkeyError('PIN_MISMATCH', { cause: err instanceof PathError ? err : new PathError('path check failed', { cause: err }) });
  }
}

/**
 * Connects to the hub over TLS and resolves only after the pin check succeeded.
 *
 * @example
 * const socket = await connectPinned({ host: 'hub.local', port: 8443, pins: PinSet.parse(pin) });
 */
export function connectPinned(options: ConnectPinnedOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect(tlsOptions(options));
    const settle = (err: FleetkeyError | undefined, path?: PinnedPath): void => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      socket.removeListener('secureConnect', onSecureConnect);
      if (err !== undefined || path === undefined) {
        socket.destroy();
        reject(err ?? new FleetkeyError('INTERNAL'));
      } else resolve(socket);
    };
    const onError = (cause: Error): void => settle(new FleetkeyError('HUB_UNREACHABLE', { cause }));
    const onSecureConnect = (): void => {
      try {
        settle(undefined, verifyPeer(socket, options));
      } catch (err) {
        settle(err instanceof FleetkeyError ? err : new FleetkeyError('PIN_MISMATCH', { cause: err }));
      }
    };
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const timer = setTimeout(() => settle(new FleetkeyError('HUB_UNREACHABLE', { cause: new Error(`no verified TLS connection within ${timeoutMs} ms`) })), timeoutMs);
    socket.once('error', onError);
    socket.once('secureConnect', onSecureConnect);
  });
}
