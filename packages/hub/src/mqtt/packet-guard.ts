/**
 * Checks of parsed MQTT 3.1.1 control packets that the parser (mqtt-packet) and aedes do not
 * make, run on every packet of a connection before aedes handles it. The frame guard
 * (frame-guard.ts) has already checked the framing; this guard checks the fields. Found by the
 * fuzz campaign (bench/mqtt/fuzz.mjs; tests in mqtt-packet-guard.test.ts, named after each attack).
 *
 * Invariants (a violation is a malformed packet: the connection is closed [MQTT-4.8.0-1]):
 * - CONNECT: the protocol name matches the level ("MQTT" for 4, "MQIsdp" for 3) [MQTT-3.1.2-1];
 *   an unsupported level still reaches aedes, which answers CONNACK 1 [MQTT-3.1.2-2]. Will QoS is
 *   not 3 [MQTT-3.1.2-14]; a password comes only with a user name [MQTT-3.1.2-22].
 * - PUBLISH with QoS > 0, SUBSCRIBE and UNSUBSCRIBE carry a non-zero packet identifier
 *   [MQTT-2.3.1-1]; SUBSCRIBE and UNSUBSCRIBE carry at least one filter [MQTT-3.8.3-3]
 *   [MQTT-3.10.3-2].
 * - Every UTF-8 string (client id, user name, will topic, topic names, filters) is well-formed
 *   and holds no U+0000 [MQTT-1.5.3-1] [MQTT-1.5.3-2]. The parser decodes ill-formed UTF-8 to
 *   U+FFFD, so U+FFFD counts as ill-formed (topic-policy.ts refuses it for the same reason).
 * - After the first violation the socket is destroyed and no later packet of the same read
 *   reaches aedes (nothing of it is authorised, stored or answered).
 */
import { EventEmitter } from 'node:events';
import type { TLSSocket } from 'node:tls';
import type { Client } from 'aedes';
import type { Packet } from 'mqtt-packet';
import type { Logger } from 'pino';

// eslint-disable-next-line no-control-regex
const ILL_FORMED = /[\u0000\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function badString(s: string | undefined): boolean {
  return s !== undefined && ILL_FORMED.test(s);
}

function connectViolation(p: Extract<Packet, { cmd: 'connect' }>): string | undefined {
  const level = p.protocolVersion;
  if ((p.protocolId === 'MQIsdp' && level !== 3) || (p.protocolId === 'MQTT' && level === 3)) return 'protocol name does not match the level [MQTT-3.1.2-1]';
  if (p.will !== undefined && (p.will.qos as number) === 3) return 'Will QoS 3 [MQTT-3.1.2-14]';
  if (p.password !== undefined && p.username === undefined) return 'password without user name [MQTT-3.1.2-22]';
  if (badString(p.clientId) || badString(p.username) || badString(p.will?.topic)) return 'ill-formed UTF-8 or U+0000 in a string [MQTT-1.5.3-1]';
  return undefined;
}

function filtersViolation(id: number | undefined, filters: readonly string[], noneClause: string): string | undefined {
  if (id === undefined || id === 0) return 'packet identifier 0 [MQTT-2.3.1-1]';
  if (filters.length === 0) return `no topic filter ${noneClause}`;
  if (filters.some(badString)) return 'ill-formed UTF-8 or U+0000 in a topic filter [MQTT-1.5.3-1]';
  return undefined;
}

/** Why `packet` is malformed beyond what the parser checks, or undefined. Pure. */
export function packetViolation(packet: Packet): string | undefined {
  switch (packet.cmd) {
    case 'connect':
      return connectViolation(packet);
    case 'publish':
      if (packet.qos > 0 && (packet.messageId === undefined || packet.messageId === 0)) return 'packet identifier 0 [MQTT-2.3.1-1]';
      return badString(packet.topic) ? 'ill-formed UTF-8 or U+0000 in the topic name [MQTT-1.5.3-1]' : undefined;
    case 'subscribe':
      return filtersViolation(packet.messageId, packet.subscriptions.map((s) => s.topic), '[MQTT-3.8.3-3]');
    case 'unsubscribe':
      return filtersViolation(packet.messageId, packet.unsubscriptions, '[MQTT-3.10.3-2]');
    default:
      return undefined;
  }
}

/**
 * Puts `packetViolation` between the connection's parser and aedes. Relies on aedes 1.2's
 * `client._parser` (an mqtt-packet Parser that emits 'packet'), pinned by
 * mqtt-packet-guard.test.ts; without it the connection is refused (fail closed).
 */
export function guardPackets(client: Client, socket: TLSSocket, logger: Logger): void {
  const parser: unknown = Reflect.get(client, '_parser');
  if (!(parser instanceof EventEmitter)) {
    logger.error('mqtt parser not found on the aedes client; refusing the connection');
    socket.destroy();
    return;
  }
  const emit = parser.emit.bind(parser);
  let failed = false;
  parser.emit = (event: string | symbol, ...args: unknown[]): boolean => {
    if (event !== 'packet') return emit(event, ...args);
    if (failed) return false;
    const violation = packetViolation(args[0] as Packet);
    if (violation === undefined) return emit(event, ...args);
    failed = true;
    logger.info({ violation, source: socket.remoteAddress }, 'mqtt connection closed: malformed packet');
    socket.destroy();
    return false;
  };
}
