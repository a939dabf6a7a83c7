import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_TABLE, FleetkeyError, isErrorCode, toFleetkeyError } from '../../src/index.js';

const docsPath = fileURLToPath(new URL('../../../../../docs/errors.md', import.meta.url));

test('every error code appears in docs/errors.md with its HTTP status, and no undocumented code exists', () => {
  const docs = readFileSync(docsPath, 'utf8');
  const rows = new Map<string, number>();
  for (const m of docs.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)) rows.set(m[1]!, Number(m[2]));
  for (const [code, spec] of Object.entries(ERROR_TABLE)) {
    assert.equal(rows.get(code), spec.status, `docs/errors.md row for ${code}`);
  }
  for (const code of rows.keys()) assert.ok(isErrorCode(code), `docs/errors.md lists unknown code ${code}`);
});

test('a FleetkeyError keeps its cause out of the wire form', () => {
  const err = new FleetkeyError('AUTH_FAILED', { cause: new Error('secret-password-was-wrong') });
  const wire = JSON.stringify(err);
  assert.equal(JSON.parse(wire).code, 'AUTH_FAILED');
  assert.ok(!wire.includes('secret-password'), 'cause leaked into JSON');
  assert.equal(err.status, 401);
});

test('public messages carry no paths, SQL or stack patterns', () => {
  for (const [code, spec] of Object.entries(ERROR_TABLE)) {
    assert.doesNotMatch(spec.message, /\/(usr|tmp|home|work)\/|SELECT |INSERT |\bat .*:\d+:\d+/, code);
  }
});

test('unknown throwables become INTERNAL without exposing their text', () => {
  const err = toFleetkeyError(new Error('ENOENT /var/lib/fleetkey/secret.key'));
  assert.equal(err.code, 'INTERNAL');
  assert.ok(!JSON.stringify(err).includes('/var/lib'));
});
