/**
 * VerifiedIssuerCache (mqtt/device-auth.ts, ADR 0023): remembering "this certificate was verified
 * as signed by this device CA" must never let a certificate through that the full check refuses.
 * Certificates are made with the openssl CLI (async) in a temp folder: a device CA, a second CA
 * with the same subject name but another key (the same-name CA attack), a device certificate of
 * each.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { VerifiedIssuerCache } from '../../src/mqtt/device-auth.js';

const sh = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'fleetkey-issuer-cache-'));
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
const certs: Record<string, X509Certificate> = {};

async function ca(name: string): Promise<void> {
  await sh('openssl', ['req', '-x509', ...EC, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.pem`), '-subj', '/CN=Device CA', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE']);
  certs[name] = new X509Certificate(readFileSync(join(dir, `${name}.pem`)));
}

async function leaf(name: string, issuer: string): Promise<void> {
  await sh('openssl', ['req', ...EC, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`), '-subj', `/CN=${name}`]);
  await sh('openssl', ['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, `${issuer}.pem`), '-CAkey', join(dir, `${issuer}.key`), '-CAcreateserial', '-out', join(dir, `${name}.pem`), '-days', '2']);
  certs[name] = new X509Certificate(readFileSync(join(dir, `${name}.pem`)));
}

const cert = (name: string): X509Certificate => {
  const c = certs[name];
  if (c === undefined) throw new Error(`no fixture ${name}`);
  return c;
};

before(async () => {
  await ca('deviceCa');
  await ca('sameNameCa');
  await leaf('good', 'deviceCa');
  await leaf('forged', 'sameNameCa');
  await leaf('other', 'deviceCa');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('VerifiedIssuerCache', () => {
  test('a verified certificate is found again; the result equals the full check', () => {
    const cache = new VerifiedIssuerCache();
    assert.equal(cache.issuerOf(cert('good'), [cert('deviceCa')]), cert('deviceCa'));
    assert.equal(cache.size, 1);
    // Same certificate as a new object (as each connection gets its own X509 object).
    const again = new X509Certificate(cert('good').raw);
    assert.equal(cache.issuerOf(again, [cert('deviceCa')]), cert('deviceCa'));
    assert.equal(cache.size, 1);
  });

  test('same-name CA attack: a certificate signed by another key with the device CA name is refused and not remembered', () => {
    const cache = new VerifiedIssuerCache();
    cache.issuerOf(cert('good'), [cert('deviceCa')]);
    assert.ok(cert('forged').checkIssued(cert('deviceCa')), 'the names match, only the signature differs');
    assert.equal(cache.issuerOf(cert('forged'), [cert('deviceCa')]), undefined);
    assert.equal(cache.issuerOf(cert('forged'), [cert('deviceCa')]), undefined, 'refused again');
    assert.equal(cache.size, 1, 'the refusal left no entry');
  });

  test('after a trust reload without that CA, a remembered certificate is refused', () => {
    const cache = new VerifiedIssuerCache();
    assert.equal(cache.issuerOf(cert('good'), [cert('deviceCa')]), cert('deviceCa'));
    assert.equal(cache.issuerOf(cert('good'), [cert('sameNameCa')]), undefined, 'the remembered CA is no longer trusted');
    const reloaded = new X509Certificate(cert('deviceCa').raw);
    assert.equal(cache.issuerOf(cert('good'), [reloaded]), reloaded, 're-verified against the new list');
  });

  test('bounded: beyond capacity the least recently used entry is dropped and verified again when it returns', () => {
    const cache = new VerifiedIssuerCache(1);
    cache.issuerOf(cert('good'), [cert('deviceCa')]);
    cache.issuerOf(cert('other'), [cert('deviceCa')]);
    assert.equal(cache.size, 1);
    assert.equal(cache.issuerOf(cert('good'), [cert('deviceCa')]), cert('deviceCa'), 'still correct after eviction');
    assert.equal(cache.size, 1);
  });
});
