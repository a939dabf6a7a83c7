import { X509Certificate } from 'node:crypto';
import { computePin, FleetkeyError, type ErrorCode } from '@fleetkey/protocol';
import type { TestCert } from './pki.js';

/** The `sha256//…` pin of a test certificate's public key. */
export function pinOf(cert: TestCert): string {
  return computePin(new X509Certificate(cert.der).publicKey.export({ type: 'spki', format: 'der' }));
}

/** An assert.rejects predicate: a FleetkeyError with `code` whose cause matches `cause`. */
export function fleetkeyError(code: ErrorCode, cause?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    if (!(err instanceof FleetkeyError) || err.code !== code) return false;
    return cause === undefined || cause.test(String(err.cause));
  };
}
