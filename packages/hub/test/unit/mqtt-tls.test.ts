/**
 * The MQTT listener's TLS layer alone (mqtt/tls.ts): which client chains the handshake accepts
 * before device-auth.ts runs. Real node:tls on 127.0.0.1, ephemeral ports, hub PKI made in
 * process; every server is closed by the test.
 *
 * A certificate that only carries the device CA's name, under another key, must be refused by
 * the handshake itself, before device-auth.ts (which checks the issuer again) is reached.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { connect, type Server, type TLSSocket } from 'node:tls';
import { ManualClock, toPem } from '@fleetkey/protocol';
import { createHubPki, issueTlsServerCert, type HubPki } from '../../src/ca/hub-pki.js';
import { createMqttTlsServer, type MqttTlsMaterial } from '../../src/mqtt/tls.js';
import { makeLeaf, sameNameCa, type LeafCredential } from '../helpers/mqtt-certs.js';
import { mqttTlsMaterial } from '../../src/tls/hub-trust.js';

interface Outcome {
  /** The server completed the handshake with an authorised peer certificate. */
  readonly serverAccepted: boolean;
  /** The client's handshake finished and the server's answer arrived. */
  readonly clientGotReply: boolean;
}

async function listen(material: MqttTlsMaterial): Promise<{ server: Server; port: number; accepted: TLSSocket[] }> {
  const server = createMqttTlsServer(material, 2000);
  const accepted: TLSSocket[] = [];
  server.on('secureConnection', (s: TLSSocket) => {
    accepted.push(s);
    s.end('ok');
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, port: (server.address() as AddressInfo).port, accepted };
}

/** One handshake of `cred` against `material`; bounded by a 5 s timer. */
async function handshake(material: MqttTlsMaterial, rootPem: string, cred: LeafCredential): Promise<Outcome> {
  const { server, port, accepted } = await listen(material);
  try {
    const clientGotReply = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      const s = connect({ host: '127.0.0.1', port, ca: rootPem, key: cred.keyPem, cert: cred.certPem, servername: 'localhost' });
      let reply = '';
      s.on('data', (d: Buffer) => { reply += d.toString(); });
      s.on('error', () => undefined);
      s.on('close', () => { clearTimeout(timer); resolve(reply === 'ok'); });
    });
    return { serverAccepted: accepted.length === 1 && accepted[0]!.authorized, clientGotReply };
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function fixture(): Promise<{ pki: HubPki; keyPem: string; chainPem: string; rootPem: string; deviceCaPem: string }> {
  const clock = new ManualClock(Date.now());
  const pki = await createHubPki({ clock, orgName: 'fleetkey' });
  const tls = await issueTlsServerCert({ rootSigner: pki.root.signer, rootCertificate: pki.root.certificate, dnsNames: ['localhost'], ips: ['127.0.0.1'], clock });
  return {
    pki, keyPem: tls.privateKeyPem, chainPem: tls.chain.map((c) => toPem('CERTIFICATE', c)).join(''),
    rootPem: toPem('CERTIFICATE', pki.root.certificate), deviceCaPem: toPem('CERTIFICATE', pki.deviceCa.certificate),
  };
}

test('attack: a leaf under another CA with the device CA\'s exact name is refused by the handshake itself', async () => {
  const f = await fixture();
  const fake = await makeLeaf({ deviceId: 'dev-fake', issuer: await sameNameCa(f.pki.deviceCa.certificate) });
  const outcome = await handshake({ keyPem: f.keyPem, chainPem: f.chainPem, clientCaPem: f.deviceCaPem + f.rootPem }, f.rootPem, fake);
  assert.deepEqual(outcome, { serverAccepted: false, clientGotReply: false });
});

test('control: a leaf of the real device CA completes the same handshake', async () => {
  const f = await fixture();
  const leaf = await makeLeaf({ deviceId: 'dev-real', issuer: f.pki.deviceCa });
  const outcome = await handshake({ keyPem: f.keyPem, chainPem: f.chainPem, clientCaPem: f.deviceCaPem + f.rootPem }, f.rootPem, leaf);
  assert.deepEqual(outcome, { serverAccepted: true, clientGotReply: true });
});

// ADR 0032: the listener's anchors are the device CAs alone and chains may end there
// (allowPartialTrustChain, installed through tls.Server's _sharedCreds): no per-handshake check of
// the root's signature on the device CA.
test('partial chains: with the device CA as the only anchor a device leaf completes the handshake (the root is not needed)', async () => {
  const f = await fixture();
  const leaf = await makeLeaf({ deviceId: 'dev-partial', issuer: f.pki.deviceCa });
  const outcome = await handshake({ keyPem: f.keyPem, chainPem: f.chainPem, clientCaPem: f.deviceCaPem }, f.rootPem, leaf);
  assert.deepEqual(outcome, { serverAccepted: true, clientGotReply: true }, 'without partial chains OpenSSL would want the root here');
});

test('attack: the hub\'s own serverAuth certificate (issued by the root) presented as an MQTT client certificate fails the handshake', async () => {
  const f = await fixture();
  const clock = new ManualClock(Date.now());
  const other = await issueTlsServerCert({ rootSigner: f.pki.root.signer, rootCertificate: f.pki.root.certificate, dnsNames: ['localhost'], ips: ['127.0.0.1'], clock });
  const asClient = { deviceId: 'hub', keyPem: other.privateKeyPem, certPem: toPem('CERTIFICATE', other.certificate) } as unknown as LeafCredential;
  const outcome = await handshake({ keyPem: f.keyPem, chainPem: f.chainPem, clientCaPem: f.deviceCaPem }, f.rootPem, asClient);
  assert.deepEqual(outcome, { serverAccepted: false, clientGotReply: false });
});

test('the hub\'s MQTT material lists the device CAs as client anchors, never the root', async () => {
  const f = await fixture();
  const material = mqttTlsMaterial({
    server: { keyPem: f.keyPem, chainPem: f.chainPem } as never, rootPem: f.rootPem, deviceCaCerts: [new X509Certificate(f.pki.deviceCa.certificate)],
  });
  assert.equal(new X509Certificate(material.clientCaPem).fingerprint256, new X509Certificate(f.pki.deviceCa.certificate).fingerprint256, 'the device CA is the anchor');
  assert.ok(!material.clientCaPem.includes(f.rootPem.trim().split('\n')[1]!), 'the root is not an anchor');
});
