/**
 * Reaching a PKCS#11 token through pkcs11js: module loading, slot lookup, login, sessions.
 *
 * Invariants:
 * - A module is loaded and C_Initialize'd once per process and path, and never finalized while
 *   the process lives (PKCS#11 v2.40 §5.4: one initialisation per application; OpenSSL's pkcs11
 *   engine may share the same library instance). CKR_CRYPTOKI_ALREADY_INITIALIZED is success.
 * - The token is found by its label (and serial/manufacturer/model when the URI gives them);
 *   no match or several matches is KEYSTORE_ERROR, never "the first slot".
 * - Login is as the normal user (CKU_USER); login state is per application and token, so
 *   CKR_USER_ALREADY_LOGGED_IN is success. The PIN is read when needed, never kept by callers
 *   beyond this module and the TLS identifier, and never put into an error.
 * - Every operation runs in its own R/W session that is closed afterwards; one more session per
 *   store stays open and logged in (closing the last one would log the application out).
 * - pkcs11js (a native addon) is imported on first use, so importing the SDK loads no addon.
 */
import { promises as fs } from 'node:fs';
import type { PKCS11 } from 'pkcs11js';
import { FleetkeyError } from '@fleetkey/protocol';
import { CK } from './objects.js';
import type { Pkcs11StoreUri } from './uri.js';

type Handle = Buffer;
const modules = new Map<string, PKCS11>();
const MAX_PIN_BYTES = 256;

/** KEYSTORE_ERROR with a reason and, for PKCS#11 failures, the CKR name (never secrets). */
export function tokenError(reason: string, cause?: unknown): FleetkeyError {
  const ckr = ckrCode(cause) === undefined ? '' : ` (${(cause as Error).message.split(':')[0] ?? 'CKR'})`;
  return new FleetkeyError('KEYSTORE_ERROR', { cause: new Error(`${reason}${ckr}`, cause === undefined ? undefined : { cause }) });
}

/** The CKR_* value of a pkcs11js Pkcs11Error (message `CKR_NAME:code`), else undefined. */
export function ckrCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'number' && err.message.startsWith('CKR_') ? code : undefined;
}

async function loadModule(path: string): Promise<PKCS11> {
  const cached = modules.get(path);
  if (cached !== undefined) return cached;
  let addon: typeof import('pkcs11js');
  try {
    addon = (await import('pkcs11js')).default;
  } catch (err) {
    throw tokenError('the pkcs11js addon is not installed or not built (npm ci with install scripts)', err);
  }
  const raced = modules.get(path);
  if (raced !== undefined) return raced;
  const module = new addon.PKCS11();
  try {
    module.load(path);
  } catch (err) {
    throw tokenError('cannot load the PKCS#11 module', err);
  }
  try {
    module.C_Initialize({ flags: CK.CKF_OS_LOCKING_OK });
  } catch (err) {
    if (ckrCode(err) !== CK.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw tokenError('C_Initialize failed', err);
  }
  modules.set(path, module);
  return module;
}

const trimmed = (text: string): string => text.replace(/\0+$/, '').trimEnd();

function findSlot(module: PKCS11, uri: Pkcs11StoreUri): Handle {
  const matches = module.C_GetSlotList(true).filter((slot) => {
    const info = module.C_GetTokenInfo(slot);
    return trimmed(info.label) === uri.token
      && (uri.serial === undefined || trimmed(info.serialNumber) === uri.serial)
      && (uri.manufacturer === undefined || trimmed(info.manufacturerID) === uri.manufacturer)
      && (uri.model === undefined || trimmed(info.model) === uri.model);
  });
  if (matches.length !== 1) throw tokenError(matches.length === 0 ? 'no token matches the URI' : 'several tokens match the URI; add serial=');
  return matches[0]!;
}

/** Reads the PIN from its source. A pin file must hold the PIN only (no trailing newline: libp11 reads it verbatim). */
export async function readPin(uri: Pkcs11StoreUri, env: Readonly<Record<string, string | undefined>>): Promise<string> {
  let pin: string | undefined;
  if (uri.pinSource.kind === 'env') {
    pin = env[uri.pinSource.name];
    if (pin === undefined || pin === '') throw tokenError(`the PIN variable ${uri.pinSource.name} is not set`);
  } else {
    pin = await fs.readFile(uri.pinSource.path, 'utf8').catch((err: unknown) => { throw tokenError('cannot read the PIN file', err); });
    if (/[\r\n]/.test(pin)) throw tokenError('the PIN file contains a line break; write it with printf, not echo');
  }
  if (pin.length === 0 || Buffer.byteLength(pin) > MAX_PIN_BYTES) throw tokenError('the PIN is empty or too long');
  return pin;
}

/** A logged-in token: run `fn` in a fresh R/W session. */
export class Token {
  readonly module: PKCS11;
  readonly #slot: Handle;
  /** Kept open: closing an application's last session logs it out (PKCS#11 v2.40 §5.6 C_CloseSession). */
  #anchor: Promise<Handle> | undefined;

  private constructor(module: PKCS11, slot: Handle) {
    this.module = module;
    this.#slot = slot;
  }

  static async open(uri: Pkcs11StoreUri): Promise<Token> {
    const module = await loadModule(uri.modulePath);
    try {
      return new Token(module, findSlot(module, uri));
    } catch (err) {
      throw err instanceof FleetkeyError ? err : tokenError('cannot list the tokens', err);
    }
  }

  mechanisms(): number[] {
    return this.module.C_GetMechanismList(this.#slot);
  }

  async withSession<T>(pin: () => Promise<string>, fn: (session: Handle) => Promise<T> | T): Promise<T> {
    this.#anchor ??= this.#login(pin).catch((err: unknown) => {
      this.#anchor = undefined; // a wrong PIN must not stick: the next call tries again
      throw err;
    });
    await this.#anchor;
    const session = this.#openSession();
    try {
      return await fn(session);
    } finally {
      this.module.C_CloseSession(session);
    }
  }

  #openSession(): Handle {
    try {
      return this.module.C_OpenSession(this.#slot, CK.CKF_SERIAL_SESSION | CK.CKF_RW_SESSION);
    } catch (err) {
      throw tokenError('C_OpenSession failed', err);
    }
  }

  async #login(pin: () => Promise<string>): Promise<Handle> {
    const session = this.#openSession();
    try {
      this.module.C_Login(session, CK.CKU_USER, await pin());
    } catch (err) {
      if (ckrCode(err) !== CK.CKR_USER_ALREADY_LOGGED_IN) {
        this.module.C_CloseSession(session);
        throw err instanceof FleetkeyError ? err : tokenError('C_Login failed', err);
      }
    }
    return session;
  }
}
