// Revocation in process (ADR 0011): the OCSP responder's per-CertID rules and failure answers, a
// 5,000-case mutation fuzz of OCSP requests, the CRL publisher's numbering, caching and
// regeneration, the service + EventBus wiring, and the 1,000-revocation CRL figures.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FleetkeyError, ManualClock, encodeCertId, encodeName, encodeOcspRequest, parseCertificate, parseCrl, parseOcspRequest,
  parseOcspResponse, type OcspHash,
} from '@fleetkey/protocol';
import { createHubPki, type CaIdentity } from '../../src/ca/hub-pki.js';
import { InProcessEventBus } from '../../src/events/bus.js';
import { CrlPublisher, OcspResponder, createRevocation } from '../../src/revocation/index.js';
import { openSqliteStore } from '../../src/storage/sqlite/index.js';
import type { Store } from '../../src/storage/types.js';
import { CountingSigner } from './ca-fixtures.js';
import { fixtures } from './storage.contract.js';

const DAY = 86_400_000;
const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
let ca: CaIdentity;
let caSubject: Buffer;
let store: Store;
const tenant = fixtures('rev', clock.now());
const dir = mkdtempSync(join(tmpdir(), 'fleetkey-revocation-'));

async function enrollDevice(id: string): Promise<string> {
  const serial = '1' + randomBytes(15).toString('hex').slice(1);
  await store.devices.recordEnrollment({
    device: { id, tenantId: tenant.tenant.id, status: 'active', createdAt: clock.now(), enrolledVia: 'test', claimTokenId: null, label: null, currentSerial: serial },
    certificate: {
      serial, deviceId: id, tenantId: tenant.tenant.id, spkiSha256: randomBytes(32).toString('hex'), keyAlgorithm: 'p256',
      notBefore: clock.now(), notAfter: clock.now() + 90 * DAY, issuedAt: clock.now(), der: randomBytes(64), revokedAt: null, revocationReason: null,
    },
    audit: { category: 'certificate', type: 'certificate.issue', result: 'success', actor: 'test', source: 'test', tenantId: tenant.tenant.id },
  });
  return serial;
}

const revoke = (deviceId: string, reason = 'keyCompromise') => store.revocation.revokeDevice({
  tenantId: tenant.tenant.id, deviceId, reason, now: clock.now(),
  audit: { category: 'certificate', type: 'device.revoke', result: 'success', actor: 'owner:test', source: 'test' },
});

const certId = (serialHex: string, hash: OcspHash = 'sha1', issuer: { name: Buffer; spki: Buffer } = { name: caSubject, spki: ca.signer.spki }) =>
  encodeCertId({ hash, issuerName: issuer.name, issuerSpki: issuer.spki, serial: Buffer.from(serialHex, 'hex') });

