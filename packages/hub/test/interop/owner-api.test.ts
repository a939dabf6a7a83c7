/**
 * Attacks on the owner API (`/api/v1`) of a real hub over HTTPS on 127.0.0.1: cross-tenant object
 * access (BOLA/IDOR), missing and forged bearer tokens, login lockout and user enumeration, hostile
 * JSON. Each test asserts the error code, that the protected action did not happen, and that the
 * stored objects are unchanged. Checklist rows 11, 12, 15, 27 and 30.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { ManualClock, buildCsr, decodeCertsOnly, deviceIdFromCertificate } from '@fleetkey/protocol';
import { OWNER_PASSWORD, startTestHub, type RawResponse, type TestHub, type TestOwner } from '../helpers/test-hub.js';

/** Every route the hub serves, as written in http/app.ts, http/owner-routes.ts and est/routes.ts. */
const ROUTES = [
  { method: 'post', path: '/api/v1/sessions', auth: 'none' },
  { method: 'delete', path: '/api/v1/sessions/current', auth: 'bearer' },
  { method: 'post', path: '/api/v1/claim-tokens', auth: 'bearer' },
  { method: 'get', path: '/api/v1/claim-tokens', auth: 'bearer' },
  { method: 'delete', path: '/api/v1/claim-tokens/{id}', auth: 'bearer' },
  { method: 'get', path: '/api/v1/devices', auth: 'bearer' },
  { method: 'get', path: '/api/v1/devices/{id}', auth: 'bearer' },
  { method: 'get', path: '/api/v1/devices/{id}/telemetry', auth: 'bearer' },
  { method: 'get', path: '/api/v1/devices/{id}/telemetry/stream', auth: 'bearer' },
  { method: 'post', path: '/api/v1/devices/{id}/commands', auth: 'bearer' },
  { method: 'post', path: '/api/v1/devices/{id}/revoke', auth: 'bearer' },
  { method: 'post', path: '/api/v1/devices/{id}/renew', auth: 'bearer' },
  { method: 'post', path: '/api/v1/devices/renew', auth: 'bearer' },
  { method: 'get', path: '/api/v1/organisation/renewal', auth: 'bearer' },
  { method: 'put', path: '/api/v1/organisation/renewal', auth: 'bearer' },
  { method: 'post', path: '/api/v1/batches', auth: 'bearer' },
  { method: 'get', path: '/api/v1/batches/{id}', auth: 'bearer' },
  { method: 'get', path: '/api/v1/batches/{id}/bundle', auth: 'bearer' },
  { method: 'post', path: '/api/v1/batches/{id}/revoke', auth: 'bearer' },
  { method: 'post', path: '/api/v1/batches/import', auth: 'bearer' },
  { method: 'post', path: '/api/v1/factory-kits', auth: 'bearer' },
  { method: 'get', path: '/api/v1/openapi.json', auth: 'none' },
  { method: 'get', path: '/crl', auth: 'none' },
  { method: 'post', path: '/ocsp', auth: 'none' },
  { method: 'get', path: '/ocsp/{request}', auth: 'none' },
  { method: 'get', path: '/healthz', auth: 'none' },
  { method: 'get', path: '/.well-known/fleetkey/trust/latest', auth: 'none' },
  { method: 'get', path: '/.well-known/fleetkey/trust/{version}', auth: 'none' },
  { method: 'get', path: '/.well-known/est/cacerts', auth: 'none' },
  { method: 'get', path: '/.well-known/est/csrattrs', auth: 'none' },
  { method: 'post', path: '/.well-known/est/simpleenroll', auth: 'claim-token' },
  { method: 'post', path: '/.well-known/est/simplereenroll', auth: 'client-certificate' },
  { method: 'post', path: '/.well-known/fleetkey/attest/tpm/challenge', auth: 'claim-token' },
  { method: 'post', path: '/.well-known/fleetkey/attest/tpm/enroll', auth: 'claim-token' },
  { method: 'post', path: '/.well-known/fleetkey/attest/se/challenge', auth: 'claim-token' },
  { method: 'post', path: '/.well-known/fleetkey/attest/se/enroll', auth: 'claim-token' },
  { method: 'get', path: '/api/v1/attestation/vendor-roots', auth: 'bearer' },
  { method: 'post', path: '/api/v1/attestation/vendor-roots', auth: 'bearer' },
  { method: 'delete', path: '/api/v1/attestation/vendor-roots/{id}', auth: 'bearer' },
  { method: 'get', path: '/api/v1/attestation/owned-chips', auth: 'bearer' },
  { method: 'post', path: '/api/v1/attestation/owned-chips', auth: 'bearer' },
  { method: 'delete', path: '/api/v1/attestation/owned-chips/{id}', auth: 'bearer' },
  { method: 'get', path: '/api/v1/attestation/policy', auth: 'bearer' },
  { method: 'put', path: '/api/v1/attestation/policy', auth: 'bearer' },
  { method: 'get', path: '/.well-known/fleetkey/device', auth: 'client-certificate' },
  { method: 'post', path: '/.well-known/fleetkey/device/retire-previous', auth: 'client-certificate' },
] as const;
const BEARER_ROUTES = ROUTES.filter((r) => r.auth === 'bearer');
const concrete = (path: string): string => path.replace('{id}', 'ct_aaaaaaaaaaaaaaaa');

