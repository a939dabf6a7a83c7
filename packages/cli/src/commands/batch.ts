/**
 * Owner batch commands against a running hub (ADR 0014): `batch create|status|download|revoke`
 * and `batch import` (a factory manifest, ADR 0015). Same pinned TLS and session file as the
 * other owner commands (owner-api.ts).
 *
 * Invariants:
 * - The batch passphrase is read from stdin, never from an argument (argv is visible to other
 *   users of the machine) and never printed.
 * - `download` streams the bundle into a 0600 file over the pinned socket, without a size cap,
 *   and renames it into place only when complete.
 * - The progress bar goes to stderr (only on a terminal); stdout carries the result.
 */
import { createWriteStream, readFileSync, renameSync } from 'node:fs';
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { FleetkeyError, isErrorCode } from '@fleetkey/protocol';
import { PinSet, connectPinned, parseHubUrl } from '@fleetkey/device';
import { isTty, readLines, type CliIo } from '../io.js';
import { call, loadSession, sessionFile, type SavedSession } from './owner-api.js';

const OPTIONS = {
  count: { type: 'string' }, mode: { type: 'string' }, 'key-alg': { type: 'string' }, label: { type: 'string' },
  csrs: { type: 'string' }, 'passphrase-stdin': { type: 'boolean' }, wait: { type: 'boolean' }, out: { type: 'string' },
  reason: { type: 'string' }, json: { type: 'boolean' }, 'session-file': { type: 'string' },
} as const;

interface BatchView { id: string; status: string; done: number; total: number; mode: string; failureCode: string | null }

/** `--csrs FILE`: a JSON array of PEM/base64 strings, or a newline-separated PEM file. */
function csrField(path: string): { csrs: string[] } | { csrsPem: string } {
  const text = readFileSync(path, 'utf8');
  return text.trimStart().startsWith('[') ? { csrs: JSON.parse(text) as string[] } : { csrsPem: text };
}

function bar(b: BatchView): string {
  const width = 30;
  const filled = b.total === 0 ? width : Math.round((b.done / b.total) * width);
  return `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${b.done}/${b.total} ${b.status}`;
}

async function waitFor(s: SavedSession, id: string, io: CliIo, timeoutMs = 3_600_000): Promise<BatchView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const b = (await call(s.hub, s.pin, 'GET', `/api/v1/batches/${encodeURIComponent(id)}`, undefined, s.token)) as BatchView;
    if (isTty(io.stderr)) io.stderr.write(bar(b));
    if (b.status !== 'running' || Date.now() > deadline) {
      if (isTty(io.stderr)) io.stderr.write('\n');
      return b;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** GET of the bundle over the pinned socket, streamed into `out` (0600, renamed when complete). */
async function download(s: SavedSession, id: string, out: string): Promise<number> {
  const address = parseHubUrl(s.hub);
  const socket = await connectPinned({ host: address.host, port: address.port, pins: PinSet.parse(s.pin) });
  return new Promise((resolve, reject) => {
    const req = request({ createConnection: () => socket, path: `/api/v1/batches/${encodeURIComponent(id)}/bundle`, headers: { authorization: `Bearer ${s.token}`, host: `${address.host}:${address.port}` } }, (res) => {
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const code = (JSON.parse(Buffer.concat(chunks).toString() || '{}') as { error?: { code?: unknown } }).error?.code;
          reject(new FleetkeyError(isErrorCode(code) ? code : 'HUB_PROTOCOL_ERROR'));
        });
        return;
      }
      const file = createWriteStream(`${out}.part`, { mode: 0o600 });
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.pipe(file);
      file.on('finish', () => {
        renameSync(`${out}.part`, out);
        resolve(bytes);
      });
      file.on('error', reject);
    });
    req.on('error', (cause) => reject(new FleetkeyError('HUB_UNREACHABLE', { cause })));
    req.end();
  });
}

export async function batchCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  const s = loadSession(sessionFile(io, values['session-file']));
  const [sub, id] = positionals;
  const out = (v: unknown, human: string): number => {
    io.stdout.write(values.json ? JSON.stringify(v) + '\n' : human);
    return 0;
  };
  const show = (b: BatchView): string => `batch ${b.id} ${b.status} ${b.done}/${b.total}${b.failureCode ? ` (${b.failureCode})` : ''}\n`;
  if (sub === 'create') {
    const passphrase = values['passphrase-stdin'] ? (await readLines(io.stdin, 1))[0] : undefined;
    const body = {
      count: Number(values.count), mode: values.mode ?? 'device-keys', keyAlg: values['key-alg'] ?? 'p256',
      ...(values.label ? { label: values.label } : {}), ...(values.csrs ? csrField(values.csrs) : {}), ...(passphrase ? { passphrase } : {}),
    };
    const b = (await call(s.hub, s.pin, 'POST', '/api/v1/batches', body, s.token)) as BatchView;
    const final = values.wait ? await waitFor(s, b.id, io) : b;
    return out(final, show(final));
  }
  if (sub === 'status' && id !== undefined) {
    const b = values.wait ? await waitFor(s, id, io) : ((await call(s.hub, s.pin, 'GET', `/api/v1/batches/${encodeURIComponent(id)}`, undefined, s.token)) as BatchView);
    return out(b, show(b));
  }
  if (sub === 'download' && id !== undefined) {
    const file = values.out ?? `${id}.tar.gz`;
    const bytes = await download(s, id, file);
    return out({ id, file, bytes }, `bundle of ${id} written to ${file} (${bytes} bytes)\n`);
  }
  if (sub === 'revoke' && id !== undefined) {
    const r = (await call(s.hub, s.pin, 'POST', `/api/v1/batches/${encodeURIComponent(id)}/revoke`, values.reason ? { reason: values.reason } : {}, s.token)) as { revoked: number; cancelled: boolean };
    return out(r, `batch ${id}: ${r.revoked} unused identit${r.revoked === 1 ? 'y' : 'ies'} revoked${r.cancelled ? ', job cancelled' : ''}\n`);
  }
  if (sub === 'import' && id !== undefined) {
    const manifest: unknown = JSON.parse(readFileSync(id, 'utf8'));
    const r = (await call(s.hub, s.pin, 'POST', '/api/v1/batches/import', manifest, s.token)) as { kitId: string; imported: number; total: number; alreadyImported: boolean };
    return out(r, `kit ${r.kitId}: ${r.imported} imported, ${r.total} in the manifest${r.alreadyImported ? ' (already imported)' : ''}\n`);
  }
  throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `batch ${sub ?? ''}`.trim() } });
}
