// TEMPORARY shim until helper-1's x509 module lands in @fleetkey/protocol. Not committed.
import { createHash } from 'node:crypto';
export type KeyAlgorithm = 'p256' | 'p384' | 'p521' | 'ed25519' | 'rsa';
export function computePin(spkiDer: Uint8Array): string {
  return `sha256//${createHash('sha256').update(spkiDer).digest('base64')}`;
}
export function parsePin(pin: string): Buffer {
  const hash = Buffer.from(pin.slice(8), 'base64');
  if (!/^sha256\/\/[A-Za-z0-9+/]{43}=$/.test(pin) || `sha256//${hash.toString('base64')}` !== pin) throw new Error('bad pin');
  return hash;
}
export function decodeCertsOnly(_pkcs7Der: Uint8Array): Buffer[] {
  throw new Error('pending helper-1');
}
