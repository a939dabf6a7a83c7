/**
 * First enrollment with hardware attestation (ADR 0027): the claim token *and* the chip's proof.
 *
 * TPM (`enrollWithTpmAttestation`): cacerts over pinned TLS → EK certificate (NV) + new AK →
 * POST tpm/challenge → TPM2_ActivateCredential → new operational key in the `tpm` key store →
 * TPM2_Certify(key, AK) → a fresh pinned TLS 1.3 connection: its tls-exporter goes into the CSR's
 * challengePassword (RFC 7030 §3.5), the TPM signs the CSR → POST tpm/enroll on that connection.
 * Secure element (`enrollWithSeAttestation`): POST se/challenge with the factory certificate →
 * nonce → fresh connection: the chip signs "FLEETKEY-SE-ATTEST-V1\0" ‖ nonce ‖ tls-exporter and the
 * CSR (with the exporter) for its factory key → POST se/enroll on that connection.
 *
 * Invariants: as enroll() — the token only over pinned TLS, never stored; nothing written to the
 * state directory unless the issued certificate is accepted (our key, chains to the pin).
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { buildCsr, decodeCertsOnly, FleetkeyError, fromPemAll, systemClock, type Clock, type KeyAlgorithm } from '@fleetkey/protocol';
import { EstClient } from '../enroll/est-client.js';
import { checkClaimToken } from '../enroll/est-wire.js';
import type { KeyHandle, KeyStore } from '../keystore/types.js';
import { TpmKeyHandle, type TpmKeyStore } from '../keystore/tpm/tpm-keystore.js';
import { hasIdentity, saveIdentity, sha256Hex } from '../state/identity.js';
import { PinSet } from '../trust/pin-set.js';
import { AttestHub, field, text, type AttestConnection } from '../attest/hub-channel.js';
import { TpmAttester, type EkKind } from '../attest/tpm-evidence.js';
import { acceptIssuedCertificate, newKeyLabel } from './issued.js';
import type { IdentitySummary } from './enroll.js';

export interface AttestedEnrollBase {
  readonly hubUrl: string;
  readonly pin: string | readonly string[];
  /** The claim token: the owner's authorisation. Never stored. */
  readonly token: string;
  readonly stateDir: string;
  readonly timeoutMs?: number;
  readonly clock?: Clock;
}

export interface TpmAttestedEnrollOptions extends AttestedEnrollBase {
  /** The `tpm` key store that makes the operational key (its TCTI is the TPM attested). */
  readonly keyStore: TpmKeyStore;
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Which EK: `rsa` (RSA 2048, default) or `ecc` (ECC P-384 high range), ADR 0027. */
  readonly ek?: EkKind;
  /** DER EK certificate; default read from the EK's NV index. */
  readonly ekCertificate?: Buffer;
  /** DER intermediates between the EK certificate and the vendor root, if the hub needs them. */
  readonly ekChain?: readonly Buffer[];
}

export interface SeAttestedEnrollOptions extends AttestedEnrollBase {
  /** The store holding the chip's factory key (e.g. a Pkcs11KeyStore for the SE's module). */
  readonly keyStore: KeyStore;
  /** Label of the factory key in that store. */
  readonly label: string;
  /** The factory device certificate (PEM or DER), then optional intermediates (PEM bundle or DER list). */
  readonly deviceCertificate: string | Buffer;
  readonly chain?: readonly Buffer[];
}

const b64 = (b: Buffer): string => b.toString('base64');

/**
 * @example
 * import { enrollWithTpmAttestation, TpmKeyStore } from '@fleetkey/device';
 * const id = await enrollWithTpmAttestation({
 *   hubUrl: 'https://hub.example:8443', pin: 'sha256//…', token, stateDir: '/var/lib/fleetkey',
 *   keyStore: new TpmKeyStore({ directory: '/var/lib/fleetkey/tpm', tcti: 'device:/dev/tpmrm0' }),
 * });
 */
export async function enrollWithTpmAttestation(options: TpmAttestedEnrollOptions): Promise<IdentitySummary> {
  const { pins, clock, hub, caCertificates } = await prepare(options);
  const attester = await TpmAttester.open(options.keyStore.locator, options.ek ?? 'rsa');
  try {
    const ekCertificate = options.ekCertificate ?? (await attester.ekCertificate());
    const akPublic = await attester.createAk();
    const challenge = await hub.post('tpm/challenge', { ekCertificate: b64(ekCertificate), ekChain: (options.ekChain ?? []).map(b64), akPublic: b64(akPublic) });
    const activatedSecret = await attester.activate(field(challenge, 'credentialBlob'), field(challenge, 'encryptedSecret'));
    const label = newKeyLabel(clock, randomBytes(4).toString('hex'));
    const key = await options.keyStore.create(label, options.keyAlgorithm ?? 'p256');
    if (!(key instanceof TpmKeyHandle)) throw new FleetkeyError('KEYSTORE_ERROR', { cause: new Error('not a TPM key') });
    const certified = await attester.certify(key);
    const connection = await hub.connect();
    const answer = await usingConnection(connection, async () => connection.post('tpm/enroll', {
      challengeId: text(challenge, 'challengeId'), csr: b64(await boundCsr(key, connection)), activatedSecret: b64(activatedSecret),
      keyPublic: b64(certified.keyPublic), certifyInfo: b64(certified.certifyInfo), certifySignature: b64(certified.certifySignature),
    }));
    return await save(options, { store: options.keyStore, label, key, answer, caCertificates, pins, clock });
  } finally {
    await attester.dispose();
  }
}

