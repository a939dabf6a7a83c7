import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DerError, decodeCertsOnly, decodeName, encodeCertsOnly, encodeName, fromPem, fromPemAll, ipAddressBytes, isDeviceId,
  toPem, sequence, integer,
} from '../../src/index.js';

test('certs-only PKCS#7 round-trips its certificates (DER SET OF order)', () => {
  const certs = [sequence(integer(2)), sequence(integer(1)), sequence(integer(3))];
  const p7 = encodeCertsOnly(certs);
  assert.deepEqual(decodeCertsOnly(p7).map((c) => c.toString('hex')), ['3003020101', '3003020102', '3003020103']);
  assert.deepEqual(decodeCertsOnly(encodeCertsOnly([])), []);
  assert.throws(() => decodeCertsOnly(Buffer.concat([p7, Buffer.from([0])])), DerError);
  assert.throws(() => decodeCertsOnly(p7.subarray(0, p7.length - 1)), DerError);
});

test('PEM is strict: one block, the expected label, canonical 64-column base64', () => {
  const der = Buffer.alloc(100, 0xab);
  const pem = toPem('CERTIFICATE', der);
  assert.ok(fromPem(pem, 'CERTIFICATE').equals(der));
  assert.ok(fromPem(pem.replace(/\n/g, '\r\n'), 'CERTIFICATE').equals(der));
  const bad = [
    pem.replace('CERTIFICATE-----\n', 'CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n'),
    pem.replace('BEGIN CERTIFICATE', 'BEGIN X509 CRL'),
    pem + pem,
    pem.replace(/q/g, '*'),
    pem.replace(/\n(?=[^-])/, '\n '),
    'junk' + pem,
    pem.replace(/([A-Za-z0-9+/]{64})\n/, '$1'),
  ];
  for (const b of bad) assert.throws(() => fromPem(b, 'CERTIFICATE'), DerError);
  assert.equal(fromPemAll(pem + pem, 'CERTIFICATE').length, 2);
});

test('names encode as UTF8String (C as PrintableString) and decode back', () => {
  const entries = [['C', 'DE'], ['O', 'Müller GmbH'], ['OU', 'Line 3'], ['CN', 'dev-1'], ['serialNumber', 'A1234']] as const;
  const der = encodeName(entries);
  assert.deepEqual(decodeName(der), entries.map(([k, v]) => [k, v]));
  assert.equal(der.indexOf(Buffer.from([0x13, 0x02, 0x44, 0x45])) > 0, true); // PrintableString "DE"
  assert.throws(() => encodeName([['C', 'Germany']]), DerError);
  assert.throws(() => encodeName([['CN', 'x'.repeat(65)]]), DerError);
});

test('device ids are [a-z0-9-]{1,64}', () => {
  for (const ok of ['a', 'dev-1', 'x'.repeat(64), '0-0']) assert.ok(isDeviceId(ok), ok);
  for (const bad of ['', 'A', 'dev_1', 'x'.repeat(65), 'dev/1', 'dev 1', 'dé', 'dev\n', 7]) assert.ok(!isDeviceId(bad), String(bad));
});

test('IP addresses encode as 4 or 16 octets', () => {
  assert.equal(ipAddressBytes('10.1.2.3').toString('hex'), '0a010203');
  assert.equal(ipAddressBytes('::1').toString('hex'), '0'.repeat(31) + '1');
  assert.equal(ipAddressBytes('2001:db8::8:800:200c:417a').toString('hex'), '20010db8000000000008080020 0c417a'.replace(' ', ''));
  assert.equal(ipAddressBytes('::ffff:192.0.2.1').toString('hex'), '00000000000000000000ffffc0000201');
  assert.equal(ipAddressBytes('fe80::').toString('hex'), 'fe80' + '0'.repeat(28));
  assert.throws(() => ipAddressBytes('300.1.1.1'), DerError);
  assert.throws(() => ipAddressBytes('fe80::1%eth0'), DerError);
});
