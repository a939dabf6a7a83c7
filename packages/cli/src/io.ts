/** CLI plumbing shared by every command: streams, coded errors, stdin lines. */
import { ERROR_TABLE, FleetkeyError, toFleetkeyError } from '@fleetkey/protocol';

/** node:util parseArgs failures (unknown flag, missing value). */
function isArgumentError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
  readonly env: NodeJS.ProcessEnv;
}

export function defaultIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

/** `error CODE: message` on stderr (and the details, which are safe by construction); exit code from the table. */
export function reportError(io: CliIo, raw: unknown, json = false): number {
  const err: FleetkeyError = isArgumentError(raw)
    ? new FleetkeyError('VALIDATION_FAILED', { details: { field: 'arguments' } }) // the message may quote a secret argument
    : toFleetkeyError(raw);
  if (json) io.stderr.write(JSON.stringify({ error: err.toJSON() }) + '\n');
  else {
    const details = err.details ? ' ' + Object.entries(err.details).map(([k, v]) => `${k}=${String(v)}`).join(' ') : '';
    io.stderr.write(`error ${err.code}: ${err.message}${details}\n`);
  }
  if (process.env.FLEETKEY_DEBUG === '1' && err.cause !== undefined) io.stderr.write(`cause: ${String(err.cause)}\n`);
  return ERROR_TABLE[err.code].exit;
}

/** Reads up to `count` lines from stdin (passwords, TOTP codes); never echoes them. */
export async function readLines(stdin: NodeJS.ReadableStream, count: number, maxBytes = 8192): Promise<string[]> {
  let buf = '';
  for await (const chunk of stdin) {
    buf += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (buf.length > maxBytes) break;
    if (buf.split('\n').length > count) break;
  }
  return buf.split('\n').slice(0, count).map((l) => l.replace(/\r$/, ''));
}

export function isTty(stream: NodeJS.WritableStream): boolean {
  return (stream as NodeJS.WriteStream).isTTY === true;
}
