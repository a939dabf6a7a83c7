/**
 * `fleetkey device …`: the device agent on a gateway (enroll, renew, status).
 *
 *   fleetkey device enroll --hub URL --pin PIN [--token T | --token -] --state-dir D [--key-alg A]
 *                          [--keystore file|pkcs11:URI|tpm[:TCTI]] [--json]
 *   fleetkey device enroll … --attest tpm|se [--ek-chain PEM…] [--se-label L --se-cert PEM]   (device-attest.ts, ADR 0027)
 *   fleetkey device enroll --claim - --state-dir D        (claim URI from the QR code, on stdin)
 *   fleetkey device renew --state-dir D [--json]
 *   fleetkey device status --state-dir D [--json]
 *   fleetkey device run --state-dir D [--interval 5s] [--stdin] [--hub-mqtt host:port]   (device-run.ts)
 *
 * Invariants:
 * - The claim token is taken from `--token` (`-` reads it from stdin), else FLEETKEY_CLAIM_TOKEN
 *   (preferred: argv shows in `ps`), else a claim URI. It is never printed, and parse errors do
 *   not echo arguments (one of them may be the token).
 * - Every failure prints `error CODE: message` on stderr and returns ERROR_TABLE[code].exit.
 * - Options are parsed strictly (node:util parseArgs): an unknown flag is VALIDATION_FAILED.
 * - `--keystore` picks where the key is generated (ADR 0024); the store's locator (PKCS#11 URI,
 *   never a PIN) is recorded in identity.json, so renew/run/status need no flag again.
 */
import { parseArgs } from 'node:util';
import { FleetkeyError, parseClaimUri, type KeyAlgorithm } from '@fleetkey/protocol';
import { enroll, openKeyStore, parseKeyStoreSpec, renew, status, type DeviceStatus, type IdentitySummary, type KeyStore } from '@fleetkey/device';
import { readLines, reportError } from '../io.js';
import { runAgent } from './device-run.js';
import { enrollAttested } from './device-attest.js';

export interface DeviceCommandIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
  /** Defaults to process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** `device run` stops when this aborts (default: SIGTERM/SIGINT). */
  readonly stop?: AbortSignal;
}

const KEY_ALGS: readonly KeyAlgorithm[] = ['p256', 'p384', 'p521', 'ed25519'];
const OPTIONS = {
  hub: { type: 'string' },
  pin: { type: 'string', multiple: true },
  token: { type: 'string' },
  claim: { type: 'string' },
  'state-dir': { type: 'string' },
  'key-alg': { type: 'string' },
  keystore: { type: 'string' },
  json: { type: 'boolean' },
  interval: { type: 'string' },
  stdin: { type: 'boolean' },
  'hub-mqtt': { type: 'string' },
  attest: { type: 'string' },
  'ek-chain': { type: 'string', multiple: true },
  ek: { type: 'string' },
  'se-label': { type: 'string' },
  'se-cert': { type: 'string' },
} as const;

type Values = ReturnType<typeof parse>['values'];

function parse(args: string[]) {
  try {
    return parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false });
  } catch (err) {
    // The message may quote an argument, and an argument may be the token: keep only the code.
    const code = (err as { code?: unknown }).code;
    throw new FleetkeyError('VALIDATION_FAILED', { cause: new Error(`invalid arguments (${String(code)})`), details: { field: 'arguments' } });
  }
}

function required(value: string | undefined, field: string): string {
  if (value === undefined || value === '') throw new FleetkeyError('VALIDATION_FAILED', { details: { field } });
  return value;
}

function keyAlgorithm(value: string | undefined): KeyAlgorithm {
  const found = KEY_ALGS.find((alg) => alg === (value ?? 'p256'));
  if (found === undefined) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'key-alg' } });
  return found;
}

