/**
 * The hub's trust bundle operations (ADR 0021): the genesis bundle, the periodic refresh before
 * expiry, a root rotation and a recovery. Each ends in one `store.trust.append` unit.
 *
 * Invariants:
 * - Every bundle the hub publishes is first checked by the device-side verifier against the
 *   bundle it follows (`verifyNext`), so the hub can never publish a version devices refuse.
 * - Genesis (v1): the pki/ root as the only root key, the pki/ recovery key, threshold 1, signed
 *   by the root. A hub from before trust bundles gets it at its next start, unchanged identity.
 * - Refresh: same keys and still-active pins, signed by the current root, when less than a third
 *   of the latest bundle's lifetime is left.
 * - Rotation: a new root (cross-signed by the current one), bundle N+1 with the new root as the
 *   only root key, the old root pinned `until` now + overlap, signed by the old and the new root.
 * - Recovery: a new root and a new recovery key; bundle N+1 pins only the new root (the stolen one
 *   is dropped at once) and is signed by the offline recovery key of N, the new root and the new
 *   recovery key. The new recovery key's private half is returned once, never stored.
 */
import { createPrivateKey, createPublicKey, sign as signRaw, type KeyObject } from 'node:crypto';
import {
  FleetkeyError, activePins, computePin, describeSpki, keyIdOf, signBundle, signatureAlgorithmFor, verifyNext,
  type BundleContent, type BundlePin, type BundleSigner, type Clock, type KeyAlgorithm, type TrustBundle,
} from '@fleetkey/protocol';
import { generateRecoveryKey, type RecoveryKey } from '../ca/hub-pki.js';
import { SoftwareSigner } from '../ca/software-signer.js';
import type { HubPki } from '../pki/bootstrap.js';
import type { SecretSealer } from '../secrets/sealer.js';
import type { AuditEventInput, HubRootRecord, Store, StoredTrustBundle } from '../storage/types.js';
import { rootKeyAad, trustMaterial, type TrustMaterial } from './material.js';
import { createNextRoot } from './root-certs.js';

export interface TrustContext {
  readonly store: Store;
  readonly genesis: HubPki;
  readonly sealer: SecretSealer;
  readonly clock: Clock;
  readonly validityMs: number;
}

const stored = (b: TrustBundle): StoredTrustBundle => ({ version: b.content.version, bytes: b.bytes, issuedAt: b.content.issuedAt, expires: b.content.expires });

function audit(type: string, b: TrustBundle, source: string, extra: Record<string, string | number> = {}): AuditEventInput {
  return { category: 'system', type, result: 'success', actor: source === 'hub' ? 'hub' : 'operator', source, details: { version: b.content.version, pins: activePins(b, b.content.issuedAt).join(' '), ...extra } };
}

/** Signs with an offline PKCS#8 PEM key (the recovery key); VALIDATION_FAILED when unreadable. */
export function pemSigner(privateKeyPem: string): BundleSigner {
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch (cause) {
    throw new FleetkeyError('VALIDATION_FAILED', { cause, details: { field: 'recoveryKey' } });
  }
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const { hash } = signatureAlgorithmFor(describeSpki(spki).algorithm);
  return { spki, sign: async (data) => signRaw(hash, data, key) };
}

/** The current material; creates the genesis bundle first when the store has none. */
export async function loadTrust(t: TrustContext): Promise<TrustMaterial> {
  let latest = await t.store.trust.latest();
  if (latest === undefined) {
    const now = t.clock.now();
    const root = t.genesis.root.signer;
    const content: BundleContent = {
      version: 1, issuedAt: now, expires: now + t.validityMs, rootKeys: [root.spki],
      recoveryKeys: [t.genesis.recoverySpki], threshold: 1, pins: [{ pin: computePin(root.spki) }],
    };
    const bundle = await signBundle(content, [root]);
    await t.store.trust.append({ bundle: stored(bundle), audit: audit('trust.bundle.genesis', bundle, 'hub') });
    latest = stored(bundle);
  }
  return trustMaterial(t.genesis, await t.store.trust.roots(), latest, t.sealer, t.clock.now());
}

async function publish(t: TrustContext, current: TrustMaterial, next: BundleContent, signers: readonly BundleSigner[], root: HubRootRecord | undefined, auditRecord: (b: TrustBundle) => AuditEventInput): Promise<TrustBundle> {
  const bundle = await signBundle(next, signers);
  verifyNext(current.bundle, bundle.bytes, t.clock.now()); // never publish what devices would refuse
  await t.store.trust.append({ bundle: stored(bundle), ...(root === undefined ? {} : { root }), audit: auditRecord(bundle) });
  return bundle;
}

