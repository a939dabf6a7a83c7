/**
 * enroll / renew / status against an EST hub whose CA role is played by openssl (see
 * helpers/est-hub.ts). Security tests are named after the attack and assert that the protected
 * action did not happen and that the state directory did not change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { enroll, renew, status, type EnrollOptions } from '../../src/index.js';
import { makeHubPki, openssl, type HubPki } from '../helpers/pki.js';
import { hubError, issueFromCsr, pkcs7Base64, startEstHub, type EstHub } from '../helpers/est-hub.js';
import { fleetkeyError, pinOf } from '../helpers/pins.js';

const TOKEN = 'ct_s3cret-claim-token-value';
let pki: HubPki;
let hub: EstHub;
let attacker: EstHub;

before(async () => {
  pki = makeHubPki();
  const common = { pki: pki.pki, deviceCa: pki.deviceCa, caCertificates: [pki.root, pki.deviceCa], token: TOKEN };
  hub = await startEstHub({ ...common, tlsLeaf: pki.hubLeaf, tlsChain: [pki.root] });
  attacker = await startEstHub({ ...common, tlsLeaf: pki.fakeLeaf, tlsChain: [pki.fakeRoot] });
});
after(async () => {
  await hub.close();
  await attacker.close();
});

async function stateDir(): Promise<string> {
  return join(await fs.mkdtemp(join(tmpdir(), 'fleetkey-device-')), 'state');
}

function options(dir: string, extra: Partial<EnrollOptions> = {}): EnrollOptions {
  return { hubUrl: hub.url, pin: pinOf(pki.root), token: TOKEN, stateDir: dir, timeoutMs: 5000, ...extra };
}

async function listing(dir: string): Promise<string[]> {
  return fs.readdir(dir, { recursive: true }).catch(() => []);
}

describe('enroll against an openssl-backed EST hub', () => {
  for (const keyAlgorithm of ['p256', 'p384', 'p521', 'ed25519'] as const) {
    test(`${keyAlgorithm}: enrolls, stores the identity, and openssl verifies cert.pem against the root`, async () => {
      const dir = await stateDir();
      const result = await enroll(options(dir, { keyAlgorithm }));
      assert.match(result.deviceId, /^dev-\d+$/);
      assert.equal(result.keyAlgorithm, keyAlgorithm);
      const identityText = await fs.readFile(join(dir, 'identity.json'), 'utf8');
      assert.ok(!identityText.includes(TOKEN), 'the claim token is not stored');
      const chain = await fs.readFile(join(dir, 'chain.pem'), 'utf8');
      const [first, second] = chain.split(/(?<=-----END CERTIFICATE-----\n)/);
      assert.equal(new X509Certificate(first!).subject, 'CN=fleetkey device CA', 'chain.pem starts with the device CA');
      assert.equal(new X509Certificate(second!).subject, 'O=fleetkey test\nCN=fleetkey hub root', 'then the hub root');
      openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', pki.root.certPath, '-untrusted', join(dir, 'chain.pem'), join(dir, 'cert.pem')]);
      const cert = new X509Certificate(await fs.readFile(join(dir, 'cert.pem')));
      const keyFile = join(dir, 'keys', `${result.keyStore.label}.key.pem`);
      assert.equal((await fs.stat(keyFile)).mode & 0o777, 0o600);
      assert.ok(cert.checkPrivateKey(createPrivateKey(await fs.readFile(keyFile))), 'cert.pem is for the stored key');
      const s = await status({ stateDir: dir });
      assert.equal(s.deviceId, result.deviceId);
      assert.equal(s.state, 'valid');
      assert.equal(s.renewalDue, false);
    });
  }

  test('the claim token travels only as the Basic password of simpleenroll, never in a URL', async () => {
    const before = hub.requests.length;
    await enroll(options(await stateDir()));
    const sent = hub.requests.slice(before);
    assert.deepEqual(sent.map((r) => `${r.method} ${r.path}`), ['GET /.well-known/est/cacerts', 'POST /.well-known/est/simpleenroll']);
    assert.equal(sent[0]!.headers.authorization, undefined, 'cacerts carries no credential');
    assert.equal(sent[1]!.headers['content-type'], 'application/pkcs10');
    assert.ok(sent.every((r) => !r.path.includes(TOKEN)));
  });

  test('device agent facing a server with an unpinned key is refused and never sends the claim token', async () => {
    const dir = await stateDir();
    const requestsBefore = attacker.requests.length;
    await assert.rejects(enroll(options(dir, { hubUrl: attacker.url })), fleetkeyError('PIN_MISMATCH'));
    assert.equal(attacker.requests.length, requestsBefore, 'no HTTP request reached the unpinned server');
    assert.equal(attacker.bytesReceived(), 0, 'no application byte (so no Authorization header) reached it');
    assert.deepEqual(await listing(dir), [], 'nothing was written: no key, no identity');
  });

  test('a wrong claim token is CLAIM_TOKEN_INVALID, the error never shows the token, and nothing is stored', async () => {
    const dir = await stateDir();
    const wrong = 'ct_wrong-token-xyz';
    const err: unknown = await enroll(options(dir, { token: wrong })).then(() => undefined, (e: unknown) => e);
    assert.ok(fleetkeyError('CLAIM_TOKEN_INVALID')(err));
    const shown = [String(err), JSON.stringify(err), String((err as Error).cause), (err as Error).stack ?? ''].join('\n');
    assert.ok(!shown.includes(wrong), 'token absent from message, wire form, cause and stack');
    assert.ok(!(await listing(dir)).includes('identity.json'));
  });

  test('a hub that returns a certificate for a key other than ours is refused (HUB_PROTOCOL_ERROR), nothing stored', async () => {
    const dir = await stateDir();
    hub.override = (r) => (r.path.endsWith('/simpleenroll') ? { status: 200, contentType: 'application/pkcs7-mime', body: pkcs7Of([pki.deviceLeaf.der]) } : undefined);
    try {
      await assert.rejects(enroll(options(dir)), fleetkeyError('HUB_PROTOCOL_ERROR', /public key of our CSR/));
    } finally {
      hub.override = undefined;
    }
    assert.ok(!(await listing(dir)).includes('identity.json'));
  });

  test('an unknown hub error code becomes HUB_PROTOCOL_ERROR; a known one keeps its code', async () => {
    hub.override = (r) => (r.path.endsWith('/simpleenroll') ? hubError(400, 'NOT_A_FLEETKEY_CODE') : undefined);
    try {
      await assert.rejects(enroll(options(await stateDir())), fleetkeyError('HUB_PROTOCOL_ERROR', /NOT_A_FLEETKEY_CODE/));
      hub.override = (r) => (r.path.endsWith('/simpleenroll') ? hubError(409, 'KEY_ALREADY_ENROLLED') : undefined);
      await assert.rejects(enroll(options(await stateDir())), fleetkeyError('KEY_ALREADY_ENROLLED'));
    } finally {
      hub.override = undefined;
    }
  });

  test('a response body over 1 MiB is cut off as HUB_PROTOCOL_ERROR', async () => {
    hub.override = (r) => (r.path.endsWith('/cacerts') ? { status: 200, contentType: 'application/pkcs7-mime', body: 'A'.repeat(1024 * 1024 + 8) } : undefined);
    try {
      await assert.rejects(enroll(options(await stateDir())), fleetkeyError('HUB_PROTOCOL_ERROR', /over 1048576 bytes/));
    } finally {
      hub.override = undefined;
    }
  });

  test('cacerts that is not base64 PKCS#7, or has the wrong media type, is HUB_PROTOCOL_ERROR', async () => {
    for (const body of [{ contentType: 'application/pkcs7-mime', body: '%%% not base64' }, { contentType: 'text/html', body: 'QUJD' }, { contentType: 'application/pkcs7-mime', body: 'QUJD' }]) {
      hub.override = (r) => (r.path.endsWith('/cacerts') ? { status: 200, ...body } : undefined);
      await assert.rejects(enroll(options(await stateDir())), fleetkeyError('HUB_PROTOCOL_ERROR'), body.body);
    }
    hub.override = undefined;
  });

  test('enrolling an already enrolled state directory is CONFLICT and does not contact the hub', async () => {
    const dir = await stateDir();
    await enroll(options(dir));
    const identity = await fs.readFile(join(dir, 'identity.json'));
    const requestsBefore = hub.requests.length;
    await assert.rejects(enroll(options(dir)), fleetkeyError('CONFLICT'));
    assert.equal(hub.requests.length, requestsBefore);
    assert.deepEqual(await fs.readFile(join(dir, 'identity.json')), identity);
  });
});

describe('renew over mutual TLS', () => {
  test('renews with a new key over mTLS (no token), keeps the device id and swaps the files', async () => {
    const dir = await stateDir();
    const first = await enroll(options(dir));
    const oldCert = await fs.readFile(join(dir, 'cert.pem'), 'utf8');
    const requestsBefore = hub.requests.length;
    const renewed = await renew({ stateDir: dir, timeoutMs: 5000 });
    const reenroll = hub.requests.slice(requestsBefore).find((r) => r.path === '/.well-known/est/simplereenroll');
    assert.ok(reenroll !== undefined);
    assert.equal(reenroll.headers.authorization, undefined, 'renewal sends no token');
    assert.deepEqual(reenroll.clientCertificate, new X509Certificate(oldCert).raw, 'authenticated with the current certificate');
    assert.equal(renewed.deviceId, first.deviceId);
    assert.notEqual(renewed.keyStore.label, first.keyStore.label);
    const newCert = await fs.readFile(join(dir, 'cert.pem'), 'utf8');
    assert.notEqual(newCert, oldCert);
    openssl(['verify', '-CAfile', pki.root.certPath, '-untrusted', join(dir, 'chain.pem'), join(dir, 'cert.pem')]);
    assert.equal((await status({ stateDir: dir })).keyStore.label, renewed.keyStore.label);
  });

  test('a renewal the hub refuses leaves identity.json, cert.pem and chain.pem byte-identical', async () => {
    const dir = await stateDir();
    await enroll(options(dir));
    const snapshot = await Promise.all(['identity.json', 'cert.pem', 'chain.pem'].map((f) => fs.readFile(join(dir, f))));
    hub.override = (r) => (r.path.endsWith('/simplereenroll') ? hubError(401, 'CERT_INVALID') : undefined);
    try {
      await assert.rejects(renew({ stateDir: dir, timeoutMs: 5000 }), fleetkeyError('CERT_INVALID'));
    } finally {
      hub.override = undefined;
    }
    const after = await Promise.all(['identity.json', 'cert.pem', 'chain.pem'].map((f) => fs.readFile(join(dir, f))));
    assert.deepEqual(after, snapshot);
  });

  test('a renewal answered with a certificate for another device id is refused, state unchanged', async () => {
    const dir = await stateDir();
    await enroll(options(dir));
    const identity = await fs.readFile(join(dir, 'identity.json'));
    const hubOptions = { pki: pki.pki, deviceCa: pki.deviceCa, caCertificates: [], token: TOKEN, tlsLeaf: pki.hubLeaf, tlsChain: [] };
    hub.override = (r) => (r.path.endsWith('/simplereenroll') ? { status: 200, contentType: 'application/pkcs7-mime', body: pkcs7Of([issueFromCsr(hubOptions, r.body, 'someone-else')]) } : undefined);
    try {
      await assert.rejects(renew({ stateDir: dir, timeoutMs: 5000 }), fleetkeyError('HUB_PROTOCOL_ERROR', /different device/));
    } finally {
      hub.override = undefined;
    }
    assert.deepEqual(await fs.readFile(join(dir, 'identity.json')), identity);
  });
});

describe('renew: the two-phase swap (ADR 0025)', () => {
  test('the new certificate is proven on a fresh connection with the NEW certificate before the files change', async () => {
    const dir = await stateDir();
    await enroll(options(dir));
    const requestsBefore = hub.requests.length;
    const renewed = await renew({ stateDir: dir, timeoutMs: 5000 });
    const after = hub.requests.slice(requestsBefore).map((r) => r.path);
    const newCert = new X509Certificate(await fs.readFile(join(dir, 'cert.pem'), 'utf8'));
    const proof = hub.requests.slice(requestsBefore).find((r) => r.path === '/.well-known/fleetkey/device');
    assert.ok(proof !== undefined, 'a proof request was made');
    assert.deepEqual(proof.clientCertificate, newCert.raw, 'the proof used the new certificate');
    assert.ok(after.indexOf('/.well-known/est/simplereenroll') < after.indexOf('/.well-known/fleetkey/device'), 'proof after reenroll');
    assert.ok(after.indexOf('/.well-known/fleetkey/device') < after.indexOf('/.well-known/fleetkey/device/retire-previous'), 'retirement after the proof');
    assert.equal(renewed.serial, newCert.serialNumber.toLowerCase());
    assert.equal(renewed.sameKey, false);
  });

  test('rollback: a new certificate that fails its proof leaves the old identity in use (RENEWAL_PROOF_FAILED), files byte-identical, nothing retired', async () => {
    const dir = await stateDir();
    await enroll(options(dir));
    const snapshot = await Promise.all(['identity.json', 'cert.pem', 'chain.pem'].map((f) => fs.readFile(join(dir, f))));
    const requestsBefore = hub.requests.length;
    hub.override = (r) => (r.path === '/.well-known/fleetkey/device' ? hubError(401, 'CERT_INVALID') : undefined);
    try {
      await assert.rejects(renew({ stateDir: dir, timeoutMs: 5000 }), fleetkeyError('RENEWAL_PROOF_FAILED'));
    } finally {
      hub.override = undefined;
    }
    const paths = hub.requests.slice(requestsBefore).map((r) => r.path);
    assert.ok(paths.includes('/.well-known/est/simplereenroll'), 'a certificate was issued');
    assert.ok(!paths.includes('/.well-known/fleetkey/device/retire-previous'), 'the old certificate was not retired');
    const after = await Promise.all(['identity.json', 'cert.pem', 'chain.pem'].map((f) => fs.readFile(join(dir, f))));
    assert.deepEqual(after, snapshot);
  });

  test('a proof answered for another serial is RENEWAL_PROOF_FAILED, state unchanged', async () => {
    const dir = await stateDir();
    await enroll(options(dir));
    const identity = await fs.readFile(join(dir, 'identity.json'));
    hub.override = (r) => (r.path === '/.well-known/fleetkey/device' ? { status: 200, contentType: 'application/json', body: JSON.stringify({ deviceId: 'x', serial: '01' }) } : undefined);
    try {
      await assert.rejects(renew({ stateDir: dir, timeoutMs: 5000 }), fleetkeyError('RENEWAL_PROOF_FAILED'));
    } finally {
      hub.override = undefined;
    }
    assert.deepEqual(await fs.readFile(join(dir, 'identity.json')), identity);
  });
});

function pkcs7Of(certs: readonly Buffer[]): string {
  return pkcs7Base64(pki.pki, certs);
}
