/**
 * connectPinned against real TLS servers on 127.0.0.1 with openssl-made certificates.
 * Each refusal test also asserts that no application byte reached the server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { connectPinned, type ConnectPinnedOptions } from '../../src/trust/connect.js';
import { PinSet } from '../../src/trust/pin-set.js';
import { CLIENT_LEAF_EXTENSIONS, makeHubPki, SERVER_LEAF_EXTENSIONS, type HubPki, type TestCert } from '../helpers/pki.js';
import { startRecordingServer, type RecordingServer } from '../helpers/tls-server.js';
import { fleetkeyError, pinOf } from '../helpers/pins.js';

let pki: HubPki;
const servers: RecordingServer[] = [];

before(() => {
  pki = makeHubPki();
});
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(leaf: TestCert, chain: readonly TestCert[], requestCert = false): Promise<RecordingServer> {
  const server = await startRecordingServer({ leaf, chain, requestCert });
  servers.push(server);
  return server;
}

function options(server: RecordingServer, pins: string[], extra: Partial<ConnectPinnedOptions> = {}): ConnectPinnedOptions {
  return { host: '127.0.0.1', port: server.port, pins: PinSet.parse(pins), timeoutMs: 5000, ...extra };
}

/** Asserts that the connection is refused with PIN_MISMATCH and the server got zero bytes. */
async function assertRefused(server: RecordingServer, pins: string[], cause: RegExp, extra: Partial<ConnectPinnedOptions> = {}): Promise<void> {
  await assert.rejects(connectPinned(options(server, pins, extra)), fleetkeyError('PIN_MISMATCH', cause));
  await server.idle();
  assert.equal(server.received().length, 0, 'no application byte reached the refused server');
}

describe('pinned hub trust (connectPinned)', () => {
  test('a hub presenting leaf + pinned root connects, and the socket carries data afterwards', async () => {
    const server = await serve(pki.hubLeaf, [pki.root]);
    const socket = await connectPinned(options(server, [pinOf(pki.root)]));
    await new Promise<void>((resolve) => socket.end('hello', resolve));
    await server.idle();
    assert.equal(server.received().toString(), 'hello');
  });

  test('a pin set with the pin of another key next to the root pin still connects (rotation overlap)', async () => {
    const server = await serve(pki.hubLeaf, [pki.root]);
    const socket = await connectPinned(options(server, [pinOf(pki.otherRoot), pinOf(pki.root)]));
    socket.destroy();
  });

  test('a server with an unpinned key (its own root) is refused and receives nothing', async () => {
    const server = await serve(pki.fakeLeaf, [pki.fakeRoot]);
    await assertRefused(server, [pinOf(pki.otherRoot)], /not pinned/);
  });

  test('a fake root with the pinned root\'s subject name is refused (names prove nothing)', async () => {
    const server = await serve(pki.fakeLeaf, [pki.fakeRoot]);
    assert.equal(pki.fakeRoot.certPem === pki.root.certPem, false);
    await assertRefused(server, [pinOf(pki.root)], /whose key is not pinned/);
  });

  test('a leaf signed by a fake root, sent along with the real pinned root certificate, is refused', async () => {
    const server = await serve(pki.fakeLeaf, [pki.root]);
    await assertRefused(server, [pinOf(pki.root)], /no presented certificate signed/);
  });

  test('an expired hub leaf under the pinned root is refused', async () => {
    const server = await serve(pki.expiredLeaf, [pki.root]);
    await assertRefused(server, [pinOf(pki.root)], /expired/);
  });

  test('the pin of the leaf itself is refused (ADR 0006: pins name a CA, leaves rotate)', async () => {
    const server = await serve(pki.hubLeaf, [pki.root]);
    await assertRefused(server, [pinOf(pki.hubLeaf)], /not pinned|no presented certificate/);
  });

  test('an enrolled device impersonating the hub with its own certificate under the pinned root is refused', async () => {
    const server = await serve(pki.deviceLeaf, [pki.deviceCa, pki.root]);
    await assertRefused(server, [pinOf(pki.root)], /serverAuth/);
  });

  test('a leaf issued by a non-CA certificate under the pinned root is refused (basicConstraints)', async () => {
    // CA:FALSE without keyUsage, so only our basicConstraints check (not OpenSSL's keyCertSign) stops it
    const notCa = pki.pki.issue(pki.root, { name: 'not-a-ca', subject: '/CN=not a CA', extensions: ['basicConstraints = critical,CA:FALSE'] });
    const child = pki.pki.issue(notCa, { name: 'child-of-not-ca', subject: '/CN=hub.test', extensions: SERVER_LEAF_EXTENSIONS });
    const server = await serve(child, [notCa, pki.root]);
    await assertRefused(server, [pinOf(pki.root)], /not a CA/);
  });

  test('a hub that omits the root connects only when the device already holds the root (chain.pem)', async () => {
    const server = await serve(pki.hubLeaf, []);
    await assertRefused(server, [pinOf(pki.root)], /no presented certificate signed/);
    const socket = await connectPinned(options(server, [pinOf(pki.root)], { knownCertificates: [pki.root.der] }));
    socket.destroy();
  });

  test('after the pinned root expires (clock past its notAfter), the hub is refused', async () => {
    const server = await serve(pki.hubLeaf, [pki.root]);
    const future = { now: () => Date.now() + 20 * 365 * 86_400_000 };
    await assertRefused(server, [pinOf(pki.root)], /expired/, { clock: future });
  });

  test('mutual TLS: the client key and certificate reach the server', async () => {
    const server = await serve(pki.hubLeaf, [pki.root], true);
    const device = pki.pki.issue(pki.deviceCa, { name: 'mtls-device', subject: '/CN=device-2', extensions: CLIENT_LEAF_EXTENSIONS });
    const socket = await connectPinned(options(server, [pinOf(pki.root)], { clientKey: { key: device.keyPem }, clientCert: device.certPem }));
    await new Promise<void>((resolve) => socket.end('ping', resolve));
    await server.idle();
    assert.deepEqual(server.clientCertificates.at(-1), device.der);
  });

  test('a closed port is HUB_UNREACHABLE', async () => {
    const probe = createTcpServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await assert.rejects(connectPinned({ host: '127.0.0.1', port, pins: PinSet.parse(pinOf(pki.root)), timeoutMs: 2000 }), fleetkeyError('HUB_UNREACHABLE'));
  });

  test('a server that accepts TCP but never speaks TLS is HUB_UNREACHABLE after timeoutMs', async () => {
    const silent = createTcpServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    const started = Date.now();
    await assert.rejects(connectPinned({ host: '127.0.0.1', port, pins: PinSet.parse(pinOf(pki.root)), timeoutMs: 300 }), fleetkeyError('HUB_UNREACHABLE', /300 ms/));
    assert.ok(Date.now() - started < 3000);
    silent.close();
  });
});
