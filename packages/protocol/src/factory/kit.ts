/**
 * The factory kit file (ADR 0015): what `fleetkey factory init` writes and `fleetkey factory
 * issue` reads on a line machine with no network. JSON, one object.
 *
 * Invariants:
 * - The sub-CA private key is only ever in the kit as PKCS#8 EncryptedPrivateKeyInfo (PBES2,
 *   RFC 8018 §6.2) under the kit passphrase; the hub keeps no copy of the key nor the passphrase.
 * - The constraints here (organisation, window, count) are a copy for the line machine, which
 *   refuses to issue outside them; the hub enforces its own record of them again at import.
 * - Factory device ids are `<kitId>-<seq, 6 digits>`: unique per kit and never reused, so a
 *   manifest can only name devices of its own kit.
 */
import { FleetkeyError } from '../errors.js';
import { isDeviceId } from '../x509/identity.js';

export const KIT_FORMAT = 'fleetkey-factory-kit/1';
export const KIT_ID_RE = /^fk-[0-9a-f]{10}$/;
/** Largest count of one kit (and so of one manifest). */
export const MAX_KIT_COUNT = 100_000;

export interface FactoryKitFile {
  readonly format: typeof KIT_FORMAT;
  readonly kitId: string;
  readonly tenantId: string;
  readonly orgName: string;
  /** Largest number of device certificates this kit may issue. */
  readonly maxCount: number;
  /** Issuance window, ISO 8601 UTC. */
  readonly windowStart: string;
  readonly windowEnd: string;
  /** Lifetime of each device certificate issued on the line. */
  readonly deviceValidityDays: number;
  readonly hubUrl: string;
  readonly pin: string;
  readonly caCertificatePem: string;
  readonly rootCertificatePem: string;
  /** `-----BEGIN ENCRYPTED PRIVATE KEY-----` under the kit passphrase. */
  readonly encryptedKeyPem: string;
}

export function factoryDeviceId(kitId: string, seq: number): string {
  const id = `${kitId}-${String(seq).padStart(6, '0')}`;
  if (!KIT_ID_RE.test(kitId) || !Number.isSafeInteger(seq) || seq < 1 || !isDeviceId(id)) {
    throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'seq' } });
  }
  return id;
}

const isIso = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v));
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** Parses and shape-checks a kit file; VALIDATION_FAILED (field `kit`) on any fault. */
export function parseFactoryKit(text: string): FactoryKitFile {
  let v: Partial<Record<keyof FactoryKitFile, unknown>>;
  try {
    v = JSON.parse(text) as typeof v;
  } catch (cause) {
    throw new FleetkeyError('VALIDATION_FAILED', { cause, details: { field: 'kit' } });
  }
  const ok = typeof v === 'object' && v !== null
    && v.format === KIT_FORMAT
    && typeof v.kitId === 'string' && KIT_ID_RE.test(v.kitId)
    && isText(v.tenantId, 80) && isText(v.orgName, 64)
    && typeof v.maxCount === 'number' && Number.isSafeInteger(v.maxCount) && v.maxCount >= 1 && v.maxCount <= MAX_KIT_COUNT
    && isIso(v.windowStart) && isIso(v.windowEnd) && Date.parse(v.windowStart) < Date.parse(v.windowEnd)
    && typeof v.deviceValidityDays === 'number' && Number.isSafeInteger(v.deviceValidityDays) && v.deviceValidityDays >= 1
    && isText(v.hubUrl, 300) && isText(v.pin, 60)
    && isText(v.caCertificatePem, 20_000) && isText(v.rootCertificatePem, 20_000)
    && isText(v.encryptedKeyPem, 20_000) && v.encryptedKeyPem.includes('BEGIN ENCRYPTED PRIVATE KEY');
  if (!ok) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'kit' } });
  return v as FactoryKitFile;
}
