/**
 * The device identity on disk: `<stateDir>/identity.json`, `cert.pem`, `chain.pem`, and the key
 * in its key store (file kind: `<stateDir>/keys/`).
 *
 * Invariants:
 * - identity.json is the commit point. A save writes `cert.pem.next` and `chain.pem` first, then
 *   identity.json (which names the key label and the certificate's SHA-256), then renames
 *   `cert.pem.next` to `cert.pem`. Loading after a crash between the last two steps rolls
 *   forward; a crash before identity.json leaves the previous identity intact and in use.
 * - `loadIdentity` checks the shape of identity.json and that cert.pem is the certificate it
 *   names; an absent or unusable identity is DEVICE_NOT_ENROLLED (the cause says which).
 * - chain.pem lists the issuers from the verified path, device CA first, pinned hub root last.
 * - Nothing secret is stored here: the key lives in the key store, the claim token nowhere.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FleetkeyError, fromPem, fromPemAll, isDeviceId, parsePin, toPem, type KeyAlgorithm } from '@fleetkey/protocol';
import { isKeyAlgorithm } from '../keystore/algorithms.js';
import { isValidKeyLabel } from '../keystore/types.js';
import { ensurePrivateDirectory, readIfExists, renameDurably, writeFileAtomic } from '../durable-fs.js';

export const IDENTITY_FILE = 'identity.json';
export const CERT_FILE = 'cert.pem';
export const CHAIN_FILE = 'chain.pem';
const NEXT_CERT_FILE = 'cert.pem.next';
const PUBLIC_FILE_MODE = 0o644; // certificates are public; standard clients read them

/** Which store holds the key, as identity.json records it. */
export interface KeyStoreRecord {
  readonly kind: string;
  readonly label: string;
  readonly locator?: string;
}

/** The content of identity.json (version 1). */
export interface DeviceIdentity {
  readonly version: 1;
  readonly deviceId: string;
  readonly hubUrl: string;
  readonly pins: readonly string[];
  /** `locator` (pkcs11 URI, tpm TCTI) is what the registry needs to reach the store again; no secret. */
  readonly keyStore: KeyStoreRecord;
  readonly keyAlgorithm: KeyAlgorithm;
  /** Hex SHA-256 of cert.pem's DER: ties the certificate file to this record. */
  readonly certificateSha256: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly enrolledAt: string;
  readonly renewedAt?: string;
}

/** A loaded identity with its certificates. */
export interface StoredIdentity {
  readonly identity: DeviceIdentity;
  readonly certificateDer: Buffer;
  /** Issuers, device CA first, pinned hub root last. */
  readonly chainDers: readonly Buffer[];
}

function notEnrolled(reason: string, cause?: unknown): FleetkeyError {
  return new FleetkeyError('DEVICE_NOT_ENROLLED', { cause: new Error(reason, cause === undefined ? undefined : { cause }) });
}

