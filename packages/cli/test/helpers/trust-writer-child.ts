/**
 * rotate-root / recover in a process of their own, as `fleetkey hub rotate-root` and `hub recover`
 * run beside a live hub. In the test's own process the writer's second SQLite connection would
 * busy-wait synchronously (busy_timeout) on the hub's open group-commit batch while blocking the
 * very event loop that has to commit it: a 5 s stall per attempt, after which a short overlap had
 * already ended when the hub applied the rotation.
 *
 * stdin: JSON `{ dataDir, env, op: 'rotate', overlapMs }` or `{ dataDir, env, op: 'recover',
 * recoveryKeyPem }`; stdout: JSON `{}` or `{ recoveryKeyPem }` (the new key, for the next recover).
 */
import { loadConfig, openTrustAdmin, recoverRoot, rotateRoot } from '@fleetkey/hub';

type Request = { readonly dataDir: string; readonly env: Record<string, string> } & (
  | { readonly op: 'rotate'; readonly overlapMs: number }
  | { readonly op: 'recover'; readonly recoveryKeyPem: string }
);

const chunks: Buffer[] = [];
for await (const c of process.stdin) chunks.push(c as Buffer);
const req = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Request;
const admin = await openTrustAdmin(loadConfig({ 'data-dir': req.dataDir }, req.env));
try {
  if (req.op === 'rotate') {
    await rotateRoot(admin.context, { overlapMs: req.overlapMs, algorithm: 'p384' });
    process.stdout.write('{}');
  } else {
    let next = '';
    await recoverRoot(admin.context, { recoveryKeyPem: req.recoveryKeyPem, algorithm: 'p384', saveRecoveryKey: async (pem) => { next = pem; } });
    process.stdout.write(JSON.stringify({ recoveryKeyPem: next }));
  }
} finally {
  await admin.close();
}
