/**
 * Starting the device from an unpacked batch or factory bundle folder (issue 6, ADR 0016): the
 * folder (`cert.pem`, `chain.pem`, `hub-root.pem`, `key.pem`, `device.json`) is adopted as the
 * state directory on first use, so `fleetkey device run --state-dir <folder>` and `connect()`
 * work on it directly.
 *
 * Invariants:
 * - Adoption happens only when there is no identity.json yet and a device.json is present; an
 *   enrolled state directory is never touched.
 * - Nothing is trusted because it is in the folder: the certificate must carry exactly the public
 *   key of key.pem, chain (by signatures and validity, purpose client) through chain.pem to a key
 *   pinned in device.json (`acceptIssuedCertificate`), and name the device.json device id.
 *   hub-root.pem is only a candidate issuer; the pin decides.
 * - key.pem must be mode 0600 (no group/other access) and, when device.json says it is
 *   encrypted, opens only with the batch passphrase. The key moves into the file key store
 *   (`keys/`, 0600, new label) before identity.json is written (the commit point,
 *   state/identity.ts); key.pem is removed after it. A crash in between re-adopts on the next
 *   start under a fresh label.
 * - Any fault is DEVICE_NOT_ENROLLED (bundle faults) or KEYSTORE_ERROR (the key), cause says which.
 */
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { FleetkeyError, fromPem, fromPemAll, isDeviceId, systemClock, type Clock, type KeyAlgorithm } from '@fleetkey/protocol';
import { acceptIssuedCertificate, newKeyLabel, type AcceptedCertificate } from '../api/issued.js';
import { isKeyAlgorithm } from '../keystore/algorithms.js';
import { FileKeyStore } from '../keystore/file/file-keystore.js';
import { readIfExists } from '../durable-fs.js';
import { PinSet } from '../trust/pin-set.js';
import { hasIdentity, saveIdentity, sha256Hex, type DeviceIdentity } from './identity.js';

export const BUNDLE_DEVICE_FILE = 'device.json';
const KEY_FILE = 'key.pem';

/** The fields of a bundle's device.json this module reads (hub batch/bundle.ts, CLI factory-line.ts). */
export interface BundleDevice {
  readonly deviceId: string;
  readonly hubUrl: string;
  readonly pins: readonly string[];
  readonly keyAlgorithm: KeyAlgorithm;
  readonly keyEncrypted: boolean;
  readonly mqtt?: { readonly host: string; readonly port: number };
}

export interface AdoptBundleOptions {
  readonly stateDir: string;
  /** The batch passphrase, when key.pem is encrypted. */
  readonly passphrase?: string;
  readonly clock?: Clock;
}

const bundleError = (reason: string, cause?: unknown): FleetkeyError =>
  new FleetkeyError('DEVICE_NOT_ENROLLED', { cause: new Error(`bundle: ${reason}`, cause === undefined ? undefined : { cause }) });

function checkDevice(v: Partial<Record<keyof BundleDevice | 'version', unknown>>): BundleDevice {
  const mqtt = v.mqtt as { host?: unknown; port?: unknown } | undefined;
  const ok = v.version === 1 && isDeviceId(v.deviceId) && typeof v.hubUrl === 'string' && v.hubUrl.startsWith('https://')
    && Array.isArray(v.pins) && v.pins.length > 0 && v.pins.every((p) => typeof p === 'string')
    && isKeyAlgorithm(v.keyAlgorithm) && (v.keyEncrypted === undefined || typeof v.keyEncrypted === 'boolean')
    && (mqtt === undefined || (typeof mqtt.host === 'string' && Number.isInteger(mqtt.port)));
  if (!ok) throw bundleError('device.json is not a device bundle description');
  return { ...(v as unknown as BundleDevice), keyEncrypted: v.keyEncrypted === true };
}

/** The bundle's device.json, or undefined when the folder has none. */
export async function readBundleDevice(stateDir: string): Promise<BundleDevice | undefined> {
  const text = await readIfExists(join(stateDir, BUNDLE_DEVICE_FILE));
  if (text === undefined) return undefined;
  try {
    return checkDevice(JSON.parse(text) as Partial<Record<keyof BundleDevice | 'version', unknown>>);
  } catch (err) {
    throw err instanceof FleetkeyError ? err : bundleError('device.json is not JSON', err);
  }
}

