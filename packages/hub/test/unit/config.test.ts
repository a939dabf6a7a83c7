import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FleetkeyError } from '@fleetkey/protocol';
import { loadConfig } from '../../src/config/load.js';
import { CONFIG_SPEC } from '../../src/config/spec.js';

const docs = readFileSync(fileURLToPath(new URL('../../../../../docs/config.md', import.meta.url)), 'utf8');

test('docs/config.md lists every setting with its env var and default, and nothing else', () => {
  const rows = new Map<string, string>();
  for (const m of docs.matchAll(/^\|\s*`([A-Za-z]+)`\s*\|\s*`([A-Z_]+)`\s*\|[^|]*\|\s*([^|]*)\|/gm)) rows.set(m[1]!, `${m[2]} ${m[3]!.trim()}`);
  for (const s of CONFIG_SPEC) {
    const def = s.default === '' ? '(derived)' : `\`${s.default}\``;
    assert.equal(rows.get(s.key), `${s.env} ${def}`, `docs/config.md row for ${s.key}`);
  }
  assert.equal(rows.size, CONFIG_SPEC.length, 'docs/config.md has settings the code does not know');
});

test('defaults give the documented quick-start hub', () => {
  const c = loadConfig({}, {});
  assert.equal(c.apiPort, 8443);
  assert.equal(c.mqttPort, 8883);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.publicUrl, 'https://127.0.0.1:8443');
  assert.ok(c.tlsIps.includes('127.0.0.1'));
  assert.ok(Object.isFrozen(c));
});

test('flags beat environment variables, which beat defaults', () => {
  const c = loadConfig({ 'api-port': '9001' }, { FLEETKEY_API_PORT: '9002', FLEETKEY_MQTT_PORT: '9003' });
  assert.equal(c.apiPort, 9001);
  assert.equal(c.mqttPort, 9003);
});

test('bad settings fail with CONFIG_INVALID naming the setting, not echoing its value', () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ FLEETKEY_API_PORT: '70000' }, 'apiPort'],
    [{ FLEETKEY_API_PORT: '12a' }, 'apiPort'],
    [{ FLEETKEY_LOCKOUT_MAX_FAILURES: '101' }, 'lockoutMaxFailures'],
    [{ FLEETKEY_LOG_LEVEL: 'chatty' }, 'logLevel'],
    [{ FLEETKEY_TLS_IPS: 'not-an-ip' }, 'tlsIps'],
    [{ FLEETKEY_PUBLIC_URL: 'http://plaintext.example' }, 'publicUrl'],
    [{ FLEETKEY_MIN_RSA_BITS: '1024' }, 'minRsaBits'],
  ];
  for (const [env, key] of cases) {
    assert.throws(
      () => loadConfig({}, env),
      (e: unknown) => e instanceof FleetkeyError && e.code === 'CONFIG_INVALID' && e.details?.setting === key && !JSON.stringify(e).includes(Object.values(env)[0]!),
      key,
    );
  }
});
