/** `fleetkey audit verify`: walks the hash chain and reports the first broken record. */
import { parseArgs } from 'node:util';
import { FleetkeyError } from '@fleetkey/protocol';
import { loadConfig, openAdminContext } from '@fleetkey/hub';
import type { CliIo } from '../io.js';

export async function auditCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'verify') throw new FleetkeyError('VALIDATION_FAILED', { details: { command: `audit ${sub ?? ''}`.trim() } });
  const { values } = parseArgs({ args: rest, options: { 'data-dir': { type: 'string' }, json: { type: 'boolean' } }, strict: true });
  // The environment applies too (FLEETKEY_MASTER_KEY_FILE may have moved the master key).
  const config = loadConfig(values['data-dir'] === undefined ? {} : { 'data-dir': values['data-dir'] }, io.env);
  const admin = await openAdminContext(config);
  try {
    const v = await admin.store.audit.verify();
    if (values.json) io.stdout.write(JSON.stringify(v) + '\n');
    else if (v.ok) io.stdout.write(`audit log OK: ${v.records} records, chain intact\n`);
    else io.stdout.write(`audit log BROKEN at record ${v.firstBrokenSeq}: ${v.reason}\n`);
    if (!v.ok) throw new FleetkeyError('AUDIT_CHAIN_BROKEN', { details: { seq: v.firstBrokenSeq ?? 0 } });
    return 0;
  } finally {
    await admin.close();
  }
}
