/**
 * The `tpm` key store: keys created inside a TPM 2.0 (swtpm in tests) through tpm2-tools,
 * ADR 0024 §6.
 *
 * Invariants:
 * - Keys are created by TPM2_Create under the storage primary with fixedTPM|fixedParent|
 *   sensitiveDataOrigin|userWithAuth|sign: the private part exists in clear only inside the TPM;
 *   the `.priv` blob on disk is wrapped by the primary and useless on another TPM.
 * - open() re-checks those attributes in the stored public area and refuses a key without them.
 * - `<label>.pub`/`<label>.priv` are created exclusively (O_EXCL, mode 0600) in a 0700 folder:
 *   a label is never reused. Labels are checked against KEY_LABEL_PATTERN first.
 * - Signing hashes in Node and sends the digest (`tpm2_sign -d`); ECDSA results are turned into
 *   DER if the tool gives raw r‖s. Ed25519 is refused: TPM 2.0 has no EdDSA signing scheme.
 * - `locator` is the TCTI (`swtpm:host=…,port=…`, `device:/dev/tpmrm0`); no secret.
 * - TLS (ADR 0028): on a resource-manager TCTI, create() links the new key into the folder's
 *   tpm2-pkcs11 token (tls-link.ts) and open() of a linked key returns a handle with the TLS
 *   capability (OpenSSL's pkcs11 engine over libtpm2-pkcs11). Keys carry the null scheme so the
 *   token may map them to CKM_ECDSA/CKM_RSA_PKCS; the hash is chosen at signing time.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { type KeyAlgorithm } from '@fleetkey/protocol';
import { algorithmOfKey, digestFor, ecdsaHalfLength, ecdsaRawToDer } from '../algorithms.js';
import { isValidKeyLabel, type KeyHandle, type KeyStore, type TlsKeyCapability, type TlsKeyOptions } from '../types.js';
import { canLinkForTls, checkVisibleToEngine, configureEngineEnvironment, engineKeyIdentifier, isLinked, linkedAt, linkForTls } from './tls-link.js';
import { KEY_ATTRIBUTES, tpmError, withTpm } from './tools.js';

export const DEFAULT_TCTI = 'device:/dev/tpmrm0';
const KEY_TEMPLATES: Partial<Record<KeyAlgorithm, string>> = {
  p256: 'ecc256:null', p384: 'ecc384:null', p521: 'ecc521:null', rsa: 'rsa3072:null',
};

export interface TpmKeyStoreOptions {
  /** Folder of the wrapped key blobs (created 0700). */
  readonly directory: string;
  /** tpm2-tools TCTI; default the kernel resource manager. */
  readonly tcti?: string;
}

export class TpmKeyHandle implements KeyHandle {
  constructor(
    readonly algorithm: KeyAlgorithm, readonly spki: Buffer, readonly sign: (data: Buffer) => Promise<Buffer>,
    /** The TPM-wrapped blobs and TCTI, for TPM2_Certify by an AK (device/src/attest/, ADR 0027). */
    readonly tpm: { readonly pub: string; readonly priv: string; readonly tcti: string },
  ) {}

  async publicKeySpki(): Promise<Buffer> {
    return Buffer.from(this.spki);
  }
}

/** A key linked into the folder's tpm2-pkcs11 token: usable by Node's TLS through the engine. */
class TpmTlsKeyHandle extends TpmKeyHandle implements TlsKeyCapability {
  constructor(algorithm: KeyAlgorithm, spki: Buffer, sign: (data: Buffer) => Promise<Buffer>, tpm: TpmKeyHandle['tpm'], readonly tls: () => TlsKeyOptions) {
    super(algorithm, spki, sign, tpm);
  }

  tlsKeyOptions(): TlsKeyOptions {
    return this.tls();
  }
}

/**
 * @example
 * const store = new TpmKeyStore({ directory: '/var/lib/fleetkey/tpm', tcti: 'device:/dev/tpmrm0' });
 * const key = await store.create('device-1', 'p256');
 */
export class TpmKeyStore implements KeyStore {
  readonly kind = 'tpm';
  readonly locator: string;
  readonly #directory: string;

  constructor(options: TpmKeyStoreOptions) {
    this.#directory = options.directory;
    this.locator = options.tcti ?? DEFAULT_TCTI;
  }

