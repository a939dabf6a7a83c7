/**
 * The `file` key store: one unencrypted PKCS#8 PEM file per label in a private directory.
 *
 * Invariants:
 * - A key file is created with mode 0600 (write to a temporary file, fsync, then hard-link it to
 *   its final name and fsync the directory): a reader sees either no key or the whole key, and
 *   an existing label is never overwritten (link(2) fails with EEXIST, rename(2) would not).
 * - A key file that is readable or writable by group or others, that is a symbolic link, or
 *   that belongs to another user is refused on open: the key may have been copied or replaced.
 *   The checks run on the opened descriptor (fstat), not on the path, so they cannot be raced.
 * - Labels are checked against KEY_LABEL_PATTERN before they touch the file system.
 * - The key directory is created with mode 0700.
 */
import { constants, promises as fs } from 'node:fs';
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { FleetkeyError, type KeyAlgorithm } from '@fleetkey/protocol';
import { syncDirectory } from '../../durable-fs.js';
import { algorithmOfKey, generatePrivateKey, signWithKey } from '../algorithms.js';
import { isValidKeyLabel, type KeyHandle, type KeyStore, type TlsKeyCapability, type TlsKeyOptions } from '../types.js';

const KEY_FILE_MODE = 0o600;
const KEY_DIR_MODE = 0o700;
const KEY_FILE_SUFFIX = '.key.pem';

export interface FileKeyStoreOptions {
  /** The directory holding the key files (created with mode 0700 when missing). */
  readonly directory: string;
}

function keystoreError(reason: string, cause?: unknown): FleetkeyError {
  return new FleetkeyError('KEYSTORE_ERROR', { cause: cause === undefined ? new Error(reason) : new Error(reason, { cause }) });
}

function checkLabel(label: string): void {
  if (!isValidKeyLabel(label)) throw keystoreError('key label is not of the allowed form');
}

class FileKeyHandle implements KeyHandle, TlsKeyCapability {
  readonly algorithm: KeyAlgorithm;
  readonly #key: KeyObject;

  constructor(key: KeyObject, algorithm: KeyAlgorithm) {
    this.#key = key;
    this.algorithm = algorithm;
  }

  async publicKeySpki(): Promise<Buffer> {
    return createPublicKey(this.#key).export({ type: 'spki', format: 'der' });
  }

  async sign(data: Buffer): Promise<Buffer> {
    return signWithKey(this.#key, this.algorithm, data);
  }

  tlsKeyOptions(): TlsKeyOptions {
    return { key: this.#key.export({ type: 'pkcs8', format: 'pem' }) };
  }
}

/**
 * Software keys in files. Fine for development and gateways without a chip; prefer pkcs11/tpm.
 *
 * @example
 * const store = new FileKeyStore({ directory: '/var/lib/fleetkey/keys' });
 * const key = await store.create('device-1', 'p256');
 * const signature = await key.sign(Buffer.from('data'));
 */
export class FileKeyStore implements KeyStore {
  readonly kind = 'file';
  readonly #directory: string;

  constructor(options: FileKeyStoreOptions) {
    this.#directory = options.directory;
  }

  async create(label: string, algorithm: KeyAlgorithm): Promise<KeyHandle> {
    checkLabel(label);
    const key = await generatePrivateKey(algorithm);
    const pem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
    await fs.mkdir(this.#directory, { recursive: true, mode: KEY_DIR_MODE });
    await this.#writeNew(this.#pathOf(label), pem);
    return new FileKeyHandle(key, algorithm);
  }

  /** Stores an existing PKCS#8 key (e.g. from a batch bundle) under a new label, mode 0600. */
  async importKey(label: string, key: KeyObject): Promise<KeyHandle> {
    checkLabel(label);
    const algorithm = algorithmOfKey(key);
    if (key.type !== 'private' || algorithm === undefined) throw keystoreError('not a supported private key');
    await fs.mkdir(this.#directory, { recursive: true, mode: KEY_DIR_MODE });
    await this.#writeNew(this.#pathOf(label), key.export({ type: 'pkcs8', format: 'pem' }).toString());
    return new FileKeyHandle(key, algorithm);
  }

  async open(label: string): Promise<KeyHandle> {
    checkLabel(label);
    const pem = await this.#readPrivate(this.#pathOf(label));
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: pem, format: 'pem' });
    } catch (err) {
      throw keystoreError('key file is not a PKCS#8 PEM private key', err);
    }
    const algorithm = algorithmOfKey(key);
    if (algorithm === undefined) throw keystoreError('key file holds an unsupported key type');
    return new FileKeyHandle(key, algorithm);
  }

  #pathOf(label: string): string {
    return join(this.#directory, label + KEY_FILE_SUFFIX);
  }

  async #writeNew(path: string, pem: string): Promise<void> {
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    const file = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, KEY_FILE_MODE);
    try {
      await file.chmod(KEY_FILE_MODE); // umask may only remove bits, but be explicit
      await file.writeFile(pem);
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await fs.link(tmp, path);
    } catch (err) {
      const exists = (err as NodeJS.ErrnoException).code === 'EEXIST';
      throw keystoreError(exists ? 'a key with this label already exists' : 'could not store the key', err);
    } finally {
      await fs.rm(tmp, { force: true });
    }
    await syncDirectory(this.#directory);
  }

  async #readPrivate(path: string): Promise<string> {
    let file: fs.FileHandle;
    try {
      file = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      throw keystoreError(missing ? 'no key with this label' : 'could not open the key file', err);
    }
    try {
      const stat = await file.stat();
      if (!stat.isFile()) throw keystoreError('key path is not a regular file');
      if ((stat.mode & 0o077) !== 0) throw keystoreError(`key file mode ${(stat.mode & 0o777).toString(8)} lets group/others access it; expected 600`);
      const uid = process.getuid?.();
      if (uid !== undefined && stat.uid !== uid) throw keystoreError('key file belongs to another user');
      return await file.readFile('utf8');
    } finally {
      await file.close();
    }
  }
}
