/**
 * The MQTT listener's TLS: mutual TLS only, one secure context per listener.
 *
 * Invariants (checklist row 26; RFC 9325 §4.1, §4.2):
 * - TLS 1.2 or 1.3 only; TLS 1.2 suites are ECDHE (forward secrecy) with AEAD only; TLS 1.3 suites
 *   are all AEAD. No renegotiation-era or CBC/RSA-kex suites.
 * - A client certificate is required and must chain to the device CA (`requestCert`,
 *   `rejectUnauthorized`); the hub re-verifies the issuer itself (device-auth.ts).
 * - The secure context is built once from these options (Node keeps one per server) and swapped
 *   whole by `server.setSecureContext` on a trust or certificate reload; open connections keep
 *   theirs. There is no plaintext listener.
 * - No stateless session tickets (SSL_OP_NO_TICKET, ADR 0023): devices never resume (the SDK
 *   makes a full handshake per session) and building each ticket re-decoded the client certificate
 *   inside OpenSSL, ~19 % of the server's handshake CPU. With the option OpenSSL 3 still sends
 *   TLS 1.3 tickets, but stateful ones whose sessions Node does not cache (no 'newSession'
 *   listener), so no session can be resumed and nothing is kept per ticket.
 */
import { constants } from 'node:crypto';
import { createSecureContext, createServer, type SecureContext, type SecureContextOptions, type Server, type TlsOptions } from 'node:tls';

/** TLS 1.2 AEAD + ECDHE suites, strongest first (TLS 1.3 suites are Node's defaults, all AEAD). */
export const MQTT_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export interface MqttTlsMaterial {
  /** PEM private key of the hub TLS certificate. */
  readonly keyPem: string;
  /** PEM leaf then chain. */
  readonly chainPem: string;
  /**
   * PEM device CA certificate(s), the trust anchors for client certificates: chains end at a
   * device CA (`allowPartialTrustChain`), so the root's signature on the device CA — a P-384
   * verification, ~40 % of the handshake's CPU — is not re-checked on every connection (ADR 0032).
   * device-auth.ts still insists on a device CA of the live trust list as the leaf's issuer.
   */
  readonly clientCaPem: string;
}

export function secureContextOptions(m: MqttTlsMaterial): SecureContextOptions {
  return {
    key: m.keyPem, cert: m.chainPem, ca: m.clientCaPem,
    minVersion: 'TLSv1.2', ciphers: MQTT_TLS12_CIPHERS, honorCipherOrder: true, ecdhCurve: 'X25519:P-256:P-384',
    secureOptions: constants.SSL_OP_NO_TICKET,
    // Node 20.18+: X509_V_FLAG_PARTIAL_CHAIN, chains may end at a trusted device CA (ADR 0032).
    allowPartialTrustChain: true,
  } as SecureContextOptions;
}

/**
 * `tls.Server` builds its context from a fixed list of options and drops `allowPartialTrustChain`
 * (so does `setSecureContext`); only `tls.createSecureContext` honours it. The server hands
 * `_sharedCreds` to every new TLSSocket, so the context is installed there (ADR 0032). Without
 * that internal (another Node), the server keeps its own context: no partial chains, and device
 * chains then fail closed (the root is not among the anchors).
 */
function installContext(server: Server, m: MqttTlsMaterial): void {
  const internal = server as unknown as { _sharedCreds?: SecureContext };
  if (internal._sharedCreds === undefined) {
    server.setSecureContext(secureContextOptions(m));
    return;
  }
  internal._sharedCreds = createSecureContext(secureContextOptions(m));
}

/** Throws at start-up (never per connection) when the material is not usable. */
export function createMqttTlsServer(m: MqttTlsMaterial, handshakeTimeoutMs: number): Server {
  const options: TlsOptions = {
    ...secureContextOptions(m),
    requestCert: true, rejectUnauthorized: true, handshakeTimeout: handshakeTimeoutMs,
  };
  const server = createServer(options);
  installContext(server, m);
  return server;
}

/** Swaps the listener's secure context (new connections only); throws on unusable material. */
export function reloadTls(server: Server, m: MqttTlsMaterial): void {
  installContext(server, m);
}
