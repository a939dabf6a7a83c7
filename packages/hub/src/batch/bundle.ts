/**
 * The bundle of a finished batch (ADR 0014): one `.tar.gz` with a folder per device holding
 * `cert.pem`, `chain.pem`, `key.pem` (hub-keys only), `hub-root.pem`, `pin` and `device.json`,
 * plus `batch.json` at the top.
 *
 * Invariants:
 * - A hub-generated key is opened from its sealed form only here, in memory, and leaves the hub
 *   only inside this archive: PKCS#8 PEM, encrypted (PBES2 AES-256-CBC, RFC 8018) when the batch
 *   has a passphrase; `key.pem` is mode 0600 in the archive.
 * - `chain.pem` lists the issuers above the device certificate (device CA), `hub-root.pem` the
 *   trust anchor, so `openssl verify -CAfile hub-root.pem -untrusted chain.pem cert.pem` holds.
 * - `device.json` holds only public facts (id, hub URL, pin, MQTT address, key facts).
 */
import { createPrivateKey } from 'node:crypto';
import { toPem, type Clock } from '@fleetkey/protocol';
import type { SecretSealer } from '../secrets/sealer.js';
import type { Batch, BundleItem } from '../storage/types.js';
import { tarGz, type TarEntry } from './tar.js';

export interface BundleContext {
  readonly hubUrl: string;
  readonly pin: string;
  readonly rootPem: string;
  readonly deviceCaPem: string;
  readonly mqttHost: string;
  readonly mqttPort: number;
}

export const batchKeyAad = (deviceId: string): string => `fleetkey:batch-key:${deviceId}`;

function keyPem(item: BundleItem, sealer: SecretSealer, passphrase: string | null): string | undefined {
  if (item.keySealed === null) return undefined;
  const der = sealer.open(item.keySealed, batchKeyAad(item.deviceId));
  if (passphrase === null) return toPem('PRIVATE KEY', der);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  der.fill(0);
  return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }).toString();
}

function deviceJson(batch: Batch, item: BundleItem, ctx: BundleContext, encrypted: boolean): Buffer {
  const doc = {
    version: 1, deviceId: item.deviceId, hubUrl: ctx.hubUrl, pins: [ctx.pin],
    mqtt: { host: ctx.mqttHost, port: ctx.mqttPort },
    keyAlgorithm: batch.keyAlgorithm,
    keyOrigin: batch.mode === 'hub-keys' ? 'hub-generated' : 'device-generated',
    keyFile: batch.mode === 'hub-keys' ? 'key.pem' : null, keyEncrypted: encrypted,
    notBefore: new Date(item.notBefore).toISOString(), notAfter: new Date(item.notAfter).toISOString(), batchId: batch.id,
  };
  return Buffer.from(JSON.stringify(doc, null, 2) + '\n');
}

/** The bytes every folder shares, made once per bundle. */
interface SharedFiles {
  readonly chain: Buffer;
  readonly root: Buffer;
  readonly pin: Buffer;
}

function deviceEntries(batch: Batch, item: BundleItem, ctx: BundleContext, shared: SharedFiles, sealer: SecretSealer, passphrase: string | null): TarEntry[] {
  const dir = item.deviceId;
  const key = keyPem(item, sealer, passphrase);
  const entries: TarEntry[] = [
    { name: dir },
    { name: `${dir}/cert.pem`, data: Buffer.from(toPem('CERTIFICATE', item.certificateDer)) },
    { name: `${dir}/chain.pem`, data: shared.chain },
    { name: `${dir}/hub-root.pem`, data: shared.root },
    { name: `${dir}/pin`, data: shared.pin },
    { name: `${dir}/device.json`, data: deviceJson(batch, item, ctx, key !== undefined && passphrase !== null) },
  ];
  if (key !== undefined) entries.push({ name: `${dir}/key.pem`, data: Buffer.from(key), mode: 0o600 });
  return entries;
}

export interface BuildBundleOptions {
  readonly batch: Batch;
  readonly items: readonly BundleItem[];
  readonly context: BundleContext;
  readonly sealer: SecretSealer;
  readonly passphrase: string | null;
  readonly clock: Clock;
}

/** The `.tar.gz` of a batch; see the module invariants. */
export async function buildBundle(o: BuildBundleOptions): Promise<Buffer> {
  const { batch } = o;
  const summary = {
    version: 1, batchId: batch.id, label: batch.label, mode: batch.mode, keyAlgorithm: batch.keyAlgorithm,
    count: o.items.length, hubUrl: o.context.hubUrl, pin: o.context.pin,
    keysIncluded: batch.mode === 'hub-keys', keysEncrypted: batch.mode === 'hub-keys' && o.passphrase !== null,
  };
  const entries: TarEntry[] = [{ name: 'batch.json', data: Buffer.from(JSON.stringify(summary, null, 2) + '\n') }];
  const shared = { chain: Buffer.from(o.context.deviceCaPem), root: Buffer.from(o.context.rootPem), pin: Buffer.from(o.context.pin + '\n') };
  for (const item of o.items) entries.push(...deviceEntries(batch, item, o.context, shared, o.sealer, o.passphrase));
  return tarGz(entries, new Date(o.clock.now()));
}
