/**
 * PEM (RFC 7468) with strict base64: the stricttextualmsg of §3 — 64-character lines, canonical
 * padding, no headers, nothing but whitespace around the block.
 *
 * Invariants:
 * - `fromPem` returns the DER of exactly one block with the expected label; text outside blocks is
 *   allowed only by `fromPemAll` for bundles (still label-checked). Faults are DerErrors.
 */
import { DerError } from '../der/index.js';

const LABEL_RE = /^[A-Z0-9]+( [A-Z0-9]+)*$/;
const B64_LINE_RE = /^[A-Za-z0-9+/]*={0,2}$/;

export function toPem(label: string, der: Uint8Array): string {
  if (!LABEL_RE.test(label)) throw new DerError('invalid PEM label');
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function decodeBody(body: string): Buffer {
  const lines = body.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines.length === 0) throw new DerError('empty PEM body');
  lines.forEach((line, i) => {
    if (!B64_LINE_RE.test(line) || line.length > 64) throw new DerError('invalid base64 in PEM');
    if (i < lines.length - 1 && line.length !== 64) throw new DerError('short PEM line');
  });
  const b64 = lines.join('');
  const der = Buffer.from(b64, 'base64');
  if (der.toString('base64') !== b64) throw new DerError('non-canonical base64 in PEM');
  return der;
}

const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

/** Every block with `label`; at least one. Blocks with other labels are an error. */
export function fromPemAll(text: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(BLOCK_RE)) {
    if (m[1] !== label || m[3] !== label) throw new DerError('unexpected PEM label');
    out.push(decodeBody(m[2]!));
  }
  if (out.length === 0) throw new DerError('no PEM block');
  return out;
}

/** The DER of the one PEM block in `text`, which must carry `label`. */
export function fromPem(text: string, label: string): Buffer {
  const trimmed = text.trim();
  const blocks = fromPemAll(trimmed, label);
  const expected = toPem(label, blocks[0]!).trim();
  if (blocks.length !== 1 || trimmed.replace(/\r\n/g, '\n') !== expected) throw new DerError('not exactly one PEM block');
  return blocks[0]!;
}