export function sha256Hex(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

const isIsoDate = (v: unknown): boolean => typeof v === 'string' && !Number.isNaN(Date.parse(v));
const isPin = (v: unknown): boolean => {
  try {
    return typeof v === 'string' && parsePin(v).length === 32;
  } catch {
    return false;
  }
};

/** Shape check of a parsed identity.json; returns the reason it is wrong, or undefined. */
export function identityShapeError(value: unknown): string | undefined {
  const v = value as Partial<Record<keyof DeviceIdentity, unknown>> | null;
  if (typeof v !== 'object' || v === null) return 'not an object';
  const ks = v.keyStore as { kind?: unknown; label?: unknown; locator?: unknown } | undefined;
  const checks: Array<[boolean, string]> = [
    [v.version === 1, 'version'],
    [isDeviceId(v.deviceId), 'deviceId'],
    [typeof v.hubUrl === 'string' && v.hubUrl.startsWith('https://'), 'hubUrl'],
    [Array.isArray(v.pins) && v.pins.length > 0 && v.pins.every(isPin), 'pins'],
    [typeof ks?.kind === 'string' && typeof ks.label === 'string' && isValidKeyLabel(ks.label) && (ks.locator === undefined || (typeof ks.locator === 'string' && !/pin-value/i.test(ks.locator))), 'keyStore'],
    [isKeyAlgorithm(v.keyAlgorithm), 'keyAlgorithm'],
    [typeof v.certificateSha256 === 'string' && /^[0-9a-f]{64}$/.test(v.certificateSha256), 'certificateSha256'],
    [isIsoDate(v.notBefore) && isIsoDate(v.notAfter) && isIsoDate(v.enrolledAt), 'dates'],
    [v.renewedAt === undefined || isIsoDate(v.renewedAt), 'renewedAt'],
  ];
  return checks.find(([ok]) => !ok)?.[1];
}

/** True if identity.json exists (valid or not): enrollment must not overwrite it. */
export async function hasIdentity(stateDir: string): Promise<boolean> {
  return (await readIfExists(join(stateDir, IDENTITY_FILE))) !== undefined;
}

/** Writes a new or renewed identity; see the module invariants for the order. */
export async function saveIdentity(stateDir: string, stored: StoredIdentity): Promise<void> {
  if (sha256Hex(stored.certificateDer) !== stored.identity.certificateSha256) throw new FleetkeyError('INTERNAL', { cause: new Error('certificate hash mismatch') });
  await ensurePrivateDirectory(stateDir);
  await writeFileAtomic(join(stateDir, NEXT_CERT_FILE), toPem('CERTIFICATE', stored.certificateDer), PUBLIC_FILE_MODE);
  await writeFileAtomic(join(stateDir, CHAIN_FILE), stored.chainDers.map((der) => toPem('CERTIFICATE', der)).join(''), PUBLIC_FILE_MODE);
  await writeFileAtomic(join(stateDir, IDENTITY_FILE), JSON.stringify(stored.identity, null, 2) + '\n');
  await renameDurably(join(stateDir, NEXT_CERT_FILE), join(stateDir, CERT_FILE));
}

async function readIdentityJson(stateDir: string): Promise<DeviceIdentity> {
  const text = await readIfExists(join(stateDir, IDENTITY_FILE)).catch((err: unknown) => { throw notEnrolled('identity.json is unreadable', err); });
  if (text === undefined) throw notEnrolled('no identity.json in the state directory');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw notEnrolled('identity.json is not JSON', err);
  }
  const wrong = identityShapeError(parsed);
  if (wrong !== undefined) throw notEnrolled(`identity.json field '${wrong}' is missing or invalid`);
  return parsed as DeviceIdentity;
}

function certificateFrom(pem: string | undefined): Buffer | undefined {
  if (pem === undefined) return undefined;
  try {
    return fromPem(pem, 'CERTIFICATE');
  } catch {
    return undefined;
  }
}

/** The certificate identity.json names, rolling a half-finished save forward. */
async function readCertificate(stateDir: string, expectedSha256: string): Promise<Buffer> {
  const current = certificateFrom(await readIfExists(join(stateDir, CERT_FILE)));
  if (current !== undefined && sha256Hex(current) === expectedSha256) return current;
  const next = certificateFrom(await readIfExists(join(stateDir, NEXT_CERT_FILE)));
  if (next !== undefined && sha256Hex(next) === expectedSha256) {
    await renameDurably(join(stateDir, NEXT_CERT_FILE), join(stateDir, CERT_FILE));
    return next;
  }
  throw notEnrolled('cert.pem is missing or is not the certificate identity.json names');
}

/**
 * Loads and checks the identity in `stateDir`; DEVICE_NOT_ENROLLED when there is none.
 *
 * @example
 * const { identity, certificateDer, chainDers } = await loadIdentity('/var/lib/fleetkey');
 */
export async function loadIdentity(stateDir: string): Promise<StoredIdentity> {
  const identity = await readIdentityJson(stateDir);
  const certificateDer = await readCertificate(stateDir, identity.certificateSha256);
  let chainDers: Buffer[];
  try {
    chainDers = fromPemAll((await readIfExists(join(stateDir, CHAIN_FILE))) ?? '', 'CERTIFICATE');
  } catch (err) {
    throw notEnrolled('chain.pem is missing or malformed', err);
  }
  return { identity, certificateDer, chainDers };
}
