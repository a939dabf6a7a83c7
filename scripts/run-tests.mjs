#!/usr/bin/env node
// Runs compiled node:test files by tier. Node 20's `node --test` has no globs, so we list files.
// Tiers: `unit` (in-memory, fast) and `interop` (real peers: openssl, curl, the hub over TLS).
// Usage: node scripts/run-tests.mjs [unit|interop|all] [--filter substring]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const tier = args[0] ?? 'all';
const filterAt = args.indexOf('--filter');
const filter = filterAt >= 0 ? args[filterAt + 1] : undefined;

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const packages = ['protocol', 'hub', 'device', 'cli'];
const files = [];
for (const t of tier === 'all' ? ['unit', 'interop'] : [tier]) {
  for (const pkg of packages) {
    const dir = join('packages', pkg, 'dist', 'test', t);
    files.push(...walk(dir, []).sort());
  }
}
const selected = filter ? files.filter((f) => f.includes(filter)) : files;
if (selected.length === 0) {
  console.error(`no test files for tier '${tier}'${filter ? ` and filter '${filter}'` : ''}`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', ...selected],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
