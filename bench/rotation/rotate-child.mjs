// rotate-root from its own process, as an operator's `fleetkey hub rotate-root` is (the CLI
// refuses overlaps under 1 h, the bench needs seconds): the same store write, `rotateRoot`, on
// its own SQLite connection. In the hub's process a second connection would wait synchronously
// on the hub's open group-commit batch (ADR 0030) and block the very event loop that commits it.
// Usage: node rotate-child.mjs <data-dir> <overlapMs> <algorithm>; exit code 0 = written.
const { loadConfig, openTrustAdmin, rotateRoot } = await import('../../packages/hub/dist/src/index.js');

const [dataDir, overlapMs, algorithm] = process.argv.slice(2);
const admin = await openTrustAdmin(loadConfig({ 'data-dir': dataDir }, {}));
try {
  await rotateRoot(admin.context, { overlapMs: Number(overlapMs), algorithm });
} finally {
  await admin.close();
}
