/** `fleetkey hub start|pin|root-cert|trust|rotate-root|recover`: the operator's commands for the hub itself. */
import { parseArgs } from 'node:util';
import { FleetkeyError, computePin, toPem } from '@fleetkey/protocol';
import { currentRootCertificate, loadConfig, spkiOfCertificate, startHub } from '@fleetkey/hub';
import { recoverCommand, rotateRootCommand, trustCommand } from './hub-trust.js';
import type { CliIo } from '../io.js';

const START_OPTIONS = {
  'data-dir': { type: 'string' },
  host: { type: 'string' },
  'api-port': { type: 'string' },
  'mqtt-port': { type: 'string' },
  'public-url': { type: 'string' },
  'log-level': { type: 'string' },
  'ca-signer': { type: 'string' },
} as const;

export async function hubCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'start':
      return start(rest, io);
    case 'trust':
      return trustCommand(rest, io);
    case 'rotate-root':
      return rotateRootCommand(rest, io);
    case 'recover':
      return recoverCommand(rest, io);
    case 'pin':
    case 'root-cert': {
      const { values } = parseArgs({ args: rest, options: { 'data-dir': { type: 'string' } }, strict: true });
      const dataDir = values['data-dir'] ?? io.env.FLEETKEY_DATA_DIR ?? './data';
      const root = await currentRootCertificate(loadConfig({ 'data-dir': dataDir }, {}));
      io.stdout.write(sub === 'pin' ? computePin(spkiOfCertificate(root)) + '\n' : toPem('CERTIFICATE', root));
      return 0;
    }
    default:
      throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `hub ${sub ?? ''}`.trim() } });
  }
}

async function start(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: START_OPTIONS, strict: true });
  const flags: Record<string, string | undefined> = { ...values };
  const config = loadConfig(flags, io.env);
  const hub = await startHub({ config, explicitPublicUrl: config.publicUrl !== '' && (flags['public-url'] ?? io.env.FLEETKEY_PUBLIC_URL) !== undefined });
  const lines = [
    `fleetkey hub is running`,
    `  API + EST:  ${hub.url}`,
    `  hub pin:    ${hub.pin}`,
    `  data:       ${config.dataDir}`,
  ];
  if (hub.recoveryKeyFile !== undefined) {
    lines.push(
      ``,
      `  A new hub identity was created. Its offline RECOVERY KEY was written once to:`,
      `    ${hub.recoveryKeyFile}`,
      `  Move that file off this machine now (e.g. to a USB key in a safe) and delete it here.`,
    );
  }
  lines.push(
    ``,
    `Create the first owner (in another terminal; the password is read from stdin):`,
    `  npx fleetkey owner add --data-dir ${config.dataDir} --org "My Org" --email you@example.com`,
    `Then log in:`,
    `  npx fleetkey login --hub ${hub.url} --pin '${hub.pin}' --email you@example.com --totp <code>`,
    ``,
  );
  io.stdout.write(lines.join('\n'));
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await hub.close();
  io.stdout.write('fleetkey hub stopped\n');
  return 0;
}
