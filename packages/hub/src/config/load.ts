/**
 * Loads and validates the hub configuration once; the result is frozen and passed explicitly.
 * Bad settings fail with CONFIG_INVALID naming the setting (never its value: it may be a secret).
 */
import { isIP } from 'node:net';
import { resolve, join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';
import { CONFIG_SPEC, type SettingSpec } from './spec.js';

export interface HubConfig {
  readonly dataDir: string;
  readonly host: string;
  readonly apiPort: number;
  readonly mqttPort: number;
  readonly mqttMaxPacketBytes: number;
  readonly mqttMaxQueuedPackets: number;
  readonly mqttMaxInflight: number;
  readonly mqttMaxSubscriptions: number;
  readonly mqttConnectTimeoutSeconds: number;
  readonly mqttKeepAliveMaxSeconds: number;
  readonly mqttRatePerSecond: number;
  readonly mqttRateBurst: number;
  readonly publicUrl: string;
  readonly tlsDnsNames: readonly string[];
  readonly tlsIps: readonly string[];
  readonly tlsCertValidityHours: number;
  readonly tlsRenewAtPercent: number;
  readonly tlsRenewCheckSeconds: number;
  readonly retiredRootSessionSpreadSeconds: number;
  readonly trustBundleValidityDays: number;
  readonly deviceCertValidityDays: number;
  readonly renewalGraceDays: number;
  readonly renewCommandMinIntervalSeconds: number;
  readonly crlNextUpdateHours: number;
  readonly ocspValiditySeconds: number;
  readonly rootKeyAlgorithm: 'p256' | 'p384' | 'p521' | 'ed25519';
  readonly deviceCaKeyAlgorithm: 'p256' | 'p384' | 'p521' | 'ed25519';
  /** `software` or `pkcs11:<URI>` (ADR 0028). */
  readonly caSigner: string;
  readonly allowedDeviceKeys: readonly string[];
  readonly minRsaBits: number;
  readonly claimTokenDefaultTtlSeconds: number;
  readonly claimTokenMaxTtlSeconds: number;
  readonly claimTokenMaxUses: number;
  readonly lockoutMaxFailures: number;
  readonly lockoutWindowSeconds: number;
  readonly lockoutSeconds: number;
  readonly enrollFailureLimit: number;
  readonly sessionAbsoluteSeconds: number;
  readonly sessionIdleSeconds: number;
  readonly maxJsonBodyBytes: number;
  readonly maxCsrBytes: number;
  readonly groupCommitMaxWaitMs: number;
  readonly telemetryMaxPayloadBytes: number;
  readonly telemetryDupWindowSeconds: number;
  readonly commandMaxPayloadBytes: number;
  readonly sseHeartbeatSeconds: number;
  readonly batchMaxCount: number;
  readonly batchMaxBodyBytes: number;
  readonly batchBundleMaxDownloads: number;
  readonly factoryKitMaxDays: number;
  readonly masterKeyFile: string;
  readonly logLevel: string;
}

export type ConfigInput = Readonly<Record<string, string | undefined>>;

const invalid = (key: string, why: string): FleetkeyError =>
  new FleetkeyError('CONFIG_INVALID', { details: { setting: key, problem: why } });

function parseSetting(spec: SettingSpec, raw: string): unknown {
  switch (spec.type) {
    case 'string':
      return raw;
    case 'int': {
      if (!/^\d+$/.test(raw)) throw invalid(spec.key, 'not a whole number');
      const n = Number(raw);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw invalid(spec.key, `out of range ${spec.min}..${spec.max}`);
      }
      return n;
    }
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    case 'enum':
      if (!spec.values?.includes(raw)) throw invalid(spec.key, `one of ${spec.values?.join(', ')}`);
      return raw;
  }
}

/** `flags` holds CLI flags by flag name (`data-dir`), `env` the process environment. */
export function loadConfig(flags: ConfigInput = {}, env: ConfigInput = {}): HubConfig {
  const out: Record<string, unknown> = {};
  for (const spec of CONFIG_SPEC) {
    const raw = (spec.flag !== undefined ? flags[spec.flag] : undefined) ?? env[spec.env] ?? spec.default;
    out[spec.key] = parseSetting(spec, raw);
  }
  return derive(out as unknown as HubConfig);
}

function derive(c: HubConfig): HubConfig {
  const dataDir = resolve(c.dataDir);
  const hostIsIp = isIP(c.host) !== 0;
  for (const ip of c.tlsIps) if (isIP(ip) === 0) throw invalid('tlsIps', 'not an IP address');
  for (const name of c.tlsDnsNames) if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i.test(name)) throw invalid('tlsDnsNames', 'not a DNS name');
  for (const k of c.allowedDeviceKeys) if (!['p256', 'p384', 'p521', 'ed25519', 'rsa'].includes(k)) throw invalid('allowedDeviceKeys', 'unknown key type');
  if (c.caSigner !== 'software' && !c.caSigner.startsWith('pkcs11:')) throw invalid('caSigner', 'software or pkcs11:<URI>');
  if (c.caSigner.startsWith('pkcs11:') && (c.rootKeyAlgorithm === 'ed25519' || c.deviceCaKeyAlgorithm === 'ed25519')) throw invalid('caSigner', 'a pkcs11 CA signer holds P-256, P-384 or P-521 keys');
  if (c.claimTokenDefaultTtlSeconds > c.claimTokenMaxTtlSeconds) throw invalid('claimTokenDefaultTtlSeconds', 'above claimTokenMaxTtlSeconds');
  const hostForUrl = c.host.includes(':') ? `[${c.host}]` : c.host;
  const publicUrl = c.publicUrl === '' ? `https://${hostForUrl}:${c.apiPort}` : c.publicUrl.replace(/\/+$/, '');
  if (!/^https:\/\/[^\s/?#]+$/.test(publicUrl)) throw invalid('publicUrl', 'must be https://host[:port] without a path');
  const uniq = (xs: readonly string[]): string[] => [...new Set(xs)];
  return Object.freeze({
    ...c,
    dataDir,
    publicUrl,
    tlsIps: Object.freeze(uniq(hostIsIp && c.host !== '0.0.0.0' && c.host !== '::' ? [...c.tlsIps, c.host] : [...c.tlsIps])),
    tlsDnsNames: Object.freeze(uniq(!hostIsIp ? [...c.tlsDnsNames, c.host] : [...c.tlsDnsNames])),
    allowedDeviceKeys: Object.freeze([...c.allowedDeviceKeys]),
    masterKeyFile: c.masterKeyFile === '' ? join(dataDir, 'secrets', 'master.key') : resolve(c.masterKeyFile),
  });
}

/** With the actual port (when apiPort was 0), the public URL follows the bound port. */
export function withBoundPort(c: HubConfig, apiPort: number, explicitPublicUrl: boolean): HubConfig {
  if (explicitPublicUrl || c.apiPort === apiPort) return c;
  const hostForUrl = c.host.includes(':') ? `[${c.host}]` : c.host;
  return Object.freeze({ ...c, apiPort, publicUrl: `https://${hostForUrl}:${apiPort}` });
}
