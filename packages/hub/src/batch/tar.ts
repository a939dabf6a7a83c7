/**
 * A minimal POSIX ustar writer (IEEE Std 1003.1-2008, pax "ustar Interchange Format") and its
 * gzip wrapping (RFC 1952, node:zlib), for batch bundles. No dependency: the format is small.
 *
 * Invariants:
 * - Only regular files and directories, names of printable ASCII (no `..`, no `.`, no leading
 *   `/`), so no entry can be written outside the folder it is extracted into.
 * - A name longer than 100 bytes is split at a `/` into the ustar `prefix` (≤ 155 bytes) and
 *   `name` (≤ 100 bytes) fields; a name that cannot be split so (> 256 bytes, or a last
 *   component over 100 bytes) is refused: no GNU/pax extension headers are written.
 * - Every header is 512 bytes with the checksum computed over the header with the checksum field
 *   read as eight spaces; file data is padded to 512 bytes; the archive ends with two zero blocks.
 * - Numeric fields are zero-padded octal with a NUL terminator; mtime is whole seconds.
 */
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { FleetkeyError } from '@fleetkey/protocol';

const BLOCK = 512;
const gzipAsync = promisify(gzip);

export interface TarEntry {
  readonly name: string;
  /** Absent for a directory. */
  readonly data?: Buffer;
  /** Permission bits; default 0o644 for files, 0o755 for directories. */
  readonly mode?: number;
}

const unsafe = (): FleetkeyError => new FleetkeyError('INTERNAL', { cause: new Error('unsafe or too long tar entry name') });

function checkName(name: string): void {
  const bad = name.length === 0 || !/^[\x21-\x7e]+$/.test(name)
    || name.startsWith('/') || name.split('/').some((part) => part === '..' || part === '.');
  if (bad) throw unsafe();
}

/** ustar name and prefix fields (IEEE 1003.1 ustar: pathname = prefix "/" name). */
export function splitName(path: string): { name: string; prefix: string } {
  if (path.length <= 100) return { name: path, prefix: '' };
  // The longest prefix ≤ 155 bytes ending before a '/', leaving a name ≤ 100 bytes.
  for (let cut = Math.min(path.length - 2, 155); cut > 0; cut--) {
    if (path[cut] === '/' && path.length - cut - 1 <= 100) return { name: path.slice(cut + 1), prefix: path.slice(0, cut) };
  }
  throw unsafe();
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** The fields every header of one archive shares (uid, gid, mtime, magic, version, owner names). */
function baseHeader(mtimeSeconds: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(mtimeSeconds, 12), 136, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('fleetkey', 265, 'ascii'); // uname
  h.write('fleetkey', 297, 'ascii'); // gname
  h.fill(0x20, 148, 156); // checksum field counts as spaces
  return h;
}

/** Writes the header of `entry` at `out[at..at+512)`, starting from the archive's base header. */
function writeHeader(out: Buffer, at: number, entry: TarEntry, base: Buffer): void {
  checkName(entry.name);
  const isDir = entry.data === undefined;
  const { name, prefix } = splitName(isDir && !entry.name.endsWith('/') ? `${entry.name}/` : entry.name);
  base.copy(out, at);
  out.write(name, at, 100, 'ascii');
  if (prefix.length > 0) out.write(prefix, at + 345, 155, 'ascii');
  out.write(octal(entry.mode ?? (isDir ? 0o755 : 0o644), 8), at + 100, 'ascii');
  out.write(octal(entry.data?.length ?? 0, 12), at + 124, 'ascii');
  out[at + 156] = isDir ? 0x35 : 0x30; // typeflag '5' | '0'
  let sum = 0;
  for (let i = at; i < at + BLOCK; i++) sum += out[i]!;
  out.write(sum.toString(8).padStart(6, '0') + '\0 ', at + 148, 'ascii');
}

const padded = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;

/** The uncompressed ustar archive of `entries`, in order, written into one zeroed buffer. */
export function tarArchive(entries: readonly TarEntry[], mtime: Date): Buffer {
  const base = baseHeader(Math.floor(mtime.getTime() / 1000));
  let size = 2 * BLOCK; // end of archive: two zero blocks
  for (const e of entries) size += BLOCK + padded(e.data?.length ?? 0);
  const out = Buffer.alloc(size, 0); // padding and the end blocks stay zero
  let at = 0;
  for (const e of entries) {
    writeHeader(out, at, e, base);
    at += BLOCK;
    if (e.data !== undefined) {
      e.data.copy(out, at);
      at += padded(e.data.length);
    }
  }
  return out;
}

/** `.tar.gz` of `entries`; compression runs on the libuv thread pool, off the event loop. */
export async function tarGz(entries: readonly TarEntry[], mtime: Date, level = 6): Promise<Buffer> {
  return gzipAsync(tarArchive(entries, mtime), { level });
}
