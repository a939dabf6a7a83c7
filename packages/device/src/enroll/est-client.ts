/**
 * EST client (RFC 7030) for the fleetkey hub, over pinned TLS only.
 *
 * Invariants:
 * - Every request goes over a socket from connectPinned: the claim token (HTTP Basic password,
 *   RFC 7030 §3.2.3) is written only after the hub proved the pinned key.
 * - With a trust source (the device's TrustFollower), a chain to an unpinned root first makes
 *   the device catch up through the signed trust bundles and retry once (connect-following.ts,
 *   ADR 0026); the request is written only to a hub that proved a key pinned after that walk.
 * - The token appears only in the Authorization header: never in a URL, error, cause or log.
 * - simplereenroll (RFC 7030 §4.2.2) authenticates with the current certificate over mutual TLS
 *   and sends no token.
 * - Responses are certs-only PKCS#7 (RFC 7030 §4.1.3, §4.2.3) decoded to DER certificates; the
 *   caller checks what they mean (our key, path to the pin) — this module only moves bytes.
 */
import { decodeCertsOnly, FleetkeyError, systemClock, type Clock } from '@fleetkey/protocol';
import type { TlsKeyOptions } from '../keystore/types.js';
import { connectFollowing, fixedTrust, type TrustSource } from '../trust/connect-following.js';
import type { PinSet } from '../trust/pin-set.js';
import { requestOverSocket, type HttpRequest, type HttpResponse } from './http-over-socket.js';
import { basicAuthorization, checkClaimToken, MEDIA_PKCS10, MEDIA_PKCS7, pkcs7Body, toBase64Lines } from './est-wire.js';

const EST_PATH = '/.well-known/est';

export interface HubAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses `https://host[:port]` (nothing else: no user info, path, query or fragment). */
export function parseHubUrl(hubUrl: string): HubAddress {
  let url: URL;
  try {
    url = new URL(hubUrl);
  } catch (cause) {
    throw new FleetkeyError('VALIDATION_FAILED', { cause, details: { field: 'hubUrl' } });
  }
  const plain = url.username === '' && url.password === '' && (url.pathname === '/' || url.pathname === '') && url.search === '' && url.hash === '';
  if (url.protocol !== 'https:' || !plain) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'hubUrl' } });
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port: url.port === '' ? 443 : Number(url.port) };
}

export interface EstClientOptions {
  readonly hubUrl: string;
  readonly pins: PinSet;
  /** Follows the hub's trust bundles; its pins replace `pins` (ADR 0026). */
  readonly trust?: TrustSource;
  readonly knownCertificates?: readonly Uint8Array[];
  readonly timeoutMs?: number;
  readonly clock?: Clock;
}

/** The device's current identity, for simplereenroll over mutual TLS. */
export interface MutualTlsIdentity {
  readonly clientKey: TlsKeyOptions;
  readonly clientCert: string;
}

/**
 * @example
 * const est = new EstClient({ hubUrl: 'https://hub.local:8443', pins: PinSet.parse(pin) });
 * const chain = await est.getCaCerts();
 */
export class EstClient {
  readonly #options: EstClientOptions;
  readonly #hub: HubAddress;
  readonly #trust: TrustSource;

  constructor(options: EstClientOptions) {
    this.#options = options;
    this.#hub = parseHubUrl(options.hubUrl);
    this.#trust = options.trust ?? fixedTrust(options.pins);
  }

  /** The pins in use now (after a catch-up, the new ones): what issued certificates must reach. */
  get pins(): PinSet {
    return this.#trust.pins();
  }

  /** RFC 7030 §4.1: the CA certificates (device CA, then hub root), as DER. */
  async getCaCerts(): Promise<Buffer[]> {
    const response = await this.#send({ method: 'GET', path: `${EST_PATH}/cacerts`, headers: { accept: MEDIA_PKCS7 } });
    return certificates('cacerts', pkcs7Body('cacerts', response));
  }

  /**
   * RFC 7030 §4.2.1: enrolls `csrDer` with the claim token; returns the PKCS#7 certificates.
   * `keyProtection` (the store kind) is reported in `Fleetkey-Key-Protection` (ADR 0027; the hub
   * records it as device-reported, not verified).
   */
  async simpleEnroll(csrDer: Uint8Array, claimToken: string, keyProtection?: string): Promise<Buffer[]> {
    checkClaimToken(claimToken);
    const reported: Record<string, string> = keyProtection === undefined ? {} : { 'fleetkey-key-protection': keyProtection };
    const response = await this.#send(enrollRequest('simpleenroll', csrDer, { authorization: basicAuthorization(claimToken), ...reported }));
    return certificates('simpleenroll', pkcs7Body('simpleenroll', response, claimToken));
  }

  /** RFC 7030 §4.2.2: re-enrolls over mutual TLS with the current key and certificate. */
  async simpleReenroll(csrDer: Uint8Array, identity: MutualTlsIdentity): Promise<Buffer[]> {
    const response = await this.#send(enrollRequest('simplereenroll', csrDer, {}), identity);
    return certificates('simplereenroll', pkcs7Body('simplereenroll', response));
  }

  async #send(req: Omit<HttpRequest, 'host'>, identity?: MutualTlsIdentity): Promise<HttpResponse> {
    const socket = await connectFollowing({
      ...this.#hub,
      knownCertificates: this.#options.knownCertificates ?? [],
      timeoutMs: this.#options.timeoutMs,
      clock: this.#options.clock ?? systemClock,
      ...(identity === undefined ? {} : { clientKey: identity.clientKey, clientCert: identity.clientCert }),
    }, this.#trust);
    const host = this.#hub.host.includes(':') ? `[${this.#hub.host}]` : this.#hub.host;
    return requestOverSocket(socket, { ...req, host: `${host}:${this.#hub.port}`, timeoutMs: this.#options.timeoutMs });
  }
}

function enrollRequest(operation: string, csrDer: Uint8Array, headers: Record<string, string>): Omit<HttpRequest, 'host'> {
  return {
    method: 'POST',
    path: `${EST_PATH}/${operation}`,
    headers: { ...headers, 'content-type': MEDIA_PKCS10, 'content-transfer-encoding': 'base64', accept: MEDIA_PKCS7 },
    body: Buffer.from(toBase64Lines(csrDer), 'ascii'),
  };
}

function certificates(what: string, pkcs7Der: Buffer): Buffer[] {
  let certs: Buffer[];
  try {
    certs = decodeCertsOnly(pkcs7Der);
  } catch (cause) {
    throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error(`${what}: body is not a certs-only PKCS#7`, { cause }) });
  }
  if (certs.length === 0) throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause: new Error(`${what}: no certificate in the response`) });
  return certs;
}
