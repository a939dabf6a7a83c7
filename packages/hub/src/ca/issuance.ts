/**
 * The certificate authority for devices: the only code that decides what gets signed.
 *
 * Invariants (each is one named step of `issue`, in this order):
 * 1. verifyCsr — the CSR parses strictly and its signature verifies under its own key (proof of
 *    possession, RFC 2986 §3). Done by `prepare` before a provisioning credential is spent.
 * 2. checkKeyPolicy — the key algorithm is allowed by the policy; RSA has at least minRsaBits.
 * 3. checkBoundKey — when the grant names a key (boundSpkiSha256), the CSR carries that key.
 * 4. applyProfile — the certificate is the device-leaf profile filled from the grant's device id
 *    and the CSR's *public key only*; the CSR's subject, SANs and extensions are ignored.
 * 5. clampValidity — notAfter = now + min(grant.maxValidityMs, policy default), never after the
 *    CA certificate's notAfter; notBefore = now − backdate, never before the CA's notBefore.
 * 6. sign — one signature by the device CA key over the encoded TBSCertificate.
 * 7. record — the injected recorder stores the certificate; it is returned only after that.
 * A failing step throws a FleetkeyError and no later step runs.
 */
import {
  DeviceLeafProfile, FleetkeyError, assembleCertificate, describeSpki, isDeviceId, parseCertificate,
  parseCsr, spkiSha256, verifyCsrSignature, verifyCsrSignatureSync,
  type Clock, type KeyAlgorithm, type ParsedCsr,
} from '@fleetkey/protocol';
import type { Grant } from './grant.js';
import type { Signer } from './signer.js';
import { randomSerial } from './serial.js';
import { resolvePolicy, type IssuancePolicy } from './policy.js';
import type { VerifiedCsrFacts } from './csr-verifier-pool.js';
import { nativeEcdsa } from './native-ecdsa.js';

export const ISSUANCE_STEPS = [
  'verifyCsr', 'checkKeyPolicy', 'checkBoundKey', 'applyProfile', 'clampValidity', 'sign', 'record',
] as const;

export interface IssuedCertificate {
  readonly deviceId: string;
  readonly serialHex: string;
  readonly der: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spkiSha256Hex: string;
  readonly keyAlgorithm: KeyAlgorithm;
}

/** The hub's storage implements this; `issue` resolves only after `record` did. */
export interface IssuanceRecorder {
  record(issued: IssuedCertificate, grant: Grant): Promise<void>;
}

/** A CSR that this CA parsed and verified (step 1); only `prepare` can make one. */
export interface VerifiedCsr {
  readonly spkiSha256Hex: string;
  readonly keyAlgorithm: KeyAlgorithm;
}

export interface CertificateAuthorityDeps {
  readonly signer: Signer;
  /** DER certificate of `signer`'s key (the device CA). */
  readonly certificate: Buffer;
  readonly recorder: IssuanceRecorder;
  readonly clock: Clock;
  readonly policy?: Partial<IssuancePolicy>;
  /** Optional worker pool for `prepareAsync` (csr-verifier-pool.ts). */
  readonly csrVerifier?: { verify(csrDer: Buffer): Promise<VerifiedCsrFacts> };
  /** Injected for tests; defaults to 16 CSPRNG bytes (serial.ts). */
  readonly serial?: () => Buffer;
}

interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

interface DeviceLeafInput extends Validity {
  readonly deviceId: string;
  readonly spki: Buffer;
  readonly serial: Buffer;
}

export class CertificateAuthority {
  readonly #deps: CertificateAuthorityDeps;
  readonly #policy: IssuancePolicy;
  readonly #profile: DeviceLeafProfile;
  readonly #caValidity: Validity;
  readonly #verified = new WeakMap<VerifiedCsr, VerifiedCsrFacts>();

  constructor(deps: CertificateAuthorityDeps) {
    const ca = parseCertificate(deps.certificate);
    if (!ca.spki.equals(deps.signer.spki)) {
      throw new FleetkeyError('CONFIG_INVALID', { cause: new Error('CA signer does not match the CA certificate') });
    }
    this.#deps = deps;
    this.#policy = resolvePolicy(deps.policy);
    this.#caValidity = { notBefore: ca.notBefore, notAfter: ca.notAfter };
    this.#profile = new DeviceLeafProfile({
      issuerName: ca.subject, issuerSpki: ca.spki,
      ...(this.#policy.crlUrl === undefined ? {} : { crlUrl: this.#policy.crlUrl }),
      ...(this.#policy.ocspUrl === undefined ? {} : { ocspUrl: this.#policy.ocspUrl }),
    });
  }

  /** Steps 1–2 on the calling thread, so a bad CSR is refused before any credential is spent. */
  prepare(csrDer: Buffer): VerifiedCsr {
    const csr = parseCsr(csrDer);
    verifyCsrSignatureSync(csr, nativeEcdsa);
    this.checkKeyPolicy(csr);
    return this.#remember(csr);
  }

  /**
   * Steps 1–2 as `prepare`, same checks and errors, but the signature check runs on the libuv
   * thread pool (parsing and the key import stay on the calling thread). The EST route awaits it
   * before any credential is spent; the event loop meanwhile serves other requests, so one hub
   * process verifies proofs of possession on all cores (bench/enroll: ~100 µs of main-thread
   * time per P-256 CSR, ~1 ms per P-384, ~2 ms per P-521).
   */
  async prepareAsync(csrDer: Buffer): Promise<VerifiedCsr> {
    if (this.#deps.csrVerifier !== undefined) {
      // Parse, key import and verification on a worker thread: the event loop only checks policy.
      const facts = await this.#deps.csrVerifier.verify(csrDer);
      this.checkKeyPolicy(facts);
      return this.#remember(facts);
    }
    const csr = parseCsr(csrDer);
    await verifyCsrSignature(csr);
    this.checkKeyPolicy(csr);
    return this.#remember(csr);
  }

