/**
 * What the hub serves and trusts, derived from the latest trust bundle (ADR 0021): the current
 * root (the bundle's first root key), the roots still pinned during an overlap, the TLS chain
 * tail, the device CA certificates client certificates verify against, and the EST cacerts.
 *
 * Invariants:
 * - The trust bundle in the store is the single source of truth: the genesis root lives in pki/
 *   (never rewritten), every later root in `hub_roots`; which one signs is decided only by the
 *   latest bundle. A bundle naming a root the hub does not hold stops the start (CONFIG_INVALID).
 * - During an overlap (the previous root's pin has an `until` ahead) the TLS chain is
 *   [leaf, cross certificate, previous root], which verifies for devices pinning either root and
 *   for standard clients holding either root file; afterwards it is [leaf, current root].
 * - The device CA set holds the device CA as certified by every root whose pin is active.
 * - `changesAt` is the next `until` ahead: the follower recomputes the material then.
 */
import { X509Certificate } from 'node:crypto';
import {
  FleetkeyError, activePins, computePin, decodeBundle, keyIdOf, toPem, type TrustBundle,
} from '@fleetkey/protocol';
import type { CaIdentity } from '../ca/hub-pki.js';
import { SoftwareSigner } from '../ca/software-signer.js';
import type { HubPki } from '../pki/bootstrap.js';
import type { SecretSealer } from '../secrets/sealer.js';
import type { HubRootRecord, StoredTrustBundle } from '../storage/types.js';

export const rootKeyAad = (keyId: string): string => `fleetkey:ca-key:root:${keyId}`;

interface KnownRoot {
  readonly keyId: string;
  readonly identity: CaIdentity;
  readonly crossCertificate: Buffer | null;
  readonly deviceCaCertificate: Buffer;
}

export interface TrustMaterial {
  readonly bundle: TrustBundle;
  /** The genesis PKI with root, device CA certificate, pins and chain tail of the current root. */
  readonly pki: HubPki;
  readonly deviceCaCerts: readonly X509Certificate[];
  /** PEM of every root whose pin is active, current first (MQTT client-CA anchors). */
  readonly rootPem: string;
  /** EST cacerts (RFC 7030 §4.1.3): device CA, overlap chain, current root. */
  readonly caCertificates: readonly Buffer[];
  readonly changesAt: number | undefined;
}

function knownRoots(genesis: HubPki, rows: readonly HubRootRecord[], sealer: SecretSealer): Map<string, KnownRoot> {
  const roots = new Map<string, KnownRoot>();
  roots.set(keyIdOf(genesis.root.signer.spki), {
    keyId: keyIdOf(genesis.root.signer.spki), identity: genesis.root, crossCertificate: null, deviceCaCertificate: genesis.deviceCa.certificate,
  });
  for (const r of rows) {
    const signer = SoftwareSigner.openSealed(r.sealedKey, sealer, rootKeyAad(r.keyId));
    if (keyIdOf(signer.spki) !== r.keyId) throw new FleetkeyError('SECRET_UNREADABLE', { cause: new Error(`root ${r.keyId}: key does not match its id`) });
    roots.set(r.keyId, { keyId: r.keyId, identity: { signer, certificate: r.certificate }, crossCertificate: r.crossCertificate, deviceCaCertificate: r.deviceCaCertificate });
  }
  return roots;
}

function overlapTail(current: KnownRoot, retired: readonly KnownRoot[]): Buffer[] {
  if (current.crossCertificate === null) return [current.identity.certificate];
  const cross = new X509Certificate(current.crossCertificate);
  const previous = retired.find((r) => cross.verify(new X509Certificate(r.identity.certificate).publicKey));
  return previous === undefined ? [current.identity.certificate] : [current.crossCertificate, previous.identity.certificate];
}

/** The material for `latest` at `now`; see the module invariants. */
export function trustMaterial(genesis: HubPki, rows: readonly HubRootRecord[], latest: StoredTrustBundle, sealer: SecretSealer, now: number): TrustMaterial {
  const bundle = decodeBundle(latest.bytes);
  const roots = knownRoots(genesis, rows, sealer);
  const [currentKey] = bundle.content.rootKeys;
  const current = currentKey === undefined ? undefined : roots.get(keyIdOf(currentKey));
  if (current === undefined) throw new FleetkeyError('CONFIG_INVALID', { details: { setting: 'trust', problem: 'the latest trust bundle names a root this hub does not hold' } });
  const active = activePins(bundle, now);
  const retired = [...roots.values()].filter((r) => r !== current && active.includes(computePin(r.identity.signer.spki)));
  const tail = overlapTail(current, retired);
  const pki: HubPki = {
    root: current.identity, deviceCa: { signer: genesis.deviceCa.signer, certificate: current.deviceCaCertificate },
    deviceCaCert: new X509Certificate(current.deviceCaCertificate), pin: computePin(current.identity.signer.spki),
    recoveryPin: computePin(bundle.content.recoveryKeys[0] ?? genesis.recoverySpki), recoverySpki: bundle.content.recoveryKeys[0] ?? genesis.recoverySpki, tlsChainTail: tail,
    ...(genesis.recoveryKeyFile === undefined ? {} : { recoveryKeyFile: genesis.recoveryKeyFile }),
  };
  const untils = bundle.content.pins.map((p) => p.until).filter((u): u is number => u !== undefined && u > now);
  return {
    bundle, pki,
    deviceCaCerts: [current, ...retired].map((r) => new X509Certificate(r.deviceCaCertificate)),
    rootPem: [current, ...retired].map((r) => toPem('CERTIFICATE', r.identity.certificate)).join(''),
    caCertificates: [current.deviceCaCertificate, ...tail.filter((c) => !c.equals(current.identity.certificate)), current.identity.certificate],
    changesAt: untils.length === 0 ? undefined : Math.min(...untils),
  };
}
