// Path building with several issuers (ADR 0026): after a root rotation the device CA key is
// certified by the old and by the new root (ADR 0021), and chain.pem still holds the old one.
// The path must reach whichever root is pinned now, and still nothing that is not pinned.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { systemClock } from '@fleetkey/protocol';
import { CA_EXTENSIONS, CLIENT_LEAF_EXTENSIONS, OpensslPki, openssl } from '../helpers/pki.js';
import { pinOf } from '../helpers/pins.js';
import { PathError, verifyPinnedPath } from '../../src/trust/pinned-path.js';
import { PinSet } from '../../src/trust/pin-set.js';

const pki = new OpensslPki();
const oldRoot = pki.selfSigned('old-root', '/CN=hub root 1');
const newRoot = pki.selfSigned('new-root', '/CN=hub root 2');
const attackerRoot = pki.selfSigned('attacker-root', '/CN=hub root 2');
const caByOld = pki.issue(oldRoot, { name: 'device-ca', subject: '/CN=fleetkey device CA', extensions: CA_EXTENSIONS });
// The same device CA key and subject, re-certified by the new root.
const csr = join(pki.dir, 'device-ca-again.csr');
openssl(['req', '-new', '-key', caByOld.keyPath, '-out', csr, '-subj', '/CN=fleetkey device CA']);
const caByNew = { ...pki.signCsr(newRoot, csr, { name: 'device-ca-by-new', subject: '/CN=fleetkey device CA', extensions: CA_EXTENSIONS }), keyPath: caByOld.keyPath };
const leaf = pki.issue(caByOld, { name: 'leaf', subject: '/CN=device-1', extensions: CLIENT_LEAF_EXTENSIONS });

const verify = (pins: PinSet, known: Buffer[]) => verifyPinnedPath({ presented: [leaf.der], known, pins, clock: systemClock, purpose: 'client' });

test('a device CA certified by the old and the new root: the path reaches the new pin through the second issuer', () => {
  // chain.pem order (old issuer first) is what defeated a first-issuer-only walk.
  const path = verify(PinSet.parse(pinOf(newRoot)), [caByOld.der, oldRoot.der, caByNew.der, newRoot.der]);
  assert.ok(path.anchor.raw.equals(newRoot.der));
  assert.ok(path.certificates[1]!.raw.equals(caByNew.der));
});

test('with both roots pinned (overlap) either path is accepted; the old one is still found first when listed first', () => {
  const path = verify(PinSet.parse([pinOf(oldRoot), pinOf(newRoot)]), [caByOld.der, oldRoot.der, caByNew.der, newRoot.der]);
  assert.ok(path.anchor.raw.equals(oldRoot.der));
});

test('attack: a root with the pinned subject name but another key is never an anchor, whichever issuers are offered', () => {
  assert.throws(() => verify(PinSet.parse(pinOf(attackerRoot)), [caByOld.der, oldRoot.der, caByNew.der, newRoot.der]),
    (e: unknown) => e instanceof PathError && /not pinned/.test(e.message));
});