async function readKey(stateDir: string, device: BundleDevice, passphrase: string | undefined): Promise<KeyObject> {
  const keyError = (reason: string, cause?: unknown): FleetkeyError => new FleetkeyError('KEYSTORE_ERROR', { cause: new Error(`bundle key.pem: ${reason}`, cause === undefined ? undefined : { cause }) });
  let file: fs.FileHandle;
  try {
    file = await fs.open(join(stateDir, KEY_FILE), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw keyError('missing (a device-keys bundle needs the device\'s own PKCS#8 key here)', err);
  }
  try {
    const st = await file.stat();
    if (!st.isFile() || (st.mode & 0o077) !== 0) throw keyError(`mode ${(st.mode & 0o777).toString(8)} lets group/others access it; expected 600`);
    const pem = await file.readFile('utf8');
    if (device.keyEncrypted && passphrase === undefined) throw keyError('encrypted; give the batch passphrase');
    return createPrivateKey({ key: pem, format: 'pem', ...(passphrase === undefined ? {} : { passphrase }) });
  } catch (err) {
    throw err instanceof FleetkeyError ? err : keyError('unreadable (wrong passphrase?)', err);
  } finally {
    await file.close();
  }
}

function verifyBundle(stateDir: string, device: BundleDevice, files: Record<'cert' | 'chain' | 'root', string | undefined>, key: KeyObject, clock: Clock): AcceptedCertificate {
  if (files.cert === undefined || files.chain === undefined) throw bundleError('cert.pem or chain.pem missing');
  try {
    const accepted = acceptIssuedCertificate({
      issued: [fromPem(files.cert, 'CERTIFICATE')],
      caCertificates: [...fromPemAll(files.chain, 'CERTIFICATE'), ...(files.root === undefined ? [] : fromPemAll(files.root, 'CERTIFICATE'))],
      spki: createPublicKey(key).export({ type: 'spki', format: 'der' }), pins: PinSet.parse(device.pins), clock,
    });
    if (accepted.deviceId !== device.deviceId) throw new Error(`certificate names ${accepted.deviceId}, device.json ${device.deviceId}`);
    return accepted;
  } catch (err) {
    throw bundleError(`the certificate in ${stateDir} does not verify for this key and pin`, err);
  }
}

/**
 * Adopts the bundle in `stateDir` as its identity (module invariants); false when there is
 * nothing to adopt (already enrolled, or no device.json).
 *
 * @example
 * await adoptBundle({ stateDir: '/media/flash/bt1a2b3c4d5e-000001', passphrase: process.env.PASS });
 */
export async function adoptBundle(o: AdoptBundleOptions): Promise<boolean> {
  if (await hasIdentity(o.stateDir)) return false;
  const device = await readBundleDevice(o.stateDir);
  if (device === undefined) return false;
  const clock = o.clock ?? systemClock;
  const key = await readKey(o.stateDir, device, o.passphrase);
  const read = (name: string): Promise<string | undefined> => readIfExists(join(o.stateDir, name));
  const accepted = verifyBundle(o.stateDir, device, { cert: await read('cert.pem'), chain: await read('chain.pem'), root: await read('hub-root.pem') }, key, clock);
  const label = newKeyLabel(clock, randomBytes(4).toString('hex'));
  const handle = await new FileKeyStore({ directory: join(o.stateDir, 'keys') }).importKey(label, key);
  const now = new Date(clock.now()).toISOString();
  const identity: DeviceIdentity = {
    version: 1, deviceId: device.deviceId, hubUrl: device.hubUrl, pins: PinSet.parse(device.pins).toArray(), keyStore: { kind: 'file', label },
    keyAlgorithm: handle.algorithm, certificateSha256: sha256Hex(accepted.certificateDer),
    notBefore: accepted.notBefore.toISOString(), notAfter: accepted.notAfter.toISOString(), enrolledAt: now,
  };
  await saveIdentity(o.stateDir, { identity, certificateDer: accepted.certificateDer, chainDers: accepted.chainDers });
  await fs.rm(join(o.stateDir, KEY_FILE), { force: true });
  return true;
}
