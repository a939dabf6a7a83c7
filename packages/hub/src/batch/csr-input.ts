/**
 * Uploaded CSRs of a `device-keys` batch (ADR 0014): a JSON array of PEM or base64 DER strings,
 * or one newline-separated PEM text. Each is validated like an EST enrollment (strict parse,
 * proof of possession, key policy: `CertificateAuthority.prepareAsync`).
 *
 * Invariants (the all-or-none policy):
 * - Every CSR is checked before anything is stored; the first bad one (lowest index, 1-based)
 *   refuses the whole batch with its own code and `details.index`, and nothing is registered.
 * - Keys are distinct within the batch and not enrolled on any device (KEY_ALREADY_ENROLLED).
 * - The CSR's key type must be the batch's `keyAlg` (KEY_NOT_ALLOWED otherwise).
 */
import { FleetkeyError, fromPemAll, toFleetkeyError } from '@fleetkey/protocol';
import type { CertificateAuthority, VerifiedCsr } from '../ca/issuance.js';
import type { Store } from '../storage/types.js';

const STRICT_B64 = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeOne(text: string, index: number): Buffer {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) {
    const ders = fromPemAll(trimmed, 'CERTIFICATE REQUEST');
    if (ders.length === 1) return ders[0]!;
  } else if (STRICT_B64.test(trimmed) && trimmed.length % 4 === 0) {
    return Buffer.from(trimmed, 'base64');
  }
  throw new FleetkeyError('CSR_MALFORMED', { details: { index } });
}

/** DER CSRs from the request body fields; CSR_MALFORMED with the index of the first bad one. */
export function decodeCsrs(input: { csrs?: readonly string[]; csrsPem?: string }): Buffer[] {
  if (input.csrs !== undefined && input.csrsPem !== undefined) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'csrs' } });
  if (input.csrs !== undefined) return input.csrs.map((c, i) => decodeOne(c, i + 1));
  if (input.csrsPem !== undefined) {
    const blocks = input.csrsPem.match(/-----BEGIN CERTIFICATE REQUEST-----[\s\S]*?-----END CERTIFICATE REQUEST-----/g) ?? [];
    const rest = input.csrsPem.replace(/-----BEGIN CERTIFICATE REQUEST-----[\s\S]*?-----END CERTIFICATE REQUEST-----/g, '').trim();
    if (rest.length > 0) throw new FleetkeyError('CSR_MALFORMED', { details: { index: blocks.length + 1 } });
    return blocks.map((b, i) => decodeOne(b, i + 1));
  }
  throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'csrs' } });
}

async function prepareOne(ca: CertificateAuthority, der: Buffer, index: number, keyAlg: string): Promise<VerifiedCsr> {
  try {
    const prepared = await ca.prepareAsync(der);
    if (prepared.keyAlgorithm !== keyAlg) throw new FleetkeyError('KEY_NOT_ALLOWED', { cause: new Error('CSR key is not the batch keyAlg') });
    return prepared;
  } catch (err) {
    const e = toFleetkeyError(err);
    throw new FleetkeyError(e.code, { cause: e, details: { ...(e.details ?? {}), index } });
  }
}

/** Validates every CSR (see the module invariants); resolves only when all pass. */
export async function validateCsrs(ca: CertificateAuthority, store: Store, ders: readonly Buffer[], keyAlg: string): Promise<void> {
  const results = await Promise.allSettled(ders.map((der, i) => prepareOne(ca, der, i + 1, keyAlg)));
  const firstBad = results.find((r) => r.status === 'rejected');
  if (firstBad !== undefined) throw (firstBad as PromiseRejectedResult).reason;
  const seen = new Set<string>();
  for (const [i, r] of results.entries()) {
    const spki = (r as PromiseFulfilledResult<VerifiedCsr>).value.spkiSha256Hex;
    if (seen.has(spki) || (await store.devices.certificateBySpki(spki)) !== undefined) {
      throw new FleetkeyError('KEY_ALREADY_ENROLLED', { details: { index: i + 1 } });
    }
    seen.add(spki);
  }
}
