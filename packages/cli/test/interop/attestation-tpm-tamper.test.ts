/**
 * TPM attestation attacks (ADR 0027), part 2: tampered structures, another key, another TLS
 * session — one mutated piece of evidence per test, refused with nothing recorded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TpmKeyHandle } from '@fleetkey/device';
import { tpmAttestFixture } from '../helpers/tpm-attest-fixture.js';

const f = tpmAttestFixture();

test('certified name ≠ CSR key: a CSR for another TPM key than the certified one is refused', async () => {
  const { token } = await f.claimToken();
  const x = await f.challengeAndActivate(token);
  const connection = await x.hub.connect();
  const before = await f.snapshot();
  const body = await f.enrollBody(x, connection, async (b) => {
    const other = (await f.keyStore.create(`o${randomBytes(4).toString('hex')}`, 'p256')) as TpmKeyHandle;
    b.csr = (await f.boundCsr(other, connection)).toString('base64');
  });
  await f.assertRefused(connection.post('tpm/enroll', body), 'ATTESTATION_FAILED', /the CSR key is not the certified key/, before);
});

/** Enrolls with ONE change to the TPMS_ATTEST bytes of pristine evidence; must be refused for `reason`. */
async function refusedWithAttest(mutate: (attest: Buffer) => void, reason: RegExp): Promise<void> {
  const { token } = await f.claimToken();
  const x = await f.challengeAndActivate(token);
  const connection = await x.hub.connect();
  const before = await f.snapshot();
  const body = await f.enrollBody(x, connection, (b) => {
    const attest = Buffer.from(b.certifyInfo!, 'base64');
    mutate(attest);
    b.certifyInfo = attest.toString('base64');
  });
  await f.assertRefused(connection.post('tpm/enroll', body), 'ATTESTATION_FAILED', reason, before);
}

test('wrong attestation magic is refused', async () => {
  await refusedWithAttest((attest) => attest.writeUInt32BE(0xff544348, 0), /magic is not TPM_GENERATED_VALUE/);
});

test('wrong attestation type (TPM_ST_ATTEST_QUOTE instead of CERTIFY) is refused', async () => {
  await refusedWithAttest((attest) => attest.writeUInt16BE(0x8018, 4), /type is not TPM_ST_ATTEST_CERTIFY/);
});

test('evidence relayed from another TLS session (CSR bound to connection X, sent on Y) is refused', async () => {
  const { token } = await f.claimToken();
  const x = await f.challengeAndActivate(token);
  const [bound, relay] = [await x.hub.connect(), await x.hub.connect()];
  const before = await f.snapshot();
  const body = await f.enrollBody(x, bound);
  bound.close();
  await f.assertRefused(relay.post('tpm/enroll', body), 'ATTESTATION_FAILED', /not bound to this TLS connection/, before);
});
