import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DerError, DerReader, MAX_DEPTH, Tag, bitString, boolean, decodeOid, derNull, explicit, generalizedTime, ia5String,
  implicit, integer, octetString, oid, printableString, readBitString, readBoolean, readIntegerBytes, readOid,
  readSingle, readTime, readUnsigned, sequence, setOf, utcTime, utf8String, x509Time, encodeLength,
} from '../../src/index.js';

const hex = (b: Buffer): string => b.toString('hex');

test('INTEGER encodings are minimal and positive and read back', () => {
  assert.equal(hex(integer(0)), '020100');
  assert.equal(hex(integer(127)), '02017f');
  assert.equal(hex(integer(128)), '02020080');
  assert.equal(hex(integer(256)), '02020100');
  assert.equal(hex(integer(Buffer.from('000000ff', 'hex'))), '020200ff');
  assert.equal(hex(integer(2n ** 64n)), '0209010000000000000000');
  for (const v of [0n, 1n, 127n, 128n, 255n, 2n ** 159n - 1n, 2n ** 2048n + 12345n]) {
    assert.equal(readUnsigned(readSingle(integer(v), Tag.INTEGER)), v);
  }
  assert.throws(() => integer(-1), DerError);
});

test('non-minimal INTEGERs are refused by the reader', () => {
  assert.throws(() => readIntegerBytes(readSingle(Buffer.from('0202007f', 'hex'), Tag.INTEGER)), DerError);
  assert.throws(() => readIntegerBytes(readSingle(Buffer.from('0202ff80', 'hex'), Tag.INTEGER)), DerError);
  assert.throws(() => readIntegerBytes(readSingle(Buffer.from('0200', 'hex'), Tag.INTEGER)), DerError);
});

test('OIDs round-trip, are cached, and non-minimal arcs are refused', () => {
  for (const o of ['1.2.840.10045.2.1', '2.5.29.19', '1.3.6.1.4.1.311.21.20', '2.999.3', '0.9.2342']) {
    assert.equal(readOid(readSingle(oid(o), Tag.OID)), o);
  }
  assert.equal(hex(oid('1.2.840.10045.3.1.7')), '06082a8648ce3d030107');
  assert.equal(oid('2.5.29.19'), oid('2.5.29.19'));
  assert.throws(() => decodeOid(Buffer.from('2a8086', 'hex')), DerError); // 0x80 leading octet
  assert.throws(() => decodeOid(Buffer.from('2a86', 'hex')), DerError); // truncated arc
  assert.throws(() => oid('1.40.1'), DerError);
  assert.throws(() => oid('1.02'), DerError);
});

test('strings, booleans, NULL, OCTET and BIT STRINGs have their DER forms', () => {
  assert.equal(hex(boolean(true)), '0101ff');
  assert.equal(readBoolean(readSingle(boolean(false), Tag.BOOLEAN)), false);
  assert.throws(() => readBoolean(readSingle(Buffer.from('010101', 'hex'), Tag.BOOLEAN)), DerError);
  assert.equal(hex(derNull()), '0500');
  assert.equal(hex(octetString(Buffer.from([1, 2]))), '04020102');
  assert.equal(hex(bitString(Buffer.from([0x80]), 7)), '03020780');
  assert.throws(() => bitString(Buffer.from([0x81]), 7), DerError);
  assert.throws(() => readBitString(readSingle(Buffer.from('03020781', 'hex'), Tag.BIT_STRING)), DerError);
  assert.equal(utf8String('Zürich').toString('hex'), '0c075ac3bc72696368');
  assert.throws(() => printableString('a@b'), DerError);
  assert.throws(() => ia5String('ü'), DerError);
  assert.throws(() => utf8String('\ud800'), DerError);
});

test('SET OF is sorted by encoding; explicit and implicit tags', () => {
  const s = setOf([integer(3), integer(1), integer(2)]);
  assert.equal(hex(s), '3109020101020102020103');
  assert.equal(hex(explicit(0, integer(2))), 'a003020102');
  assert.equal(hex(implicit(2, Buffer.from('a'), false)), '820161');
  assert.equal(hex(sequence()), '3000');
});

