/**
 * `fleetkey hub trust show|history`, `hub rotate-root`, `hub recover`: the operator's trust bundle
 * commands (ADR 0021). They write into the data folder's store; a running hub applies the new
 * bundle live at its next check, a stopped one at its next start.
 *
 * Invariants:
 * - `--overlap` is 1 h .. 365 d (default 30 d): how long the previous root stays pinned and its
 *   chain served; `--new-recovery-key-out` must not exist yet (written once, 0600).
 * - Nothing secret is printed: the new recovery key goes only to its file; pins and versions are
 *   public.
 */
import { constants, promises as fs } from 'node:fs';
import { parseArgs } from 'node:util';
import { FleetkeyError, activePins, decodeBundle, type TrustBundle } from '@fleetkey/protocol';
import { loadConfig, openTrustAdmin, recoverRoot, rotateRoot, type HubConfig, type TrustAdmin } from '@fleetkey/hub';
import type { CliIo } from '../io.js';

const DAY_MS = 86_400_000;
const MIN_OVERLAP_MS = 3_600_000;
const MAX_OVERLAP_MS = 365 * DAY_MS;

/** `30d`, `12h`, `90m` → ms; VALIDATION_FAILED (field overlap) outside 1 h .. 365 d. */
export function parseOverlap(text: string | undefined): number {
  const match = /^(\d{1,6})(d|h|m)$/.exec(text ?? '30d');
  const ms = match === null ? NaN : Number(match[1]) * { d: DAY_MS, h: 3_600_000, m: 60_000 }[match[2] as 'd' | 'h' | 'm'];
  if (!(ms >= MIN_OVERLAP_MS && ms <= MAX_OVERLAP_MS)) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'overlap', min: '1h', max: '365d' } });
  return ms;
}

function describe(b: TrustBundle, now: number): string[] {
  const c = b.content;
  return [
    `version ${c.version}  issued ${new Date(c.issuedAt).toISOString()}  expires ${new Date(c.expires).toISOString()}  threshold ${c.threshold}  signatures ${b.signatures.length}`,
    ...c.pins.map((p) => `  pin ${p.pin}${p.until === undefined ? '' : `  until ${new Date(p.until).toISOString()}`}${activePins(b, now).includes(p.pin) ? '' : '  (ended)'}`),
  ];
}

async function withAdmin<T>(dataDir: string, env: NodeJS.ProcessEnv, fn: (admin: TrustAdmin, config: HubConfig) => Promise<T>): Promise<T> {
  const config = loadConfig({ 'data-dir': dataDir }, env);
  const admin = await openTrustAdmin(config);
  try {
    return await fn(admin, config);
  } finally {
    await admin.close();
  }
}

export async function trustCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parseArgs({ args: rest, options: { 'data-dir': { type: 'string' }, json: { type: 'boolean' } }, strict: true });
  const dataDir = values['data-dir'] ?? io.env.FLEETKEY_DATA_DIR ?? './data';
  if (sub !== 'show' && sub !== 'history') throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `hub trust ${sub ?? ''}`.trim() } });
  return withAdmin(dataDir, io.env, async (admin) => {
    const now = Date.now();
    const bundles = sub === 'show' ? [(await admin.current()).bundle] : (await admin.store.trust.list()).map((s) => decodeBundle(s.bytes));
    if (bundles.length === 0) bundles.push((await admin.current()).bundle);
    if (values.json === true && sub === 'show') io.stdout.write(bundles[0]!.bytes.toString('utf8') + '\n');
    else io.stdout.write(bundles.flatMap((b) => describe(b, now)).join('\n') + '\n');
    return 0;
  });
}

export async function rotateRootCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { 'data-dir': { type: 'string' }, overlap: { type: 'string' } }, strict: true });
  const overlapMs = parseOverlap(values.overlap);
  return withAdmin(values['data-dir'] ?? io.env.FLEETKEY_DATA_DIR ?? './data', io.env, async (admin, config) => {
    const r = await rotateRoot(admin.context, { overlapMs, algorithm: config.rootKeyAlgorithm });
    io.stdout.write([
      `trust bundle version ${r.bundle.content.version} published (signed by the old and the new root)`,
      `  new hub pin:      ${r.pin}`,
      `  previous pin:     ${r.previousPin}  (pinned and served until ${new Date(Date.now() + overlapMs).toISOString()})`,
      `  a running hub switches at its next trust check; a stopped one at its next start`, '',
    ].join('\n'));
    return 0;
  });
}

export async function recoverCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { 'data-dir': { type: 'string' }, 'recovery-key': { type: 'string' }, 'new-recovery-key-out': { type: 'string' } }, strict: true });
  const keyFile = values['recovery-key'];
  if (keyFile === undefined) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'recovery-key' } });
  const out = values['new-recovery-key-out'] ?? 'RECOVERY-KEY-NEW-MOVE-OFFLINE.pem';
  const recoveryKeyPem = await fs.readFile(keyFile, 'utf8').catch((cause: unknown) => { throw new FleetkeyError('VALIDATION_FAILED', { cause, details: { field: 'recovery-key' } }); });
  return withAdmin(values['data-dir'] ?? io.env.FLEETKEY_DATA_DIR ?? './data', io.env, async (admin, config) => {
    const saveRecoveryKey = async (pem: string): Promise<void> => {
      const file = await fs.open(out, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await file.writeFile(pem);
        await file.sync();
      } finally {
        await file.close();
      }
    };
    const r = await recoverRoot(admin.context, { recoveryKeyPem, algorithm: config.rootKeyAlgorithm, saveRecoveryKey });
    io.stdout.write([
      `recovery bundle version ${r.bundle.content.version} published (signed by the offline recovery key)`,
      `  new hub pin:      ${r.pin}`,
      `  dropped pin:      ${r.previousPin}  (refused by every device that saw this bundle)`,
      `  NEW recovery key written once to ${out}: move it offline now`, '',
    ].join('\n'));
    return 0;
  });
}
