// Shared test helpers: committed CSR fixtures (see test/fixtures/gen-csrs.sh) and node-made keys.
import { generateKeyPairSync, sign as signSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fromPem, type KeyAlgorithm } from '../../src/index.js';

const fixtureDir = fileURLToPath(new URL('../../../test/fixtures/csr/', import.meta.url));

export function csrFixture(name: string): Buffer {
  return fromPem(readFileSync(`${fixtureDir}${name}.csr.pem`, 'utf8'), 'CERTIFICATE REQUEST');
}

export interface TestKey {
  readonly algorithm: KeyAlgorithm;
  readonly privateKey: KeyObject;
  readonly spki: Buffer;
  sign(data: Buffer): Promise<Buffer>;
}

const HASH: Record<KeyAlgorithm, string | null> = {
  p256: 'sha256', p384: 'sha384', p521: 'sha512', ed25519: null, rsa: 'sha256',
};

export function makeKey(algorithm: KeyAlgorithm): TestKey {
  const pair =
    algorithm === 'ed25519' ? generateKeyPairSync('ed25519')
    : algorithm === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: { p256: 'P-256', p384: 'P-384', p521: 'P-521' }[algorithm] });
  return {
    algorithm,
    privateKey: pair.privateKey,
    spki: pair.publicKey.export({ format: 'der', type: 'spki' }),
    sign: async (data) => signSync(HASH[algorithm], data, pair.privateKey),
  };
}

export const ALL_ALGORITHMS: readonly KeyAlgorithm[] = ['p256', 'p384', 'p521', 'ed25519', 'rsa'];
