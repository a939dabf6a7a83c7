/**
 * Shared fixture of the TPM attestation tests (ADR 0027): a real hub on 127.0.0.1, an owner, a
 * manufactured swtpm whose vendor root the organisation registered (and optionally a second
 * swtpm from another "vendor"), plus the device side done by hand with TpmAttester so that a
 * test can mutate ONE piece of evidence. Everything is stopped in `after`.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { buildCsr, FleetkeyError } from '@fleetkey/protocol';
import { AttestHub, PinSet, TpmAttester, TpmKeyStore, type AttestConnection, type TpmKeyHandle } from '@fleetkey/device';
import { loadConfig, openAdminContext, startHub, type RunningHub } from '@fleetkey/hub';
import { apiCall } from './api.js';
import { startEkSwtpm, type EkSwtpm } from './swtpm-ek.js';

export interface Snapshot {
  readonly devices: number;
  readonly tokenUses: number;
  readonly certificates: number;
}

export interface Exchange {
  readonly hub: AttestHub;
  readonly attester: TpmAttester;
  readonly challenge: Record<string, unknown>;
  readonly activatedSecret: Buffer;
}

export const der = (pem: string): Buffer => new X509Certificate(pem).raw;

export class TpmAttestFixture {
  dir = '';
  hub!: RunningHub;
  tpm!: EkSwtpm;
  otherVendor: EkSwtpm | undefined;
  keyStore!: TpmKeyStore;
  ownerToken = '';
  otpauthUri = '';

  api = async (method: string, path: string, body?: unknown, token = this.ownerToken): Promise<{ status: number; body: any }> =>
    apiCall(this.hub.url, this.hub.rootCertPem, method, path, body, token);

  async claimToken(maxUses = 1): Promise<{ id: string; token: string }> {
    const claim = await this.api('POST', '/api/v1/claim-tokens', { maxUses });
    assert.equal(claim.status, 201, JSON.stringify(claim.body));
    return claim.body;
  }

  /** What must not change when evidence is refused. */
  async snapshot(): Promise<Snapshot> {
    const devices = (await this.api('GET', '/api/v1/devices?limit=1000')).body.items as { id: string }[];
    const tokens = (await this.api('GET', '/api/v1/claim-tokens')).body.items as { uses: number }[];
    let certificates = 0;
    for (const d of devices) certificates += (await this.hub.store.devices.certificates((await this.hub.store.devices.getAnyTenant(d.id))!.tenantId, d.id)).length;
    return { devices: devices.length, tokenUses: tokens.reduce((n, t) => n + t.uses, 0), certificates };
  }

  async lastAttestationReason(): Promise<string> {
    const records = await this.hub.store.audit.list({ limit: 100000 });
    return String(records.filter((r) => r.type === 'attestation.tpm' && r.result === 'failure').at(-1)?.details?.reason ?? '');
  }

  /** Steps 1–2 of the device side by hand: EK certificate, AK, challenge, activation. */
  async challengeAndActivate(token: string, chip: EkSwtpm = this.tpm): Promise<Exchange> {
    const attester = await TpmAttester.open(chip.tcti);
    const client = new AttestHub({ hubUrl: this.hub.url, pins: PinSet.parse(this.hub.pin), token });
    const ek = await attester.ekCertificate();
    const akPublic = await attester.createAk();
    const challenge = await client.post('tpm/challenge', { ekCertificate: ek.toString('base64'), ekChain: [der(chip.issuerPem).toString('base64')], akPublic: akPublic.toString('base64') });
    const activatedSecret = await attester.activate(Buffer.from(String(challenge.credentialBlob), 'base64'), Buffer.from(String(challenge.encryptedSecret), 'base64'));
    return { hub: client, attester, challenge, activatedSecret };
  }

  async boundCsr(key: TpmKeyHandle, connection: AttestConnection): Promise<Buffer> {
    return buildCsr({ spki: await key.publicKeySpki(), subject: [], algorithm: key.algorithm, sign: (d) => key.sign(d), challengePassword: connection.binding.toString('base64') });
  }

  /** Steps 3–4: certify a new key, bind a CSR to `connection`; `mutate` changes one field. */
  async enrollBody(x: Exchange, connection: AttestConnection, mutate: (body: Record<string, string>) => Promise<void> | void = () => undefined): Promise<Record<string, string>> {
    const key = (await this.keyStore.create(`k${randomBytes(4).toString('hex')}`, 'p256')) as TpmKeyHandle;
    const certified = await x.attester.certify(key);
    const body: Record<string, string> = {
      challengeId: String(x.challenge.challengeId), csr: (await this.boundCsr(key, connection)).toString('base64'),
      activatedSecret: x.activatedSecret.toString('base64'), keyPublic: certified.keyPublic.toString('base64'),
      certifyInfo: certified.certifyInfo.toString('base64'), certifySignature: certified.certifySignature.toString('base64'),
    };
    await mutate(body);
    return body;
  }

  async assertRefused(promise: Promise<unknown>, code: string, reason: RegExp | undefined, before: Snapshot): Promise<void> {
    await assert.rejects(promise, (err: unknown) => err instanceof FleetkeyError && err.code === code);
    if (reason !== undefined) assert.match(await this.lastAttestationReason(), reason);
    assert.deepEqual(await this.snapshot(), before, 'no device, certificate or token use was recorded');
  }
}

/** Registers before/after hooks and returns the fixture they fill. */
export function tpmAttestFixture(o: { otherVendor?: boolean } = {}): TpmAttestFixture {
  const f = new TpmAttestFixture();
  before(async () => {
    [f.tpm, f.otherVendor] = await Promise.all([startEkSwtpm(), o.otherVendor === true ? startEkSwtpm() : Promise.resolve(undefined)]);
    f.dir = mkdtempSync(join(tmpdir(), 'fleetkey-attest-tpm-'));
    f.keyStore = new TpmKeyStore({ directory: join(f.dir, 'keys'), tcti: f.tpm.tcti });
    f.hub = await startHub({ config: loadConfig({ 'data-dir': join(f.dir, 'data'), 'api-port': '0', 'mqtt-port': '0' }, {}), logger: pino({ level: 'silent' }) });
    const admin = await openAdminContext(f.hub.config);
    const created = await admin.createOrganisationWithOwner({ orgName: 'Chips', email: 'o@chips.example', password: 'tpm attestation password' });
    await admin.close();
    f.otpauthUri = created.otpauthUri;
    const session = await f.api('POST', '/api/v1/sessions', { email: 'o@chips.example', password: 'tpm attestation password', totp: OTPAuth.URI.parse(created.otpauthUri).generate() }, '');
    f.ownerToken = session.body.token as string;
    const root = await f.api('POST', '/api/v1/attestation/vendor-roots', { kind: 'tpm', pem: f.tpm.vendorRootPem, label: 'swtpm local CA' });
    assert.equal(root.status, 201, JSON.stringify(root.body));
  });
  after(async () => {
    await f.hub?.close();
    await Promise.all([f.tpm?.stop(), f.otherVendor?.stop()]);
    await rm(f.dir, { recursive: true, force: true });
  });
  return f;
}
