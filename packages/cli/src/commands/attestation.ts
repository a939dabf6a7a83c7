/**
 * Owner commands for attestation trust (ADR 0027), against a running hub with the saved session:
 *
 *   fleetkey attestation roots list | add --kind tpm|se --file CA.pem [--label L] | delete ID
 *   fleetkey attestation chips list | add (--sha256 HEX | --serial HEX | --manifest CERTS.pem)… | delete ID
 *   fleetkey attestation policy [show] | set --require-attestation true|false
 *
 * Invariants: the hub is reached only over pinned TLS with the owner's session (owner-api.ts
 * `call`); options are parsed strictly; nothing secret is printed (roots and chips are public).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { FleetkeyError } from '@fleetkey/protocol';
import type { CliIo } from '../io.js';
import { call, loadSession, sessionFile } from './owner-api.js';

const BASE = '/api/v1/attestation';
const OPTIONS = {
  kind: { type: 'string' }, file: { type: 'string' }, label: { type: 'string' }, json: { type: 'boolean' }, 'session-file': { type: 'string' },
  sha256: { type: 'string', multiple: true }, serial: { type: 'string', multiple: true }, manifest: { type: 'string' }, 'require-attestation': { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values'];
type Call = (method: 'GET' | 'POST' | 'DELETE' | 'PUT', path: string, body?: unknown) => Promise<unknown>;

async function roots(sub: string | undefined, id: string | undefined, values: Values, api: Call): Promise<[unknown, string]> {
  if (sub === 'list' || sub === undefined) {
    const r = (await api('GET', `${BASE}/vendor-roots`)) as { items: Array<{ id: string; kind: string; sha256: string; subject: string }> };
    return [r, r.items.map((v) => `${v.id}\t${v.kind}\t${v.sha256}\t${v.subject}\n`).join('') || 'no vendor roots\n'];
  }
  if (sub === 'add') {
    if (values.kind === undefined || values.file === undefined) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'kind/file' } });
    const r = (await api('POST', `${BASE}/vendor-roots`, { kind: values.kind, pem: await readFile(values.file, 'utf8'), ...(values.label ? { label: values.label } : {}) })) as { id: string; sha256: string };
    return [r, `vendor root ${r.id} added (sha256 ${r.sha256})\n`];
  }
  if (sub === 'delete' && id !== undefined) {
    await api('DELETE', `${BASE}/vendor-roots/${encodeURIComponent(id)}`);
    return [{ deleted: id }, `vendor root ${id} deleted\n`];
  }
  throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `attestation roots ${sub}` } });
}

async function chips(sub: string | undefined, id: string | undefined, values: Values, api: Call): Promise<[unknown, string]> {
  if (sub === 'list' || sub === undefined) {
    const r = (await api('GET', `${BASE}/owned-chips?limit=1000`)) as { items: Array<{ id: string; match: string; value: string }> };
    return [r, r.items.map((c) => `${c.id}\t${c.match}\t${c.value}\n`).join('') || 'no owned chips (every chip of a registered vendor is accepted)\n'];
  }
  if (sub === 'add') {
    const entries = [...(values.sha256 ?? []).map((value) => ({ match: 'sha256', value })), ...(values.serial ?? []).map((value) => ({ match: 'serial', value }))];
    const manifestPem = values.manifest === undefined ? undefined : await readFile(values.manifest, 'utf8');
    const r = (await api('POST', `${BASE}/owned-chips`, { ...(entries.length > 0 ? { entries } : {}), ...(manifestPem ? { manifestPem } : {}) })) as { added: number };
    return [r, `${r.added} owned chip(s) added\n`];
  }
  if (sub === 'delete' && id !== undefined) {
    await api('DELETE', `${BASE}/owned-chips/${encodeURIComponent(id)}`);
    return [{ deleted: id }, `owned chip ${id} deleted\n`];
  }
  throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `attestation chips ${sub}` } });
}

async function policy(sub: string | undefined, values: Values, api: Call): Promise<[unknown, string]> {
  if (sub === 'set') {
    const flag = values['require-attestation'];
    if (flag !== 'true' && flag !== 'false') throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'require-attestation' } });
    const r = (await api('PUT', `${BASE}/policy`, { requireAttestation: flag === 'true' })) as { requireAttestation: boolean };
    return [r, `requireAttestation: ${r.requireAttestation}\n`];
  }
  if (sub === 'show' || sub === undefined) {
    const r = (await api('GET', `${BASE}/policy`)) as { requireAttestation: boolean };
    return [r, `requireAttestation: ${r.requireAttestation}\n`];
  }
  throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `attestation policy ${sub}` } });
}

export async function attestationCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  const s = loadSession(sessionFile(io, values['session-file']));
  const api: Call = (method, path, body) => call(s.hub, s.pin, method, path, body, s.token);
  const [area, sub, id] = positionals;
  const [result, human] = area === 'roots' ? await roots(sub, id, values, api)
    : area === 'chips' ? await chips(sub, id, values, api)
      : area === 'policy' ? await policy(sub, values, api)
        : (() => { throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `attestation ${area ?? ''}`.trim() } }); })();
  io.stdout.write(values.json ? JSON.stringify(result) + '\n' : human);
  return 0;
}