  async create(label: string, algorithm: KeyAlgorithm): Promise<KeyHandle> {
    this.#check(label);
    const template = KEY_TEMPLATES[algorithm];
    if (template === undefined) throw tpmError(`TPM 2.0 cannot hold ${algorithm} signing keys`);
    await fs.mkdir(this.#directory, { recursive: true, mode: 0o700 });
    const [pub, priv] = [this.#path(label, 'pub'), this.#path(label, 'priv')];
    const reserved = await fs.open(pub, 'wx', 0o600).catch((err: unknown) => {
      throw tpmError((err as NodeJS.ErrnoException).code === 'EEXIST' ? 'a key with this label already exists' : 'cannot create the key files', err);
    });
    await reserved.close();
    try {
      await withTpm(this.locator, async (run, dir) => {
        await run('tpm2_create', ['-C', join(dir, 'primary.ctx'), '-G', template, '-a', KEY_ATTRIBUTES, '-u', join(dir, 'k.pub'), '-r', join(dir, 'k.priv')]);
        await fs.copyFile(join(dir, 'k.priv'), priv, fs.constants.COPYFILE_EXCL);
        await fs.chmod(priv, 0o600);
        await fs.copyFile(join(dir, 'k.pub'), pub);
      });
    } catch (err) {
      await Promise.all([fs.rm(priv, { force: true }), fs.writeFile(pub, '')]); // the label stays used (never reused)
      throw err;
    }
    if (canLinkForTls(this.locator)) await linkForTls(this.locator, this.#directory, label, { pub, priv });
    return this.open(label);
  }

  async open(label: string): Promise<KeyHandle> {
    this.#check(label);
    const files = await this.#files(label);
    const spki = await withTpm(this.locator, async (run, dir) => {
      const printed = (await run('tpm2_print', ['-t', 'TPM2B_PUBLIC', files.pub])).toString();
      const attributes = /attributes:\s*\n\s*value:\s*(\S+)/.exec(printed)?.[1]?.split('|') ?? [];
      if (!['fixedtpm', 'fixedparent', 'sensitivedataorigin'].every((a) => attributes.includes(a))) {
        throw tpmError('the key under this label is not fixedTPM|fixedParent|sensitiveDataOrigin');
      }
      await this.#load(run, dir, files);
      await run('tpm2_readpublic', ['-c', join(dir, 'key.ctx'), '-f', 'der', '-o', join(dir, 'key.der')]);
      return fs.readFile(join(dir, 'key.der'));
    });
    const algorithm = algorithmOfKey(createPublicKey({ key: spki, format: 'der', type: 'spki' }));
    if (algorithm === undefined) throw tpmError('the key under this label is of an unsupported type');
    const sign = (data: Buffer): Promise<Buffer> => this.#sign(files, algorithm, data);
    const tpm = { ...files, tcti: this.locator };
    if (!(await isLinked(this.#directory, label))) return new TpmKeyHandle(algorithm, spki, sign, tpm);
    const linked = await linkedAt(this.#directory, label);
    return new TpmTlsKeyHandle(algorithm, spki, sign, tpm, () => {
      checkVisibleToEngine(linked);
      configureEngineEnvironment(this.locator, this.#directory);
      return { privateKeyEngine: 'pkcs11', privateKeyIdentifier: engineKeyIdentifier(this.#directory, label) };
    });
  }

  async #sign(files: { pub: string; priv: string }, algorithm: KeyAlgorithm, data: Buffer): Promise<Buffer> {
    const hash = digestFor(algorithm) ?? 'sha256';
    return withTpm(this.locator, async (run, dir) => {
      await fs.writeFile(join(dir, 'digest'), createHash(hash).update(data).digest());
      await this.#load(run, dir, files);
      await run('tpm2_sign', ['-c', join(dir, 'key.ctx'), '-g', hash, '-d', '-f', 'plain', '-o', join(dir, 'sig'), join(dir, 'digest')]);
      const signature = await fs.readFile(join(dir, 'sig'));
      // tpm2-tools 5.4 writes ECDSA "plain" as DER already; other versions write r‖s.
      const raw = algorithm !== 'rsa' && signature.length === 2 * ecdsaHalfLength(algorithm) && signature[0] !== 0x30;
      return raw ? ecdsaRawToDer(signature, algorithm) : signature;
    });
  }

  async #load(run: (name: string, args: readonly string[]) => Promise<Buffer>, dir: string, files: { pub: string; priv: string }): Promise<void> {
    await run('tpm2_load', ['-C', join(dir, 'primary.ctx'), '-u', files.pub, '-r', files.priv, '-c', join(dir, 'key.ctx')]);
  }

  async #files(label: string): Promise<{ pub: string; priv: string }> {
    const files = { pub: this.#path(label, 'pub'), priv: this.#path(label, 'priv') };
    const sizes = await Promise.all([fs.stat(files.pub), fs.stat(files.priv)].map((p) => p.then((s) => s.size, () => 0)));
    if (sizes.some((size) => size === 0)) throw tpmError('no key with this label');
    return files;
  }

  #path(label: string, part: 'pub' | 'priv'): string {
    return join(this.#directory, `${label}.${part}`);
  }

  #check(label: string): void {
    if (!isValidKeyLabel(label)) throw tpmError('key label is not of the allowed form');
  }
}