/**
 * @example
 * const id = await enrollWithSeAttestation({ hubUrl, pin, token, stateDir, keyStore: pkcs11Store,
 *   label: 'factory', deviceCertificate: readFileSync('/etc/se/device.pem', 'utf8') });
 */
export async function enrollWithSeAttestation(options: SeAttestedEnrollOptions): Promise<IdentitySummary> {
  const { pins, clock, hub, caCertificates } = await prepare(options);
  const key = await options.keyStore.open(options.label);
  const deviceCertificate = typeof options.deviceCertificate === 'string' ? (fromPemAll(options.deviceCertificate, 'CERTIFICATE')[0] ?? Buffer.alloc(0)) : options.deviceCertificate;
  if (!new X509Certificate(deviceCertificate).publicKey.export({ format: 'der', type: 'spki' }).equals(await key.publicKeySpki())) {
    throw new FleetkeyError('KEYSTORE_ERROR', { cause: new Error('the device certificate is not for the key under this label') });
  }
  const challenge = await hub.post('se/challenge', { deviceCertificate: b64(deviceCertificate), chain: (options.chain ?? []).map(b64) });
  const connection = await hub.connect();
  const answer = await usingConnection(connection, async () => {
    const signature = await key.sign(Buffer.concat([Buffer.from('FLEETKEY-SE-ATTEST-V1\0', 'ascii'), field(challenge, 'nonce'), connection.binding]));
    const csr = await boundCsr(key, connection);
    return connection.post('se/enroll', { challengeId: text(challenge, 'challengeId'), csr: b64(csr), signature: b64(signature) });
  });
  return save(options, { store: options.keyStore, label: options.label, key, answer, caCertificates, pins, clock });
}

/** Runs `fn` (chip operations, then one post) and closes the connection whatever happens. */
async function usingConnection<T>(connection: AttestConnection, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    connection.close();
  }
}

async function prepare(options: AttestedEnrollBase) {
  const pins = PinSet.parse(options.pin);
  checkClaimToken(options.token);
  if (await hasIdentity(options.stateDir)) throw new FleetkeyError('CONFLICT', { cause: new Error('the state directory already holds an identity; use renew') });
  const clock = options.clock ?? systemClock;
  // The hub proves its pin (and we learn the CA chain) before any chip operation or token use.
  const caCertificates = await new EstClient({ hubUrl: options.hubUrl, pins, clock, timeoutMs: options.timeoutMs }).getCaCerts();
  const hub = new AttestHub({ hubUrl: options.hubUrl, pins, token: options.token, timeoutMs: options.timeoutMs, clock });
  return { pins, clock, hub, caCertificates };
}

/** A CSR by the chip key carrying this connection's tls-exporter (RFC 7030 §3.5, RFC 9266). */
function boundCsr(key: KeyHandle, connection: AttestConnection): Promise<Buffer> {
  return key.publicKeySpki().then((spki) =>
    buildCsr({ spki, subject: [], algorithm: key.algorithm, sign: (data) => key.sign(data), challengePassword: connection.binding.toString('base64') }),
  );
}

interface Issued {
  readonly store: KeyStore;
  readonly label: string;
  readonly key: KeyHandle;
  readonly answer: Record<string, unknown>;
  readonly caCertificates: Buffer[];
  readonly pins: PinSet;
  readonly clock: Clock;
}

async function save(options: AttestedEnrollBase, o: Issued): Promise<IdentitySummary> {
  let issued: Buffer[];
  try {
    issued = decodeCertsOnly(field(o.answer, 'pkcs7'));
  } catch (cause) {
    throw new FleetkeyError('HUB_PROTOCOL_ERROR', { cause });
  }
  const spki = await o.key.publicKeySpki();
  const accepted = acceptIssuedCertificate({ issued, caCertificates: o.caCertificates, spki, pins: o.pins, clock: o.clock });
  const keyStore = { kind: o.store.kind, label: o.label, ...(o.store.locator === undefined ? {} : { locator: o.store.locator }) };
  const identity = {
    version: 1 as const, deviceId: accepted.deviceId, hubUrl: options.hubUrl, pins: o.pins.toArray(), keyStore, keyAlgorithm: o.key.algorithm,
    certificateSha256: sha256Hex(accepted.certificateDer), notBefore: accepted.notBefore.toISOString(), notAfter: accepted.notAfter.toISOString(),
    enrolledAt: new Date(o.clock.now()).toISOString(),
  };
  await saveIdentity(options.stateDir, { identity, certificateDer: accepted.certificateDer, chainDers: accepted.chainDers });
  return { deviceId: identity.deviceId, hubUrl: identity.hubUrl, notBefore: accepted.notBefore, notAfter: accepted.notAfter, keyStore, keyAlgorithm: o.key.algorithm };
}
