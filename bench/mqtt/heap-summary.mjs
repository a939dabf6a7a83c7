#!/usr/bin/env node
// Summarises a V8 heap snapshot (from BENCH_HEAP_SNAPSHOT=<file> npm run bench:mqtt): object
// counts and self sizes grouped by constructor / node name, largest first, and per idle
// connection when `--per N` is given. Used for the "where the memory goes" analysis in
// docs/benchmarks.md. Reads the whole snapshot into memory (bounded by the file size).
//
// Usage: node bench/mqtt/heap-summary.mjs <file.heapsnapshot> [--per N] [--top 30]
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args[0];
if (file === undefined) throw new Error('usage: heap-summary.mjs <file.heapsnapshot> [--per N] [--top 30]');
const opt = (name, d) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : d; };
const per = opt('--per', 0);
const top = opt('--top', 30);

const snap = JSON.parse(readFileSync(file, 'utf8'));
const meta = snap.snapshot.meta;
const fields = meta.node_fields;
const types = meta.node_types[0];
const F = fields.length;
const iType = fields.indexOf('type'), iName = fields.indexOf('name'), iSize = fields.indexOf('self_size');
const nodes = snap.nodes;
const strings = snap.strings;

const groups = new Map();
let total = 0;
for (let i = 0; i < nodes.length; i += F) {
  const type = types[nodes[i + iType]];
  const size = nodes[i + iSize];
  total += size;
  // Objects and closures by constructor name; strings, code, arrays etc. by their type.
  const key = type === 'object' || type === 'closure' || type === 'native' ? `${type}:${strings[nodes[i + iName]]}` : `(${type})`;
  const g = groups.get(key) ?? { count: 0, bytes: 0 };
  g.count++;
  g.bytes += size;
  groups.set(key, g);
}
const rows = [...groups.entries()].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top);
console.log(`${file}: ${(total / 1048576).toFixed(1)} MiB self size in ${nodes.length / F} nodes`);
console.log(`| group | count | KiB |${per ? ' count/conn | bytes/conn |' : ''}`);
console.log(`|---|---:|---:|${per ? '---:|---:|' : ''}`);
for (const [k, g] of rows) {
  console.log(`| ${k.slice(0, 60)} | ${g.count} | ${(g.bytes / 1024).toFixed(0)} |${per ? ` ${(g.count / per).toFixed(2)} | ${(g.bytes / per).toFixed(0)} |` : ''}`);
}
