/**
 * The trust bundle document (ADR 0020): what a device trusts about its hub, signed and versioned
 * after TUF's root metadata (TUF spec §5.3.4). Wire form, canonical JSON (canonical-json.ts):
 *
 *   {"signatures":[{"keyid":HEX,"sig":BASE64}…],"signed":{"type":"fleetkey-trust-bundle",
 *    "version":N,"issuedAt":ISO,"expires":ISO,"rootKeys":[B64 SPKI…],"recoveryKeys":[B64 SPKI…],
 *    "threshold":T,"pins":[{"pin":"sha256//…","until":ISO?}…],"critical":[NAME…]?,"extensions":{…}?}}
 *
 * Invariants (checked by `decodeBundle`, so every `TrustBundle` value holds them):
 * - At most MAX_BUNDLE_BYTES, canonical, no member outside the schema (`extensions` is the only
 *   open place); version a positive safe integer; issuedAt < expires, both RFC 3339 UTC.
 * - 1..MAX_KEYS root keys and recovery keys, each an allowed SPKI (describeSpki), no key twice
 *   and no key in both roles; 1 ≤ threshold ≤ the number of root keys.
 * - 1..MAX_PINS canonical pins, none twice; every root key's pin is listed without `until`.
 * - keyid = lower-case hex SHA-256 of the signer's SPKI DER; a signature signs
 *   `encodeCanonical(signed)` with the hash `signatureAlgorithmFor` fixes for the key.
 * Decoding says nothing about trust: that is verify.ts.
 */
import { computePin, describeSpki, parsePin, spkiSha256 } from '../x509/keys.js';
import { encodeCanonical, parseCanonical, type CanonicalValue } from './canonical-json.js';
import { BundleError, expectArray, expectBase64, expectInteger, expectObject, expectString, expectTime } from './shape.js';

export const BUNDLE_TYPE = 'fleetkey-trust-bundle';
export const MAX_BUNDLE_BYTES = 16 * 1024;
export const MAX_KEYS = 4;
export const MAX_PINS = 8;
export const MAX_SIGNATURES = 16;

export interface BundlePin {
  readonly pin: string;
  /** Epoch ms after which the pin no longer counts (a retired root during its overlap). */
  readonly until?: number;
}

export interface BundleContent {
  readonly version: number;
  readonly issuedAt: number;
  readonly expires: number;
  readonly rootKeys: readonly Buffer[];
  readonly recoveryKeys: readonly Buffer[];
  readonly threshold: number;
  readonly pins: readonly BundlePin[];
  readonly critical?: readonly string[];
  readonly extensions?: Readonly<Record<string, CanonicalValue>>;
}

export interface BundleSignature {
  readonly keyid: string;
  readonly sig: Buffer;
}

export interface TrustBundle {
  readonly content: BundleContent;
  readonly signatures: readonly BundleSignature[];
  /** The exact canonical bytes the bundle was decoded from (or encoded to). */
  readonly bytes: Buffer;
  /** What the signatures sign: `encodeCanonical(signed)`. */
  readonly signedBytes: Buffer;
}

