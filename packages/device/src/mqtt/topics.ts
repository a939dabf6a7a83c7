/**
 * The topics of one device and the client-side check of what it may publish (DESIGN flow 5).
 *
 * Invariants:
 * - A device publishes only under `devices/{deviceId}/`, never into its own `commands/` subtree
 *   (the hub's) and never to `$` topics; the hub enforces the same rule and closes the connection
 *   on a violation [MQTT-3.3.5-2], so checking here
 *   keeps a bad topic from ever reaching the outbox, where it would be resent forever.
 * - Topic names hold no wildcards [MQTT-3.3.2-2], no NUL [MQTT-4.7.3-2], are non-empty
 *   [MQTT-4.7.3-1] and at most MAX_PUBLISH_TOPIC_BYTES UTF-8 bytes (the hub's limit).
 */
import { FleetkeyError } from '@fleetkey/protocol';

export const MAX_PUBLISH_TOPIC_BYTES = 512;
export const TRUST_TOPIC = '$fleetkey/trust';

export const deviceTopicPrefix = (deviceId: string): string => `devices/${deviceId}/`;
export const telemetryTopic = (deviceId: string): string => `devices/${deviceId}/telemetry`;
export const commandsFilter = (deviceId: string): string => `devices/${deviceId}/commands/#`;

// C0/C1 controls (NUL included) and U+FFFD, which is what invalid UTF-8 decodes to.
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\ufffd]/;

/** Throws VALIDATION_FAILED (field `topic`) unless `topic` is one this device may publish to. */
export function checkPublishTopic(deviceId: string, topic: string): void {
  const prefix = deviceTopicPrefix(deviceId);
  const rest = topic.startsWith(prefix) ? topic.slice(prefix.length) : '';
  const ok = rest !== '' && rest !== 'commands' && !rest.startsWith('commands/')
    && !topic.includes('+') && !topic.includes('#') && !FORBIDDEN.test(topic)
    && Buffer.byteLength(topic, 'utf8') <= MAX_PUBLISH_TOPIC_BYTES;
  if (!ok) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'topic' } });
}

/** A command delivered on `devices/{id}/commands/{name}`. */
export interface DeviceCommand {
  readonly topic: string;
  /** The part after `commands/`, e.g. `reboot` or `config/set`. */
  readonly name: string;
  readonly payload: Buffer;
}

/** The command on `topic`, or undefined when the topic is not this device's command topic. */
export function commandFrom(deviceId: string, topic: string, payload: Buffer): DeviceCommand | undefined {
  const prefix = `${deviceTopicPrefix(deviceId)}commands/`;
  if (!topic.startsWith(prefix) || topic.length === prefix.length) return undefined;
  return { topic, name: topic.slice(prefix.length), payload };
}
