/**
 * TLS for TPM keys (ADR 0028): the key that TPM2_Create made stays where it is; its wrapped
 * public/private blobs are *linked* into a tpm2-pkcs11 token (`tpm2_ptool link`), so OpenSSL's
 * pkcs11 engine reaches the same TPM object through libtpm2-pkcs11 for Node's TLS.
 *
 * Invariants:
 * - Linking copies no key material out of the TPM: the token records the same wrapped blobs and
 *   loads them under the same storage primary; fixedTPM|fixedParent|sensitiveDataOrigin stay as
 *   TPM2_Create set them (the token reports CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE,
 *   CKA_NEVER_EXTRACTABLE — PKCS#11 v2.40 §4.9).
 * - tpm2-pkcs11 needs its primary to be persistent or one of its own transient templates; the
 *   fleetkey SRK (ECC P-256, noda) is none of its templates, so it is made persistent
 *   (TPM2_EvictControl, TPM 2.0 Part 3 §28.5) at the first handle of OWNER_HANDLES that is free
 *   or already holds the same object (same TPM name). It is re-derived from the owner seed, so
 *   every blob created under the transient SRK loads under the persistent copy.
 * - Linking needs a resource manager (`device:/dev/tpmrm*`, `tabrmd:`): tpm2_ptool leaves
 *   transient objects that only a resource manager flushes, and libtpm2-pkcs11 keeps its TPM
 *   connection open for the life of the process. canLinkForTls() says which TCTIs qualify.
 * - The token user PIN is random, lives only in `<dir>/pkcs11/user.pin` (0600, no newline: libp11
 *   reads it verbatim) and never appears in an error. It guards the token's wrapped auth value of
 *   a key whose TPM auth is empty: it protects nothing the blob files' permissions do not.
 * - One TPM token store per process for TLS (the engine reads TPM2_PKCS11_STORE once);
 *   configureEngineEnvironment() refuses a process already set up for another module or store.
 * - libtpm2-pkcs11 reads its token's objects once, when the engine first loads it: a key linked
 *   after that (a renewal in the same process) is refused for TLS with a clear reason (restart
 *   the process) instead of the engine's "key not found" (checkVisibleToEngine).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { percentEncode } from '../pkcs11/uri.js';
import { tpmError, withTpm } from './tools.js';

export const TPM2_PKCS11_MODULE = '/usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1';
export const DEBIAN_ENGINES_DIR = '/usr/lib/x86_64-linux-gnu/engines-3';
/** The token label inside each store's tpm2-pkcs11 database. */
export const TPM_TOKEN_LABEL = 'fleetkey-tpm';
/** TCG Provisioning Guidance §7.8: owner storage keys live at 0x81000000–0x8100FFFF. */
const OWNER_HANDLES = Array.from({ length: 16 }, (_, i) => 0x81000001 + i);

type Run = (name: string, args: readonly string[]) => Promise<Buffer>;

/** True for TCTIs backed by a resource manager, which linking and TLS need (module header). */
export function canLinkForTls(tcti: string): boolean {
  return /^device:\/dev\/tpmrm\d+$/.test(tcti) || tcti.startsWith('tabrmd');
}

export interface TokenPaths {
  readonly store: string;
  readonly pinFile: string;
  marker(label: string): string;
}

