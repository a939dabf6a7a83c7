/**
 * EST with independent clients: curl performs the enrollment (curl's --pinnedpubkey pins the leaf,
 * so it trusts the hub root as its only CA instead), openssl makes the CSRs, reads the PKCS#7 and
 * verifies the issued chain against the cacerts response.
 * curl runs asynchronously: the hub lives in this process, so a synchronous child would deadlock.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestHub, type TestHub } from '../helpers/test-hub.js';

const sh = (cmd: string, args: string[], input?: Buffer | string): Buffer =>
  execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'] });

/** Runs a child asynchronously (the hub serves from this process meanwhile). */
function run(cmd: string, args: string[]): Promise<{ status: number; stdout: Buffer; stderr: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }));
  });
}

async function curl(t: TestHub, path: string, args: string[] = []): Promise<{ status: number; body: Buffer }> {
  const r = await run('curl', [
    '-sS', '--max-time', '20', '--cacert', t.rootPemPath, '-o', '-', '-w', '\n%{http_code}', ...args,
    `${t.hub.url}${path}`,
  ]);
  const out = r.stdout;
  const nl = out.lastIndexOf(0x0a);
  return { status: Number(out.subarray(nl + 1).toString()), body: out.subarray(0, nl) };
}

function makeCsr(dir: string, name: string, keyArgs: string[]): { csrB64Path: string; keyPath: string } {
  const keyPath = join(dir, `${name}.key`);
  const derPath = join(dir, `${name}.csr.der`);
  sh('openssl', ['req', '-new', ...keyArgs, '-nodes', '-keyout', keyPath, '-subj', '/CN=asks-for-this-name', '-outform', 'DER', '-out', derPath]);
  const csrB64Path = join(dir, `${name}.csr.b64`);
  writeFileSync(csrB64Path, readFileSync(derPath).toString('base64'));
  return { csrB64Path, keyPath };
}

function pkcs7ToPem(dir: string, name: string, base64Body: Buffer): string {
  const der = Buffer.from(base64Body.toString('utf8').replace(/\s+/g, ''), 'base64');
  const p7 = join(dir, `${name}.p7b`);
  writeFileSync(p7, der);
  return sh('openssl', ['pkcs7', '-inform', 'DER', '-in', p7, '-print_certs']).toString('utf8');
}

function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

