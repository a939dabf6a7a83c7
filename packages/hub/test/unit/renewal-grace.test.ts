/**
 * The renewal decision (provisioning/reenroll/grace.ts, ADR 0025): boundaries of validity and
 * grace, and the same-key rule after expiry. Pure: no hub, no clock of its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRenewal, type RenewalFacts } from '../../src/provisioning/reenroll/grace.js';

const DAY = 86_400_000;
const notBefore = Date.UTC(2026, 0, 1);
const notAfter = notBefore + 90 * DAY;
const key = 'ab'.repeat(32);
const facts = (over: Partial<RenewalFacts>): RenewalFacts => ({ now: notBefore + DAY, notBefore, notAfter, graceMs: 30 * DAY, certSpkiSha256: key, csrSpkiSha256: 'cd'.repeat(32), ...over });

test('inside validity (both ends inclusive, RFC 5280 §4.1.2.5) any proven key renews', () => {
  for (const now of [notBefore, notBefore + DAY, notAfter]) {
    assert.deepEqual(decideRenewal(facts({ now })), { kind: 'renew' }, new Date(now).toISOString());
    assert.deepEqual(decideRenewal(facts({ now, csrSpkiSha256: key })), { kind: 'renew' });
  }
});

test('before notBefore nothing renews: CERT_INVALID', () => {
  const d = decideRenewal(facts({ now: notBefore - 1, csrSpkiSha256: key }));
  assert.equal(d.kind, 'refuse');
  assert.equal(d.kind === 'refuse' && d.code, 'CERT_INVALID');
});

test('after expiry, within the grace (boundary inclusive), the same key renews (hex case ignored)', () => {
  for (const now of [notAfter + 1, notAfter + 30 * DAY]) {
    assert.deepEqual(decideRenewal(facts({ now, csrSpkiSha256: key.toUpperCase() })), { kind: 'grace', expiredForMs: now - notAfter });
  }
});

test('renewal after expiry outside the grace period → RENEWAL_NEEDS_CLAIM, even with the same key', () => {
  const d = decideRenewal(facts({ now: notAfter + 30 * DAY + 1, csrSpkiSha256: key }));
  assert.deepEqual(d, { kind: 'refuse', code: 'RENEWAL_NEEDS_CLAIM', reason: 'expired beyond the renewal grace period' });
});

test('renewal after expiry inside the grace period with a different key → RENEWAL_NEEDS_CLAIM', () => {
  const d = decideRenewal(facts({ now: notAfter + DAY }));
  assert.equal(d.kind === 'refuse' && d.code, 'RENEWAL_NEEDS_CLAIM');
  assert.match(d.kind === 'refuse' ? d.reason : '', /same key/);
});

test('a grace of 0 days refuses the first millisecond after notAfter and accepts notAfter itself', () => {
  assert.equal(decideRenewal(facts({ now: notAfter + 1, graceMs: 0, csrSpkiSha256: key })).kind, 'refuse');
  assert.equal(decideRenewal(facts({ now: notAfter, graceMs: 0 })).kind, 'renew');
});
