/**
 * Attestation enrollment (ADR 0027): challenge, then enroll, for TPMs and secure elements.
 *
 * Invariants:
 * - Every request carries a redeemable claim token (the owner's authorisation, and which
 *   organisation's vendor roots apply); the enroll must use the same token as its challenge.
 * - Each refusal is audited with its precise reason (type `attestation.<kind>`), counts as a
 *   failed enrollment of the source (the claim-token throttle), and reaches the client as
 *   ATTESTATION_FAILED; no device, certificate or token use is written.
 * - A challenge is taken (single use) before its evidence is checked; evidence is accepted only
 *   on a TLS 1.3 connection whose exporter the CSR carries (RFC 9266, RFC 7030 §3.5).
 * - A certificate is issued only through the provisioning registry and the CA's issuance steps,
 *   bound to the attested key; the token is spent in the unit that records it.
 */
import { FleetkeyError, parseCsr, type Clock } from '@fleetkey/protocol';
import type { X509Certificate } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import type { Grant } from '../ca/grant.js';
import type { EstCa, PreparedCsr } from '../est/routes.js';
import type { ClaimTokenMethod } from '../provisioning/claim-token/index.js';
import type { AttestedKey } from '../provisioning/method.js';
import type { ProvisioningRegistry } from '../provisioning/registry.js';
import type { Store, ThrottlePolicy, VendorRootKind } from '../storage/types.js';
import { ChallengeStore } from './challenges.js';
import { csrCarriesBinding } from './channel-binding.js';
import { ChipPathError, ownedChipKeys, validateChipPath, type ChipPath } from './chip-chain.js';
import { AttestationError, refuse } from './evidence.js';
import { verifySeEvidence } from './se-verifier.js';
import { sha256Hex, tpmChallenge, verifyTpmEvidence, type TpmEvidence } from './tpm/verifier.js';
import type { TpmPublic } from './tpm/structures.js';

export interface AttestationDeps<P extends PreparedCsr> {
  readonly store: Store;
  readonly clock: Clock;
  readonly ca: EstCa<P>;
  readonly provisioning: ProvisioningRegistry;
  readonly claimTokens: ClaimTokenMethod;
  readonly certsOnly: (certs: Buffer[]) => Buffer;
  readonly sourcePolicy: ThrottlePolicy;
  readonly challengeTtlMs: number;
  readonly maxPendingChallenges: number;
}

/** Who asks, with what token, on which connection (binding undefined: not TLS 1.3). */
export interface AttestationCaller {
  readonly secret: string;
  readonly source: string;
  readonly binding: Buffer | undefined;
}

interface Pending {
  readonly tenantId: string;
  readonly claimTokenId: string;
  readonly chipSha256: string;
  readonly vendorRootId: string;
}
interface TpmPending extends Pending { readonly ak: TpmPublic; readonly secret: Buffer }
interface SePending extends Pending { readonly chip: X509Certificate; readonly nonce: Buffer }

export class AttestationService<P extends PreparedCsr> {
  readonly #tpm: ChallengeStore<TpmPending>;
  readonly #se: ChallengeStore<SePending>;

  constructor(private readonly deps: AttestationDeps<P>) {
    const o = { clock: deps.clock, ttlMs: deps.challengeTtlMs, maxPending: deps.maxPendingChallenges };
    this.#tpm = new ChallengeStore(o);
    this.#se = new ChallengeStore(o);
  }

