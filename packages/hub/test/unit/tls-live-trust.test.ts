/**
 * The live trust state and the hub TLS certificate renewal, in memory: an injected ManualClock and
 * fake interval timers, so renewal is tested without sleeping (ADR 0017).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:tls';
import { ManualClock, toPem } from '@fleetkey/protocol';
import { createHubPki, issueTlsServerCert, type HubPki } from '../../src/ca/hub-pki.js';
import type { TlsServerIdentity } from '../../src/pki/bootstrap.js';
import { LiveTrust, type TrustState, type TrustTarget } from '../../src/tls/live-trust.js';
import { TlsRenewer, renewalTime, servedCertificate, type IntervalTimers } from '../../src/tls/renewal.js';
import { secureContextOptions } from '../../src/mqtt/tls.js';

const HOUR = 3600_000;

async function identity(pki: HubPki, clock: ManualClock, validityMs = 168 * HOUR): Promise<TlsServerIdentity> {
  const c = await issueTlsServerCert({ rootSigner: pki.root.signer, rootCertificate: pki.root.certificate, dnsNames: ['localhost'], ips: ['127.0.0.1'], validityMs, clock });
  return { keyPem: c.privateKeyPem, chainPem: c.chain.map((d) => toPem('CERTIFICATE', d)).join(''), notAfter: c.notAfter };
}

class FakeTimers implements IntervalTimers {
  readonly callbacks = new Map<number, () => void>();
  #next = 1;
  setInterval(callback: () => void): unknown {
    const id = this.#next++;
    this.callbacks.set(id, callback);
    return id;
  }
  clearInterval(handle: unknown): void {
    this.callbacks.delete(handle as number);
  }
  tick(): void {
    for (const f of this.callbacks.values()) f();
  }
}

function recordingTarget(name: string, applied: TrustState[], fail = false): TrustTarget {
  return {
    name,
    contextOptions: (s) => fail ? { key: 'not a key', cert: s.server.chainPem } : secureContextOptions({ keyPem: s.server.keyPem, chainPem: s.server.chainPem, clientCaPem: s.rootPem }),
    apply: (s) => void applied.push(s),
  };
}

describe('hub TLS renewal and live trust', async () => {
  const clock = new ManualClock(Date.now());
  const pki = await createHubPki({ clock, orgName: 'fleetkey' });
  const deviceCa = new X509Certificate(pki.deviceCa.certificate);
  const rootPem = toPem('CERTIFICATE', pki.root.certificate);

  test('the renewal time is issuedAt + 2/3 of the lifetime, from the Clock', async () => {
    const id = await identity(pki, clock);
    const served = servedCertificate(id, clock.now());
    assert.equal(renewalTime(served, 2 / 3), clock.now() + Math.floor(168 * HOUR * (2 / 3)));
    assert.equal(served.serial, new X509Certificate(id.chainPem).serialNumber.toLowerCase());
  });

  test('a tick before the renewal time issues nothing; after it the new certificate goes to every listener, once', async () => {
    const timers = new FakeTimers();
    const first = await identity(pki, clock);
    const trust = new LiveTrust({ server: first, deviceCaCerts: [deviceCa], rootPem });
    const applied: TrustState[] = [];
    trust.attach(recordingTarget('a', applied));
    trust.attach(recordingTarget('b', applied));
    let issued = 0;
    const renewed: string[] = [];
    const renewer = new TlsRenewer({
      clock, timers, checkIntervalMs: 60_000, renewAtFraction: 2 / 3,
      issue: async () => (issued++, identity(pki, clock)), apply: (i) => trust.setServerIdentity(i),
      onRenewed: async (next, prev) => void renewed.push(`${prev.serial}->${next.serial}`), onError: (err) => assert.fail(String(err)),
    }, servedCertificate(first, clock.now()));
    renewer.start();
    clock.advance(100 * HOUR); // < 112 h
    timers.tick();
    assert.equal(await renewer.check(), false);
    assert.equal(issued, 0);
    clock.advance(13 * HOUR);
    const [a, b] = [renewer.check(), renewer.check()]; // concurrent checks share one renewal
    assert.deepEqual([await a, await b], [true, true]);
    assert.equal(issued, 1);
    assert.equal(applied.length, 2);
    assert.equal(trust.state.server, applied[0]!.server);
    assert.notEqual(renewer.current.serial, servedCertificate(first, 0).serial);
    assert.equal(renewed.length, 1);
    assert.equal(renewer.renewAt, clock.now() + Math.floor(168 * HOUR * (2 / 3)), 'the next renewal follows the new certificate');
    renewer.stop();
    assert.equal(timers.callbacks.size, 0, 'stop clears the tick');
  });

  test('a failed renewal keeps the certificate in service, is reported, and the next tick retries', async () => {
    const first = await identity(pki, clock);
    const errors: unknown[] = [];
    let attempts = 0;
    const renewer = new TlsRenewer({
      clock, timers: new FakeTimers(), checkIntervalMs: 60_000, renewAtFraction: 0.5,
      issue: async () => {
        attempts++;
        if (attempts === 1) throw new Error('signer unavailable');
        return identity(pki, clock);
      },
      apply: () => undefined, onRenewed: async () => undefined, onError: (err) => void errors.push(err),
    }, servedCertificate(first, clock.now()));
    const before = renewer.current.serial;
    clock.advance(85 * HOUR);
    assert.equal(await renewer.check(), false);
    assert.equal(renewer.current.serial, before);
    assert.equal(errors.length, 1);
    assert.equal(await renewer.check(), true);
    assert.notEqual(renewer.current.serial, before);
  });

  test('attack: a session ticket from before a reload cannot resume after it (the new context has fresh ticket keys)', async () => {
    const first = await identity(pki, clock);
    const options = (s: TrustState) => secureContextOptions({ keyPem: s.server.keyPem, chainPem: s.server.chainPem, clientCaPem: s.rootPem });
    const trust = new LiveTrust({ server: first, deviceCaCerts: [deviceCa], rootPem });
    const server = createServer(options(trust.state));
    trust.attach({ name: 'tls', contextOptions: options, apply: (s) => server.setSecureContext(options(s)) });
    const before = server.getTicketKeys();
    trust.setServerIdentity(await identity(pki, clock));
    assert.equal(server.getTicketKeys().equals(before), false); // RFC 8446 §2.2: a resumed handshake has no Certificate
  });

  test('attack: unusable TLS material is refused by every listener at once; nothing is applied', async () => {
    const first = await identity(pki, clock);
    const trust = new LiveTrust({ server: first, deviceCaCerts: [deviceCa], rootPem });
    const applied: TrustState[] = [];
    trust.attach(recordingTarget('good', applied));
    trust.attach(recordingTarget('bad', applied, true));
    const second = await identity(pki, clock);
    assert.throws(() => trust.setServerIdentity(second), { code: 'CONFIG_INVALID' });
    assert.equal(applied.length, 0);
    assert.equal(trust.state.server, first);
  });

  test('attack: a device trust set that is empty or holds a leaf certificate is refused and changes nothing', async () => {
    const first = await identity(pki, clock);
    const trust = new LiveTrust({ server: first, deviceCaCerts: [deviceCa], rootPem });
    assert.throws(() => trust.setDeviceCas([]), { code: 'CONFIG_INVALID' });
    assert.throws(() => trust.setDeviceCas([deviceCa, new X509Certificate(first.chainPem)]), { code: 'CONFIG_INVALID' });
    assert.deepEqual(trust.deviceCaCerts, [deviceCa]);
    const other = new X509Certificate(pki.root.certificate);
    trust.setDeviceCas([deviceCa, other]);
    assert.equal(trust.deviceCaCerts.length, 2);
  });
});
