/**
 * Path validation of a chip certificate (TPM EK certificate, secure-element device certificate)
 * up to one of the organisation's vendor roots (RFC 5280 §6.1, reduced to what vendor PKIs use).
 *
 * Invariants:
 * - The path is leaf → the presented intermediates (in any order) → a registered vendor root of
 *   the right kind; a registered certificate may itself be an intermediate (trust anchor = the
 *   registered certificate, RFC 5280 §6.1.1 (d)). At most MAX_PATH certificates.
 * - Each link: issuer name matches, the signature verifies under the issuer key, both are inside
 *   their validity at `now`, and every issuer is a CA (basicConstraints cA, RFC 5280 §4.2.1.9).
 * - The result names the anchor used; nothing here reads storage.
 * - When the organisation has an owned-chip list, the leaf must be on it (by DER SHA-256 or
 *   serial): a genuine chip of the same vendor that the organisation does not own is refused.
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { VendorRoot } from '../storage/attestation-types.js';

const MAX_PATH = 5;

export interface ChipPath {
  readonly leaf: X509Certificate;
  readonly leafSha256: string;
  readonly anchor: VendorRoot;
}

/** Why a path does not validate (for the audit record; the client sees ATTESTATION_FAILED). */
export class ChipPathError extends Error {}

function parse(der: Buffer, what: string): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch (cause) {
    throw new ChipPathError(`${what} is not a DER X.509 certificate`, { cause });
  }
}

function inValidity(cert: X509Certificate, now: number): boolean {
  return now >= Date.parse(cert.validFrom) && now <= Date.parse(cert.validTo);
}

function issues(issuer: X509Certificate, cert: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/** Validates `leafDer` (+ `intermediates`) against `roots`; throws ChipPathError with the reason. */
export function validateChipPath(leafDer: Buffer, intermediates: readonly Buffer[], roots: readonly VendorRoot[], now: number): ChipPath {
  if (roots.length === 0) throw new ChipPathError('the organisation has no vendor root of this kind');
  if (intermediates.length > MAX_PATH - 1) throw new ChipPathError('too many intermediate certificates');
  const leaf = parse(leafDer, 'the chip certificate');
  const pool = intermediates.map((der, i) => parse(der, `intermediate ${i}`));
  const anchors = roots.map((root) => ({ root, cert: new X509Certificate(root.der) }));
  let current = leaf;
  for (let depth = 0; depth < MAX_PATH; depth++) {
    if (!inValidity(current, now)) throw new ChipPathError(`certificate at depth ${depth} is outside its validity`);
    const anchor = anchors.find((a) => a.cert.raw.equals(current.raw) && depth > 0) ?? anchors.find((a) => issues(a.cert, current));
    if (anchor !== undefined) {
      if (!anchor.cert.ca) throw new ChipPathError('the vendor root is not a CA certificate');
      if (!inValidity(anchor.cert, now)) throw new ChipPathError('the vendor root is outside its validity');
      return { leaf, leafSha256: createHash('sha256').update(leaf.raw).digest('hex'), anchor: anchor.root };
    }
    const next = pool.find((c) => c !== current && issues(c, current));
    if (next === undefined) throw new ChipPathError(`no registered vendor root or presented intermediate issued the certificate at depth ${depth}`);
    if (!next.ca) throw new ChipPathError(`the issuer at depth ${depth + 1} is not a CA`);
    current = next;
  }
  throw new ChipPathError('certificate path too long');
}

/** The owned-chip keys of a leaf: SHA-256 of its DER and its serial (lowercase hex, no leading zeros). */
export function ownedChipKeys(path: ChipPath): { match: 'sha256' | 'serial'; value: string }[] {
  // The same normal form as owned-chip entries: lowercase hex without leading zeros.
  return [{ match: 'sha256', value: path.leafSha256 }, { match: 'serial', value: path.leaf.serialNumber.toLowerCase().replace(/^0+(?=.)/, '') }];
}
