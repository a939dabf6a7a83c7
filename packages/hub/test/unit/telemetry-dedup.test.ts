/**
 * Pure parts of telemetry ingest: the fleetkey envelope, dedup key derivation (ADR 0010), paging
 * cursors and JSON detection.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { contentHash, dedupKeyFor, messageIdOfKey, parseEnvelope, wrapEnvelope } from '../../src/telemetry/dedup.js';
import { decodeCursor, encodeCursor, parseIsoTime } from '../../src/telemetry/cursor.js';
import { jsonTextOf } from '../../src/telemetry/sink.js';

const TOPIC = 'devices/dev_1/telemetry';
const isValidation = (field: string) => (e: unknown) => e instanceof FleetkeyError && e.code === 'VALIDATION_FAILED' && e.details?.field === field;

describe('fleetkey envelope', () => {
  test('wrap then parse gives the id and the exact body (binary, empty, with LFs)', () => {
    for (const body of [Buffer.from('{"t":1}'), Buffer.alloc(0), Buffer.from([0, 0xff, 0x0a, 0x0a, 0x46])]) {
      const id = randomUUID();
      const env = parseEnvelope(wrapEnvelope(id, body));
      assert.equal(env?.messageId, id);
      assert.deepEqual(env?.body, body);
    }
  });

  test('malformed envelopes are opaque payloads, not envelopes', () => {
    const cases = [
      'FK1 short\n{}', // id < 16 characters
      `FK1 ${'a'.repeat(65)}\n{}`, // id > 64 characters
      'FK1 aaaaaaaaaaaaaaaa aaaa\n{}', // space inside the id
      'FK1 aaaaaaaaaaaaaaaa/..\n{}', // '/' is not an id character
      `FK1 ${'a'.repeat(20)}`, // no LF
      `fk1 ${'a'.repeat(20)}\n{}`, // magic is case-sensitive
      `FK2 ${'a'.repeat(20)}\n{}`,
      `FK1 ${'a'.repeat(16)}\u00e9\n`, // non-ASCII
    ];
    for (const c of cases) assert.equal(parseEnvelope(Buffer.from(c, 'utf8')), undefined, c);
  });

  test('wrapEnvelope refuses an id outside the grammar', () => {
    assert.throws(() => wrapEnvelope('too-short', Buffer.alloc(0)), RangeError);
    assert.throws(() => wrapEnvelope(`${'a'.repeat(16)}\n`, Buffer.alloc(0)), RangeError);
  });
});

describe('dedupKeyFor', () => {
  test('an envelope gives id:<messageId> whatever DUP says', () => {
    const id = randomUUID();
    const p = wrapEnvelope(id, Buffer.from('x'));
    assert.equal(dedupKeyFor(TOPIC, p, false), `id:${id}`);
    assert.equal(dedupKeyFor(TOPIC, p, true), `id:${id}`);
    assert.equal(messageIdOfKey(dedupKeyFor(TOPIC, p, false)), id);
  });

  test('no envelope: DUP gives a content key, no DUP gives null (identical readings stay distinct)', () => {
    const p = Buffer.from('21.5');
    assert.equal(dedupKeyFor(TOPIC, p, false), null);
    assert.equal(dedupKeyFor(TOPIC, p, true), `dup:${contentHash(TOPIC, p).toString('hex')}`);
    assert.equal(messageIdOfKey(dedupKeyFor(TOPIC, p, true)), null);
  });

  test('the content hash separates topic from payload (no ambiguity at the boundary)', () => {
    assert.notDeepEqual(contentHash('devices/a/b', Buffer.from('c')), contentHash('devices/a/bc', Buffer.alloc(0)));
    assert.notEqual(dedupKeyFor('devices/d/x', Buffer.from('1'), true), dedupKeyFor('devices/d/y', Buffer.from('1'), true));
    assert.equal(dedupKeyFor(TOPIC, Buffer.from('1'), true), dedupKeyFor(TOPIC, Buffer.from('1'), true), 'deterministic');
  });

  test('the one-shot content hash equals SHA-256(topic ‖ 0 ‖ payload)[0..16], so stored hashes still match', () => {
    for (const [topic, payload] of [[TOPIC, Buffer.from('21.5')], ['devices/d/é€😀', Buffer.from([0, 0xff])], ['devices/d/x', Buffer.alloc(0)]] as const) {
      const expected = createHash('sha256').update(topic, 'utf8').update(Buffer.of(0)).update(payload).digest().subarray(0, 16);
      assert.deepEqual(contentHash(topic, payload), expected, topic);
    }
  });
});

describe('paging cursor', () => {
  test('round trip, opaque base64url', () => {
    for (const seq of [0, 1, 42, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      const c = encodeCursor(seq);
      assert.match(c, /^[A-Za-z0-9_-]+$/);
      assert.equal(decodeCursor(c), seq);
    }
  });

  test('forged or mangled cursors are VALIDATION_FAILED on field cursor, never a restart', () => {
    const forged = [
      '', 'abc', Buffer.from('t1:-1').toString('base64url'), Buffer.from('t1:01').toString('base64url'),
      Buffer.from('t2:5').toString('base64url'), Buffer.from('t1:5 ').toString('base64url'),
      Buffer.from('t1:99999999999999999').toString('base64url'), `${encodeCursor(5)}=`, encodeCursor(5).replace(/.$/, '!'),
    ];
    for (const c of forged) assert.throws(() => decodeCursor(c), isValidation('cursor'), c);
  });
});

describe('times and JSON', () => {
  test('ISO 8601 with offset is accepted; anything else names the field', () => {
    assert.equal(parseIsoTime('2026-06-01T00:00:00Z', 'since'), Date.UTC(2026, 5, 1));
    assert.equal(parseIsoTime('2026-06-01T02:00:00.5+02:00', 'since'), Date.UTC(2026, 5, 1) + 500);
    for (const bad of ['2026-06-01', '1717200000000', '2026-06-01T00:00:00', 'yesterday', '2026-13-01T00:00:00Z']) {
      assert.throws(() => parseIsoTime(bad, 'until'), isValidation('until'), bad);
    }
  });

  test('only valid UTF-8 JSON objects and arrays are JSON', () => {
    assert.equal(jsonTextOf(Buffer.from(' {"a":1}')), ' {"a":1}');
    assert.equal(jsonTextOf(Buffer.from('[1,2]')), '[1,2]');
    for (const no of ['21.5', '"text"', 'null', '{"a":', 'hello', '']) assert.equal(jsonTextOf(Buffer.from(no)), null, no);
    assert.equal(jsonTextOf(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), null, 'invalid UTF-8 inside a string');
  });
});
