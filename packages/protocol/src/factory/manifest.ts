/**
 * The signed factory manifest (ADR 0015): the line's record of every certificate it issued,
 * signed by the factory sub-CA key, imported by the hub with `POST /api/v1/batches/import`.
 *
 * Invariants:
 * - The signature covers the exact body bytes (base64 in the envelope), never a re-serialisation,
 *   so no canonical-JSON ambiguity can make two readers see different manifests.
 * - `counter` is the number of entries, and entries are numbered 1..counter in order: a manifest
 *   only grows, so a later export has a higher counter and every earlier entry unchanged.
 * - `openSignedManifest` verifies the signature with the signer certificate it carries and checks
 *   the shape; it does not decide trust — whether that certificate is a kit of this hub, of this
 *   organisation, within its limits, is the importer's (hub/src/batch/factory-import.ts).
 * - Every fault is MANIFEST_INVALID; the precise reason is the cause.
 */
import { createHash } from 'node:crypto';
import { FleetkeyError } from '../errors.js';
import { parseCertificate } from '../x509/certificate-parse.js';
import { createPublicKeyFromSpki, describeSpki, signatureAlgorithmFor, type KeyAlgorithm } from '../x509/keys.js';
import { verifyAsync } from '../x509/signature.js';
import { isDeviceId } from '../x509/identity.js';
import { KIT_ID_RE, MAX_KIT_COUNT } from './kit.js';

export const MANIFEST_FORMAT = 'fleetkey-factory-manifest/1';
export const SIGNED_MANIFEST_FORMAT = 'fleetkey-signed-manifest/1';

export interface ManifestEntry {
  readonly seq: number;
  readonly deviceId: string;
  /** Lower-case hex serial, as the store records it. */
  readonly serial: string;
  /** Lower-case hex SHA-256 of the certificate's SPKI. */
  readonly spkiSha256: string;
  /** Base64 DER certificate. */
  readonly certificate: string;
}

export interface ManifestBody {
  readonly format: typeof MANIFEST_FORMAT;
  readonly kitId: string;
  readonly tenantId: string;
  readonly counter: number;
  readonly createdAt: string;
  readonly entries: readonly ManifestEntry[];
}

export interface SignedManifest {
  readonly format: typeof SIGNED_MANIFEST_FORMAT;
  /** Base64 of the UTF-8 JSON body: the signed bytes. */
  readonly body: string;
  /** Base64 signature by the factory sub-CA key (DER Ecdsa-Sig-Value for ECDSA). */
  readonly signature: string;
  /** Base64 DER of the factory sub-CA certificate. */
  readonly signerCertificate: string;
}

export interface OpenedManifest {
  readonly body: ManifestBody;
  /** SHA-256 hex of the signed body bytes: equal digests, same manifest. */
  readonly digest: string;
  readonly signerCertificate: Buffer;
}

const invalid = (reason: string): FleetkeyError => new FleetkeyError('MANIFEST_INVALID', { cause: new Error(reason) });
const HEX64 = /^[0-9a-f]{64}$/;
const SERIAL_RE = /^[0-9a-f]{16,40}$/;
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

export async function signManifest(body: ManifestBody, signer: { algorithm: KeyAlgorithm; sign(data: Buffer): Promise<Buffer> }, signerCertificate: Buffer): Promise<SignedManifest> {
  const bytes = Buffer.from(JSON.stringify(body), 'utf8');
  const signature = await signer.sign(bytes);
  return { format: SIGNED_MANIFEST_FORMAT, body: bytes.toString('base64'), signature: signature.toString('base64'), signerCertificate: signerCertificate.toString('base64') };
}

function checkEntry(e: Partial<Record<keyof ManifestEntry, unknown>>, index: number): void {
  const ok = typeof e === 'object' && e !== null && e.seq === index + 1 && isDeviceId(e.deviceId)
    && typeof e.serial === 'string' && SERIAL_RE.test(e.serial)
    && typeof e.spkiSha256 === 'string' && HEX64.test(e.spkiSha256)
    && typeof e.certificate === 'string' && e.certificate.length < 8192 && B64.test(e.certificate);
  if (!ok) throw invalid(`entry ${index + 1} malformed`);
}

/** The body's shape: format, ids, counter = entries.length, entries numbered 1..counter. */
export function checkManifestBody(value: unknown): ManifestBody {
  const v = value as Partial<Record<keyof ManifestBody, unknown>> | null;
  if (typeof v !== 'object' || v === null || v.format !== MANIFEST_FORMAT) throw invalid('not a manifest body');
  if (typeof v.kitId !== 'string' || !KIT_ID_RE.test(v.kitId) || typeof v.tenantId !== 'string' || v.tenantId.length > 80) throw invalid('kit or tenant');
  if (typeof v.createdAt !== 'string' || Number.isNaN(Date.parse(v.createdAt))) throw invalid('createdAt');
  if (!Array.isArray(v.entries) || v.entries.length > MAX_KIT_COUNT || v.counter !== v.entries.length) throw invalid('counter');
  v.entries.forEach((e, i) => checkEntry(e as Partial<Record<keyof ManifestEntry, unknown>>, i));
  return v as ManifestBody;
}

function decodeEnvelope(value: unknown): { bytes: Buffer; signature: Buffer; signer: Buffer } {
  const v = value as Partial<Record<keyof SignedManifest, unknown>> | null;
  if (typeof v !== 'object' || v === null || v.format !== SIGNED_MANIFEST_FORMAT) throw invalid('not a signed manifest');
  for (const f of ['body', 'signature', 'signerCertificate'] as const) {
    const s = v[f];
    if (typeof s !== 'string' || !B64.test(s)) throw invalid(`${f} is not base64`);
  }
  return { bytes: Buffer.from(v.body as string, 'base64'), signature: Buffer.from(v.signature as string, 'base64'), signer: Buffer.from(v.signerCertificate as string, 'base64') };
}

/** Verifies the envelope's signature under its signer certificate, then the body's shape. */
export async function openSignedManifest(value: unknown): Promise<OpenedManifest> {
  const { bytes, signature, signer } = decodeEnvelope(value);
  let spki: Buffer;
  try {
    spki = parseCertificate(signer).spki;
  } catch (cause) {
    throw new FleetkeyError('MANIFEST_INVALID', { cause });
  }
  const hash = signatureAlgorithmFor(describeSpki(spki).algorithm).hash;
  if (!(await verifyAsync(hash, bytes, createPublicKeyFromSpki(spki), signature))) throw invalid('signature does not verify');
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    throw new FleetkeyError('MANIFEST_INVALID', { cause });
  }
  return { body: checkManifestBody(parsed), digest: createHash('sha256').update(bytes).digest('hex'), signerCertificate: signer };
}
