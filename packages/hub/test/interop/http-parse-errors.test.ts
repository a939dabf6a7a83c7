/** Requests that break HTTP itself still get the coded error shape, with no server banner. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { startTestHub, type TestHub } from '../helpers/test-hub.js';

let t: TestHub;
before(async () => {
  t = await startTestHub();
});
after(async () => t.stop());

function raw(request: string): Promise<string> {
  const url = new URL(t.hub.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port), ca: t.hub.rootCertPem, checkServerIdentity: () => undefined }, () => socket.end(request));
    let out = '';
    socket.on('data', (c: Buffer) => (out += c.toString()));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

test('a request line that is not HTTP gets 400 with {"error":{"code":"BAD_REQUEST"}} and no stack or version', async () => {
  const response = await raw('GARBAGE \x00\x01 NOT-HTTP\r\n\r\n');
  assert.match(response, /^HTTP\/1\.1 400 /);
  const body = response.slice(response.indexOf('\r\n\r\n') + 4);
  assert.equal(JSON.parse(body).error.code, 'BAD_REQUEST');
  assert.doesNotMatch(response, /fastify|node\.js|express|\bat .*:\d+:\d+/i);
});

test('public endpoints disclose no software version before login', async () => {
  const r = await t.api('GET', '/api/v1/openapi.json');
  assert.equal(r.status, 200);
  assert.equal(r.body.info.version, '1');
  assert.equal(r.headers['server'], undefined);
  assert.equal(r.headers['x-powered-by'], undefined);
  assert.doesNotMatch(JSON.stringify(r.body), /0\.1\.0/);
});