describe('EST over HTTPS with curl and openssl as independent clients', () => {
  let t: TestHub;
  let owner: { token: string; tenantId: string };
  before(async () => {
    t = await startTestHub();
    owner = await t.owner('Acme Interop');
  });
  after(async () => t.stop());

  test('cacerts (curl) is a certs-only PKCS#7 with the device CA and the hub root', async () => {
    const r = await curl(t, '/.well-known/est/cacerts');
    assert.equal(r.status, 200);
    const certs = splitPem(pkcs7ToPem(t.dir, 'cacerts', r.body));
    assert.equal(certs.length, 2);
    const subjects = certs.map((c) => sh('openssl', ['x509', '-noout', '-subject'], c).toString());
    assert.ok(subjects.some((s) => s.includes('fleetkey device CA')));
    assert.ok(subjects.some((s) => s.includes('fleetkey hub root')));
  });

  for (const [label, keyArgs] of [
    ['P-256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['P-384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ['P-521', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521']],
    ['Ed25519', ['-newkey', 'ed25519']],
    ['RSA-2048', ['-newkey', 'rsa:2048']],
  ] as const) {
    test(`simpleenroll (curl, HTTP Basic with the claim token) issues a ${label} certificate that openssl verifies against cacerts`, async () => {
      const claim = await t.claimToken(owner.token);
      const { csrB64Path } = makeCsr(t.dir, `dev-${label}`, [...keyArgs]);
      const r = await curl(t, '/.well-known/est/simpleenroll', ['--user', `any-user:${claim.token}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${csrB64Path}`]);
      assert.equal(r.status, 200, r.body.toString());
      const leafPem = pkcs7ToPem(t.dir, `leaf-${label}`, r.body);
      assert.equal(splitPem(leafPem).length, 1);
      const chain = splitPem(pkcs7ToPem(t.dir, 'cacerts2', (await curl(t, '/.well-known/est/cacerts')).body));
      const caFile = join(t.dir, 'chain-untrusted.pem');
      const rootFile = join(t.dir, 'chain-root.pem');
      const deviceCaPem = chain.find((c) => sh('openssl', ['x509', '-noout', '-subject'], c).toString().includes('device CA'))!;
      writeFileSync(caFile, deviceCaPem);
      writeFileSync(rootFile, readFileSync(t.rootPemPath));
      const leafFile = join(t.dir, `leaf-${label}.pem`);
      writeFileSync(leafFile, leafPem);
      const verify = await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', rootFile, '-untrusted', caFile, leafFile]);
      assert.equal(verify.status, 0, verify.stderr.toString() + verify.stdout.toString());
      const text = sh('openssl', ['x509', '-noout', '-text', '-in', leafFile]).toString();
      assert.match(text, /Subject: CN ?= ?dev-[a-z2-7]{26}/);
      assert.match(text, /URI:urn:fleetkey:device:dev-[a-z2-7]{26}/);
      assert.doesNotMatch(text, /asks-for-this-name/, 'the CSR subject must be ignored');
      const devices = await t.api('GET', '/api/v1/devices', undefined, owner.token);
      const id = /CN ?= ?(dev-[a-z2-7]{26})/.exec(text)![1];
      assert.ok(devices.body.items.some((d: { id: string }) => d.id === id), 'device bound to the organisation');
    });
  }

  test('claim token used twice with curl: the second redemption is refused with 401 CLAIM_TOKEN_INVALID and no certificate', async () => {
    const claim = await t.claimToken(owner.token);
    const first = makeCsr(t.dir, 'twice-1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const second = makeCsr(t.dir, 'twice-2', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const args = (p: string) => ['--user', `d:${claim.token}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${p}`];
    assert.equal((await curl(t, '/.well-known/est/simpleenroll', args(first.csrB64Path))).status, 200);
    const before = (await t.api('GET', '/api/v1/devices', undefined, owner.token)).body.items.length;
    const r = await curl(t, '/.well-known/est/simpleenroll', args(second.csrB64Path));
    assert.equal(r.status, 401);
    assert.equal(JSON.parse(r.body.toString()).error.code, 'CLAIM_TOKEN_INVALID');
    assert.equal((await t.api('GET', '/api/v1/devices', undefined, owner.token)).body.items.length, before);
  });

  test('simpleenroll without credentials gets 401 with WWW-Authenticate: Basic realm="fleetkey"', async () => {
    const { csrB64Path } = makeCsr(t.dir, 'noauth', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const r = await run('curl', ['-sS', '-i', '--max-time', '20', '--cacert', t.rootPemPath, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${csrB64Path}`, `${t.hub.url}/.well-known/est/simpleenroll`]);
    const text = r.stdout.toString();
    assert.match(text, /^HTTP\/1\.1 401/m);
    assert.match(text, /^www-authenticate: Basic realm="fleetkey"/im);
  });

  test('simplereenroll over mutual TLS (curl --cert/--key) keeps the device id and refuses without a client certificate', async () => {
    const claim = await t.claimToken(owner.token);
    const first = makeCsr(t.dir, 're-1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const r1 = await curl(t, '/.well-known/est/simpleenroll', ['--user', `d:${claim.token}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${first.csrB64Path}`]);
    assert.equal(r1.status, 200);
    const leafFile = join(t.dir, 're-leaf.pem');
    writeFileSync(leafFile, pkcs7ToPem(t.dir, 're-leaf', r1.body));
    const subject = sh('openssl', ['x509', '-noout', '-subject', '-in', leafFile]).toString();
    const next = makeCsr(t.dir, 're-2', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const noCert = await curl(t, '/.well-known/est/simplereenroll', ['-H', 'Content-Type: application/pkcs10', '--data-binary', `@${next.csrB64Path}`]);
    assert.equal(noCert.status, 401);
    assert.equal(JSON.parse(noCert.body.toString()).error.code, 'CERT_REQUIRED');
    const r2 = await curl(t, '/.well-known/est/simplereenroll', ['--cert', leafFile, '--key', first.keyPath, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${next.csrB64Path}`]);
    assert.equal(r2.status, 200, r2.body.toString());
    const renewed = join(t.dir, 're-leaf2.pem');
    writeFileSync(renewed, pkcs7ToPem(t.dir, 're-leaf2', r2.body));
    assert.equal(sh('openssl', ['x509', '-noout', '-subject', '-in', renewed]).toString(), subject, 'same device id after re-enrollment');
    const pub = (p: string, key: boolean) => sh('openssl', key ? ['pkey', '-in', p, '-pubout'] : ['x509', '-in', p, '-noout', '-pubkey']).toString();
    assert.equal(pub(renewed, false), pub(next.keyPath, true), 'renewed certificate carries the new key');
  });
});
