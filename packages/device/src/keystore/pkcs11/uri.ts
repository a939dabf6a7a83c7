/**
 * PKCS#11 URIs (RFC 7512) as fleetkey uses them to name a token and its keys (ADR 0024).
 *
 *   pkcs11:token=fleetkey?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/fleetkey/pin
 *   pkcs11:token=fleetkey?module-path=…&pin-source=env:FLEETKEY_PKCS11_PIN
 *
 * Invariants:
 * - A store URI names a token (`token`, optionally `serial`/`manufacturer`/`model`) and how to
 *   reach it (`module-path`, RFC 7512 §2.4); `object` is refused: fleetkey chooses key labels.
 * - The PIN is never part of the URI: `pin-value` is refused, `pin-source` must be `file:<abs
 *   path>` or `env:<NAME>`. So the URI is safe to record in identity.json and to log.
 * - Attribute values are percent-decoded on parse and percent-encoded on format (§2.3); an
 *   unknown path attribute or a repeated attribute is refused, never ignored.
 * - Every failure is KEYSTORE_ERROR; the cause names the attribute, never its value.
 */
import { isAbsolute } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';

export type PinSource = { readonly kind: 'file'; readonly path: string } | { readonly kind: 'env'; readonly name: string };

export interface Pkcs11StoreUri {
  readonly token: string;
  readonly serial?: string;
  readonly manufacturer?: string;
  readonly model?: string;
  readonly modulePath: string;
  readonly pinSource: PinSource;
}

const PATH_ATTRIBUTES = new Set(['token', 'serial', 'manufacturer', 'model']);
const QUERY_ATTRIBUTES = new Set(['module-path', 'pin-source']);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
// RFC 7512 §2.3: unreserved plus pk11-res-avail stay literal; '/' only in query values (pk11-query-res-avail).
const LITERAL = /[A-Za-z0-9\-._~:[\]@!$'()*+,=]/;

function uriError(reason: string): FleetkeyError {
  return new FleetkeyError('KEYSTORE_ERROR', { cause: new Error(`PKCS#11 URI: ${reason}`) });
}

function decode(value: string, name: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw uriError(`attribute '${name}' has an invalid percent-encoding`);
  }
}

/** Percent-encodes every byte outside the RFC 7512 literal set (§2.3) of a path or query value. */
export function percentEncode(value: string, inQuery = false): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const char = String.fromCharCode(byte);
    const literal = byte < 0x80 && (LITERAL.test(char) || (inQuery && char === '/'));
    out += literal ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function attributes(part: string, separator: string, allowed: Set<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of part === '' ? [] : part.split(separator)) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    if (name === 'pin-value') throw uriError("'pin-value' is refused: give the PIN through pin-source=file: or env:");
    if (name === 'object' || name === 'id' || name === 'type') throw uriError(`'${name}' is refused in a store URI: fleetkey chooses key labels`);
    if (!allowed.has(name)) throw uriError(`unsupported attribute '${name.slice(0, 32)}'`);
    if (out.has(name)) throw uriError(`attribute '${name}' is repeated`);
    out.set(name, decode(eq < 0 ? '' : item.slice(eq + 1), name));
  }
  return out;
}

function parsePinSource(value: string | undefined): PinSource {
  if (value === undefined) throw uriError("'pin-source' is required (file:/abs/path or env:NAME)");
  if (value.startsWith('file:')) {
    const path = value.slice('file:'.length);
    if (!isAbsolute(path)) throw uriError("'pin-source' file path must be absolute");
    return { kind: 'file', path };
  }
  if (value.startsWith('env:') && ENV_NAME.test(value.slice(4))) return { kind: 'env', name: value.slice(4) };
  throw uriError("'pin-source' must be file:/abs/path or env:NAME");
}

/** Parses a store URI; see the module header for what is accepted. */
export function parsePkcs11StoreUri(uri: string): Pkcs11StoreUri {
  if (!uri.startsWith('pkcs11:')) throw uriError("the URI must start with 'pkcs11:'");
  const rest = uri.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const path = attributes(q < 0 ? rest : rest.slice(0, q), ';', PATH_ATTRIBUTES);
  const query = attributes(q < 0 ? '' : rest.slice(q + 1), '&', QUERY_ATTRIBUTES);
  const token = path.get('token');
  if (token === undefined || token === '') throw uriError("'token' is required");
  const modulePath = query.get('module-path');
  if (modulePath === undefined || !isAbsolute(modulePath)) throw uriError("'module-path' is required and must be absolute");
  const optional = (name: string): Record<string, string> => {
    const value = path.get(name);
    return value === undefined ? {} : { [name]: value };
  };
  return { token, ...optional('serial'), ...optional('manufacturer'), ...optional('model'), modulePath, pinSource: parsePinSource(query.get('pin-source')) };
}

/** The canonical store URI (what identity.json records). */
export function formatPkcs11StoreUri(uri: Pkcs11StoreUri): string {
  const path = [['token', uri.token], ['serial', uri.serial], ['manufacturer', uri.manufacturer], ['model', uri.model]]
    .filter((pair): pair is [string, string] => pair[1] !== undefined)
    .map(([name, value]) => `${name}=${percentEncode(value)}`);
  const pin = uri.pinSource.kind === 'file' ? `file:${uri.pinSource.path}` : `env:${uri.pinSource.name}`;
  return `pkcs11:${path.join(';')}?module-path=${percentEncode(uri.modulePath, true)}&pin-source=${percentEncode(pin, true)}`;
}

/**
 * The object URI OpenSSL's pkcs11 engine (libp11) loads a private key from. libp11 takes no
 * module-path (the engine's module is PKCS11_MODULE_PATH, ADR 0024); the PIN is passed as
 * pin-source for files, and as pin-value only for env sources (the value stays in memory).
 */
export function engineKeyUri(uri: Pkcs11StoreUri, label: string, pin: string): string {
  const path = [`token=${percentEncode(uri.token)}`, ...(uri.serial === undefined ? [] : [`serial=${percentEncode(uri.serial)}`]), `object=${percentEncode(label)}`, 'type=private'];
  const query = uri.pinSource.kind === 'file' ? `pin-source=file:${percentEncode(uri.pinSource.path, true)}` : `pin-value=${percentEncode(pin, true)}`;
  return `pkcs11:${path.join(';')}?${query}`;
}