  /** TPM step 1: EK path + AK checks → MakeCredential for name(AK) with a fresh secret. */
  async tpmChallenge(caller: AttestationCaller, input: { ekCertificate: Buffer; ekChain: Buffer[]; akPublic: Buffer }) {
    return this.#guard('tpm', caller, async () => {
      const { grant, path } = await this.#chip('tpm', caller, input.ekCertificate, input.ekChain);
      const made = tpmChallenge(path.leaf.publicKey, input.akPublic);
      const challengeId = this.#tpm.put({ ...pending(grant, path), ak: made.ak, secret: made.secret });
      return { challengeId, credentialBlob: made.credentialBlob.toString('base64'), encryptedSecret: made.encryptedSecret.toString('base64') };
    });
  }

  /** TPM step 2: credential proof + certify of the CSR key → certificate (certs-only PKCS#7). */
  async tpmEnroll(caller: AttestationCaller, input: { challengeId: string; csr: Buffer; evidence: TpmEvidence }): Promise<Buffer> {
    return this.#guard('tpm', caller, async () => {
      const csr = await this.#csr(caller, input.csr);
      const state = this.#tpm.take(input.challengeId) ?? refuse('unknown, used or expired challenge');
      const spki = verifyTpmEvidence(state.ak, state.secret, input.evidence);
      if (sha256Hex(spki) !== csr.spkiSha256Hex) refuse('the CSR key is not the certified key');
      return this.#issue(caller, state, csr, 'tpm-attested');
    });
  }

  /** SE step 1: device certificate path → a fresh nonce. */
  async seChallenge(caller: AttestationCaller, input: { deviceCertificate: Buffer; chain: Buffer[] }) {
    return this.#guard('se', caller, async () => {
      const { grant, path } = await this.#chip('se', caller, input.deviceCertificate, input.chain);
      const nonce = randomBytes(32);
      const challengeId = this.#se.put({ ...pending(grant, path), chip: path.leaf, nonce });
      return { challengeId, nonce: nonce.toString('base64') };
    });
  }

  /** SE step 2: chip signature over nonce ‖ binding; the CSR is for the chip's own key. */
  async seEnroll(caller: AttestationCaller, input: { challengeId: string; csr: Buffer; signature: Buffer }): Promise<Buffer> {
    return this.#guard('se', caller, async () => {
      const csr = await this.#csr(caller, input.csr);
      const state = this.#se.take(input.challengeId) ?? refuse('unknown, used or expired challenge');
      verifySeEvidence(state.chip, state.nonce, caller.binding ?? refuse('no TLS 1.3 channel binding'), input.signature);
      if (sha256Hex(state.chip.publicKey.export({ format: 'der', type: 'spki' })) !== csr.spkiSha256Hex) refuse('the CSR key is not the chip certificate key');
      return this.#issue(caller, state, csr, 'se-attested');
    });
  }

  /** Token → organisation; chip certificate path to one of its vendor roots; owned-chip list. */
  async #chip(kind: VendorRootKind, caller: AttestationCaller, leaf: Buffer, chain: Buffer[]): Promise<{ grant: Grant; path: ChipPath }> {
    if (caller.binding === undefined) refuse('no TLS 1.3 channel binding');
    const grant = await this.deps.claimTokens.grantForToken(caller.secret, caller.source);
    const roots = await this.deps.store.attestation.listVendorRoots(grant.tenantId, kind);
    let path: ChipPath;
    try {
      path = validateChipPath(leaf, chain, roots, this.deps.clock.now());
    } catch (err) {
      if (err instanceof ChipPathError) refuse(`chip certificate: ${err.message}`);
      throw err;
    }
    const listed = (await this.deps.store.attestation.countOwnedChips(grant.tenantId)) > 0;
    if (listed && !(await this.deps.store.attestation.isOwnedChip(grant.tenantId, ownedChipKeys(path)))) refuse('the chip is not on the organisation\'s owned-chip list');
    return { grant, path };
  }

  /** CSR parse + proof of possession, then the channel binding it must carry. */
  async #csr(caller: AttestationCaller, der: Buffer): Promise<P> {
    const csr = await (this.deps.ca.prepareAsync ? this.deps.ca.prepareAsync(der) : this.deps.ca.prepare(der));
    if (caller.binding === undefined) refuse('no TLS 1.3 channel binding');
    if (!csrCarriesBinding(parseCsr(der).challengePassword, caller.binding)) refuse('the CSR is not bound to this TLS connection (challengePassword)');
    return csr;
  }

  async #issue(caller: AttestationCaller, state: Pending, csr: P, keyProtection: AttestedKey['keyProtection']): Promise<Buffer> {
    const attestation: AttestedKey = { keyProtection, spkiSha256: csr.spkiSha256Hex, chipSha256: state.chipSha256, vendorRootId: state.vendorRootId };
    const grant = await this.deps.provisioning.authorize({
      credential: { kind: 'attested', secret: caller.secret, attestation }, source: caller.source, csrSpkiSha256: csr.spkiSha256Hex, operation: 'simpleenroll',
    });
    if (grant.tenantId !== state.tenantId || grant.context?.claimTokenId !== state.claimTokenId) refuse('the challenge was issued for another claim token');
    const issued = await this.deps.ca.issue(grant, csr);
    return this.deps.certsOnly([issued.der]);
  }

  /** Audits and throttles an AttestationError and turns it into ATTESTATION_FAILED. */
  async #guard<T>(kind: VendorRootKind, caller: AttestationCaller, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof AttestationError)) throw err;
      const now = this.deps.clock.now();
      await this.deps.store.throttle.recordFailure(`enroll-source:${caller.source}`, now, this.deps.sourcePolicy);
      await this.deps.store.audit.append({
        category: 'enrollment', type: `attestation.${kind}`, result: 'failure', actor: 'anonymous', source: caller.source,
        code: 'ATTESTATION_FAILED', details: { reason: err.message },
      });
      throw new FleetkeyError('ATTESTATION_FAILED', { cause: err });
    }
  }
}

function pending(grant: Grant, path: ChipPath): Pending {
  return { tenantId: grant.tenantId, claimTokenId: grant.context?.claimTokenId ?? '', chipSha256: path.leafSha256, vendorRootId: path.anchor.id };
}