  /**
   * Step 1 for a CSR whose proof of possession `prepare`/`prepareAsync` verified when it was
   * accepted, and which was kept in the store since (batch device-keys items, issued later by the
   * job, ADR 0014): strict parse and key policy again, no second signature check. Never for a
   * CSR that comes from a request.
   */
  prepareAccepted(csrDer: Buffer): VerifiedCsr {
    const csr = parseCsr(csrDer);
    this.checkKeyPolicy(csr);
    return this.#remember(csr);
  }

  /**
   * Step 1 for a key the hub generated itself (batch `hub-keys` mode, ADR 0014): there is no CSR
   * and no possession to prove, since the key never left this process. Step 2 still applies.
   */
  prepareHubKey(spki: Buffer): VerifiedCsr {
    const facts: VerifiedCsrFacts = { spki, key: describeSpki(spki) };
    this.checkKeyPolicy(facts);
    return this.#remember(facts);
  }

  async issue(grant: Grant, csr: Buffer | VerifiedCsr): Promise<IssuedCertificate> {
    const parsed = await this.verifyCsr(csr);
    // A prepared handle carries the SPKI hash computed from the same parsed CSR.
    const spkiSha256Hex = Buffer.isBuffer(csr) ? spkiSha256(parsed.spki).toString('hex') : csr.spkiSha256Hex;
    this.checkKeyPolicy(parsed);
    this.checkBoundKey(grant, spkiSha256Hex);
    const validity = this.clampValidity(grant);
    const leaf = this.applyProfile(grant, parsed, validity);
    const der = await this.sign(leaf);
    const issued: IssuedCertificate = {
      deviceId: grant.deviceId,
      serialHex: leaf.serial.toString('hex'),
      der,
      ...validity,
      spkiSha256Hex,
      keyAlgorithm: parsed.key.algorithm,
    };
    await this.#deps.recorder.record(issued, grant); // step 7: record
    return issued;
  }

  private async verifyCsr(csr: Buffer | VerifiedCsr): Promise<VerifiedCsrFacts> {
    if (!Buffer.isBuffer(csr)) {
      const parsed = this.#verified.get(csr);
      if (parsed === undefined) throw new FleetkeyError('INTERNAL', { cause: new Error('CSR not prepared by this CA') });
      return parsed;
    }
    const parsed = parseCsr(csr);
    await verifyCsrSignature(parsed);
    return parsed;
  }

  private checkKeyPolicy(csr: VerifiedCsrFacts): void {
    const { key } = csr;
    if (!this.#policy.allowedKeyAlgorithms.includes(key.algorithm)) {
      throw new FleetkeyError('KEY_NOT_ALLOWED', { cause: new Error(`${key.algorithm} not in policy`) });
    }
    if (key.algorithm === 'rsa' && (key.rsaBits ?? 0) < this.#policy.minRsaBits) {
      throw new FleetkeyError('KEY_NOT_ALLOWED', { cause: new Error(`RSA-${key.rsaBits} below policy`) });
    }
  }

  private checkBoundKey(grant: Grant, actualSpkiSha256Hex: string): void {
    if (grant.boundSpkiSha256 === undefined) return;
    if (grant.boundSpkiSha256.toLowerCase() !== actualSpkiSha256Hex) {
      throw new FleetkeyError('FORBIDDEN', { cause: new Error('CSR key is not the key bound to the grant') });
    }
  }

  private clampValidity(grant: Grant): Validity {
    const max = grant.maxValidityMs;
    if (max !== undefined && !(Number.isSafeInteger(max) && max > 0)) {
      throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'maxValidityMs' } });
    }
    const now = this.#deps.clock.now();
    const ca = this.#caValidity;
    if (now >= ca.notAfter.getTime()) throw new FleetkeyError('INTERNAL', { cause: new Error('device CA expired') });
    const lifetime = Math.min(max ?? Infinity, this.#policy.defaultValidityMs);
    const notAfter = Math.min(now + lifetime, ca.notAfter.getTime());
    const notBefore = Math.max(now - this.#policy.backdateMs, ca.notBefore.getTime());
    return { notBefore: new Date(notBefore - (notBefore % 1000)), notAfter: new Date(notAfter - (notAfter % 1000)) };
  }

  /** The device-leaf profile's inputs: the grant's device id and the CSR's public key only. */
  private applyProfile(grant: Grant, csr: VerifiedCsrFacts, validity: Validity): DeviceLeafInput {
    if (!isDeviceId(grant.deviceId)) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'deviceId' } });
    const serial = (this.#deps.serial ?? randomSerial)();
    return { deviceId: grant.deviceId, spki: csr.spki, serial, ...validity };
  }

  private async sign(leaf: DeviceLeafInput): Promise<Buffer> {
    const { signer } = this.#deps;
    const tbs = this.#profile.encodeTbs(leaf, signer.algorithm); // = encodeTbsCertificate(profile.template(leaf))
    return assembleCertificate(tbs, signer.algorithm, await signer.sign(tbs));
  }

  #remember(csr: VerifiedCsrFacts): VerifiedCsr {
    const handle: VerifiedCsr = Object.freeze({
      spkiSha256Hex: csr.spkiSha256Hex ?? spkiSha256(csr.spki).toString('hex'),
      keyAlgorithm: csr.key.algorithm,
    });
    this.#verified.set(handle, csr);
    return handle;
  }
}
