/**
 * Factory kits and manifest import for the owner API (ADR 0015).
 *
 * Invariants:
 * - The kit key is made by the CLI; the hub only sees its CSR (proof of possession checked) and
 *   never holds the private key or the kit passphrase.
 * - The hub root in service now (after a rotation, the new one: ADR 0026) signs the kit certificate
 *   (factory sub-CA profile, protocol factory-profile.ts) only for the session's own organisation, with a count ≤ MAX_KIT_COUNT and an issuance window
 *   ≤ factoryKitMaxDays. Its notAfter is the window end plus the device certificate lifetime, so
 *   a device made on the last day can use its identity for its whole lifetime (ADR 0015).
 * - A new kit joins the device trust set (`onKitCreated`) at once; its devices still connect only
 *   after import, since the broker accepts recorded certificates only (mqtt/device-auth.ts).
 * - An import is audited, success or failure, and changes nothing on failure (factory-import.ts).
 *   The kit must be certified by a root still trusted (trust/lineage.ts): any root since the
 *   latest `hub recover`, never one a recovery dropped.
 */
import { randomBytes } from 'node:crypto';
import {
  FleetkeyError, MAX_KIT_COUNT, factoryCaTemplate, openSignedManifest, parseCertificate, parseCsr, signCertificate, toFleetkeyError,
  toPem, verifyCsrSignature, type Clock,
} from '@fleetkey/protocol';
import { randomSerial } from '../ca/serial.js';
import type { CaIdentity } from '../ca/hub-pki.js';
import type { OwnerContext } from '../provisioning/claim-token/service.js';
import type { Store } from '../storage/types.js';
import { planImport } from './factory-import.js';

export interface FactoryServiceDeps {
  readonly store: Store;
  /** The root in service now (it changes at a rotation or recovery, ADR 0021). */
  readonly root: () => CaIdentity;
  /** Root SPKIs a kit may be certified by at import (trust/lineage.ts). */
  readonly importRoots: () => Promise<readonly Buffer[]>;
  readonly clock: Clock;
  readonly maxWindowMs: number;
  readonly deviceValidityMs: number;
  readonly hubUrl: () => string;
  readonly pin: () => string;
  readonly onKitCreated: (certificate: Buffer) => void;
}

export interface CreateKitInput {
  readonly orgName: string;
  readonly count: number;
  readonly validForSeconds: number;
  readonly csr: string;
}

const BACKDATE_MS = 5 * 60_000;

export class FactoryService {
  readonly #d: FactoryServiceDeps;

  constructor(deps: FactoryServiceDeps) {
    this.#d = deps;
  }

  async createKit(owner: OwnerContext, input: CreateKitInput): Promise<Record<string, unknown>> {
    const tenant = await this.#d.store.tenants.get(owner.tenantId);
    if (tenant === undefined || tenant.name !== input.orgName) throw new FleetkeyError('FORBIDDEN', { details: { field: 'orgName' } });
    const windowMs = input.validForSeconds * 1000;
    if (!Number.isSafeInteger(input.count) || input.count < 1 || input.count > MAX_KIT_COUNT) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'count' } });
    if (!Number.isSafeInteger(windowMs) || windowMs > this.#d.maxWindowMs) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'validForSeconds' } });
    const csr = parseCsr(Buffer.from(input.csr, 'base64'));
    await verifyCsrSignature(csr);
    if (csr.key.algorithm !== 'p256' && csr.key.algorithm !== 'p384') throw new FleetkeyError('KEY_NOT_ALLOWED', { details: { field: 'csr' } });
    const kitId = `fk-${randomBytes(5).toString('hex')}`;
    const now = this.#d.clock.now();
    const windowStart = now - BACKDATE_MS;
    const windowEnd = now + windowMs;
    const signer = this.#d.root();
    const root = parseCertificate(signer.certificate);
    const certificate = await signCertificate(factoryCaTemplate({
      orgName: tenant.name, kitId, spki: csr.spki, serial: randomSerial(),
      notBefore: new Date(windowStart - (windowStart % 1000)),
      notAfter: new Date(Math.min(windowEnd + this.#d.deviceValidityMs, root.notAfter.getTime())),
      issuerName: root.subject, issuerSpki: signer.signer.spki,
    }), signer.signer);
    await this.#d.store.batches.createKit(
      { id: kitId, tenantId: owner.tenantId, certificate, maxCount: input.count, windowStart, windowEnd, createdAt: now, createdBy: `owner:${owner.ownerId}`, importedCounter: 0, importedDigest: null },
      { category: 'certificate', type: 'factory_kit.create', result: 'success', actor: `owner:${owner.ownerId}`, source: owner.source, session: owner.session, tenantId: owner.tenantId, details: { kitId, count: input.count, windowEnd: new Date(windowEnd).toISOString() } },
    );
    this.#d.onKitCreated(certificate);
    return {
      kitId, tenantId: owner.tenantId, orgName: tenant.name, maxCount: input.count,
      windowStart: new Date(windowStart).toISOString(), windowEnd: new Date(windowEnd).toISOString(),
      deviceValidityDays: Math.floor(this.#d.deviceValidityMs / 86_400_000),
      caCertificatePem: toPem('CERTIFICATE', certificate), rootCertificatePem: toPem('CERTIFICATE', signer.certificate),
      hubUrl: this.#d.hubUrl(), pin: this.#d.pin(),
    };
  }

  async importManifest(owner: OwnerContext, value: unknown): Promise<Record<string, unknown>> {
    const audit = { category: 'certificate', type: 'factory.import', actor: `owner:${owner.ownerId}`, source: owner.source, session: owner.session, tenantId: owner.tenantId } as const;
    try {
      const plan = await planImport(this.#d.store, await openSignedManifest(value), await this.#d.importRoots(), owner.tenantId);
      const details = { kitId: plan.kit.id, counter: plan.body.counter, imported: plan.certificates.length, digest: plan.digest };
      if (plan.alreadyImported) {
        await this.#d.store.audit.append({ ...audit, result: 'success', details: { ...details, alreadyImported: true } });
      } else {
        const now = this.#d.clock.now();
        await this.#d.store.batches.importFactory({
          kitId: plan.kit.id, tenantId: owner.tenantId, previousCounter: plan.kit.importedCounter, counter: plan.body.counter, digest: plan.digest,
          devices: plan.certificates.map((c) => ({
            device: { id: c.deviceId, tenantId: owner.tenantId, status: 'pre-provisioned', createdAt: now, enrolledVia: 'factory', claimTokenId: null, label: null, currentSerial: c.serial },
            certificate: c,
          })),
          audit: { ...audit, result: 'success', details: { ...details, alreadyImported: false } },
        });
      }
      return { kitId: plan.kit.id, counter: plan.body.counter, imported: plan.certificates.length, total: plan.body.counter, alreadyImported: plan.alreadyImported };
    } catch (err) {
      const e = toFleetkeyError(err);
      await this.#d.store.audit.append({ ...audit, result: 'failure', code: e.code, details: { ...(e.details ?? {}) } });
      throw e;
    }
  }
}
