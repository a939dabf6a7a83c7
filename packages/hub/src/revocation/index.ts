/**
 * Revocation for the device CA (ADR 0011): the owner-facing service, the CRL publisher and the
 * OCSP responder, wired to one store and one EventBus. Every `device.revoked` event — from this
 * process or, with a shared bus, from another node — invalidates and re-signs the CRL.
 */
import type { Clock } from '@fleetkey/protocol';
import type { Signer } from '../ca/signer.js';
import type { EventBus } from '../events/bus.js';
import type { Store } from '../storage/types.js';
import { CrlPublisher } from './crl-publisher.js';
import { OcspResponder } from './ocsp-responder.js';
import { RevocationService } from './service.js';

export { CrlPublisher, type PublishedCrl } from './crl-publisher.js';
export { OcspResponder, type OcspAnswer } from './ocsp-responder.js';
export { REVOCATION_REASONS, RevocationService, isRevocationReason, type RevocationActor, type RevocationReason } from './service.js';

export interface RevocationDeps {
  readonly store: Store;
  readonly bus: EventBus;
  /** The device CA: its key signs CRLs and OCSP responses. */
  readonly signer: Signer;
  readonly caCertificate: Buffer;
  readonly clock: Clock;
  readonly crlNextUpdateMs: number;
  readonly ocspValidityMs: number;
  readonly onError?: (err: unknown) => void;
}

export interface Revocation {
  readonly service: RevocationService;
  readonly crl: CrlPublisher;
  readonly ocsp: OcspResponder;
  /** Stops listening to the bus. */
  close(): void;
}

export function createRevocation(d: RevocationDeps): Revocation {
  const crl = new CrlPublisher({ revocation: d.store.revocation, signer: d.signer, caCertificate: d.caCertificate, clock: d.clock, nextUpdateMs: d.crlNextUpdateMs });
  const ocsp = new OcspResponder({
    devices: d.store.devices, signer: d.signer, caCertificate: d.caCertificate, clock: d.clock, validityMs: d.ocspValidityMs,
    ...(d.onError === undefined ? {} : { onError: d.onError }),
  });
  const unsubscribe = d.bus.subscribe('device.revoked', async () => {
    crl.invalidate();
    await crl.regenerate(); // a failure leaves the CRL invalidated: the next GET /crl retries
  });
  const unsubscribeBatch = d.bus.subscribe('batch.revoked', async () => {
    crl.invalidate();
    await crl.regenerate();
  });
  return {
    service: new RevocationService({ revocation: d.store.revocation, bus: d.bus, clock: d.clock }), crl, ocsp,
    close: () => {
      unsubscribe();
      unsubscribeBatch();
    },
  };
}
