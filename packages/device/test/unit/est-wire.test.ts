import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetkeyError } from '@fleetkey/protocol';
import { basicAuthorization, checkClaimToken, errorFromResponse, fromBase64Body, pkcs7Body, toBase64Lines } from '../../src/enroll/est-wire.js';
import { parseHubUrl } from '../../src/enroll/est-client.js';
import type { HttpResponse } from '../../src/enroll/http-over-socket.js';
import { fleetkeyError } from '../helpers/pins.js';

function response(status: number, contentType: string, body: string): HttpResponse {
  return { status, headers: { 'content-type': contentType }, body: Buffer.from(body) };
}

test('CSR bodies are base64 in 64-character CRLF lines and decode back (RFC 7030 §4.2.1)', () => {
  const der = Buffer.from(Array.from({ length: 200 }, (_, i) => i));
  const text = toBase64Lines(der);
  assert.ok(text.split('\r\n').slice(0, -2).every((line) => line.length === 64));
  assert.deepEqual(fromBase64Body(Buffer.from(text)), der);
});

test('non-base64 bodies are HUB_PROTOCOL_ERROR', () => {
  for (const body of ['', 'QUJ', 'QU=D', '<html>', 'QUJD\u0000']) {
    assert.throws(() => fromBase64Body(Buffer.from(body)), fleetkeyError('HUB_PROTOCOL_ERROR'), JSON.stringify(body));
  }
});

test('the Basic credential is device:<token> (RFC 7617) and the token shape is checked first', () => {
  assert.equal(basicAuthorization('abc'), `Basic ${Buffer.from('device:abc').toString('base64')}`);
  for (const bad of ['', 'has space', 'line\r\nbreak', 'x'.repeat(513), 'tökén']) {
    assert.throws(() => checkClaimToken(bad), fleetkeyError('VALIDATION_FAILED'));
  }
});

test('a hub error body keeps its fleetkey code; unknown or missing codes are HUB_PROTOCOL_ERROR', () => {
  const json = (code: unknown): HttpResponse => response(401, 'application/json; charset=utf-8', JSON.stringify({ error: { code, message: 'm' } }));
  assert.equal(errorFromResponse('x', json('CLAIM_TOKEN_INVALID')).code, 'CLAIM_TOKEN_INVALID');
  assert.equal(errorFromResponse('x', json('RATE_LIMITED')).code, 'RATE_LIMITED');
  assert.equal(errorFromResponse('x', json('toString')).code, 'HUB_PROTOCOL_ERROR');
  assert.equal(errorFromResponse('x', json(42)).code, 'HUB_PROTOCOL_ERROR');
  assert.equal(errorFromResponse('x', response(500, 'text/html', '<h1>oops</h1>')).code, 'HUB_PROTOCOL_ERROR');
  assert.equal(errorFromResponse('x', response(401, 'application/json', 'not json')).code, 'HUB_PROTOCOL_ERROR');
});

test('a hub that echoes the claim token in its error message does not leak it into the cause', () => {
  const token = 'ct_very-secret';
  const err = errorFromResponse('simpleenroll', response(401, 'application/json', JSON.stringify({ error: { code: 'CLAIM_TOKEN_INVALID', message: `bad token ${token}` } })), token);
  assert.ok(err instanceof FleetkeyError);
  assert.ok(!String(err.cause).includes(token));
  assert.ok(!JSON.stringify(err).includes(token));
});

test('pkcs7Body: 202 (deferred) and wrong media types are HUB_PROTOCOL_ERROR; 200 pkcs7-mime with parameters is read', () => {
  assert.throws(() => pkcs7Body('x', response(202, 'text/plain', '')), fleetkeyError('HUB_PROTOCOL_ERROR', /202/));
  assert.throws(() => pkcs7Body('x', response(200, 'application/json', 'QUJD')), fleetkeyError('HUB_PROTOCOL_ERROR'));
  assert.deepEqual(pkcs7Body('x', response(200, 'application/pkcs7-mime; smime-type=certs-only', 'QUJD\r\n')), Buffer.from('ABC'));
});

test('hub URLs are https://host[:port] only (no credentials, paths, queries)', () => {
  assert.deepEqual(parseHubUrl('https://hub.example:8443'), { host: 'hub.example', port: 8443 });
  assert.deepEqual(parseHubUrl('https://hub.example/'), { host: 'hub.example', port: 443 });
  assert.deepEqual(parseHubUrl('https://[::1]:9000'), { host: '::1', port: 9000 });
  for (const bad of ['http://hub.example', 'https://u:p@hub.example', 'https://hub.example/est', 'https://hub.example?x=1', 'not a url']) {
    assert.throws(() => parseHubUrl(bad), fleetkeyError('VALIDATION_FAILED'), bad);
  }
});