const STACK_TRACE = /at .*:\d+:\d+/;
const FILE_PATH = /\/(work|home|tmp|usr|src|dist)\/|node_modules|file:\/\/|\.[cm]?[jt]s:\d+|[A-Z]:\\/;

function assertCleanError(r: RawResponse, status: number, codes: readonly string[], label: string): void {
  assert.equal(r.status, status, `${label}: ${r.text}`);
  assert.ok(codes.includes(r.body?.error?.code), `${label}: code ${r.body?.error?.code} not in ${codes.join('/')}`);
  assert.equal(typeof r.body.error.message, 'string');
  assert.equal(typeof r.body.error.requestId, 'string');
  assert.doesNotMatch(r.text, STACK_TRACE, `${label}: stack trace in body`);
  assert.doesNotMatch(r.text, FILE_PATH, `${label}: file path in body`);
}

async function enrollDevice(t: TestHub, claimToken: string): Promise<string> {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const csr = await buildCsr({ spki, subject: [['CN', 'd']], algorithm: 'p256', sign: async (d) => sign('sha256', d, pair.privateKey) });
  const r = await t.request('POST', '/.well-known/est/simpleenroll', {
    headers: { 'content-type': 'application/pkcs10', authorization: `Bearer ${claimToken}` },
    body: csr.toString('base64'),
  });
  assert.equal(r.status, 200, r.text);
  return deviceIdFromCertificate(decodeCertsOnly(Buffer.from(r.text.replace(/\s+/g, ''), 'base64'))[0]!);
}

/** Everything stored for one organisation that an attacker from another must not change. */
async function tenantSnapshot(t: TestHub, tenantId: string): Promise<unknown> {
  const devices = await t.hub.store.devices.list(tenantId);
  return {
    claimTokens: await t.hub.store.claimTokens.list(tenantId),
    devices,
    certificates: await Promise.all(devices.map((d) => t.hub.store.devices.certificates(tenantId, d.id))),
  };
}

