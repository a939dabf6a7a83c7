/**
 * Topic rules for device sessions: which topic names a device may publish to, which topic
 * filters it may subscribe to, and which messages may be forwarded to it. Pure: no I/O, no state.
 *
 * Invariants:
 * - The device id comes from the verified certificate and must match `DEVICE_ID_RE`
 *   (`[a-z0-9-]{1,64}`): it can never contain `/`, `+`, `#`, `$` or NUL, so a prefix built from
 *   it is exactly one topic level. Any other id is denied everything.
 * - Publish: only topic names `devices/{id}/<rest>` with a non-empty `<rest>` that is not
 *   `commands` and does not start with `commands/` (those are the hub's, and `commands/#`
 *   also matches its parent level [MQTT-4.7.1-2]). Never `$SYS/…`, `$fleetkey/…` or any
 *   `$`-topic: they start with `$`, not `devices/`.
 * - Subscribe: only `devices/{id}/commands/<filter>` with a non-empty `<filter>` (so
 *   `devices/{id}/commands/#` or narrower), or `$fleetkey/<filter>` (hub topics, never tenant
 *   data). A filter starting with a wildcard (`#`, `+/…`) is always denied, so `#`/`+` can
 *   never reach `$` topics [MQTT-4.7.2-1] or another device's topics.
 * - Every name and filter is checked in full before a rule is applied: non-empty, at most
 *   `MAX_TOPIC_BYTES` UTF-8 bytes and `MAX_TOPIC_LEVELS` levels, no NUL [MQTT-4.7.3-2], no
 *   control characters, no U+FFFD (what invalid UTF-8 decodes to) or noncharacters
 *   [MQTT-1.5.3-1]; names hold no wildcards [MQTT-3.3.2-2]; in filters `+` fills a whole level
 *   [MQTT-4.7.1-3] and `#` is a whole last level [MQTT-4.7.1-2]. A rule is a literal prefix
 *   compare after that, so no character inside a topic can widen it.
 * - Forward: a message reaches a device only on `devices/{id}/commands/…` or `$fleetkey/…`.
 * - `maySubscribersMatch` is exact for the filters `canSubscribe` allows: false only for topics no
 *   allowed filter can match, so skipping their routing loses no delivery (ADR 0023).
 */
import { isDeviceId } from '@fleetkey/protocol';

export const MAX_TOPIC_BYTES = 512;
export const MAX_TOPIC_LEVELS = 16;
export const HUB_TOPIC_PREFIX = '$fleetkey/';

export type PolicyDecision = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

const ALLOW: PolicyDecision = Object.freeze({ allowed: true });
const deny = (reason: string): PolicyDecision => ({ allowed: false, reason });

// C0 and C1 controls (incl. NUL), U+FFFD (replacement for invalid UTF-8), U+FFFE/U+FFFF.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f-\u009f\ufffd\ufffe\uffff]/;
// Lone surrogates cannot come out of UTF-8 decoding, but a string made in-process could hold one.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Number of topic levels (separators + 1), without building the array `split` would (per PUBLISH). */
function levelCount(topic: string): number {
  let n = 1;
  for (let i = topic.indexOf('/'); i >= 0; i = topic.indexOf('/', i + 1)) n++;
  return n;
}

function checkCharacters(topic: string): string | undefined {
  if (topic.length === 0) return 'empty topic'; // [MQTT-4.7.3-1]
  if (Buffer.byteLength(topic, 'utf8') > MAX_TOPIC_BYTES) return 'topic too long';
  if (FORBIDDEN_CHARS.test(topic) || LONE_SURROGATE.test(topic)) return 'forbidden character in topic';
  if (levelCount(topic) > MAX_TOPIC_LEVELS) return 'too many topic levels';
  return undefined;
}

