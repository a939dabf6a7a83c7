/**
 * The topic policy (src/mqtt/topic-policy.ts), exhaustively: the allowed shapes, every attack
 * shape we know (other device, wildcards, `$` topics, prefix tricks, NUL, invalid UTF-8, controls,
 * lengths), and a generated sweep that no topic built from a hostile alphabet widens a rule.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_TOPIC_BYTES, MAX_TOPIC_LEVELS, canPublish, canReceive, canSubscribe, commandTopic, maySubscribersMatch, topicFilterError, topicNameError,
} from '../../src/mqtt/topic-policy.js';

const ID = 'dev-1';
const allowed = (d: { allowed: boolean }): boolean => d.allowed;
const invalidUtf8 = Buffer.from([0x64, 0xff, 0xfe]).toString('utf8'); // what mqtt-packet makes of bad bytes

describe('topic policy: publish', () => {
  for (const topic of ['devices/dev-1/telemetry', 'devices/dev-1/a/b/c', 'devices/dev-1/commandsx', 'devices/dev-1/x/commands/y', 'devices/dev-1/ü/温度']) {
    test(`allows ${topic}`, () => assert.ok(allowed(canPublish(ID, topic))));
  }
  const denied: Array<[string, string]> = [
    ['another device', 'devices/dev-2/telemetry'],
    ['a device whose id extends ours', 'devices/dev-10/telemetry'],
    ['a device whose id is our prefix', 'devices/dev/telemetry'],
    ['own commands topic', 'devices/dev-1/commands/reboot'],
    ['own commands parent level (matched by commands/#)', 'devices/dev-1/commands'],
    ['own commands with deeper level', 'devices/dev-1/commands/a/b'],
    ['the bare device prefix', 'devices/dev-1/'],
    ['the device level without slash', 'devices/dev-1'],
    ['$SYS', '$SYS/broker/uptime'],
    ['$fleetkey hub topics', '$fleetkey/trust'],
    ['a $-prefixed device path', '$devices/dev-1/telemetry'],
    ['a leading slash', '/devices/dev-1/telemetry'],
    ['upper-case path', 'Devices/dev-1/telemetry'],
    ['+ wildcard', 'devices/dev-1/+'],
    ['# wildcard', 'devices/dev-1/#'],
    ['+ in place of the id', 'devices/+/telemetry'],
    ['NUL', 'devices/dev-1/a\u0000b'],
    ['NUL after the prefix that a C string would cut', 'devices/dev-1\u0000/x'],
    ['invalid UTF-8 (U+FFFD)', `devices/dev-1/${invalidUtf8}`],
    ['control character', 'devices/dev-1/a\u0007'],
    ['C1 control', 'devices/dev-1/a\u0085'],
    ['noncharacter U+FFFF', 'devices/dev-1/\uffff'],
    ['lone surrogate', 'devices/dev-1/\ud800'],
    ['empty topic', ''],
    ['too long', `devices/dev-1/${'a'.repeat(MAX_TOPIC_BYTES)}`],
    ['too many levels', `devices/dev-1/${Array(MAX_TOPIC_LEVELS).fill('a').join('/')}`],
  ];
  for (const [label, topic] of denied) {
    test(`denies ${label}`, () => assert.equal(canPublish(ID, topic).allowed, false));
  }
  test('denies everything for an id that is not a device id', () => {
    for (const id of ['', '+', '#', 'a/b', 'A', 'dev\u0000', '$SYS', 'x'.repeat(65)]) {
      assert.equal(canPublish(id, `devices/${id}/telemetry`).allowed, false, id);
      assert.equal(canSubscribe(id, `devices/${id}/commands/#`).allowed, false, id);
      assert.equal(canReceive(id, `devices/${id}/commands/x`), false, id);
    }
  });
  test('a topic at exactly the byte and level limits is allowed', () => {
    const prefix = 'devices/dev-1/';
    assert.ok(allowed(canPublish(ID, prefix + 'a'.repeat(MAX_TOPIC_BYTES - prefix.length))));
    assert.ok(allowed(canPublish(ID, prefix + Array(MAX_TOPIC_LEVELS - 2).fill('a').join('/'))));
  });
});

describe('topic policy: subscribe', () => {
  for (const f of ['devices/dev-1/commands/#', 'devices/dev-1/commands/+', 'devices/dev-1/commands/reboot', 'devices/dev-1/commands/+/x', '$fleetkey/#', '$fleetkey/trust']) {
    test(`allows ${f}`, () => assert.ok(allowed(canSubscribe(ID, f))));
  }
  const denied: Array<[string, string]> = [
    ['#', '#'], ['+/#', '+/#'], ['+', '+'], ['devices/#', 'devices/#'], ['devices/+/commands/#', 'devices/+/commands/#'],
    ['another device commands', 'devices/dev-2/commands/#'], ['own telemetry', 'devices/dev-1/telemetry'],
    ['own device tree', 'devices/dev-1/#'], ['own device level +', 'devices/dev-1/+'], ['commands parent only', 'devices/dev-1/commands'],
    ['commands/ with nothing after', 'devices/dev-1/commands/'], ['$SYS/#', '$SYS/#'], ['$SYS', '$SYS/broker/load'],
    ['bare $fleetkey/', '$fleetkey/'], ['$fleetkey without slash', '$fleetkey'], ['+/+/commands/#', '+/+/commands/#'],
    ['# not last', 'devices/dev-1/commands/#/x'], ['# inside a level', 'devices/dev-1/commands/a#'],
    ['+ inside a level', 'devices/dev-1/commands/a+'], ['+ glued at level start', 'devices/dev-1/commands/+a'],
    ['NUL', 'devices/dev-1/commands/\u0000'], ['invalid UTF-8', `devices/dev-1/commands/${invalidUtf8}`],
    ['id with wildcard suffix', 'devices/dev-1+/commands/#'], ['empty', ''],
  ];
  for (const [label, f] of denied) {
    test(`denies ${label}`, () => assert.equal(canSubscribe(ID, f).allowed, false));
  }
});

describe('topic policy: syntax checks', () => {
  test('topic names reject wildcards, filters accept well-placed ones [MQTT-4.7.1-2/3]', () => {
    assert.match(topicNameError('a/+') ?? '', /wildcard/);
    assert.match(topicNameError('a/#') ?? '', /wildcard/);
    assert.equal(topicFilterError('a/+/b/#'), undefined);
    assert.equal(topicFilterError('+'), undefined);
    assert.ok(topicFilterError('a/b#') !== undefined);
    assert.ok(topicFilterError('a+/b') !== undefined); // aedes' own check lets this through
  });
});

describe('topic policy: forwarding and command topics', () => {
  test('a device receives only its command topics and hub topics', () => {
    assert.equal(canReceive(ID, 'devices/dev-1/commands/reboot'), true);
    assert.equal(canReceive(ID, '$fleetkey/trust'), true);
    for (const t of ['devices/dev-2/commands/reboot', 'devices/dev-1/telemetry', 'devices/dev-1/commands', '$SYS/x', '$fleetkey/', 'devices/dev-10/commands/x']) {
      assert.equal(canReceive(ID, t), false, t);
    }
  });
  test('commandTopic builds devices/{id}/commands/{sub} and refuses hostile subtopics', () => {
    assert.equal(commandTopic(ID, 'reboot'), 'devices/dev-1/commands/reboot');
    assert.equal(commandTopic(ID, 'a/b'), 'devices/dev-1/commands/a/b');
    for (const sub of ['', '#', '+', 'a/#', '$SYS', 'a\u0000', invalidUtf8, 'x'.repeat(MAX_TOPIC_BYTES)]) {
      assert.equal(commandTopic(ID, sub), undefined, JSON.stringify(sub));
    }
    assert.equal(commandTopic('dev/2', 'x'), undefined);
  });
});

describe('topic policy: generated sweep — no character widens a rule', () => {
  // Every topic of up to 3 levels over a hostile alphabet, under our prefix and another's.
  const alphabet = ['', 'a', '+', '#', '$', '/', '\u0000', 'commands', 'dev-1', 'dev-2', '\ufffd'];
  const levels: string[] = [];
  for (const a of alphabet) for (const b of alphabet) levels.push(a + b);
  test('publish allowed ⇒ literally under devices/dev-1/, not commands, no wildcard/NUL', () => {
    let checked = 0;
    for (const l1 of levels) for (const l2 of alphabet) {
      for (const head of ['devices/dev-1/', 'devices/dev-2/', 'devices/', '$SYS/', '']) {
        const topic = `${head}${l1}/${l2}`;
        checked++;
        if (!canPublish(ID, topic).allowed) continue;
        assert.ok(topic.startsWith('devices/dev-1/'), topic);
        assert.ok(!/[+#\u0000\ufffd]/.test(topic), topic);
        const rest = topic.slice('devices/dev-1/'.length);
        assert.ok(rest !== 'commands' && !rest.startsWith('commands/'), topic);
      }
    }
    assert.ok(checked > 5000);
  });
  test('subscribe allowed ⇒ literally under our commands/ or $fleetkey/, never starting with a wildcard', () => {
    for (const l1 of levels) for (const l2 of alphabet) {
      for (const head of ['devices/dev-1/commands/', 'devices/dev-1/', 'devices/+/commands/', '$fleetkey/', '$SYS/', '']) {
        const filter = `${head}${l1}/${l2}`;
        if (!canSubscribe(ID, filter).allowed) continue;
        assert.ok(filter.startsWith('devices/dev-1/commands/') || filter.startsWith('$fleetkey/'), filter);
        assert.ok(!/[\u0000\ufffd]/.test(filter), filter);
      }
    }
  });
});

/** MQTT 3.1.1 §4.7 filter matching (+ one level, # the rest incl. the parent level), for the sweep below. */
function matches(filter: string, topic: string): boolean {
  const f = filter.split('/'), t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i === f.length - 1;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

describe('topic policy: which PUBLISHes need routing (ADR 0023)', () => {
  test('telemetry and $SYS topics need none; command and $fleetkey topics do, parents included', () => {
    for (const t of ['devices/dev-1/telemetry', 'devices/dev-1/commandsx', 'devices/dev-1/x/commands/y', 'devices/dev-1', 'devices', '$SYS/x/new/clients', '$fleetkeyx/a', 'other/commands']) assert.equal(maySubscribersMatch(t), false, t);
    for (const t of ['devices/dev-1/commands/reboot', 'devices/dev-1/commands', '$fleetkey/time', '$fleetkey']) assert.equal(maySubscribersMatch(t), true, t);
  });

  test('sweep: every topic matched by a filter canSubscribe allows is routed', () => {
    const levels = ['devices', 'dev-1', 'dev-2', 'commands', 'commandsx', 'telemetry', '$fleetkey', '$SYS', '+', '#', 'a', ''];
    const words = ['devices', 'dev-1', 'commands', 'commandsx', 'telemetry', '$fleetkey', '$SYS', ''];
    const filters: string[] = [], topics: string[] = [];
    for (const a of levels) for (const b of levels) for (const c of levels) for (const d of ['', '/a', '/#', '/+']) filters.push(`${a}/${b}/${c}${d}`, `${a}/${b}`, a);
    for (const a of words) for (const b of words) for (const c of words) for (const d of ['', '/a', '/a/b']) topics.push(`${a}/${b}/${c}${d}`, `${a}/${b}`, a);
    let checked = 0;
    for (const f of filters) {
      if (!canSubscribe('dev-1', f).allowed) continue;
      for (const t of topics) if (matches(f, t)) { checked++; assert.ok(maySubscribersMatch(t), `${f} matches ${t}`); }
    }
    assert.ok(checked > 100, `checked ${checked} matching pairs`);
  });
});