before(async () => {
  const pki = await createHubPki({ clock, orgName: 'fleetkey', rootAlgorithm: 'p256', deviceCaAlgorithm: 'p256' });
  ca = pki.deviceCa;
  caSubject = parseCertificate(ca.certificate).subject;
  store = await openSqliteStore({ path: ':memory:', clock });
  await store.tenants.createWithOwner(tenant.tenant, tenant.owner, { category: 'owner', type: 'owner.create', result: 'success', actor: 'operator', source: 'cli' });
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('OCSP responder', () => {
  let responder: OcspResponder;
  let good: string;
  let revoked: string;
  before(async () => {
    responder = new OcspResponder({ devices: store.devices, signer: ca.signer, caCertificate: ca.certificate, clock, validityMs: 3_600_000 });
    good = await enrollDevice('ocsp-good');
    revoked = await enrollDevice('ocsp-revoked');
    await revoke('ocsp-revoked', 'affiliationChanged');
  });

  test('good / revoked (time + reason) / never issued = unknown, SHA-1 and SHA-256 CertIDs, signed by the device CA', async () => {
    const ids = [certId(good), certId(revoked, 'sha256'), certId('0102030405060708')];
    const answer = await responder.respond(encodeOcspRequest({ certIds: ids, nonce: Buffer.alloc(16, 9) }));
    assert.equal(answer.status, 'successful');
    assert.equal(answer.maxAgeSeconds, 3600);
    const basic = parseOcspResponse(answer.der).basic!;
    assert.deepEqual(basic.responses.map((r) => r.status.kind), ['good', 'revoked', 'unknown']);
    assert.deepEqual(basic.responses[1]!.status, { kind: 'revoked', revocationTime: new Date(clock.now()), reason: 'affiliationChanged' });
    assert.deepEqual(basic.responses.map((r) => r.certIdRaw), ids);
    assert.equal(basic.responses[0]!.nextUpdate!.getTime() - basic.responses[0]!.thisUpdate.getTime(), 3_600_000);
    assert.deepEqual(basic.nonce, Buffer.alloc(16, 9));
    assert.deepEqual(basic.certs, [ca.certificate]);
    const caKey = parseCertificate(ca.certificate).spki;
    assert.ok(verify('sha256', basic.tbs, { key: caKey, format: 'der', type: 'spki' }, basic.signature));
  });

  test('a CertID naming another issuer (same CA name, other key) is unknown, even for a serial this CA issued', async () => {
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const foreign = certId(good, 'sha1', { name: caSubject, spki: otherKey });
    const answer = await responder.respond(encodeOcspRequest({ certIds: [certId(good), foreign] }));
    assert.deepEqual(parseOcspResponse(answer.der).basic!.responses.map((r) => r.status.kind), ['good', 'unknown']);
  });

  test('a request about no certificate of this CA is unauthorized (RFC 6960 §2.3) and unsigned', async () => {
    const otherName = encodeName([['CN', 'someone else']]);
    const answer = await responder.respond(encodeOcspRequest({ certIds: [certId(good, 'sha1', { name: otherName, spki: ca.signer.spki })] }));
    assert.equal(answer.status, 'unauthorized');
    assert.deepEqual(parseOcspResponse(answer.der), { status: 'unauthorized', basic: undefined });
  });

  test('storage failure answers tryLater, any other failure internalError (and is reported), never a throw', async () => {
    const errors: unknown[] = [];
    const failing = (err: Error) => new OcspResponder({
      devices: { certificateBySerial: async () => { throw err; } }, signer: ca.signer, caCertificate: ca.certificate, clock, validityMs: 60_000,
      onError: (e) => errors.push(e),
    });
    const request = encodeOcspRequest({ certIds: [certId(good)] });
    assert.equal((await failing(new FleetkeyError('STORAGE_UNAVAILABLE')).respond(request)).status, 'tryLater');
    assert.equal((await failing(new Error('boom')).respond(request)).status, 'internalError');
    assert.equal(errors.length, 2);
  });

  test('fuzz: 5,000 mutated requests → a parseable OCSPResponse each; malformedRequest exactly when the request does not parse', async () => {
    let seed = 0x5eed;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff; // deterministic, so a failure reproduces
      return seed % n;
    };
    const base = encodeOcspRequest({ certIds: [certId(good), certId(revoked, 'sha256')], nonce: Buffer.alloc(16, 1) });
    const mutate = (b: Buffer): Buffer => {
      const m = Buffer.from(b);
      switch (rand(5)) {
        case 0: m[rand(m.length)] = rand(256); return m;
        case 1: return m.subarray(0, rand(m.length));
        case 2: { const at = rand(m.length); return Buffer.concat([m.subarray(0, at), Buffer.from([rand(256)]), m.subarray(at)]); }
        case 3: { const at = rand(m.length); return Buffer.concat([m.subarray(0, at), m.subarray(at + 1 + rand(4))]); }
        default:
          for (let k = 0; k < 2; k++) {
            const at = rand(m.length);
            m[at] = m[at]! ^ (1 << rand(8));
          }
          return m;
      }
    };
    const counts: Record<string, number> = {};
    const started = Date.now();
    for (let i = 0; i < 5000; i++) {
      const input = mutate(base);
      const answer = await responder.respond(input);
      const parsed = parseOcspResponse(answer.der); // must not throw
      assert.equal(parsed.status, answer.status);
      let parses = true;
      try { parseOcspRequest(input); } catch { parses = false; }
      if (!parses) assert.equal(answer.status, 'malformedRequest', `case ${i}`);
      else assert.ok(['successful', 'unauthorized'].includes(answer.status), `case ${i}: ${answer.status}`);
      counts[answer.status] = (counts[answer.status] ?? 0) + 1;
    }
    assert.ok((counts.malformedRequest ?? 0) > 2500, JSON.stringify(counts));
    assert.equal((counts.internalError ?? 0) + (counts.tryLater ?? 0), 0);
    console.log(`# OCSP fuzz: ${JSON.stringify(counts)} in ${Date.now() - started} ms`);
  });
});

describe('CRL publisher', () => {
  test('numbers grow, the CRL is cached until invalidated or half its lifetime, and lists the new revocation', async () => {
    const signer = new CountingSigner(ca.signer);
    const crl = new CrlPublisher({ revocation: store.revocation, signer, caCertificate: ca.certificate, clock, nextUpdateMs: 2 * DAY });
    const first = await crl.current();
    assert.equal((await crl.current()).crlNumber, first.crlNumber, 'cached');
    assert.equal(signer.count, 1);
    const serial = await enrollDevice('crl-1');
    await revoke('crl-1', 'cessationOfOperation');
    crl.invalidate();
    const [a, b] = await Promise.all([crl.current(), crl.current()]);
    assert.equal(a.crlNumber, b.crlNumber, 'one generation for concurrent readers');
    assert.ok(a.crlNumber > first.crlNumber);
    assert.equal(signer.count, 2);
    assert.ok(parseCrl(a.der).entries.some((e) => e.serial.toString('hex') === serial && e.reason === 'cessationOfOperation'));
    clock.advance(DAY - 1000);
    assert.equal((await crl.current()).crlNumber, a.crlNumber, 'fresh before half-life');
    clock.advance(1000);
    const refreshed = await crl.current();
    assert.ok(refreshed.crlNumber > a.crlNumber, 're-signed at half-life, well before nextUpdate');
    assert.ok(refreshed.nextUpdate.getTime() - clock.now() >= DAY);
  });

  test('an invalidate during a generation is not lost: the next read signs again', async () => {
    const crl = new CrlPublisher({ revocation: store.revocation, signer: ca.signer, caCertificate: ca.certificate, clock, nextUpdateMs: DAY });
    await crl.current();
    crl.invalidate();
    const pending = crl.current();
    await enrollDevice('crl-2');
    await revoke('crl-2');
    crl.invalidate();
    const stale = await pending;
    const fresh = await crl.current();
    assert.ok(fresh.crlNumber > stale.crlNumber);
  });

  test('the cRLNumber survives a restart: a reopened store continues above every number published', async () => {
    const path = join(dir, 'crl.db');
    let s = await openSqliteStore({ path, clock });
    const last = (await new CrlPublisher({ revocation: s.revocation, signer: ca.signer, caCertificate: ca.certificate, clock, nextUpdateMs: DAY }).regenerate()).crlNumber;
    await s.close();
    s = await openSqliteStore({ path, clock });
    const next = (await new CrlPublisher({ revocation: s.revocation, signer: ca.signer, caCertificate: ca.certificate, clock, nextUpdateMs: DAY }).current()).crlNumber;
    assert.ok(next > last, `${next} after ${last}`);
    await s.close();
  });

  test('service + EventBus: revoking publishes device.revoked once, which re-signs the CRL; a repeat publishes nothing', async () => {
    const bus = new InProcessEventBus();
    const events: unknown[] = [];
    bus.subscribe('device.revoked', (e) => void events.push(e));
    const r = createRevocation({ store, bus, signer: ca.signer, caCertificate: ca.certificate, clock, crlNextUpdateMs: DAY, ocspValidityMs: 60_000 });
    const before = (await r.crl.current()).crlNumber;
    const serial = await enrollDevice('svc-1');
    const actor = { tenantId: tenant.tenant.id, ownerId: 'own_rev', session: 's', source: '127.0.0.1' };
    await r.service.revokeDevice(actor, 'svc-1', 'superseded');
    const after = await r.crl.current();
    assert.ok(after.crlNumber > before);
    assert.ok(parseCrl(after.der).entries.some((e) => e.serial.toString('hex') === serial));
    assert.deepEqual(events, [{ tenantId: tenant.tenant.id, deviceId: 'svc-1', serials: [serial] }]);
    assert.equal((await r.service.revokeDevice(actor, 'svc-1')).alreadyRevoked, true);
    assert.equal(events.length, 1);
    await assert.rejects(r.service.revokeDevice({ ...actor, tenantId: 'org_other' }, 'svc-1'), (e: unknown) => e instanceof FleetkeyError && e.code === 'NOT_FOUND');
    r.close();
  });

  test('figures: 1,000 revoked certificates — regeneration time and CRL size', async () => {
    for (let i = 0; i < 1000; i++) {
      await enrollDevice(`bulk-${i}`);
      await revoke(`bulk-${i}`, i % 2 === 0 ? 'keyCompromise' : 'unspecified');
    }
    const crl = new CrlPublisher({ revocation: store.revocation, signer: ca.signer, caCertificate: ca.certificate, clock, nextUpdateMs: DAY });
    await crl.regenerate(); // warm-up
    const runs: number[] = [];
    let size = 0;
    for (let i = 0; i < 5; i++) {
      const t0 = process.hrtime.bigint();
      const published = await crl.regenerate();
      runs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      size = published.der.length;
      assert.ok(published.entries >= 1000);
      crl.invalidate();
    }
    const median = [...runs].sort((x, y) => x - y)[2]!;
    console.log(`# CRL with ${parseCrl((await crl.current()).der).entries.length} entries: ${size} bytes, regeneration median ${median.toFixed(1)} ms`);
    assert.ok(size < 64 * 1024, `${size} bytes`);
    assert.ok(median < 1000, `${median} ms`);
  });
});
