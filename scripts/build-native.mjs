#!/usr/bin/env node
// Builds the hub's small Node-API addon (packages/hub/native, docs/adr/0034) with node-gyp, against
// the running node's own headers (they include the OpenSSL headers of the OpenSSL inside node).
// Skips the build when the addon is newer than its sources and was built for this node version.
// A failed build is a warning, not an error: the hub then verifies CSRs with node:crypto alone
// (slower, same verdicts) and says so in its start-up log; the test suite requires the addon.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = resolve(dirname(fileURLToPath(import.meta.url)), '../packages/hub/native');
const addon = join(dir, 'build/Release/fleetkey_ecdsa.node');
const stamp = join(dir, 'build/node-version');
const sources = ['ecdsa_verify.c', 'binding.gyp'].map((f) => join(dir, f));

const upToDate = existsSync(addon) && existsSync(stamp)
  && readFileSync(stamp, 'utf8') === process.version
  && sources.every((s) => statSync(s).mtimeMs <= statSync(addon).mtimeMs);
if (upToDate) process.exit(0);

const prefix = dirname(dirname(process.execPath));
const nodeGyp = process.env.npm_config_node_gyp
  ?? [join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')].find(existsSync);
const nodedir = process.env.npm_config_nodedir
  ?? (existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : undefined);

if (nodeGyp === undefined) {
  console.warn('fleetkey: node-gyp not found; the native ECDSA verifier is not built (the hub falls back to node:crypto, docs/adr/0034)');
  process.exit(0);
}
const args = [nodeGyp, 'rebuild', '--directory', dir, ...(nodedir === undefined ? [] : [`--nodedir=${nodedir}`])];
const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000 });
if (run.status !== 0) {
  const tail = `${run.stdout ?? ''}${run.stderr ?? ''}`.split('\n').slice(-15).join('\n');
  console.warn(`fleetkey: building the native ECDSA verifier failed (the hub falls back to node:crypto, docs/adr/0034):\n${tail}`);
  process.exit(0);
}
writeFileSync(stamp, process.version);