describe('owner API attacks (real hub over HTTPS)', () => {
  let t: TestHub;
  let a: TestOwner;
  let b: TestOwner;
  let bTokenId: string;
  let bDeviceId: string;

  before(async () => {
    t = await startTestHub();
    a = await t.owner('Tenant A');
    b = await t.owner('Tenant B');
    await t.claimToken(a.token);
    await enrollDevice(t, (await t.claimToken(a.token)).token);
    bTokenId = (await t.claimToken(b.token, { label: 'B spare' })).id;
    const used = await t.claimToken(b.token);
    bDeviceId = await enrollDevice(t, used.token);
  });
  after(async () => t.stop());

  test("cross-tenant access (BOLA/IDOR): owner A gets 404 for every object of tenant B, and B's objects are unchanged", async () => {
    const bClaimTokens = (await t.hub.store.claimTokens.list(b.tenantId)).map((c) => c.id);
    const bDevices = (await t.hub.store.devices.list(b.tenantId)).map((d) => d.id);
    assert.ok(bClaimTokens.includes(bTokenId) && bDevices.includes(bDeviceId));
    const before = await tenantSnapshot(t, b.tenantId);
    const notFoundBody = (await t.api('GET', '/api/v1/devices/dev-doesnotexist00000', undefined, a.token)).body;
    for (const id of [...bClaimTokens, ...bDevices]) {
      for (const method of ['GET', 'DELETE']) {
        for (const collection of ['claim-tokens', 'devices']) {
          const r = await t.request(method, `/api/v1/${collection}/${id}`, { headers: { authorization: `Bearer ${a.token}` } });
          assertCleanError(r, 404, ['NOT_FOUND'], `${method} ${collection}/${id} as A`);
          assert.deepEqual({ ...r.body.error, requestId: '' }, { ...notFoundBody.error, requestId: '' }, 'same answer as for an id that does not exist');
        }
      }
    }
    assert.deepEqual(await tenantSnapshot(t, b.tenantId), before, "tenant B's stored objects are unchanged");
    // Control: the same requests work for B, so the 404s above are the tenant check.
    assert.equal((await t.api('GET', `/api/v1/devices/${bDeviceId}`, undefined, b.token)).status, 200);
  });

  test("list endpoints never show another tenant's objects, also when paginating from B's ids", async () => {
    const bIds = new Set([
      ...(await t.hub.store.claimTokens.list(b.tenantId)).map((c) => c.id),
      ...(await t.hub.store.devices.list(b.tenantId)).map((d) => d.id),
    ]);
    const aIds = new Set([
      ...(await t.hub.store.claimTokens.list(a.tenantId)).map((c) => c.id),
      ...(await t.hub.store.devices.list(a.tenantId)).map((d) => d.id),
    ]);
    const pages = [
      await t.api('GET', '/api/v1/claim-tokens', undefined, a.token),
      await t.api('GET', '/api/v1/devices', undefined, a.token),
      await t.api('GET', '/api/v1/devices?limit=1', undefined, a.token),
      await t.api('GET', `/api/v1/devices?after=${bDeviceId}`, undefined, a.token),
      await t.api('GET', `/api/v1/devices?after=${bDeviceId.slice(0, 5)}`, undefined, a.token),
    ];
    for (const page of pages) {
      assert.equal(page.status, 200);
      for (const item of page.body.items as Array<{ id: string }>) {
        assert.ok(!bIds.has(item.id), `tenant B's ${item.id} listed to A`);
        assert.ok(aIds.has(item.id));
      }
    }
    assert.equal(pages[0]!.body.items.length, (await t.hub.store.claimTokens.list(a.tenantId)).length, 'A sees all of its own tokens');
  });

  test('every /api/v1 route except POST /sessions (and the public OpenAPI document) refuses a missing, garbage or unknown bearer with 401 AUTH_REQUIRED', async () => {
    const before = await tenantSnapshot(t, a.tenantId);
    const bearers: Array<[string, Record<string, string>]> = [
      ['no Authorization', {}],
      ['garbage bearer', { authorization: 'Bearer garbage' }],
      ['empty bearer', { authorization: 'Bearer ' }],
      ['Basic instead of Bearer', { authorization: `Basic ${Buffer.from(`${a.email}:${OWNER_PASSWORD}`).toString('base64')}` }],
      ['well-formed unknown session token', { authorization: `Bearer fks_${'A'.repeat(43)}` }],
      ['claim-token-shaped bearer', { authorization: `Bearer fkct_${'A'.repeat(43)}` }],
      ['session token with a flipped last character', { authorization: `Bearer ${a.token.slice(0, -1)}${a.token.endsWith('A') ? 'B' : 'A'}` }],
    ];
    for (const route of BEARER_ROUTES) {
      for (const [label, headers] of bearers) {
        const body = route.method === 'post' ? JSON.stringify({}) : undefined;
        const r = await t.request(route.method.toUpperCase(), concrete(route.path), {
          headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body !== undefined ? { body } : {}),
        });
        assertCleanError(r, 401, ['AUTH_REQUIRED'], `${route.method} ${route.path} with ${label}`);
      }
    }
    // Authentication comes before the body is looked at: an unauthenticated caller learns nothing from validation.
    for (const body of ['{"ttlSeconds": 1}', '{"ttlSeconds": ', '{"__proto__": {}}']) {
      const r = await t.request('POST', '/api/v1/claim-tokens', { headers: { 'content-type': 'application/json' }, body });
      assertCleanError(r, 401, ['AUTH_REQUIRED'], `unauthenticated POST with body ${body}`);
    }
    assert.deepEqual(await tenantSnapshot(t, a.tenantId), before, 'nothing created or revoked');
    assert.equal((await t.api('GET', '/api/v1/claim-tokens', undefined, a.token)).status, 200, "A's real session still works");
  });

  test('a logged-out session token is refused on every route with 401', async () => {
    const c = await t.owner('Tenant C');
    assert.equal((await t.api('GET', '/api/v1/devices', undefined, c.token)).status, 200);
    assert.equal((await t.api('DELETE', '/api/v1/sessions/current', undefined, c.token)).status, 204);
    for (const route of BEARER_ROUTES) {
      const r = await t.request(route.method.toUpperCase(), concrete(route.path), {
        headers: { authorization: `Bearer ${c.token}`, ...(route.method === 'post' ? { 'content-type': 'application/json' } : {}) },
        ...(route.method === 'post' ? { body: '{}' } : {}),
      });
      assertCleanError(r, 401, ['AUTH_REQUIRED'], `${route.method} ${route.path} after logout`);
    }
    assert.deepEqual(await t.hub.store.claimTokens.list(c.tenantId), [], 'no claim token created with the dead session');
  });

  test('unknown email and wrong password give the same status and byte-identical bodies (except requestId)', async () => {
    const login = (email: string) => t.request('POST', '/api/v1/sessions', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: 'not the password at all', totp: '000000' }),
    });
    const unknown = await login('nobody@nowhere.example');
    const wrong = await login(a.email);
    assertCleanError(unknown, 401, ['AUTH_FAILED'], 'unknown email');
    assertCleanError(wrong, 401, ['AUTH_FAILED'], 'wrong password');
    const strip = (r: RawResponse) => r.text.replace(r.body.error.requestId, '<id>');
    assert.equal(strip(unknown), strip(wrong));
    assert.notEqual(unknown.body.error.requestId, wrong.body.error.requestId);
    const headerNames = (r: RawResponse) => Object.keys(r.headers).filter((h) => h !== 'date').sort();
    assert.deepEqual(headerNames(unknown), headerNames(wrong));
    assert.equal(unknown.headers['content-length'], wrong.headers['content-length']);
  });

  test('hostile JSON on POST /api/v1/claim-tokens → 400 with a code, no claim token created, no internals in the body', async () => {
    const before = await t.hub.store.claimTokens.list(a.tenantId);
    const cases: Array<[string, string, string, number, readonly string[]]> = [
      ['malformed JSON', '{"ttlSeconds": ', 'application/json', 400, ['BAD_REQUEST']],
      ['__proto__ key', '{"__proto__": {"maxUses": 1000}}', 'application/json', 400, ['BAD_REQUEST', 'VALIDATION_FAILED']],
      ['nested __proto__', '{"label": "x", "a": {"__proto__": {"isAdmin": true}}}', 'application/json', 400, ['BAD_REQUEST', 'VALIDATION_FAILED']],
      ['constructor.prototype', '{"constructor": {"prototype": {"isAdmin": true}}}', 'application/json', 400, ['BAD_REQUEST', 'VALIDATION_FAILED']],
      ['unknown field', '{"tenantId": "someone-else"}', 'application/json', 400, ['VALIDATION_FAILED']],
      ['ttlSeconds 86401', '{"ttlSeconds": 86401}', 'application/json', 400, ['VALIDATION_FAILED']],
      ['ttlSeconds 59', '{"ttlSeconds": 59}', 'application/json', 400, ['VALIDATION_FAILED']],
      ['ttlSeconds fractional', '{"ttlSeconds": 600.5}', 'application/json', 400, ['VALIDATION_FAILED']],
      ['maxUses 0', '{"maxUses": 0}', 'application/json', 400, ['VALIDATION_FAILED']],
      ['maxUses negative', '{"maxUses": -1}', 'application/json', 400, ['VALIDATION_FAILED']],
      ['maxUses above the limit', '{"maxUses": 10001}', 'application/json', 400, ['VALIDATION_FAILED']],
      ['label too long', JSON.stringify({ label: 'x'.repeat(101) }), 'application/json', 400, ['VALIDATION_FAILED']],
      ['array body', '[]', 'application/json', 400, ['VALIDATION_FAILED', 'BAD_REQUEST']],
      ['JSON string body', '"hello"', 'application/json', 400, ['VALIDATION_FAILED', 'BAD_REQUEST']],
      ['null body', 'null', 'application/json', 400, ['VALIDATION_FAILED', 'BAD_REQUEST']],
    ];
    for (const [label, body, contentType, status, codes] of cases) {
      const r = await t.request('POST', '/api/v1/claim-tokens', { headers: { authorization: `Bearer ${a.token}`, 'content-type': contentType }, body });
      assertCleanError(r, status, codes, label);
      assert.equal(r.body.token, undefined);
    }
    const tooBig = await t.request('POST', '/api/v1/claim-tokens', {
      headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ label: 'x'.repeat(70_000) }),
    });
    assertCleanError(tooBig, 413, ['BODY_TOO_LARGE'], 'body over maxJsonBodyBytes');
    const xml = await t.request('POST', '/api/v1/claim-tokens', { headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/xml' }, body: '<a/>' });
    assertCleanError(xml, 415, ['UNSUPPORTED_MEDIA_TYPE'], 'XML body');
    assert.deepEqual(await t.hub.store.claimTokens.list(a.tenantId), before, 'no claim token created');
    assert.equal(({} as Record<string, unknown>).maxUses, undefined, 'Object.prototype not polluted');
  });

  test('hostile ids and queries → 400/404 with a code and no internals', async () => {
    const get = (path: string) => t.request('GET', path, { headers: { authorization: `Bearer ${a.token}` } });
    const cases: Array<[string, number, readonly string[]]> = [
      ['/api/v1/devices/..%2F..%2Fetc%2Fpasswd', 400, ['VALIDATION_FAILED']],
      [`/api/v1/devices/${'a'.repeat(81)}`, 400, ['VALIDATION_FAILED']],
      ["/api/v1/devices/x'%20OR%20'1'='1", 400, ['VALIDATION_FAILED']],
      ['/api/v1/devices?limit=0', 400, ['VALIDATION_FAILED']],
      ['/api/v1/devices?limit=100000', 400, ['VALIDATION_FAILED']],
      ['/api/v1/devices?limit=abc', 400, ['VALIDATION_FAILED']],
      ['/api/v1/devices?after=%27%3B%20DROP%20TABLE%20devices', 400, ['VALIDATION_FAILED']],
      ['/api/v1/devices?admin=true', 400, ['VALIDATION_FAILED']],
      ['/api/v1/no-such-route', 404, ['NOT_FOUND']],
    ];
    for (const [path, status, codes] of cases) assertCleanError(await get(path), status, codes, path);
    const broken = await t.request('POST', '/api/v1/sessions', { headers: { 'content-type': 'application/json' }, body: '{"email":' });
    assertCleanError(broken, 400, ['BAD_REQUEST'], 'malformed login JSON');
  });

  test('GET /api/v1/openapi.json is an OpenAPI 3.1 document that lists exactly the routes the server has', async () => {
    const r = await t.api('GET', '/api/v1/openapi.json');
    assert.equal(r.status, 200);
    const doc = r.body as { openapi: string; info: Record<string, unknown>; paths: Record<string, Record<string, any>>; components: any };
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.equal(typeof doc.info.title, 'string');
    assert.equal(typeof doc.info.version, 'string');
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)).sort();
    const served = ROUTES.filter((x) => x.path !== '/api/v1/openapi.json'); // the document need not list itself
    assert.deepEqual(documented, served.map((x) => `${x.method} ${x.path}`).sort());
    const resolve = (ref: string): unknown => ref.replace(/^#\//, '').split('/').reduce<any>((o, k) => o?.[k], doc);
    for (const route of served) {
      const op = doc.paths[route.path]![route.method]!;
      assert.ok(op.responses && Object.keys(op.responses).length > 0, `${route.path} has responses`);
      for (const [status, response] of Object.entries<any>(op.responses)) {
        assert.match(status, /^[1-5]\d\d$/);
        if (response.$ref !== undefined) assert.ok(resolve(response.$ref), `${response.$ref} resolves`);
        else assert.equal(typeof response.description, 'string');
      }
      if (route.auth === 'bearer') assert.deepEqual(op.security, [{ bearerAuth: [] }], `${route.path} declares bearer auth`);
      for (const s of op.security ?? []) for (const name of Object.keys(s)) assert.ok(doc.components.securitySchemes[name], `${name} scheme exists`);
      if (route.path.includes('{id}')) assert.ok(op.parameters?.some((p: { name: string; in: string }) => p.name === 'id' && p.in === 'path'));
    }
    // Every listed route is served: a probe never gets the router's "no such route".
    for (const route of ROUTES) {
      if (route.method === 'get' && route.auth === 'none') {
        const probe = await t.request('GET', route.path.replace('{version}', '1'));
        assert.ok(probe.status === 200 || probe.status === 204, `${route.path}: ${probe.status}`);
      } else if (route.auth !== 'none') {
        const probe = await t.request(route.method.toUpperCase(), concrete(route.path), { headers: { 'content-type': 'application/pkcs10' }, body: 'AAAA' });
        assert.equal(probe.status, 401, `${route.method} ${route.path} is served and asks for credentials`);
      }
    }
  });
});

