/**
 * The device's TPM side of attestation (ADR 0027), with tpm2-tools 5.4 over the key store's TCTI
 * and its serialised, context-flushing sequences (keystore/tpm/tools.ts, ADR 0024 §6).
 *
 * Invariants:
 * - The EK is one of the TCG EK Credential Profile EKs: `rsa` = RSA 2048 (persistent 0x81010001
 *   when provisioned, else re-created from the default template by tpm2_createek; certificate in
 *   NV 0x01c00002) or `ecc` = ECC P-384 high-range (persistent 0x81010016, certificate in NV
 *   0x01c00016; never re-created: the default ECC template is P-256).
 * - The EK's own attributes decide its authorisation: userWithAuth (high-range EKs) → empty
 *   password; otherwise a policy session satisfying PolicySecret(endorsement) (the L templates).
 * - A new AK is created for each enrollment (restricted ECDSA P-256 signing key under the EK);
 *   its saved context lives in a private temp folder removed by `dispose()`.
 * - Credential activation uses a policy session satisfying the EK's PolicySecret(endorsement),
 *   flushed afterwards; the secret leaves this module only towards the hub, over pinned TLS.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withTpm } from '../keystore/tpm/tools.js';
import type { TpmKeyHandle } from '../keystore/tpm/tpm-keystore.js';

export type EkKind = 'rsa' | 'ecc';
export const EK_HANDLES: Readonly<Record<EkKind, { handle: string; nvIndex: string }>> = {
  rsa: { handle: '0x81010001', nvIndex: '0x01c00002' },
  ecc: { handle: '0x81010016', nvIndex: '0x01c00016' },
};

type Run = (name: string, args: readonly string[]) => Promise<Buffer>;
/** EK/AK sequences do not use the storage primary (only certify loads a key under it). */
const NO_PRIMARY = { primary: false };

export class TpmAttester {
  private constructor(private readonly tcti: string, private readonly dir: string, private readonly ek: EkKind) {}

  static async open(tcti: string, ek: EkKind = 'rsa'): Promise<TpmAttester> {
    return new TpmAttester(tcti, await mkdtemp(join(tmpdir(), 'fleetkey-attest-')), ek);
  }

  /** The EK certificate (DER) from its NV index. */
  async ekCertificate(): Promise<Buffer> {
    return withTpm(this.tcti, async (run, dir) => {
      await run('tpm2_nvread', [EK_HANDLES[this.ek].nvIndex, '-o', join(dir, 'ek.der')]);
      return readFile(join(dir, 'ek.der'));
    }, NO_PRIMARY);
  }

  /** Creates the AK under the EK; returns its TPM2B_PUBLIC. */
  async createAk(): Promise<Buffer> {
    return withTpm(this.tcti, async (run) => {
      const ek = await this.#ek(run);
      await run('tpm2_createak', ['-C', ek, '-c', this.#p('ak.ctx'), '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', this.#p('ak.pub'), '-n', this.#p('ak.name'), '-r', this.#p('ak.priv')]);
      return readFile(this.#p('ak.pub'));
    }, NO_PRIMARY);
  }

  /** TPM2_ActivateCredential of the hub's (credentialBlob, encryptedSecret) for the AK. */
  async activate(credentialBlob: Buffer, encryptedSecret: Buffer): Promise<Buffer> {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(0xbadcc0de, 0); // tpm2-tools credential file: magic, version 1
    header.writeUInt32BE(1, 4);
    await writeFile(this.#p('cred.blob'), Buffer.concat([header, credentialBlob, encryptedSecret]), { mode: 0o600 });
    return withTpm(this.tcti, async (run) => {
      const ek = await this.#ek(run);
      const printed = (await run('tpm2_readpublic', ['-c', ek])).toString();
      if (/attributes:\s*\n\s*value:\s*\S*userwithauth/.test(printed)) {
        await run('tpm2_activatecredential', ['-c', this.#p('ak.ctx'), '-C', ek, '-i', this.#p('cred.blob'), '-o', this.#p('secret')]);
        return readFile(this.#p('secret'));
      }
      await run('tpm2_startauthsession', ['--policy-session', '-S', this.#p('session.ctx')]);
      try {
        await run('tpm2_policysecret', ['-S', this.#p('session.ctx'), '-c', 'e']);
        await run('tpm2_activatecredential', ['-c', this.#p('ak.ctx'), '-C', ek, '-i', this.#p('cred.blob'), '-o', this.#p('secret'), '-P', `session:${this.#p('session.ctx')}`]);
      } finally {
        await run('tpm2_flushcontext', [this.#p('session.ctx')]).catch(() => undefined);
      }
      return readFile(this.#p('secret'));
    }, NO_PRIMARY);
  }

  /** TPM2_Certify of the key store's key by the AK: (TPM2B_PUBLIC, TPMS_ATTEST, TPMT_SIGNATURE). */
  async certify(key: TpmKeyHandle): Promise<{ keyPublic: Buffer; certifyInfo: Buffer; certifySignature: Buffer }> {
    return withTpm(this.tcti, async (run, dir) => {
      await run('tpm2_load', ['-C', join(dir, 'primary.ctx'), '-u', key.tpm.pub, '-r', key.tpm.priv, '-c', join(dir, 'key.ctx')]);
      await run('tpm2_certify', ['-C', this.#p('ak.ctx'), '-c', join(dir, 'key.ctx'), '-g', 'sha256', '-o', join(dir, 'attest'), '-s', join(dir, 'sig'), '-f', 'tss']);
      const [keyPublic, certifyInfo, certifySignature] = await Promise.all([readFile(key.tpm.pub), readFile(join(dir, 'attest')), readFile(join(dir, 'sig'))]);
      return { keyPublic, certifyInfo, certifySignature };
    });
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The persistent EK if provisioned, else (RSA only) one re-created from the default template. */
  async #ek(run: Run): Promise<string> {
    const { handle } = EK_HANDLES[this.ek];
    if (this.ek === 'ecc' || (await run('tpm2_readpublic', ['-c', handle]).then(() => true, () => false))) return handle;
    await run('tpm2_createek', ['-c', this.#p('ek.ctx'), '-G', 'rsa', '-u', this.#p('ek.pub')]);
    return this.#p('ek.ctx');
  }

  #p(name: string): string {
    return join(this.dir, name);
  }
}
