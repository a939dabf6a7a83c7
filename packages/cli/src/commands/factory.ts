/**
 * `fleetkey factory init|issue|export` (ADR 0015).
 * - `init` talks to the hub (owner session): it makes the kit key here, sends only its CSR, and
 *   writes the kit file (sub-CA certificate, constraints, the key encrypted with the kit
 *   passphrase read from stdin), mode 0600.
 * - `issue` and `export` run on the line machine with no network (factory-line.ts).
 *
 * Invariants: the kit passphrase comes from stdin only, is at least 12 characters, and is never
 * printed; the kit private key is never written unencrypted.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FleetkeyError, KIT_FORMAT, buildCsr, parseFactoryKit, type FactoryKitFile } from '@fleetkey/protocol';
import { writeFileAtomic } from '@fleetkey/hub';
import { readLines, type CliIo } from '../io.js';
import { call, loadSession, sessionFile } from './owner-api.js';
import { caDerOf, issueOnLine, loadManifest, openKitKey, signedManifest, type LineContext } from './factory-line.js';

const OPTIONS = {
  org: { type: 'string' }, count: { type: 'string' }, 'valid-for': { type: 'string' }, kit: { type: 'string' },
  'state-dir': { type: 'string' }, csrs: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, 'session-file': { type: 'string' },
} as const;

/** `14d`, `12h`, `90m`, `3600s` → seconds. */
export function parseDuration(text: string | undefined): number {
  const m = /^(\d{1,6})([dhms])$/.exec(text ?? '');
  if (m === null) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'valid-for' } });
  return Number(m[1]) * { d: 86_400, h: 3_600, m: 60, s: 1 }[m[2] as 'd' | 'h' | 'm' | 's'];
}

async function passphrase(io: CliIo): Promise<string> {
  const [p = ''] = await readLines(io.stdin, 1);
  if (p.length < 12) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'passphrase', minLength: 12 } });
  return p;
}

function need(v: string | undefined, field: string): string {
  if (v === undefined) throw new FleetkeyError('VALIDATION_FAILED', { details: { field } });
  return v;
}

async function init(values: Record<string, string | boolean | undefined>, io: CliIo): Promise<FactoryKitFile> {
  const s = loadSession(sessionFile(io, values['session-file'] as string | undefined));
  const pass = await passphrase(io);
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csr = await buildCsr({ spki: publicKey.export({ type: 'spki', format: 'der' }), subject: [['CN', 'fleetkey factory kit']], algorithm: 'p256', sign: async (d) => sign('sha256', d, privateKey) });
  const body = { orgName: need(values.org as string | undefined, 'org'), count: Number(values.count), validForSeconds: parseDuration(values['valid-for'] as string | undefined), csr: csr.toString('base64') };
  const r = (await call(s.hub, s.pin, 'POST', '/api/v1/factory-kits', body, s.token)) as Omit<FactoryKitFile, 'format' | 'encryptedKeyPem'>;
  const encryptedKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: pass }).toString();
  const kit: FactoryKitFile = { format: KIT_FORMAT, ...r, encryptedKeyPem };
  writeFileAtomic(need(values.kit as string | undefined, 'kit'), JSON.stringify(kit, null, 2) + '\n', 0o600);
  return kit;
}

async function lineContext(values: Record<string, string | boolean | undefined>, io: CliIo): Promise<LineContext> {
  const kit = parseFactoryKit(readFileSync(need(values.kit as string | undefined, 'kit'), 'utf8'));
  const key = openKitKey(kit, await passphrase(io));
  return { kit, key, caDer: caDerOf(kit), stateDir: need(values['state-dir'] as string | undefined, 'state-dir'), now: Date.now() };
}

export async function factoryCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  const out = (v: unknown, human: string): number => {
    io.stdout.write(values.json ? JSON.stringify(v) + '\n' : human);
    return 0;
  };
  const [sub] = positionals;
  if (sub === 'init') {
    const kit = await init(values, io);
    return out({ kitId: kit.kitId, windowEnd: kit.windowEnd, maxCount: kit.maxCount, kit: values.kit }, `factory kit ${kit.kitId} for ${kit.orgName}: ${kit.maxCount} identities until ${kit.windowEnd}, written to ${values.kit}\nThe kit holds the sub-CA key encrypted with your passphrase: keep the file and the passphrase apart, and destroy the kit after the run.\n`);
  }
  if (sub === 'issue') {
    const ctx = await lineContext(values, io);
    const csrPemText = values.csrs === undefined ? undefined : readFileSync(values.csrs, 'utf8');
    const devices = await issueOnLine(ctx, { count: csrPemText === undefined ? Number(values.count) : 0, outDir: need(values.out, 'out'), ...(csrPemText === undefined ? {} : { csrPemText }) });
    const counter = devices.at(-1)?.entry.seq ?? 0;
    return out({ issued: devices.length, counter, devices: devices.map((d) => d.entry.deviceId) }, `${devices.length} device certificate(s) issued; manifest counter ${counter}\n`);
  }
  if (sub === 'export') {
    const ctx = await lineContext(values, io);
    const body = await loadManifest(ctx);
    writeFileAtomic(need(values.out, 'out'), JSON.stringify(await signedManifest(ctx, body)) + '\n', 0o644);
    return out({ kitId: body.kitId, counter: body.counter, file: values.out }, `manifest of kit ${body.kitId} (counter ${body.counter}) written to ${values.out}\n`);
  }
  throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `factory ${sub ?? ''}`.trim() } });
}
