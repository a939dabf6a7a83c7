/**
 * Attacks on a device's trust in the hub across rotation and recovery (ADR 0026), with the real
 * hub and the SDK. The attacker runs an HTTPS "hub" and a TLS "broker" on 127.0.0.1 with a
 * chain-valid certificate and serves forged trust bundles; the device's identity is pointed at
 * it (as a hijacked DNS name would). Each attack asserts the coded refusal, that no EST request,
 * token or MQTT byte reached the attacker, and that trust.json, identity.json and cert.pem kept
 * their bytes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { FleetkeyError, activePins, computePin, signBundle, type BundleContent } from '@fleetkey/protocol';
import { PinSet, TRUST_FILE, connect, connectPinned, loadTrustBundle, renew } from '@fleetkey/device';
import { attackerRoot, p384Signer, startAttackerHub, type AttackerHub } from '../helpers/attacker-hub.js';
import { startRotationHub, waitUntil, type RotationHub } from '../helpers/rotation-hub.js';

const DAY = 86_400_000;
const FILES = [TRUST_FILE, 'identity.json', 'cert.pem', 'chain.pem'];

describe('attacks on device trust across rotation and recovery', () => {
  let h: RotationHub;
  let victim: { stateDir: string; deviceId: string };
  let hubUrl: string;

  const snapshot = async (): Promise<string[]> => Promise.all(FILES.map(async (f) => (await fs.readFile(join(victim.stateDir, f))).toString('base64')));
  /** Points identity.json at `url` (a hijacked name); identity.json has no signature to break. */
  const pointAt = async (url: string): Promise<void> => {
    const path = join(victim.stateDir, 'identity.json');
    const identity = JSON.parse(await fs.readFile(path, 'utf8')) as Record<string, unknown>;
    await fs.writeFile(path, JSON.stringify({ ...identity, hubUrl: url }, null, 2) + '\n');
  };

  /** renew and MQTT connect against `attacker`: both refused with PIN_MISMATCH, nothing reached it, nothing changed. */
  async function refusedBy(attacker: AttackerHub): Promise<void> {
    await pointAt(attacker.url);
    const before = await snapshot();
    await assert.rejects(renew({ stateDir: victim.stateDir, timeoutMs: 5000 }), (e: unknown) => e instanceof FleetkeyError && e.code === 'PIN_MISMATCH');
    assert.ok(attacker.requests.length > 0, 'the device did look for a newer bundle');
    assert.deepEqual(attacker.requests.filter((r) => r.method !== 'GET' || !r.path.startsWith('/.well-known/fleetkey/trust/')), [], 'no EST request reached the attacker');
    assert.ok(attacker.requests.every((r) => !r.authorization), 'no credential was sent');
    const client = await connect({ stateDir: victim.stateDir, mqttHost: '127.0.0.1', mqttPort: attacker.mqttPort, timeoutMs: 5000, backoff: { initialMs: 100, maxMs: 200 } });
    const refusals: string[] = [];
    client.on('disconnected', (e) => refusals.push(e.code));
    await waitUntil(() => refusals.length >= 2, 20_000, 'two MQTT refusals');
    await client.close();
    assert.ok(refusals.every((c) => c === 'PIN_MISMATCH'), refusals.join(','));
    assert.equal(attacker.mqttBytes(), 0, 'no MQTT CONNECT (no byte at all) reached the attacker');
    assert.deepEqual(await snapshot(), before, 'trust.json, identity.json, cert.pem and chain.pem unchanged');
    await pointAt(hubUrl);
    await attacker.close();
  }

  before(async () => {
    h = await startRotationHub('rotation-attacks');
    hubUrl = h.hub.url;
    victim = await h.enrollDevice('victim');
    await h.rotate(1500);
    await h.overlapOver();
    await renew({ stateDir: victim.stateDir }); // through the real hub: catches up to v2
    assert.equal((await loadTrustBundle(victim.stateDir))?.content.version, 2);
  });
  after(async () => h.stop());

  test('attack: man in the middle with a chain-valid but unpinned root, serving forged bundles → PIN_MISMATCH, trust state unchanged', async () => {
    const own = await attackerRoot();
    const held = (await loadTrustBundle(victim.stateDir))!;
    const forged = (await signBundle({
      ...held.content, version: held.content.version + 1, issuedAt: Date.now(), expires: Date.now() + DAY,
      rootKeys: [own.signer.spki], recoveryKeys: [p384Signer().spki], pins: [{ pin: computePin(own.signer.spki) }],
    } satisfies BundleContent, [own.signer])).bytes;
    await refusedBy(await startAttackerHub(own, new Map([['latest', forged], [String(held.content.version + 1), forged]])));
  });

  test('attack: the stolen root after hub recover → refused by a device that saw the recovery bundle, even with a chain-valid certificate', async () => {
    const stolen = (await h.admin.current()).pki.root; // the root in service now, about to be reported stolen
    const v2 = (await loadTrustBundle(victim.stateDir))!;
    // The attack is real before the recovery: a chain-valid certificate under the stolen root passes the pin check.
    const before = await startAttackerHub(stolen, new Map());
    const socket = await connectPinned({ host: '127.0.0.1', port: Number(new URL(before.url).port), pins: PinSet.parse(activePins(v2, Date.now())) });
    socket.destroy();
    await before.close();

    await h.recover();
    await renew({ stateDir: victim.stateDir }); // the device sees the recovery bundle through the real hub
    const v3 = (await loadTrustBundle(victim.stateDir))!;
    assert.equal(v3.content.version, 3);
    assert.ok(!activePins(v3, Date.now()).some((p) => activePins(v2, Date.now()).includes(p)), 'the stolen root is no longer pinned');
    // The thief also signs a "v4" that re-installs the stolen root: it lacks the keys of v3.
    const forged = (await signBundle({
      ...v3.content, version: 4, issuedAt: Date.now(), expires: Date.now() + DAY, rootKeys: [stolen.signer.spki], pins: activePins(v2, Date.now()).map((pin) => ({ pin })),
    } satisfies BundleContent, [stolen.signer])).bytes;
    await refusedBy(await startAttackerHub(stolen, new Map([['latest', forged], ['4', forged]])));
    assert.equal((await loadTrustBundle(victim.stateDir))?.content.version, 3);
  });
});