/** A fresh version with the same keys when less than a third of the latest's lifetime is left. */
export async function refreshIfDue(t: TrustContext, current: TrustMaterial): Promise<TrustBundle | undefined> {
  const now = t.clock.now();
  const c = current.bundle.content;
  if (c.expires - now > (c.expires - c.issuedAt) / 3) return undefined;
  const pins = c.pins.filter((p) => p.until === undefined || p.until > now);
  const next: BundleContent = { ...c, version: c.version + 1, issuedAt: now, expires: now + t.validityMs, pins };
  return publish(t, current, next, [current.pki.root.signer], undefined, (b) => audit('trust.bundle.refresh', b, 'hub'));
}

function rootRecord(keyIdSpki: Buffer, certificate: Buffer, cross: Buffer | undefined, sealedKey: Buffer, deviceCa: Buffer, now: number): HubRootRecord {
  return { keyId: keyIdOf(keyIdSpki), certificate, crossCertificate: cross ?? null, sealedKey, deviceCaCertificate: deviceCa, createdAt: now };
}

export interface RotationResult {
  readonly bundle: TrustBundle;
  readonly pin: string;
  readonly previousPin: string;
}

/**
 * ADR 0028: a root whose key lives in a PKCS#11 token is neither rotated nor recovered by the
 * hub (a new root would be a software key sealed in hub_roots, defeating the HSM); refused before
 * anything is written. Rotate by re-initialising the hub with a new token key instead.
 */
function refuseHardwareRoot(pki: HubPki): void {
  if (!(pki.root.signer instanceof SoftwareSigner)) {
    throw new FleetkeyError('CONFIG_INVALID', { details: { setting: 'caSigner', problem: 'rotate-root and recover are not available with a pkcs11 CA signer (ADR 0028)' } });
  }
}

/** Rotation N → N+1: see the module invariants. */
export async function rotateRoot(t: TrustContext, o: { overlapMs: number; algorithm: KeyAlgorithm }): Promise<RotationResult> {
  const current = await loadTrust(t);
  refuseHardwareRoot(current.pki);
  const now = t.clock.now();
  const previous = current.pki.root;
  const made = await createNextRoot({ algorithm: o.algorithm, clock: t.clock, deviceCaCertificate: current.pki.deviceCa.certificate, previousRoot: previous });
  const spki = made.root.signer.spki;
  const pins: BundlePin[] = [{ pin: computePin(spki) }, { pin: computePin(previous.signer.spki), until: now + o.overlapMs }];
  const c = current.bundle.content;
  const next: BundleContent = { ...c, version: c.version + 1, issuedAt: now, expires: now + t.validityMs, rootKeys: [spki], pins };
  const record = rootRecord(spki, made.root.certificate, made.crossCertificate, made.root.signer.seal(t.sealer, rootKeyAad(keyIdOf(spki))), made.deviceCaCertificate, now);
  const bundle = await publish(t, current, next, [previous.signer, made.root.signer], record,
    (b) => audit('trust.rotate-root', b, 'cli', { previousPin: current.pki.pin, overlapDays: Math.round(o.overlapMs / 86_400_000) }));
  return { bundle, pin: computePin(spki), previousPin: current.pki.pin };
}

export interface RecoveryResult extends RotationResult {
  /** The NEW recovery key: write it once to offline media; the hub keeps only its public half. */
  readonly recovery: RecoveryKey;
}

/** Recovery from a stolen root with the offline recovery key of the latest bundle. */
export async function recoverRoot(
  t: TrustContext,
  o: { recoveryKeyPem: string; algorithm: KeyAlgorithm; saveRecoveryKey: (privateKeyPem: string) => Promise<void> },
): Promise<RecoveryResult> {
  const current = await loadTrust(t);
  refuseHardwareRoot(current.pki);
  const offline = pemSigner(o.recoveryKeyPem);
  if (!current.bundle.content.recoveryKeys.some((k) => k.equals(offline.spki))) {
    throw new FleetkeyError('AUTH_FAILED', { cause: new Error('the key given is not a recovery key of the latest trust bundle') });
  }
  const now = t.clock.now();
  const made = await createNextRoot({ algorithm: o.algorithm, clock: t.clock, deviceCaCertificate: current.pki.deviceCa.certificate });
  const recovery = generateRecoveryKey();
  const spki = made.root.signer.spki;
  const c = current.bundle.content;
  const next: BundleContent = { ...c, version: c.version + 1, issuedAt: now, expires: now + t.validityMs, rootKeys: [spki], recoveryKeys: [recovery.spki], pins: [{ pin: computePin(spki) }] };
  const record = rootRecord(spki, made.root.certificate, undefined, made.root.signer.seal(t.sealer, rootKeyAad(keyIdOf(spki))), made.deviceCaCertificate, now);
  const newRecovery = pemSigner(recovery.privateKeyPem);
  await o.saveRecoveryKey(recovery.privateKeyPem); // before the bundle: never a recovery key nobody holds
  const bundle = await publish(t, current, next, [offline, made.root.signer, newRecovery], record,
    (b) => audit('trust.recover', b, 'cli', { droppedPin: current.pki.pin }));
  return { bundle, pin: computePin(spki), previousPin: current.pki.pin, recovery };
}