/** Why `name` is not a valid PUBLISH topic name, or `undefined` when it is. */
export function topicNameError(name: string): string | undefined {
  const bad = checkCharacters(name);
  if (bad !== undefined) return bad;
  if (name.includes('+') || name.includes('#')) return 'wildcard in topic name'; // [MQTT-3.3.2-2]
  return undefined;
}

/** Why `filter` is not a valid SUBSCRIBE topic filter, or `undefined` when it is. */
export function topicFilterError(filter: string): string | undefined {
  const bad = checkCharacters(filter);
  if (bad !== undefined) return bad;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return '# must be the whole last level'; // [MQTT-4.7.1-2]
    if (level.includes('+') && level !== '+') return '+ must be a whole level'; // [MQTT-4.7.1-3]
  }
  return undefined;
}

const devicePrefix = (deviceId: string): string => `devices/${deviceId}/`;
const commandPrefix = (deviceId: string): string => `devices/${deviceId}/commands/`;

/** May the device `deviceId` PUBLISH to `topic`? */
export function canPublish(deviceId: string, topic: string): PolicyDecision {
  if (!isDeviceId(deviceId)) return deny('invalid device id');
  const bad = topicNameError(topic);
  if (bad !== undefined) return deny(bad);
  const prefix = devicePrefix(deviceId);
  if (!topic.startsWith(prefix)) return deny('not under the device topic');
  const rest = topic.slice(prefix.length);
  if (rest.length === 0) return deny('empty subtopic');
  if (rest === 'commands' || rest.startsWith('commands/')) return deny('command topics are the hub\'s');
  return ALLOW;
}

/** May the device `deviceId` SUBSCRIBE to `filter`? */
export function canSubscribe(deviceId: string, filter: string): PolicyDecision {
  if (!isDeviceId(deviceId)) return deny('invalid device id');
  const bad = topicFilterError(filter);
  if (bad !== undefined) return deny(bad);
  for (const prefix of [commandPrefix(deviceId), HUB_TOPIC_PREFIX]) {
    if (filter.startsWith(prefix) && filter.length > prefix.length) return ALLOW;
  }
  return deny('filter outside the device command topics and hub topics');
}

/**
 * Could a subscription that `canSubscribe` allows match `topic`? Allowed filters start with the
 * literal levels `devices/{id}/commands/` or `$fleetkey/`, so they match only topics that start
 * with them — or the parent level itself, through a trailing `/#` [MQTT-4.7.1-2]. Device telemetry
 * (`devices/{id}/<not commands>`) can never match: aedes need not route it (ADR 0023).
 */
export function maySubscribersMatch(topic: string): boolean {
  if (topic.startsWith('$fleetkey')) return topic.length === 9 || topic.charCodeAt(9) === 0x2f;
  if (!topic.startsWith('devices/')) return false;
  const end = topic.indexOf('/', 8);
  if (end < 0 || !topic.startsWith('commands', end + 1)) return false;
  return topic.length === end + 9 || topic.charCodeAt(end + 9) === 0x2f;
}

/** May a message on `topic` be forwarded to the device `deviceId`? (defence in depth) */
export function canReceive(deviceId: string, topic: string): boolean {
  if (!isDeviceId(deviceId) || topicNameError(topic) !== undefined) return false;
  const prefix = topic.startsWith(HUB_TOPIC_PREFIX) ? HUB_TOPIC_PREFIX : commandPrefix(deviceId);
  return topic.startsWith(prefix) && topic.length > prefix.length;
}

/**
 * The topic a command for `deviceId` is delivered on: `devices/{id}/commands/{subtopic}`.
 * `undefined` when the id or the subtopic is not valid (wildcards, `$`, empty, too long…).
 */
export function commandTopic(deviceId: string, subtopic: string): string | undefined {
  if (!isDeviceId(deviceId) || subtopic.startsWith('$')) return undefined;
  const topic = `${commandPrefix(deviceId)}${subtopic}`;
  if (subtopic.length === 0 || topicNameError(topic) !== undefined) return undefined;
  return topic;
}
