/**
 * `fleetkey telemetry export` and `tail` as child processes against a real hub (pinned TLS):
 * CSV and JSONL exports round-trip every stored byte (binary, JSON with commas, quotes and
 * newlines, enveloped messages) across several API pages; `tail --limit N` prints N live
 * messages and exits. Children are spawned asynchronously (the hub serves from this process),
 * bounded in time, and killed by their own pid if they overstay.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { wrapEnvelope } from '@fleetkey/protocol';
import { loadConfig, openAdminContext, startHub, type RunningHub, type TelemetryRecord } from '@fleetkey/hub';

const BIN = fileURLToPath(new URL('../../../bin/fleetkey.js', import.meta.url));
const PASSWORD = 'telemetry cli password 2026';
const T0 = Date.UTC(2026, 5, 1);

interface Run { code: number; stdout: string; stderr: string; child: ChildProcess }
function fleetkey(args: string[], env: Record<string, string>, timeoutMs = 30_000, stdin = ''): Promise<Run> & { child: ChildProcess } {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const done = new Promise<Run>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, child });
    });
    child.stdin!.end(stdin);
  });
  return Object.assign(done, { child });
}

/** RFC 4180 parser for the test's own check (quoted fields, doubled quotes, CRLF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\r' && text[i + 1] === '\n') row.push(field), rows.push(row), (row = []), (field = ''), i++;
    else field += c;
  }
  return rows;
}

describe('fleetkey telemetry export|tail against a running hub', () => {
  let dir: string;
  let hub: RunningHub;
  let env: Record<string, string>;
  let deviceId: string;
  let tenantId: string;
  let stored: TelemetryRecord[];

  const accept = (payload: Buffer, at: number, messageId?: string) => hub.telemetry.accept({
    tenantId, deviceId, topic: `devices/${deviceId}/telemetry`, qos: 1, receivedAt: at,
    payload: messageId === undefined ? payload : wrapEnvelope(messageId, payload), dedupKey: messageId === undefined ? null : `id:${messageId}`,
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetkey-tcli-'));
    hub = await startHub({ config: loadConfig({ 'data-dir': join(dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, {}), logger: pino({ level: 'silent' }) });
    env = { FLEETKEY_SESSION_FILE: join(dir, 'session.json') };
    const admin = await openAdminContext(hub.config);
    const created = await admin.createOrganisationWithOwner({ orgName: 'Export Org', email: 'ops@export.example', password: PASSWORD });
    await admin.close();
    tenantId = created.tenantId;
    const totp = OTPAuth.URI.parse(created.otpauthUri).generate();
    const login = await fleetkey(['login', '--hub', hub.url, '--pin', hub.pin, '--email', 'ops@export.example', '--totp', totp], env, 30_000, PASSWORD + '\n');
    assert.equal(login.code, 0, login.stderr);
    const claim = await fleetkey(['claim', 'create', '--json'], env);
    const { token } = JSON.parse(claim.stdout) as { token: string };
    const enrolled = await fleetkey(['device', 'enroll', '--hub', hub.url, '--pin', hub.pin, '--state-dir', join(dir, 'dev'), '--json'], { ...env, FLEETKEY_CLAIM_TOKEN: token });
    assert.equal(enrolled.code, 0, enrolled.stderr);
    deviceId = (JSON.parse(enrolled.stdout) as { deviceId: string }).deviceId;
    const tricky = [Buffer.from('{"a":"x,y","q":"say \\"hi\\"","nl":"1\\n2"}'), Buffer.from([0, 0xff, 0x0d, 0x0a, 0x2c, 0x22]), Buffer.from('plain, "text"\r\nline'), Buffer.alloc(0)];
    for (let i = 0; i < 1203; i++) {
      const body = i < tricky.length ? tricky[i]! : Buffer.from(JSON.stringify({ i }));
      await accept(body, T0 + i * 1000, i % 3 === 0 ? randomUUID() : undefined);
    }
    stored = [];
    for (let after = 0; ; ) {
      const page = await hub.store.telemetry.list(tenantId, deviceId, { afterSeq: after, limit: 1000 });
      if (page.length === 0) break;
      stored.push(...page);
      after = page.at(-1)!.seq;
    }
    assert.equal(stored.length, 1203);
  });
  after(async () => {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('export --format csv: every row, every byte, across pages (RFC 4180)', async () => {
    const r = await fleetkey(['telemetry', 'export', deviceId, '--format', 'csv'], env);
    assert.equal(r.code, 0, r.stderr);
    const [header, ...rows] = parseCsv(r.stdout);
    assert.deepEqual(header, ['seq', 'receivedAt', 'topic', 'qos', 'messageId', 'payloadBase64', 'json']);
    assert.equal(rows.length, stored.length);
    rows.forEach((row, i) => {
      const s = stored[i]!;
      assert.equal(Number(row[0]), s.seq);
      assert.equal(row[1], new Date(s.receivedAt).toISOString());
      assert.deepEqual(Buffer.from(row[5]!, 'base64'), s.payload, `payload of seq ${s.seq}`);
      assert.equal(row[4], s.dedupKey?.slice(3) ?? '');
      assert.deepEqual(row[6] === '' ? null : JSON.parse(row[6]!), s.payloadJson === null ? null : JSON.parse(s.payloadJson));
    });
  });

  test('export --format jsonl with --since/--until: exactly the window, payloads intact', async () => {
    const since = new Date(T0 + 10_000).toISOString();
    const until = new Date(T0 + 20_000).toISOString();
    const r = await fleetkey(['telemetry', 'export', deviceId, '--format', 'jsonl', '--since', since, '--until', until], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { seq: number; payload: string; json?: unknown });
    const expected = stored.filter((s) => s.receivedAt >= T0 + 10_000 && s.receivedAt < T0 + 20_000);
    assert.deepEqual(lines.map((l) => l.seq), expected.map((s) => s.seq));
    lines.forEach((l, i) => assert.deepEqual(Buffer.from(l.payload, 'base64'), expected[i]!.payload));
    const bad = await fleetkey(['telemetry', 'export', deviceId, '--format', 'xml'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error VALIDATION_FAILED/);
  });

  test('tail --limit 2 --json prints the next two live messages and exits 0', async () => {
    const run = fleetkey(['telemetry', 'tail', deviceId, '--limit', '2', '--json'], env, 20_000);
    let exited = false;
    void run.then(() => (exited = true));
    const sent: number[] = [];
    // The stream is live only once the child connected: publish until it has seen two, bounded.
    for (let i = 0; i < 200 && !exited; i++) {
      sent.push((await accept(Buffer.from(JSON.stringify({ live: i })), Date.now())).seq);
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { seq: number; json: { live: number } });
    assert.equal(lines.length, 2);
    assert.ok(sent.includes(lines[0]!.seq) && lines[1]!.seq > lines[0]!.seq);
  });

  test("tail of another organisation's or an unknown device: error NOT_FOUND, exit 3", async () => {
    const r = await fleetkey(['telemetry', 'tail', 'dev-aaaaaaaaaaaaaaaa', '--limit', '1'], env, 20_000);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /error NOT_FOUND/);
  });
});
