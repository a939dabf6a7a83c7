/** The early-renewal command payload (renew-command.ts, ADR 0025): round trip and strict refusal. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetkeyError, MAX_RENEW_COMMAND_BYTES, encodeRenewCommand, parseRenewCommand } from '../../src/index.js';

const good = { v: 1 as const, id: 'rnw_AAAAAAAAAAAAAAAA', reason: 'device-ca-rotation', requestedAt: '2026-12-01T10:00:00.000Z' };
const field = (f: string) => (e: unknown): boolean => e instanceof FleetkeyError && e.code === 'VALIDATION_FAILED' && e.details?.field === `renew.${f}`;

test('encode → parse round-trips', () => {
  assert.deepEqual(parseRenewCommand(encodeRenewCommand(good)), good);
});

test('malformed commands are VALIDATION_FAILED naming the field', () => {
  const cases: Array<[unknown, string]> = [
    ['not json', 'json'], [[1], 'json'], [null, 'json'],
    [{ ...good, extra: 1 }, 'fields'], [{ v: 1, id: good.id, reason: good.reason }, 'fields'],
    [{ ...good, v: 2 }, 'v'], [{ ...good, id: 'cmd_AAAAAAAAAAAA' }, 'id'], [{ ...good, id: 'rnw_short' }, 'id'],
    [{ ...good, reason: '' }, 'reason'], [{ ...good, reason: 'tab\there' }, 'reason'], [{ ...good, reason: 'x'.repeat(65) }, 'reason'],
    [{ ...good, requestedAt: 'yesterday' }, 'requestedAt'],
  ];
  for (const [value, f] of cases) {
    const bytes = Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
    assert.throws(() => parseRenewCommand(bytes), field(f), JSON.stringify(value));
  }
  assert.throws(() => parseRenewCommand(Buffer.alloc(MAX_RENEW_COMMAND_BYTES + 1, 0x20)), field('size'));
});