test('long lengths are minimal', () => {
  assert.equal(hex(encodeLength(127)), '7f');
  assert.equal(hex(encodeLength(128)), '8180');
  assert.equal(hex(encodeLength(256)), '820100');
  const big = octetString(Buffer.alloc(70000));
  assert.equal(readSingle(big, Tag.OCTET_STRING).value.length, 70000);
});

test('RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, whole seconds', () => {
  const t2049 = new Date(Date.UTC(2049, 11, 31, 23, 59, 59, 999));
  assert.equal(x509Time(t2049).subarray(2).toString(), '491231235959Z');
  assert.equal(x509Time(t2049)[0], Tag.UTC_TIME);
  const t2050 = new Date(Date.UTC(2050, 0, 1));
  assert.equal(x509Time(t2050).subarray(2).toString(), '20500101000000Z');
  assert.equal(x509Time(t2050)[0], Tag.GENERALIZED_TIME);
  assert.equal(readTime(readSingle(utcTime(t2049), Tag.UTC_TIME)).getTime(), Date.UTC(2049, 11, 31, 23, 59, 59));
  assert.equal(readTime(readSingle(utcTime(new Date(Date.UTC(1999, 1, 3))), Tag.UTC_TIME)).getUTCFullYear(), 1999);
  assert.throws(() => utcTime(t2050), DerError);
  const bad: Array<[number, string]> = [
    [Tag.UTC_TIME, '260231000000Z'], // 31 February
    [Tag.UTC_TIME, '260101240000Z'], // hour 24
    [Tag.UTC_TIME, '2601010000Z'], // no seconds
    [Tag.UTC_TIME, '260101000000+0100'], // offset
    [Tag.UTC_TIME, '260101000000.5Z'], // fraction
    [Tag.GENERALIZED_TIME, '20260101000000Z'], // GeneralizedTime before 2050
    [Tag.GENERALIZED_TIME, '20600101000000.000Z'],
  ];
  for (const [tag, text] of bad) {
    const el = new DerReader(Buffer.concat([Buffer.from([tag, text.length]), Buffer.from(text)])).next();
    assert.throws(() => readTime(el), DerError, text);
  }
  assert.equal(readTime(readSingle(generalizedTime(t2050), Tag.GENERALIZED_TIME)).getTime(), t2050.getTime());
});

test('the reader refuses indefinite, non-minimal, overlong and truncated lengths', () => {
  const cases: Array<[string, string]> = [
    ['3080020100' + '0000', 'indefinite length'],
    ['30810100', 'non-minimal length (long form below 128)'],
    ['3082000100', 'non-minimal length (leading zero octet)'],
    ['3005020100', 'length past end of input'],
    ['30', 'truncated length'],
    ['3085ffffffffff', 'length too large'],
    ['1f2200', 'high tag number form'],
  ];
  for (const [h, why] of cases) {
    assert.throws(() => new DerReader(Buffer.from(h, 'hex')).next(), DerError, why);
  }
  assert.throws(() => readSingle(Buffer.from('050000', 'hex'), Tag.NULL), /trailing/);
});

test('the reader refuses nesting deeper than MAX_DEPTH', () => {
  let deep: Buffer = derNull();
  for (let i = 0; i < MAX_DEPTH + 2; i++) deep = sequence(deep);
  const walk = (reader: DerReader): void => {
    const el = reader.next();
    if (el.constructed) walk(DerReader.of(el));
  };
  assert.throws(() => walk(new DerReader(deep)), /nesting too deep/);
  let ok: Buffer = derNull();
  for (let i = 0; i < MAX_DEPTH; i++) ok = sequence(ok);
  walk(new DerReader(ok));
});

test('elements expose tag, header length, value and raw slices of the input', () => {
  const inner = octetString(Buffer.alloc(200, 7));
  const outer = sequence(inner, integer(5));
  const el = readSingle(outer, Tag.SEQUENCE);
  assert.equal(el.headerLength, 3);
  assert.equal(el.raw.length, outer.length);
  const children = DerReader.of(el);
  const first = children.next();
  assert.equal(first.tag, Tag.OCTET_STRING);
  assert.ok(first.raw.equals(inner));
  assert.equal(first.value.length, 200);
  assert.equal(children.expect(Tag.INTEGER).value[0], 5);
  children.end();
});