describe('owner login lockout over HTTPS', () => {
  let t: TestHub;
  let clock: ManualClock;
  let owner: TestOwner;
  before(async () => {
    clock = new ManualClock(Date.now());
    t = await startTestHub({}, { clock });
    owner = await t.owner('Lockout Org');
  });
  after(async () => t.stop());

  const login = (password: string) => t.request('POST', '/api/v1/sessions', {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: owner.email, password, totp: t.totp(owner.otpauthUri) }),
  });
  const loginSuccesses = async () => (await t.hub.store.audit.list({ limit: 10_000 })).filter((e) => e.type === 'login' && e.result === 'success').length;

  test('5 wrong passwords, then the correct password and a fresh TOTP code → 429 AUTH_LOCKED and no session; accepted after the lock expires', async () => {
    const successes = await loginSuccesses();
    for (let i = 0; i < 5; i++) assertCleanError(await login(`wrong password ${i}`), 401, ['AUTH_FAILED'], `wrong password ${i + 1}`);
    clock.advance(30_000); // a new TOTP step, so the code below is valid and unused
    const locked = await login(OWNER_PASSWORD);
    assertCleanError(locked, 429, ['AUTH_LOCKED'], 'correct credentials while locked');
    assert.equal(locked.body.token, undefined);
    assert.equal(await loginSuccesses(), successes, 'no session was created');
    const last = (await t.hub.store.audit.list({ limit: 10_000 })).at(-1);
    assert.equal(last?.code, 'AUTH_LOCKED');
    clock.advance(t.hub.config.lockoutSeconds * 1000 + 30_000);
    const after = await login(OWNER_PASSWORD);
    assert.equal(after.status, 201, after.text);
    assert.equal(await loginSuccesses(), successes + 1);
  });
});