export function tokenPaths(directory: string): TokenPaths {
  const store = join(resolve(directory), 'pkcs11');
  return { store, pinFile: join(store, 'user.pin'), marker: (label) => join(store, `${label}.linked`) };
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** The TPM name of an object (TPM 2.0 Part 1 §16), for comparing a persistent handle with the SRK. */
async function nameOf(run: Run, dir: string, context: string, file: string): Promise<Buffer | undefined> {
  try {
    await run('tpm2_readpublic', ['-c', context, '-n', join(dir, file)]);
    return await fs.readFile(join(dir, file));
  } catch {
    return undefined;
  }
}

/** The persistent handle holding the SRK (made persistent on first use). */
async function persistentSrk(run: Run, dir: string): Promise<number> {
  const srkName = await nameOf(run, dir, join(dir, 'primary.ctx'), 'srk.name');
  if (srkName === undefined) throw tpmError('cannot read the storage primary');
  const used = (await run('tpm2_getcap', ['handles-persistent'])).toString();
  for (const handle of OWNER_HANDLES) {
    if (!used.toLowerCase().includes(hex(handle))) {
      await run('tpm2_evictcontrol', ['-C', 'o', '-c', join(dir, 'primary.ctx'), hex(handle)]);
      return handle;
    }
    const name = await nameOf(run, dir, hex(handle), `h${handle}.name`);
    if (name?.equals(srkName) === true) return handle;
  }
  throw tpmError('no free persistent handle for the storage primary (0x81000001–0x81000010)');
}

/** Creates the tpm2-pkcs11 database and token once per key folder. */
async function ensureToken(run: Run, dir: string, paths: TokenPaths): Promise<void> {
  if (await fs.stat(paths.pinFile).then(() => true, () => false)) return;
  await fs.rm(paths.store, { recursive: true, force: true }); // a half-made store from a crash
  await fs.mkdir(paths.store, { recursive: true, mode: 0o700 });
  const handle = await persistentSrk(run, dir);
  const pin = randomBytes(12).toString('hex'); // 24 chars: libp11 0.4.12 reads at most 31 from a pin file
  await run('tpm2_ptool', ['init', `--primary-handle=${hex(handle)}`, `--path=${paths.store}`]);
  await run('tpm2_ptool', ['addtoken', '--pid=1', `--label=${TPM_TOKEN_LABEL}`, `--userpin=${pin}`,
    `--sopin=${randomBytes(16).toString('hex')}`, `--path=${paths.store}`]);
  await fs.writeFile(paths.pinFile, pin, { mode: 0o600, flag: 'wx' }); // last: its presence means "token ready"
}

/** Links the key blobs of `label` into the folder's token; idempotent per label. */
export async function linkForTls(tcti: string, directory: string, label: string, files: { pub: string; priv: string }): Promise<void> {
  if (!canLinkForTls(tcti)) throw tpmError('TLS with a TPM key needs a resource manager TCTI (device:/dev/tpmrm0 or tabrmd)');
  const paths = tokenPaths(directory);
  if (await fs.stat(paths.marker(label)).then(() => true, () => false)) return;
  await withTpm(tcti, async (run, dir) => {
    await ensureToken(run, dir, paths);
    const pin = await fs.readFile(paths.pinFile, 'utf8');
    await run('tpm2_ptool', ['link', `--label=${TPM_TOKEN_LABEL}`, `--userpin=${pin}`, `--key-label=${label}`,
      `--path=${paths.store}`, files.pub, files.priv]);
  });
  await fs.writeFile(paths.marker(label), '', { mode: 0o600 });
}

/** True if `label` was linked into the folder's token. */
export async function isLinked(directory: string, label: string): Promise<boolean> {
  return fs.stat(tokenPaths(directory).marker(label)).then(() => true, () => false);
}

/** When this process first handed a TPM key to the engine (the module reads its token then). */
let engineLoadedAt: number | undefined;

/** The time a label was linked (its marker's mtime), for checkVisibleToEngine. */
export async function linkedAt(directory: string, label: string): Promise<number> {
  return (await fs.stat(tokenPaths(directory).marker(label))).mtimeMs;
}

/** Refuses a key linked after this process's libtpm2-pkcs11 loaded its token (module header). */
export function checkVisibleToEngine(linkedAtMs: number): void {
  if (engineLoadedAt !== undefined && linkedAtMs > engineLoadedAt) {
    throw tpmError('this TPM key was linked after the process loaded libtpm2-pkcs11: restart the process to use it for TLS');
  }
}

function setOnce(env: NodeJS.ProcessEnv, name: string, value: string): void {
  const current = env[name];
  if (current !== undefined && current !== '' && current !== value) {
    throw tpmError(`${name} is already set for another PKCS#11 module or store: one TLS key store per process`);
  }
  env[name] = value;
}

/**
 * Points OpenSSL's pkcs11 engine at libtpm2-pkcs11 and this folder's token before the first TLS
 * context (libp11 reads PKCS11_MODULE_PATH, libtpm2-pkcs11 reads TPM2_PKCS11_* at C_Initialize).
 */
export function configureEngineEnvironment(tcti: string, directory: string, env: NodeJS.ProcessEnv = process.env): void {
  setOnce(env, 'PKCS11_MODULE_PATH', TPM2_PKCS11_MODULE);
  setOnce(env, 'TPM2_PKCS11_STORE', tokenPaths(directory).store);
  setOnce(env, 'TPM2_PKCS11_TCTI', tcti);
  env.TPM2_PKCS11_BACKEND ??= 'esysdb'; // the FAPI backend needs a FAPI profile devices rarely have
  env.TPM2_PKCS11_LOG_LEVEL ??= '0';
  env.OPENSSL_ENGINES ??= DEBIAN_ENGINES_DIR;
  if (env === process.env) engineLoadedAt ??= Date.now();
}

/** The libp11 key URI of a linked key (RFC 7512 §2.3): PIN by file only, never by value. */
export function engineKeyIdentifier(directory: string, label: string): string {
  return `pkcs11:token=${TPM_TOKEN_LABEL};object=${percentEncode(label)};type=private?pin-source=${percentEncode(`file:${tokenPaths(directory).pinFile}`, true)}`;
}
