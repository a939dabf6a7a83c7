/**
 * Live trust reload on a real hub (ADR 0017), checked by real peers: the hub renews its own TLS
 * certificate at 2/3 of its lifetime (ManualClock + a 1 s check tick) while an MQTT session and
 * an HTTPS keep-alive socket stay up, and `openssl s_client` sees the new serial on both ports;
 * a device CA added at runtime is trusted for new connections without a restart; revocation
 * decided at CONNECT is the live state, before and after a reload.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ManualClock, systemClock, wrapEnvelope } from '@fleetkey/protocol';
import { loadMasterKey } from '../../src/datadir.js';
import { loadOrCreateHubPki, type HubPki } from '../../src/pki/bootstrap.js';
import { makeLeaf, makeSecondDeviceCa, type LeafCredential } from '../helpers/mqtt-certs.js';
import { RawClient, recordCertificate } from '../helpers/mqtt-fixture.js';
import { enrollDevice, mosquittoPub, writeCredential } from '../helpers/mqtt-peers.js';
import { startTestHub, type TestHub, type TestOwner } from '../helpers/test-hub.js';
import { KeepAliveClient, opensslServedCertificate } from '../helpers/tls-peers.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

type Enrolled = Awaited<ReturnType<typeof enrollDevice>>;

/** A RawClient credential from an EST-enrolled device's PEM files. */
function credentialOf(d: Enrolled): LeafCredential {
  return { deviceId: d.deviceId, der: d.der, serial: d.serial, spki: Buffer.alloc(0), certPem: readFileSync(d.certPath, 'utf8'), keyPem: readFileSync(d.keyPath, 'utf8') };
}

async function publishAcked(client: RawClient, deviceId: string, messageId: number): Promise<boolean> {
  client.send({ cmd: 'publish', topic: `devices/${deviceId}/telemetry`, payload: wrapEnvelope(`live-reload-${messageId}-0000000000`, Buffer.from('{"v":1}')), qos: 1, messageId, dup: false, retain: false });
  return (await client.next('puback', 5000, (p) => p.messageId === messageId)) !== undefined;
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return cond();
}

describe('hub TLS certificate renewed live (at 67 % of 168 h, clock-driven)', () => {
  // Starts 5 days in the past, so every certificate the hub issues after the ~113 h advance is
  // still valid for real peers (openssl, node:tls) that read the system time.
  const clock = new ManualClock(Date.now() - 5 * DAY);
  let t: TestHub;
  let device: Enrolled;

  before(async () => {
    t = await startTestHub({ FLEETKEY_TLS_RENEW_CHECK: '1' }, { clock });
    const owner: TestOwner = await t.owner('Renewal Org');
    device = await enrollDevice(t, owner.token, 'renewal-dev');
  });
  after(async () => t.stop());

  test('an MQTT session and an HTTPS keep-alive socket stay up; new handshakes on both ports get the new serial', async () => {
    const oldSerial = t.hub.tlsCertificate.serial;
    const mqtt = await RawClient.open(t.hub.mqttPort, t.hub.rootCertPem, credentialOf(device), device.deviceId);
    assert.equal(await mqtt.connack(), 0);
    const https = new KeepAliveClient(t.hub.url, t.hub.rootCertPem);
    const first = await https.get('/healthz');
    assert.equal(first.serial, oldSerial);
    assert.equal((await opensslServedCertificate(t.hub.mqttPort, { caFile: t.rootPemPath, certPath: device.certPath, keyPath: device.keyPath })).serial, oldSerial);

    clock.advance(Math.ceil(168 * HOUR * t.hub.config.tlsRenewAtPercent / 100) + 60_000); // past 67 % of 168 h
    assert.ok(await waitFor(() => t.hub.tlsCertificate.serial !== oldSerial, 5000), 'renewed within a few check ticks');
    const newSerial = t.hub.tlsCertificate.serial;

    assert.equal(mqtt.isClosed, false, 'the MQTT session survived the renewal');
    assert.ok(await publishAcked(mqtt, device.deviceId, 7), 'and still gets PUBACKs');
    assert.equal((mqtt.socket.getPeerCertificate().serialNumber).toLowerCase(), oldSerial, 'on the context it was made with');
    const again = await https.get('/healthz');
    assert.deepEqual([again.status, again.reused, again.localPort, again.serial], [200, true, first.localPort, oldSerial], 'same keep-alive socket');

    for (const port of [t.hub.mqttPort, t.hub.port]) {
      const seen = await opensslServedCertificate(port, { caFile: t.rootPemPath, certPath: device.certPath, keyPath: device.keyPath });
      assert.equal(seen.serial, newSerial, `port ${port}: new handshake, new certificate`);
      assert.equal(seen.verifyCode, 0, seen.output);
    }
    const fresh = await RawClient.open(t.hub.mqttPort, t.hub.rootCertPem, credentialOf(device), device.deviceId);
    assert.equal(await fresh.connack(), 0, 'a new MQTT connection authenticates against the renewed listener');
    assert.equal(fresh.socket.getPeerCertificate().serialNumber.toLowerCase(), newSerial);
    fresh.end();
    mqtt.end();
    https.close();
    const audit = (await t.hub.store.audit.list({ limit: 1000 })).filter((r) => r.type === 'tls.renew');
    assert.deepEqual(audit.map((r) => [r.result, r.details?.previousSerial, r.details?.serial]), [['success', oldSerial, newSerial]]);
  });
});