/** The key store named by `--keystore` (default: the file store in the state directory). */
function keyStoreFor(spec: string | undefined, stateDir: string, env: NodeJS.ProcessEnv): KeyStore {
  const { kind, locator } = parseKeyStoreSpec(spec ?? 'file');
  return openKeyStore(kind, { stateDir, locator, env });
}

async function firstLine(io: DeviceCommandIo): Promise<string> {
  const [line = ''] = await readLines(io.stdin, 1);
  return line.trim();
}

/** Hub URL, pins and token from flags, the environment or a claim URI (see the header). */
async function enrollInputs(values: Values, io: DeviceCommandIo, env: NodeJS.ProcessEnv): Promise<{ hubUrl: string; pins: string[]; token: string }> {
  const claim = values.claim === undefined ? undefined : parseClaimUri(values.claim === '-' ? await firstLine(io) : values.claim);
  const token = values.token === '-' ? await firstLine(io) : values.token ?? env.FLEETKEY_CLAIM_TOKEN ?? claim?.token;
  const pins = values.pin ?? (claim === undefined ? [] : [claim.pin]);
  if (pins.length === 0) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'pin' } });
  return { hubUrl: required(values.hub ?? claim?.hubUrl, 'hub'), pins, token: required(token, 'token') };
}

function summaryJson(summary: IdentitySummary | DeviceStatus): Record<string, unknown> {
  return Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v]));
}

function print(io: DeviceCommandIo, json: boolean | undefined, summary: IdentitySummary | DeviceStatus, headline: string): void {
  if (json === true) {
    io.stdout.write(JSON.stringify(summaryJson(summary)) + '\n');
    return;
  }
  io.stdout.write(`${headline}\n`);
  for (const [key, value] of Object.entries(summaryJson(summary))) {
    if (key === 'pins' || (typeof value === 'object' && value !== null)) io.stdout.write(`  ${key}: ${JSON.stringify(value)}\n`);
    else io.stdout.write(`  ${key}: ${String(value)}\n`);
  }
}

async function run(argv: string[], io: DeviceCommandIo, env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest);
  const stateDir = required(values['state-dir'], 'state-dir');
  switch (sub) {
    case 'enroll': {
      const inputs = await enrollInputs(values, io, env);
      const keyStore = keyStoreFor(values.keystore, stateDir, env);
      const result = values.attest === undefined
        ? await enroll({ hubUrl: inputs.hubUrl, pin: inputs.pins, token: inputs.token, stateDir, keyAlgorithm: keyAlgorithm(values['key-alg']), keyStore })
        : await enrollAttested({
          ...inputs, attest: values.attest, stateDir, keyStore, keyAlgorithm: values['key-alg'] === undefined ? undefined : keyAlgorithm(values['key-alg']),
          ekChain: values['ek-chain'], ek: values.ek, seLabel: values['se-label'], seCert: values['se-cert'],
        });
      print(io, values.json, result, `enrolled as device ${result.deviceId}`);
      return 0;
    }
    case 'renew': {
      const result = await renew({ stateDir });
      print(io, values.json, result, `renewed device ${result.deviceId}`);
      return 0;
    }
    case 'status': {
      const result = await status({ stateDir });
      print(io, values.json, result, `device ${result.deviceId}: ${result.state}${result.renewalDue ? ', renewal due' : `, renewal due at ${result.renewalDueAt.toISOString()}`}`);
      return 0;
    }
    case 'run':
      return runAgent({ stateDir, interval: values.interval, stdin: values.stdin === true, hubMqtt: values['hub-mqtt'] }, io);
    default:
      throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `device ${sub ?? ''}`.trim() } });
  }
}

/** Runs `fleetkey device <enroll|renew|status> …`; returns the process exit code. */
export async function deviceCommand(argv: string[], io: DeviceCommandIo): Promise<number> {
  const env = io.env ?? process.env;
  try {
    return await run(argv, io, env);
  } catch (err) {
    return reportError({ ...io, env }, err, argv.includes('--json'));
  }
}
