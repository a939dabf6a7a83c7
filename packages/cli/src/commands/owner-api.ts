/**
 * Owner commands against a running hub: `login`, `claim create|list|revoke`, `devices list|revoke`,
 * `devices renew <id>|--all [--reason R]` and `devices renewal-grace [--days N]` (ADR 0025).
 * The hub is verified by its pin (the same pinned TLS as devices use): no CA bundle, and the
 * password never leaves for a server that did not prove the hub key. The session is kept in a
 * 0600 file (`--session-file`, FLEETKEY_SESSION_FILE, default ~/.config/fleetkey/session.json).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import QRCode from 'qrcode';
import { FleetkeyError, isErrorCode } from '@fleetkey/protocol';
import { PinSet, connectPinned, parseHubUrl, requestOverSocket } from '@fleetkey/device';
import { writeFileAtomic } from '@fleetkey/hub';
import { isTty, readLines, type CliIo } from '../io.js';

export interface SavedSession {
  readonly hub: string;
  readonly pin: string;
  readonly token: string;
  readonly expiresAt: string;
}

export function sessionFile(io: CliIo, flag: string | undefined): string {
  return flag ?? io.env.FLEETKEY_SESSION_FILE ?? join(homedir(), '.config', 'fleetkey', 'session.json');
}

export function loadSession(path: string): SavedSession {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as SavedSession;
  } catch (cause) {
    throw new FleetkeyError('AUTH_REQUIRED', { cause, details: { hint: 'run fleetkey login first' } });
  }
}

export async function call(hub: string, pin: string, method: 'GET' | 'POST' | 'DELETE' | 'PUT', path: string, body?: unknown, token?: string): Promise<unknown> {
  const address = parseHubUrl(hub);
  const socket = await connectPinned({ host: address.host, port: address.port, pins: PinSet.parse(pin) });
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const response = await requestOverSocket(socket, {
    method,
    host: `${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`,
    path,
    headers: {
      accept: 'application/json',
      ...(payload ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(payload ? { body: payload } : {}),
  });
  const text = response.body.toString('utf8');
  const parsed = text.length > 0 ? (JSON.parse(text) as { error?: { code?: unknown } }) : undefined;
  if (response.status >= 400) {
    const code = parsed?.error?.code;
    throw new FleetkeyError(isErrorCode(code) ? code : 'HUB_PROTOCOL_ERROR');
  }
  return parsed;
}

const OPTIONS = {
  hub: { type: 'string' }, pin: { type: 'string' }, email: { type: 'string' }, totp: { type: 'string' },
  ttl: { type: 'string' }, 'max-uses': { type: 'string' }, label: { type: 'string' },
  json: { type: 'boolean' }, 'session-file': { type: 'string' }, reason: { type: 'string' },
  all: { type: 'boolean' }, days: { type: 'string' },
} as const;

export async function ownerApiCommand(command: 'login' | 'claim' | 'devices', argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  const file = sessionFile(io, values['session-file']);
  const out = (v: unknown, human: string): number => {
    io.stdout.write(values.json ? JSON.stringify(v) + '\n' : human);
    return 0;
  };
  if (command === 'login') return login(values, file, io, out);
  const s = loadSession(file);
  const [sub, id] = positionals;
  if (command === 'devices' && (sub === 'list' || sub === undefined)) {
    const r = (await call(s.hub, s.pin, 'GET', '/api/v1/devices', undefined, s.token)) as { items: Array<{ id: string; status: string; certificate: { notAfter: string } | null }> };
    return out(r, r.items.map((d) => `${d.id}\t${d.status}\t${d.certificate?.notAfter ?? '-'}\n`).join('') || 'no devices\n');
  }
  if (command === 'devices' && sub === 'revoke' && id !== undefined) {
    // The hub checks the reason against its allow-list (ADR 0011); default unspecified.
    const r = (await call(s.hub, s.pin, 'POST', `/api/v1/devices/${encodeURIComponent(id)}/revoke`, values.reason ? { reason: values.reason } : {}, s.token)) as { reason: string; revokedAt: string; serials: string[]; alreadyRevoked: boolean };
    return out(r, `device ${id} ${r.alreadyRevoked ? 'was already revoked' : 'revoked'} (${r.reason}, ${r.revokedAt}); ${r.serials.length} certificate(s) revoked\n`);
  }
  if (command === 'devices' && sub === 'renew') return renewDevices(s, id, values, out);
  if (command === 'devices' && sub === 'renewal-grace') {
    const r = (values.days === undefined
      ? await call(s.hub, s.pin, 'GET', '/api/v1/organisation/renewal', undefined, s.token)
      : await call(s.hub, s.pin, 'PUT', '/api/v1/organisation/renewal', { graceDays: Number(values.days) }, s.token)) as { graceDays: number; source: string };
    return out(r, `renewal grace: ${r.graceDays} day(s) after expiry (${r.source})\n`);
  }
  if (command === 'claim' && sub === 'create') {
    const body = { ...(values.ttl ? { ttlSeconds: Number(values.ttl) } : {}), ...(values['max-uses'] ? { maxUses: Number(values['max-uses']) } : {}), ...(values.label ? { label: values.label } : {}) };
    const r = (await call(s.hub, s.pin, 'POST', '/api/v1/claim-tokens', body, s.token)) as { id: string; token: string; expiresAt: string; claimUri: string };
    const qr = isTty(io.stdout) && !values.json ? await QRCode.toString(r.claimUri, { type: 'terminal', small: true }) : '';
    return out(r, `claim token ${r.id} (expires ${r.expiresAt}); shown once:\n${r.token}\nclaim URI:\n${r.claimUri}\n${qr}`);
  }
  if (command === 'claim' && sub === 'list') {
    const r = (await call(s.hub, s.pin, 'GET', '/api/v1/claim-tokens', undefined, s.token)) as { items: Array<{ id: string; status: string; uses: number; maxUses: number; expiresAt: string; label: string | null }> };
    return out(r, r.items.map((t) => `${t.id}\t${t.status}\t${t.uses}/${t.maxUses}\t${t.expiresAt}\t${t.label ?? ''}\n`).join('') || 'no claim tokens\n');
  }
  if (command === 'claim' && sub === 'revoke' && id !== undefined) {
    await call(s.hub, s.pin, 'DELETE', `/api/v1/claim-tokens/${encodeURIComponent(id)}`, undefined, s.token);
    return out({ revoked: id }, `claim token ${id} revoked\n`);
  }
  throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `${command} ${sub ?? ''}`.trim() } });
}

/** `devices renew <id>` asks one device, `devices renew --all` every active device of the organisation. */
async function renewDevices(s: SavedSession, id: string | undefined, values: { all?: boolean; reason?: string }, out: (v: unknown, h: string) => number): Promise<number> {
  const body = values.reason ? { reason: values.reason } : {};
  if (values.all === true && id === undefined) {
    const r = (await call(s.hub, s.pin, 'POST', '/api/v1/devices/renew', body, s.token)) as { requested: number; rateLimited: number };
    return out(r, `renewal asked of ${r.requested} device(s); ${r.rateLimited} asked too recently\n`);
  }
  if (id === undefined || values.all === true) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'device id or --all' } });
  const r = (await call(s.hub, s.pin, 'POST', `/api/v1/devices/${encodeURIComponent(id)}/renew`, body, s.token)) as { commandId: string; topic: string };
  return out(r, `renewal asked of device ${id} (${r.commandId} on ${r.topic})\n`);
}

async function login(values: { hub?: string; pin?: string; email?: string; totp?: string }, file: string, io: CliIo, out: (v: unknown, h: string) => number): Promise<number> {
  for (const f of ['hub', 'pin', 'email'] as const) if (values[f] === undefined) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: f } });
  if (isTty(io.stderr)) io.stderr.write('Password then TOTP code (read from stdin): ');
  const [password = '', totpLine = ''] = await readLines(io.stdin, values.totp ? 1 : 2);
  const r = (await call(values.hub!, values.pin!, 'POST', '/api/v1/sessions', { email: values.email, password, totp: values.totp ?? totpLine.trim() })) as { token: string; expiresAt: string };
  const saved: SavedSession = { hub: values.hub!, pin: values.pin!, token: r.token, expiresAt: r.expiresAt };
  writeFileAtomic(file, JSON.stringify(saved) + '\n', 0o600);
  return out({ expiresAt: r.expiresAt, sessionFile: file }, `logged in; session until ${r.expiresAt} saved in ${file}\n`);
}