describe('device CA trust changed at runtime', () => {
  let t: TestHub;
  let owner: TestOwner;
  let pki: HubPki;

  before(async () => {
    t = await startTestHub();
    owner = await t.owner('Trust Org');
    pki = await loadOrCreateHubPki({
      dataDir: t.hub.config.dataDir, sealer: loadMasterKey(t.hub.config.masterKeyFile, false), clock: systemClock,
      rootAlgorithm: t.hub.config.rootKeyAlgorithm, deviceCaAlgorithm: t.hub.config.deviceCaKeyAlgorithm,
    });
  });
  after(async () => t.stop());

  test('a device CA added at runtime is accepted for new connections, without a restart, while live sessions stay', async () => {
    const old = await enrollDevice(t, owner.token, 'old-ca-dev');
    const live = await RawClient.open(t.hub.mqttPort, t.hub.rootCertPem, credentialOf(old), old.deviceId);
    assert.equal(await live.connack(), 0);
    const ca2 = await makeSecondDeviceCa(pki.root);
    const leaf = await makeLeaf({ issuer: ca2, deviceId: 'factory-dev-1' });
    await recordCertificate(t.hub.store, owner.tenantId, leaf, Date.now());
    const files = writeCredential(t.dir, 'factory-dev-1', { ...leaf, certPem: leaf.certPem + ca2.pem });

    const before = await mosquittoPub(t, files, `devices/${leaf.deviceId}/telemetry`, 'before');
    assert.notEqual(before.status, 0, 'not trusted yet');
    // ADR 0032: the MQTT listener's anchors are the device CAs only (partial chains), so a chain
    // through a CA the hub does not list fails the TLS handshake, before any MQTT (formerly CONNACK 5).
    assert.match(before.stderr + before.stdout, /connection was lost|handshake|certificate/i, 'refused at the TLS handshake');
    assert.doesNotMatch(before.stderr + before.stdout, /Connection Accepted/i);
    assert.equal(await t.hub.store.telemetry.count(owner.tenantId, leaf.deviceId), 0);

    t.hub.setDeviceTrust([...t.hub.deviceCaCerts, new X509Certificate(ca2.certificate)]);
    const afterAdd = await mosquittoPub(t, files, `devices/${leaf.deviceId}/telemetry`, 'after');
    assert.equal(afterAdd.status, 0, afterAdd.stderr);
    assert.equal(await t.hub.store.telemetry.count(owner.tenantId, leaf.deviceId), 1);
    assert.equal(live.isClosed, false, 'the session made before the change is kept');
    assert.ok(await publishAcked(live, old.deviceId, 3));
    live.end();
  });

  test('attack: a leaf certificate passed as device trust is refused and the trust set is unchanged', async () => {
    const leaf = await makeLeaf({ issuer: pki.deviceCa, deviceId: 'not-a-ca' });
    const before = t.hub.deviceCaCerts;
    assert.throws(() => t.hub.setDeviceTrust([new X509Certificate(leaf.der)]), { code: 'CONFIG_INVALID' });
    assert.equal(t.hub.deviceCaCerts, before);
  });

  test('revocation at CONNECT is the live store state: a store-only revocation (no event) and one before a reload both refuse', async () => {
    const a = await enrollDevice(t, owner.token, 'revoked-in-store');
    await t.hub.store.revocation.revokeDevice({
      tenantId: owner.tenantId, deviceId: a.deviceId, reason: 'keyCompromise', now: Date.now(),
      audit: { category: 'device', type: 'device.revoke', result: 'success', actor: 'operator', source: 'test', tenantId: owner.tenantId },
    });
    const refused = await RawClient.open(t.hub.mqttPort, t.hub.rootCertPem, credentialOf(a), a.deviceId);
    assert.equal(await refused.connack(), 5, 'revoked in the store by another hub node: refused without any event');
    const b = await enrollDevice(t, owner.token, 'revoked-then-reload');
    const r = await t.api('POST', `/api/v1/devices/${b.deviceId}/revoke`, { reason: 'keyCompromise' }, owner.token);
    assert.equal(r.status, 200);
    t.hub.setDeviceTrust([...t.hub.deviceCaCerts]);
    const again = await RawClient.open(t.hub.mqttPort, t.hub.rootCertPem, credentialOf(b), b.deviceId);
    assert.equal(await again.connack(), 5, 'a trust reload does not forget a revocation');
    assert.equal(await t.hub.store.telemetry.count(owner.tenantId, b.deviceId), 0);
  });
});
