// Test helpers for the CA: a recording recorder, a counting signer, CSRs from node keys.
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ManualClock, buildCsr, fromPem, type KeyAlgorithm } from '@fleetkey/protocol';
import type { Grant } from '../../src/ca/grant.js';
import type { IssuanceRecorder, IssuedCertificate } from '../../src/ca/issuance.js';
import type { Signer } from '../../src/ca/signer.js';

const csrDir = fileURLToPath(new URL('../../../../protocol/test/fixtures/csr/', import.meta.url));

export function csrFixture(name: string): Buffer {
  return fromPem(readFileSync(`${csrDir}${name}.csr.pem`, 'utf8'), 'CERTIFICATE REQUEST');
}

export class MemoryRecorder implements IssuanceRecorder {
  readonly records: Array<{ issued: IssuedCertificate; grant: Grant }> = [];
  failNext = false;
  async record(issued: IssuedCertificate, grant: Grant): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('disk full');
    }
    this.records.push({ issued, grant });
  }
}

/** Wraps a signer and counts what it signed, so tests can assert that nothing was signed. */
export class CountingSigner implements Signer {
  count = 0;
  constructor(readonly inner: Signer) {}
  get algorithm() {
    return this.inner.algorithm;
  }
  get spki() {
    return this.inner.spki;
  }
  async sign(data: Buffer): Promise<Buffer> {
    this.count++;
    return this.inner.sign(data);
  }
}

const HASH: Record<KeyAlgorithm, string | null> = { p256: 'sha256', p384: 'sha384', p521: 'sha512', ed25519: null, rsa: 'sha256' };

export async function deviceCsr(algorithm: KeyAlgorithm): Promise<{ csr: Buffer; spki: Buffer }> {
  const pair =
    algorithm === 'ed25519' ? generateKeyPairSync('ed25519')
    : algorithm === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: { p256: 'P-256', p384: 'P-384', p521: 'P-521' }[algorithm] });
  const spki = pair.publicKey.export({ format: 'der', type: 'spki' });
  const csr = await buildCsr({ spki, subject: [['CN', 'ignored']], algorithm, sign: async (d) => sign(HASH[algorithm], d, pair.privateKey) });
  return { csr, spki };
}

export const START = Date.UTC(2026, 2, 1, 12, 0, 0);
export const newClock = (): ManualClock => new ManualClock(START);

export function grantFor(deviceId: string, extra: Partial<Grant> = {}): Grant {
  return { method: 'test', tenantId: 't-1', deviceId, ...extra };
}