export function keyIdOf(spki: Uint8Array): string {
  return spkiSha256(spki).toString('hex');
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The `signed` member in wire form. */
export function signedValue(c: BundleContent): Record<string, CanonicalValue> {
  return {
    type: BUNDLE_TYPE, version: c.version, issuedAt: iso(c.issuedAt), expires: iso(c.expires),
    rootKeys: c.rootKeys.map((k) => k.toString('base64')), recoveryKeys: c.recoveryKeys.map((k) => k.toString('base64')),
    threshold: c.threshold,
    pins: c.pins.map((p): Record<string, CanonicalValue> => (p.until === undefined ? { pin: p.pin } : { pin: p.pin, until: iso(p.until) })),
    ...(c.critical === undefined ? {} : { critical: [...c.critical] }),
    ...(c.extensions === undefined ? {} : { extensions: c.extensions }),
  };
}

function decodeKeys(value: unknown, field: string): Buffer[] {
  const keys = expectArray(value, field, 1, MAX_KEYS).map((k) => expectBase64(k, field));
  for (const k of keys) {
    try {
      describeSpki(k);
    } catch (cause) {
      throw new BundleError(`${field}: not an allowed public key`, { cause });
    }
  }
  return keys;
}

function decodePins(value: unknown): BundlePin[] {
  return expectArray(value, 'pins', 1, MAX_PINS).map((p) => {
    const o = expectObject(p, 'pins', ['pin'], ['until']);
    const pin = expectString(o.pin, 'pins');
    try {
      parsePin(pin);
    } catch (cause) {
      throw new BundleError('pins: not a canonical sha256// pin', { cause });
    }
    return o.until === undefined ? { pin } : { pin, until: expectTime(o.until, 'pins.until') };
  });
}

function decodeContent(value: unknown): BundleContent {
  const s = expectObject(value, 'signed', ['type', 'version', 'issuedAt', 'expires', 'rootKeys', 'recoveryKeys', 'threshold', 'pins'], ['critical', 'extensions']);
  if (s.type !== BUNDLE_TYPE) throw new BundleError('signed.type is not ' + BUNDLE_TYPE);
  const content: BundleContent = {
    version: expectInteger(s.version, 'version', 1), issuedAt: expectTime(s.issuedAt, 'issuedAt'), expires: expectTime(s.expires, 'expires'),
    rootKeys: decodeKeys(s.rootKeys, 'rootKeys'), recoveryKeys: decodeKeys(s.recoveryKeys, 'recoveryKeys'),
    threshold: expectInteger(s.threshold, 'threshold', 1), pins: decodePins(s.pins),
    ...(s.critical === undefined ? {} : { critical: expectArray(s.critical, 'critical', 1, MAX_KEYS).map((n) => expectString(n, 'critical', /^[a-z][a-z0-9-]{0,63}$/)) }),
    ...(s.extensions === undefined ? {} : { extensions: expectObject(s.extensions, 'extensions', [], undefined) as Record<string, CanonicalValue> }),
  };
  checkContent(content);
  return content;
}

/** The cross-field rules of the module invariants; BundleError when one fails. */
export function checkContent(c: BundleContent): void {
  if (c.issuedAt >= c.expires) throw new BundleError('issuedAt is not before expires');
  const ids = [...c.rootKeys, ...c.recoveryKeys].map(keyIdOf);
  if (new Set(ids).size !== ids.length) throw new BundleError('a key is listed twice');
  if (c.threshold > c.rootKeys.length) throw new BundleError('threshold exceeds the number of root keys');
  const pins = c.pins.map((p) => p.pin);
  if (new Set(pins).size !== pins.length) throw new BundleError('a pin is listed twice');
  for (const k of c.rootKeys) {
    if (!c.pins.some((p) => p.pin === computePin(k) && p.until === undefined)) throw new BundleError('a root key is not pinned without until');
  }
}

/** Decodes bundle bytes (size, canonical form, schema); says nothing about trust. */
export function decodeBundle(bytes: Uint8Array): TrustBundle {
  if (bytes.length > MAX_BUNDLE_BYTES) throw new BundleError(`larger than ${MAX_BUNDLE_BYTES} bytes`, { reason: 'oversized' });
  const top = expectObject(parseCanonical(bytes), 'bundle', ['signed', 'signatures'], []);
  const content = decodeContent(top.signed);
  const signatures = expectArray(top.signatures, 'signatures', 0, MAX_SIGNATURES).map((v) => {
    const o = expectObject(v, 'signatures', ['keyid', 'sig'], []);
    return { keyid: expectString(o.keyid, 'keyid', /^[0-9a-f]{64}$/), sig: expectBase64(o.sig, 'sig') };
  });
  return { content, signatures, bytes: Buffer.from(bytes), signedBytes: encodeCanonical(top.signed) };
}

/** Something that signs with a key (the hub's CA `Signer`, an offline recovery key). */
export interface BundleSigner {
  readonly spki: Buffer;
  sign(data: Buffer): Promise<Buffer>;
}

/** Encodes and signs `content` with every signer (in order); the result decodes to itself. */
export async function signBundle(content: BundleContent, signers: readonly BundleSigner[]): Promise<TrustBundle> {
  checkContent(content);
  const signed = signedValue(content);
  const signedBytes = encodeCanonical(signed);
  const signatures: BundleSignature[] = [];
  for (const s of signers) signatures.push({ keyid: keyIdOf(s.spki), sig: await s.sign(signedBytes) });
  const bytes = encodeCanonical({ signed, signatures: signatures.map((x) => ({ keyid: x.keyid, sig: x.sig.toString('base64') })) });
  return decodeBundle(bytes);
}
