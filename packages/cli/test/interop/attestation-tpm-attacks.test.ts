/**
 * TPM attestation attacks (ADR 0027), part 1: chip and proof — each test mutates ONE piece of
 * evidence against real swtpm + tpm2-tools and asserts ATTESTATION_FAILED, the precise reason in
 * the audit log, and that no device, certificate or token use was recorded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TpmKeyHandle } from '@fleetkey/device';
import { tpmAttestFixture } from '../helpers/tpm-attest-fixture.js';

const f = tpmAttestFixture({ otherVendor: true });

test('EK certificate from an unregistered vendor is refused at the challenge', async () => {
  const { token } = await f.claimToken();
  const before = await f.snapshot();
  await f.assertRefused(f.challengeAndActivate(token, f.otherVendor!), 'ATTESTATION_FAILED', /chip certificate: no registered vendor root/, before);
});

test('wrong credential proof (secret not activated by this TPM) is refused', async () => {
  const { token } = await f.claimToken();
  const x = await f.challengeAndActivate(token);
  const connection = await x.hub.connect();
  const before = await f.snapshot();
  const body = await f.enrollBody(x, connection, (b) => { b.activatedSecret = randomBytes(32).toString('base64'); });
  await f.assertRefused(connection.post('tpm/enroll', body), 'ATTESTATION_FAILED', /wrong credential proof/, before);
});

test('replayed challenge: the second answer to one challenge is refused, even with a token use left', async () => {
  const { token } = await f.claimToken(2);
  const x = await f.challengeAndActivate(token);
  const first = await x.hub.connect();
  const answer = await first.post('tpm/enroll', await f.enrollBody(x, first));
  assert.equal(typeof answer.pkcs7, 'string', 'the pristine first answer enrolls');
  const replay = await x.hub.connect();
  const before = await f.snapshot();
  await f.assertRefused(replay.post('tpm/enroll', await f.enrollBody(x, replay)), 'ATTESTATION_FAILED', /unknown, used or expired challenge/, before);
});

test('exportable (not fixedTPM/fixedParent) key certified by the AK is refused', async () => {
  const { token } = await f.claimToken();
  const x = await f.challengeAndActivate(token);
  const connection = await x.hub.connect();
  const before = await f.snapshot();
  const body = await f.enrollBody(x, connection, async (b) => {
    const work = mkdtempSync(join(tmpdir(), 'fleetkey-dup-key-'));
    await f.tpm.tool('tpm2_createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'ecc256:null:aes128cfb', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda', '-c', join(work, 'p.ctx')]);
    await f.tpm.tool('tpm2_create', ['-C', join(work, 'p.ctx'), '-G', 'ecc256:ecdsa-sha256', '-a', 'sensitivedataorigin|userwithauth|sign', '-u', join(work, 'k.pub'), '-r', join(work, 'k.priv')]);
    const duplicable = new TpmKeyHandle('p256', Buffer.alloc(0), async () => Buffer.alloc(0), { pub: join(work, 'k.pub'), priv: join(work, 'k.priv'), tcti: f.tpm.tcti });
    const certified = await x.attester.certify(duplicable);
    b.keyPublic = certified.keyPublic.toString('base64');
    b.certifyInfo = certified.certifyInfo.toString('base64');
    b.certifySignature = certified.certifySignature.toString('base64');
    await rm(work, { recursive: true, force: true });
  });
  await f.assertRefused(connection.post('tpm/enroll', body), 'ATTESTATION_FAILED', /not fixedTPM\|fixedParent\|sensitiveDataOrigin/, before);
});
