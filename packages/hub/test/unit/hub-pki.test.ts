import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate as NodeX509, createPrivateKey, createPublicKey } from 'node:crypto';
import { computePin, describeSpki, parseCertificate } from '@fleetkey/protocol';
import { createHubPki, issueTlsServerCert } from '../../src/ca/hub-pki.js';
import { START, newClock } from './ca-fixtures.js';

const YEAR = 365 * 86_400_000;

test('createHubPki: root (10 y, self-signed) signs the device CA (5 y, pathLen 0); default P-384 / P-256', async () => {
  const pki = await createHubPki({ clock: newClock(), orgName: 'Acme' });
  const root = new NodeX509(pki.root.certificate);
  const ca = new NodeX509(pki.deviceCa.certificate);
  assert.ok(root.verify(root.publicKey) && ca.verify(root.publicKey) && ca.checkIssued(root));
  assert.equal(pki.root.signer.algorithm, 'p384');
  assert.equal(pki.deviceCa.signer.algorithm, 'p256');
  assert.equal(new Date(root.validTo).getTime(), START + 10 * YEAR);
  assert.equal(new Date(ca.validTo).getTime(), START + 5 * YEAR);
  assert.equal(new Date(root.validFrom).getTime(), START - 5 * 60_000);
  assert.equal(pki.rootPin, computePin(parseCertificate(pki.root.certificate).spki));
  assert.match(root.subject, /^O=Acme\nCN=fleetkey hub root [0-9a-f]{8}$/);
});

test('two hub roots never share a subject name (rotation safety)', async () => {
  const a = await createHubPki({ clock: newClock(), orgName: 'Acme' });
  const b = await createHubPki({ clock: newClock(), orgName: 'Acme' });
  assert.notEqual(new NodeX509(a.root.certificate).subject, new NodeX509(b.root.certificate).subject);
});

test('recovery key: P-384, pinned, private half only as PKCS#8 PEM', async () => {
  const { recovery } = await createHubPki({ clock: newClock(), orgName: 'Acme', rootAlgorithm: 'p521', deviceCaAlgorithm: 'ed25519' });
  assert.equal(describeSpki(recovery.spki).algorithm, 'p384');
  assert.equal(recovery.pin, computePin(recovery.spki));
  assert.match(recovery.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  const derived = createPublicKey(createPrivateKey(recovery.privateKeyPem)).export({ format: 'der', type: 'spki' });
  assert.ok(derived.equals(recovery.spki));
});

test('issueTlsServerCert: P-256 serverAuth leaf for the listener names, 7 days, chain [leaf, root]', async () => {
  const pki = await createHubPki({ clock: newClock(), orgName: 'Acme', rootAlgorithm: 'ed25519' });
  const tls = await issueTlsServerCert({
    rootSigner: pki.root.signer, rootCertificate: pki.root.certificate, dnsNames: ['hub.local', 'localhost'],
    ips: ['127.0.0.1', '::1'], clock: newClock(),
  });
  const leaf = new NodeX509(tls.certificate);
  assert.ok(leaf.verify(new NodeX509(pki.root.certificate).publicKey));
  assert.equal(leaf.checkHost('hub.local'), 'hub.local');
  assert.equal(leaf.checkIP('::1'), '::1');
  assert.equal(new Date(leaf.validTo).getTime(), START + 7 * 86_400_000);
  assert.deepEqual(tls.chain, [tls.certificate, pki.root.certificate]);
  assert.equal(createPrivateKey(tls.privateKeyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  await assert.rejects(issueTlsServerCert({ rootSigner: pki.deviceCa.signer, rootCertificate: pki.root.certificate,
    dnsNames: ['x'], ips: [], clock: newClock() }), /not valid/);
});
