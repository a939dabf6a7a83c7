/**
 * Documentation checks (checklist row 32; EN 303 645 5.2-1, 5.3-13): the security policy names a
 * contact and a support period, the changelog has a Security section, the threat model names only
 * tests that exist (file and title), and relative links in README.md and docs/*.md resolve.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/unit/docs.test.js → repository root (as errors.test.ts does).
const root = fileURLToPath(new URL('../../../../../', import.meta.url));
const read = (rel: string): string => readFileSync(join(root, rel), 'utf8');

/** The body of a markdown section (from its heading to the next heading of the same or a higher level). */
function section(markdown: string, heading: RegExp, level: number): string | undefined {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^#{${level}}\\s`).test(l) && heading.test(l));
  if (start < 0) return undefined;
  const end = lines.findIndex((l, i) => i > start && new RegExp(`^#{1,${level}}\\s`).test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

test('SECURITY.md names a reporting contact, a private advisory route and a defined support period', () => {
  assert.ok(existsSync(join(root, 'SECURITY.md')), 'SECURITY.md exists');
  const policy = read('SECURITY.md');
  assert.match(policy, /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/, 'a contact e-mail address');
  assert.match(policy, /security advisor/i, 'the private GitHub security advisory route');
  const support = section(policy, /support/i, 2);
  assert.ok(support !== undefined, 'a "## … support …" section');
  assert.match(support, /\b\d+\s+(months?|years?)\b/i, 'the support period is a stated length of time');
  assert.match(policy, /acknowledge/i, 'a response target');
});

test('CHANGELOG.md has an Unreleased section with a Security subsection (Keep a Changelog)', () => {
  const changelog = read('CHANGELOG.md');
  const unreleased = section(changelog, /^##\s+\[Unreleased\]/, 2);
  assert.ok(unreleased !== undefined, '## [Unreleased]');
  const security = section(unreleased, /^###\s+Security\b/, 3);
  assert.ok(security !== undefined && /^\s*[-*]\s+\S/m.test(security), '### Security with at least one entry');
});

test('the threat model names only test files that exist, and only test titles those files contain', () => {
  const model = read('docs/threat-model.md');
  const sources = new Map<string, string>();
  const source = (rel: string): string => {
    let text = sources.get(rel);
    if (text === undefined) {
      // Titles are written unescaped in the docs; undo JS string escapes of quotes.
      text = readFileSync(join(root, rel), 'utf8').replace(/\\(['"`])/g, '$1');
      sources.set(rel, text);
    }
    return text;
  };
  let files = 0;
  let titles = 0;
  for (const [index, line] of model.split('\n').entries()) {
    const paths = [...line.matchAll(/`(packages\/[A-Za-z0-9_./-]+\/test\/[A-Za-z0-9_./-]+\.(?:test|contract)\.ts)`/g)].map((m) => m[1]!);
    for (const rel of paths) {
      assert.ok(existsSync(join(root, rel)), `docs/threat-model.md:${index + 1} names ${rel}, which does not exist`);
      files++;
    }
    // Quoted titles (“…”) must appear in one of the test files named on the same line.
    for (const m of line.matchAll(/“([^”]+)”/g)) {
      const title = m[1]!.replace(/\\\|/g, '|');
      if (paths.length === 0) continue; // prose, not a test reference
      assert.ok(
        paths.some((rel) => source(rel).includes(title)),
        `docs/threat-model.md:${index + 1}: no test titled “${title}” in ${paths.join(', ')}`,
      );
      titles++;
    }
  }
  assert.ok(files >= 20 && titles >= 40, `the threat model references tests (files ${files}, titles ${titles})`);
});

test('every relative link in README.md and docs/*.md points to an existing file', () => {
  const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const broken: string[] = [];
  for (const doc of docs) {
    // Code spans and fenced blocks are not links.
    const text = read(doc).replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
    for (const m of text.matchAll(/\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue; // URL schemes, in-page anchors
      const path = decodeURIComponent(target.split('#')[0]!);
      if (!existsSync(resolve(dirname(join(root, doc)), path))) broken.push(`${doc} → ${target}`);
    }
  }
  assert.deepEqual(broken, [], 'broken relative links');
});
