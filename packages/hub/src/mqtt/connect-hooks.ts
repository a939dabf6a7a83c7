/**
 * CONNECT handling: aedes' `preConnect` and `authenticate` hooks.
 *
 * Invariants:
 * - The identity is the verified client certificate's device id (device-auth.ts); username and
 *   password are ignored.
 * - The client id must equal that device id, else CONNACK 2 "identifier rejected" (MQTT 3.1.1
 *   §3.2.2.3): a device can never use, and so never take over [MQTT-3.1.4-2], another device's
 *   session. An empty client id gets a random id from aedes and is refused the same way.
 * - A certificate refusal is CONNACK 5 "not authorised" and the connection is closed
 *   [MQTT-3.2.2-5]; a storage failure is CONNACK 3 "server unavailable".
 * - The hub keeps no session state across connections (ADR 0012): CleanSession is treated as 1
 *   (CONNACK Session Present is 0 [MQTT-3.2.2-1]), Will messages are not stored, and a keep-alive
 *   of 0 or above the cap is replaced by the cap (the server may close idle clients, §3.1.2.10).
 * - A second connection of the same device replaces the first (standard takeover) and leaves an
 *   audit record.
 */
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { AedesOptions, AuthErrorCode, AuthenticateError, Client, ConnectPacket } from 'aedes';
import { sourceOf, type BrokerContext } from './context.js';

type ConnectHooks = Required<Pick<AedesOptions, 'preConnect' | 'authenticate'>>;

function refusal(returnCode: 2 | 3 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: returnCode as AuthErrorCode });
}

/**
 * The verified peer certificate as the X509 object OpenSSL already decoded in the handshake:
 * `getPeerX509Certificate` wraps it without a copy, where `getPeerCertificate().raw` built a
 * legacy object (three fingerprints, every name field) and the DER was then parsed again (ADR 0023).
 */
function peerCertificate(client: Client): X509Certificate | undefined {
  const socket = client.conn as TLSSocket;
  if (typeof socket.getPeerX509Certificate !== 'function' || !socket.authorized) return undefined;
  return socket.getPeerX509Certificate();
}

export function normaliseConnect(packet: ConnectPacket, keepAliveMaxSeconds: number): void {
  packet.clean = true;
  delete packet.will;
  if (packet.keepalive === undefined || packet.keepalive === 0 || packet.keepalive > keepAliveMaxSeconds) packet.keepalive = keepAliveMaxSeconds;
}

async function authenticateDevice(ctx: BrokerContext, client: Client): Promise<AuthenticateError | null> {
  const source = sourceOf(client);
  const result = await ctx.auth.authenticate(peerCertificate(client));
  if (!result.ok) {
    await ctx.audit({ type: 'connect', result: 'failure', code: 'CERT_INVALID', deviceId: result.deviceId, tenantId: result.tenantId, source, details: { reason: result.reason } });
    return refusal(5, 'not authorised');
  }
  const { deviceId, tenantId } = result.identity;
  if (client.id !== deviceId) {
    // §3.2.2.3 return code 2: the client identifier is not allowed [MQTT-3.1.4-2 takeover is per id]
    await ctx.audit({ type: 'connect', result: 'failure', code: 'FORBIDDEN', deviceId, tenantId, source, details: { reason: 'client id differs from the certificate device id', clientIdLength: client.id.length } });
    return refusal(2, 'identifier rejected');
  }
  if (ctx.sessions.live(deviceId) !== undefined) {
    await ctx.audit({ type: 'session.takeover', result: 'success', deviceId, tenantId, source, details: { reason: 'a new connection with the same certificate identity replaces the old one' } });
  }
  ctx.sessions.attach(client, result.identity);
  ctx.logger.debug({ deviceId, source }, 'mqtt device authenticated');
  return null;
}

export function connectHooks(ctx: BrokerContext): ConnectHooks {
  return {
    preConnect: (_client, packet, callback) => {
      normaliseConnect(packet, ctx.limits.keepAliveMaxSeconds);
      callback(null, true);
    },
    authenticate: (client, _username, _password, done) => {
      authenticateDevice(ctx, client).then(
        (err) => (err === null ? done(null, true) : done(err, false)),
        (err: unknown) => {
          ctx.logger.error({ err }, 'mqtt authentication failed to run');
          done(refusal(3, 'server unavailable'), false);
        },
      );
    },
  };
}
