// Interop: certificates from our own DER encoder checked by the system openssl, the independent
// implementation devices and operators actually use. Real CSRs are made by `openssl req` here.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCertsOnly, fromPem, toPem, signatureAlgorithmFor, type KeyAlgorithm } from '@fleetkey/protocol';
import { CertificateAuthority } from '../../src/ca/issuance.js';
import { createHubPki, issueTlsServerCert } from '../../src/ca/hub-pki.js';
import { SoftwareSigner } from '../../src/ca/software-signer.js';
import { MemoryRecorder, newClock } from '../unit/ca-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'fleetkey-ca-interop-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const openssl = (...args: string[]): string => execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const write = (name: string, text: string | Buffer): string => {
  writeFileSync(join(dir, name), text);
  return name;
};
const pem = (der: Buffer): string => toPem('CERTIFICATE', der);

const GENPKEY: Record<KeyAlgorithm, string[]> = {
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  p521: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521'],
  ed25519: ['-algorithm', 'ED25519'],
  rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
};

function opensslCsr(algorithm: KeyAlgorithm, name: string): Buffer {
  openssl('genpkey', ...GENPKEY[algorithm], '-out', `${name}.key`);
  openssl('req', '-new', '-key', `${name}.key`, '-subj', '/CN=whatever/O=Not Used', '-out', `${name}.csr`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'subjectAltName=DNS:evil.example');
  return fromPem(readFileSync(join(dir, `${name}.csr`), 'utf8'), 'CERTIFICATE REQUEST');
}

const CA_COMBINATIONS: Array<[KeyAlgorithm, KeyAlgorithm]> = [['p384', 'p256'], ['p521', 'p384'], ['ed25519', 'ed25519'], ['p256', 'p521']];

for (const [rootAlgorithm, deviceCaAlgorithm] of CA_COMBINATIONS) {
  test(`openssl verify -x509_strict: leaves of every key type under a ${rootAlgorithm} root and ${deviceCaAlgorithm} device CA`, async () => {
    const pki = await createHubPki({ clock: { now: () => Date.now() }, orgName: 'Acme', rootAlgorithm, deviceCaAlgorithm });
    const ca = new CertificateAuthority({ signer: pki.deviceCa.signer, certificate: pki.deviceCa.certificate,
      recorder: new MemoryRecorder(), clock: { now: () => Date.now() },
      policy: { crlUrl: 'http://hub.example:8080/crl/device-ca.crl', ocspUrl: 'http://hub.example:8080/ocsp' } });
    const tag = `${rootAlgorithm}-${deviceCaAlgorithm}`;
    write(`root-${tag}.pem`, pem(pki.root.certificate));
    write(`ca-${tag}.pem`, pem(pki.deviceCa.certificate));
    for (const algorithm of ['p256', 'p384', 'p521', 'ed25519', 'rsa'] as const) {
      const issued = await ca.issue({ method: 'test', tenantId: 't', deviceId: `dev-${algorithm}` }, opensslCsr(algorithm, `${tag}-${algorithm}`));
      const leaf = write(`leaf-${tag}-${algorithm}.pem`, pem(issued.der));
      const out = openssl('verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', `root-${tag}.pem`, '-untrusted', `ca-${tag}.pem`, leaf);
      assert.match(out, /: OK\n$/, `${tag} ${algorithm}`);
    }
    const caOut = openssl('verify', '-x509_strict', '-CAfile', `root-${tag}.pem`, `ca-${tag}.pem`);
    assert.match(caOut, /: OK\n$/);
  });
}

test('openssl x509 -text shows exactly the device profile', async () => {
  const pki = await createHubPki({ clock: newClock(), orgName: 'Acme' });
  const ca = new CertificateAuthority({ signer: pki.deviceCa.signer, certificate: pki.deviceCa.certificate,
    recorder: new MemoryRecorder(), clock: newClock(), policy: { ocspUrl: 'http://hub.example/ocsp' } });
  const issued = await ca.issue({ method: 'test', tenantId: 't', deviceId: 'pump-7' }, opensslCsr('p256', 'text'));
  const text = openssl('x509', '-in', write('text.pem', pem(issued.der)), '-noout', '-text');
  assert.match(text, /Subject: CN ?= ?pump-7\n/);
  assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
  assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);
  assert.match(text, /X509v3 Extended Key Usage: \n\s+TLS Web Client Authentication\n/);
  assert.match(text, /X509v3 Subject Alternative Name: \n\s+URI:urn:fleetkey:device:pump-7\n/);
  assert.match(text, /OCSP - URI:http:\/\/hub.example\/ocsp/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.doesNotMatch(text, /evil\.example|CA:TRUE|Not Used/);
});

test('openssl pkcs7 -print_certs reads encodeCertsOnly output', async () => {
  const pki = await createHubPki({ clock: newClock(), orgName: 'Acme' });
  const p7 = write('chain.p7b', encodeCertsOnly([pki.deviceCa.certificate, pki.root.certificate]));
  const out = openssl('pkcs7', '-inform', 'DER', '-in', p7, '-print_certs');
  assert.equal(out.match(/-----BEGIN CERTIFICATE-----/g)?.length, 2);
  assert.match(out, /subject=O ?= ?Acme, CN ?= ?fleetkey device CA/);
  assert.match(out, /subject=O ?= ?Acme, CN ?= ?fleetkey hub root/);
});

test('openssl s_client-style check: the TLS server certificate verifies for its names', async () => {
  const pki = await createHubPki({ clock: { now: () => Date.now() }, orgName: 'Acme' });
  const tls = await issueTlsServerCert({ rootSigner: pki.root.signer, rootCertificate: pki.root.certificate,
    dnsNames: ['hub.local'], ips: ['127.0.0.1'], clock: { now: () => Date.now() } });
  write('tls-root.pem', pem(pki.root.certificate));
  const out = openssl('verify', '-x509_strict', '-purpose', 'sslserver', '-verify_hostname', 'hub.local',
    '-CAfile', 'tls-root.pem', write('tls.pem', pem(tls.certificate)));
  assert.match(out, /: OK\n$/);
  assert.throws(() => openssl('verify', '-verify_hostname', 'other.local', '-CAfile', 'tls-root.pem', 'tls.pem'));
});

test('SoftwareSigner signatures verify with openssl for every key algorithm', async () => {
  for (const algorithm of ['p256', 'p384', 'p521', 'ed25519', 'rsa'] as const) {
    const signer = SoftwareSigner.generate(algorithm);
    const data = write(`data-${algorithm}`, `openssl contract ${algorithm}`);
    write(`pub-${algorithm}.pem`, toPem('PUBLIC KEY', signer.spki));
    write(`sig-${algorithm}`, await signer.sign(readFileSync(join(dir, data))));
    const hash = signatureAlgorithmFor(algorithm).hash;
    const args = hash === null
      ? ['pkeyutl', '-verify', '-pubin', '-inkey', `pub-${algorithm}.pem`, '-rawin', '-in', data, '-sigfile', `sig-${algorithm}`]
      : ['dgst', `-${hash}`, '-verify', `pub-${algorithm}.pem`, '-signature', `sig-${algorithm}`, data];
    assert.match(openssl(...args), /Verified OK|Signature Verified Successfully/, algorithm);
  }
});
