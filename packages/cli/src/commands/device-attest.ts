/**
 * `fleetkey device enroll … --attest tpm|se` (ADR 0027): enrollment with the claim token *and*
 * the chip's proof, through the SDK's typed calls.
 *
 *   --attest tpm  --keystore tpm[:TCTI] [--ek rsa|ecc] [--ek-chain intermediate.pem …]
 *   --attest se   --keystore pkcs11:URI --se-label LABEL --se-cert device.pem [--ek-chain …]
 *
 * Invariants: the same input rules as `device enroll` (token never printed); a kind that cannot
 * attest (`--attest tpm` without a tpm key store) is VALIDATION_FAILED before anything is sent.
 */
import { readFile } from 'node:fs/promises';
import { FleetkeyError, fromPemAll, type KeyAlgorithm } from '@fleetkey/protocol';
import { enrollWithSeAttestation, enrollWithTpmAttestation, TpmKeyStore, type IdentitySummary, type KeyStore } from '@fleetkey/device';

export interface AttestInputs {
  readonly attest: string;
  readonly hubUrl: string;
  readonly pins: string[];
  readonly token: string;
  readonly stateDir: string;
  readonly keyStore: KeyStore;
  readonly keyAlgorithm: KeyAlgorithm | undefined;
  readonly ekChain: readonly string[] | undefined;
  /** `rsa` (default) or `ecc` (the P-384 high-range EK). */
  readonly ek: string | undefined;
  readonly seLabel: string | undefined;
  readonly seCert: string | undefined;
}

async function pemFiles(paths: readonly string[] | undefined): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const path of paths ?? []) out.push(...fromPemAll(await readFile(path, 'utf8'), 'CERTIFICATE'));
  return out;
}

export async function enrollAttested(o: AttestInputs): Promise<IdentitySummary> {
  const base = { hubUrl: o.hubUrl, pin: o.pins, token: o.token, stateDir: o.stateDir };
  const chain = await pemFiles(o.ekChain);
  if (o.attest === 'tpm') {
    if (!(o.keyStore instanceof TpmKeyStore)) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'keystore', reason: '--attest tpm needs --keystore tpm[:TCTI]' } });
    if (o.ek !== undefined && o.ek !== 'rsa' && o.ek !== 'ecc') throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'ek', allowed: 'rsa, ecc' } });
    return enrollWithTpmAttestation({ ...base, keyStore: o.keyStore, ekChain: chain, ek: o.ek ?? 'rsa', ...(o.keyAlgorithm === undefined ? {} : { keyAlgorithm: o.keyAlgorithm }) });
  }
  if (o.attest === 'se') {
    if (o.seLabel === undefined || o.seCert === undefined) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'se-label/se-cert' } });
    return enrollWithSeAttestation({ ...base, keyStore: o.keyStore, label: o.seLabel, deviceCertificate: await readFile(o.seCert, 'utf8'), chain });
  }
  throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'attest', allowed: 'tpm, se' } });
}
