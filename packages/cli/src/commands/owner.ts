/** `fleetkey owner add`: creates an organisation and its first owner directly in the data folder. */
import { parseArgs } from 'node:util';
import QRCode from 'qrcode';
import { FleetkeyError } from '@fleetkey/protocol';
import { loadConfig, openAdminContext } from '@fleetkey/hub';
import { isTty, readLines, type CliIo } from '../io.js';

export async function ownerCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'add') throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `owner ${sub ?? ''}`.trim() } });
  const { values } = parseArgs({
    args: rest,
    options: { 'data-dir': { type: 'string' }, org: { type: 'string' }, email: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
  });
  if (values.org === undefined) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'org' } });
  if (values.email === undefined) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'email' } });
  // The environment applies too (FLEETKEY_MASTER_KEY_FILE may have moved the master key).
  const config = loadConfig(values['data-dir'] === undefined ? {} : { 'data-dir': values['data-dir'] }, io.env);
  if (isTty(io.stderr)) io.stderr.write('Password (read from stdin): ');
  const [password = ''] = await readLines(io.stdin, 1);
  const admin = await openAdminContext(config);
  try {
    const created = await admin.createOrganisationWithOwner({ orgName: values.org, email: values.email, password });
    if (values.json) {
      io.stdout.write(JSON.stringify({ tenantId: created.tenantId, ownerId: created.ownerId, otpauthUri: created.otpauthUri }) + '\n');
      return 0;
    }
    io.stdout.write(`organisation ${created.tenantId} created with owner ${created.ownerId}\n`);
    io.stdout.write(`Add this TOTP secret to your authenticator app now; it is shown only once:\n${created.otpauthUri}\n`);
    if (isTty(io.stdout)) io.stdout.write(await QRCode.toString(created.otpauthUri, { type: 'terminal', small: true }));
    return 0;
  } finally {
    await admin.close();
  }
}
