// der.test.js - the strict DER reader (src/der.js), the X.509 parser
// (src/x509.js) and base64 (src/base64.js): the real Nitro certificates
// parse field by field; malformed input (truncated, overlong or indefinite
// lengths, too deep, too many items, non-DER encodings, bad times) is
// refused with a DerError naming the problem, and no mutation of a real
// certificate ever throws anything but a DerError. Imported by unit.test.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { X509Certificate } from 'node:crypto';
import * as der from '../src/der.js';
import { parseCertificate, ecdsaSignatureCompact, pemToDer, OIDS } from '../src/x509.js';
import { base64Decode } from '../src/base64.js';
import * as km from '../src/index.js';
import { tlv } from './certgen.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const b64 = (n) => readFileSync(`${here}fixtures/nitro/${n}.b64`, 'utf8');
const cape = km.parseAttestationDocument(b64('cape-2022-prod'));
const u8 = (...b) => Uint8Array.from(b.flat());
const derErr = (re) => (e) => {
  assert.ok(e instanceof der.DerError, `expected a DerError, got ${e?.name}: ${e?.message}`);
  if (re) assert.match(e.message, re);
  return true;
};
const iso = (ms) => new Date(ms).toISOString();

test('DER: items, offsets, views', () => {
  const n = der.decodeDer(u8(0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa));
  assert.equal(n.tag, der.TAG.SEQUENCE);
  assert.equal(n.children.length, 2);
  assert.equal(n.children[1].offset, 5);
  assert.deepEqual([...n.children[1].content], [0xaa]);
  assert.equal(der.smallUnsigned(n.children[0], 'x'), 5);
  // long-form lengths, as long as they are needed
  const big = der.decodeDer(u8(0x04, 0x81, 0x80, Array(128).fill(1)));
  assert.equal(big.content.length, 128);
  assert.equal(der.decodeDer(u8(0x04, 0x82, 0x01, 0x00, Array(256).fill(1))).content.length, 256);
});

test('DER: truncated, overlong and indefinite lengths, reserved forms, trailing bytes', () => {
  const d = (...b) => () => der.decodeDer(u8(...b), { what: 'test' });
  for (const [b, re] of [
    [[], /no data/],
    [[0x30], /length runs past the end/],
    [[0x30, 0x05, 0x02, 0x01], /SEQUENCE of 5 bytes runs past the end at offset 0/],
    [[0x30, 0x82, 0x01], /length runs past the end/],
    [[0x04, 0x81, 0x05, 1, 2, 3, 4, 5], /a length of 5 in the long form \(not DER\)/],
    [[0x04, 0x82, 0x00, 0x80, Array(128).fill(0)], /leading zero octet \(not DER\)/],
    [[0x04, 0x85, 0, 0, 0, 0, 1, 0], /a length of 5 octets \(at most 4 accepted\)/],
    [[0x04, 0x84, 0xff, 0xff, 0xff, 0xff], /OCTET STRING of 4294967295 bytes runs past the end/],
    [[0x30, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00], /indefinite length \(BER, not DER\)/],
    [[0x00, 0x00], /end-of-contents marker/],
    [[0x04, 0xff], /reserved length octet 0xff/],
    [[0x1f, 0x81, 0x00, 0x00], /multi-octet tag number/],
    [[0x05, 0x00, 0x00], /1 trailing bytes after the item at offset 2/],
    [[0x10, 0x00], /a primitive SEQUENCE/],
    [[0x24, 0x03, 0x04, 0x01, 0x00], /a constructed OCTET STRING \(BER, not DER\)/],
    // a child longer than its parent, though the input has the bytes
    [[0x30, 0x03, 0x04, 0x04, 0x00, 0x00, 0x00, 0x00], /OCTET STRING of 4 bytes runs past the end at offset 2/],
  ]) assert.throws(d(...b), derErr(re), b.join(','));
  assert.throws(() => der.decodeDer('30 00'), TypeError);
});

test('DER: limits on size, depth and item count', () => {
  const nest = (n) => { let b = u8(0x05, 0x00); for (let i = 0; i < n; i++) b = tlv(0x30, b); return b; };
  der.decodeDer(nest(16)); // the NULL at depth 16
  assert.throws(() => der.decodeDer(nest(17)), derErr(/nesting deeper than 16 at offset 34/));
  assert.throws(() => der.decodeDer(nest(3), { maxDepth: 2 }), derErr(/nesting deeper than 2/));
  // 5000 NULLs in one SEQUENCE
  const many = u8(0x30, 0x82, 0x27, 0x10, Array(5000).fill([0x05, 0x00]).flat());
  assert.throws(() => der.decodeDer(many), derErr(/more than 4096 items/));
  assert.equal(der.decodeDer(many, { maxNodes: 5001 }).children.length, 5000);
  assert.throws(() => der.decodeDer(many, { maxBytes: 1000 }), derErr(/10004 bytes, more than 1000/));
  // deep nesting inside a certificate is refused before any recursion runs away
  assert.throws(() => parseCertificate(nest(200)), derErr(/nesting deeper than 8/));
});

test('DER: typed values are checked for DER', () => {
  const one = (...b) => der.decodeDer(u8(...b));
  assert.throws(() => der.integerBytes(one(0x02, 0x00), 'i'), derErr(/empty INTEGER/));
  assert.throws(() => der.integerBytes(one(0x02, 0x02, 0x00, 0x01), 'i'), derErr(/not in its shortest form/));
  assert.throws(() => der.integerBytes(one(0x02, 0x02, 0xff, 0x80), 'i'), derErr(/not in its shortest form/));
  assert.deepEqual([...der.integerBytes(one(0x02, 0x02, 0x00, 0x80), 'i')], [0x00, 0x80]);
  assert.throws(() => der.smallUnsigned(one(0x02, 0x01, 0xff), 'i'), derErr(/negative/));
  assert.equal(der.smallUnsigned(one(0x02, 0x04, 0x7f, 0xff, 0xff, 0xff), 'i'), 2 ** 31 - 1);
  assert.throws(() => der.smallUnsigned(one(0x02, 0x05, 0x00, 0x80, 0, 0, 0), 'i'), derErr(/2\^31 or more/));
  assert.equal(der.boolean(one(0x01, 0x01, 0xff), 'b'), true);
  assert.throws(() => der.boolean(one(0x01, 0x01, 0x01), 'b'), derErr(/other than 00 or ff/));
  assert.throws(() => der.integerBytes(one(0x01, 0x01, 0x00), 'serial'), derErr(/serial: expected INTEGER, found BOOLEAN at offset 0/));
  assert.throws(() => der.integerBytes(undefined, 'serial'), derErr(/serial: missing \(expected INTEGER\)/));
  assert.equal(der.oid(one(0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03), 'o'), OIDS.ecdsaWithSHA384);
  assert.equal(der.oid(one(0x06, 0x03, 0x88, 0x37, 0x01), 'o'), '2.999.1');
  assert.throws(() => der.oid(one(0x06, 0x02, 0x80, 0x01), 'o'), derErr(/leading 0x80/));
  assert.throws(() => der.oid(one(0x06, 0x02, 0x2a, 0x86), 'o'), derErr(/last arc is cut/));
  assert.throws(() => der.oid(one(0x06, 0x00), 'o'), derErr(/OBJECT IDENTIFIER of 0 bytes/));
  assert.throws(() => der.bitString(one(0x03, 0x02, 0x01, 0x81), 'k'), derErr(/unused bits are set/));
  assert.throws(() => der.bitString(one(0x03, 0x02, 0x08, 0x00), 'k'), derErr(/8 unused bits/));
  assert.throws(() => der.bitString(one(0x03, 0x00), 'k'), derErr(/without its unused-bits octet/));
  assert.throws(() => der.nullValue(one(0x05, 0x01, 0x00), 'n'), derErr(/NULL with content/));
});

test('DER: times are exactly RFC 5280 UTCTime / GeneralizedTime', () => {
  const t = (tag, s) => der.time(der.decodeDer(u8(tag, s.length, [...new TextEncoder().encode(s)])), 'notAfter');
  assert.equal(iso(t(0x17, '491028142805Z')), '2049-10-28T14:28:05.000Z');
  assert.equal(iso(t(0x17, '500101000000Z')), '1950-01-01T00:00:00.000Z');
  assert.equal(iso(t(0x18, '20500101000000Z')), '2050-01-01T00:00:00.000Z');
  assert.equal(iso(t(0x18, '99991231235959Z')), '9999-12-31T23:59:59.000Z');
  assert.equal(iso(t(0x17, '240229120000Z')), '2024-02-29T12:00:00.000Z');
  for (const [tag, s] of [
    [0x17, '4910281428Z'], [0x17, '491028142805+0000'], [0x17, '4910281428050Z'], [0x18, '20500101000000.5Z'],
    [0x18, '20500101000000'], [0x17, '230229120000Z'], [0x17, '491328142805Z'], [0x17, '491028242805Z'], [0x17, '49102814280aZ'],
  ]) assert.throws(() => t(tag, s), derErr(/notAfter: a (UTC|Generalized)Time|invalid date/), s);
  assert.throws(() => der.time(der.decodeDer(u8(0x04, 0x00)), 'notBefore'), derErr(/expected UTCTime or GeneralizedTime, found OCTET STRING/));
});

test('X.509: the real Nitro certificates parse field by field', () => {
  const root = parseCertificate(km.rootDer());
  assert.equal(root.version, 3);
  assert.equal(root.subject.cn, 'aws.nitro-enclaves');
  assert.equal(root.issuer.key, root.subject.key);
  assert.equal(km.bytesToHex(root.serial), '00f93175681b90afe11d46ccb4e4e7f856');
  assert.equal(iso(root.notBefore), '2019-10-28T13:28:05.000Z');
  assert.equal(iso(root.notAfter), '2049-10-28T14:28:05.000Z');
  assert.equal(root.signatureAlgorithm.oid, OIDS.ecdsaWithSHA384);
  assert.equal(root.signatureAlgorithm.params, null);
  assert.deepEqual({ alg: root.publicKey.algorithm, curve: root.publicKey.curve, len: root.publicKey.key.length },
    { alg: OIDS.ecPublicKey, curve: OIDS.secp384r1, len: 97 });
  assert.deepEqual(root.basicConstraints, { ca: true, pathLen: undefined });
  assert.equal(root.keyUsage.keyCertSign, true);
  assert.equal(root.keyUsage.digitalSignature, true);
  assert.equal(km.bytesToHex(root.subjectKeyId), '9025b50dd90547e796c396fa729dcf99a9df4b96');
  assert.equal(root.extensions.get(OIDS.basicConstraints).critical, true);

  const [, i1, , i3] = cape.cabundle.map((c) => parseCertificate(c));
  assert.equal(i1.basicConstraints.pathLen, 2);
  assert.deepEqual(i1.authorityKeyId.keyId, root.subjectKeyId);
  assert.equal(i1.issuer.key, root.subject.key);
  assert.equal(i3.basicConstraints.pathLen, 0);
  assert.equal(i3.keyUsage.digitalSignature, false);
  assert.equal(i3.serial.length, 21); // a positive serial with its high bit set: a 00 in front

  const leaf = parseCertificate(cape.certificate, 'leaf');
  assert.equal(leaf.subject.cn, 'i-0697c9729fa547b20-enc0183422ede9a5dc8.us-east-1.aws');
  assert.equal(leaf.issuer.key, i3.subject.key);
  assert.deepEqual(leaf.basicConstraints, { ca: false, pathLen: undefined });
  assert.deepEqual(Object.entries(leaf.keyUsage).filter(([, v]) => v).map(([k]) => k), ['digitalSignature', 'nonRepudiation']);
  assert.equal(leaf.authorityKeyId, null);
  assert.equal(iso(leaf.notBefore), '2022-09-15T17:43:24.000Z');
  assert.equal(ecdsaSignatureCompact(leaf.signatureValue, 48).length, 96);
  // the TBS is the signed span: the certificate minus its algorithm and signature
  assert.deepEqual(leaf.tbs, cape.certificate.subarray(4, 4 + leaf.tbs.length));
  assert.equal(leaf.tbs.length + 12 + 2 + leaf.signatureValue.bytes.length + 1 + 4, cape.certificate.length);
});

test('X.509: malformed certificates are refused by field', () => {
  const c = cape.certificate;
  const edit = (f) => { const b = c.slice(); f(b); return b; };
  for (const [b, re] of [
    [c.subarray(0, 100), /certificate: SEQUENCE of 635 bytes runs past the end at offset 0/],
    [u8([...c], 0), /1 trailing bytes after the item/],
    [edit((b) => { b[1] = 0x80; }), /certificate: an indefinite length \(BER, not DER\) at offset 0/],
    [edit((b) => { b[33] = 0x07; }), /certificate: signature: expected OBJECT IDENTIFIER, found universal tag 7 at offset 33/],
    [edit((b) => { b[13] = 0x04; }), /certificate: serialNumber: expected INTEGER, found OCTET STRING at offset 13/],
    [u8(0x30, 0x03, 0x02, 0x01, 0x01), /a SEQUENCE of 1 items, not 3/],
    [edit((b) => { b[12] = 0x05; }), /version 6 \(only 1, 2 and 3 exist\)/],
    [edit((b) => { b[532] ^= 0x01; }), /tbsCertificate.signature differs from signatureAlgorithm/], // the outer OID: ecdsa-with-SHA256
    [edit((b) => { b[204] = 0x41; }), /notBefore: a UTCTime not of the form YYMMDDHHMMSSZ at offset 190/], // 'A' for 'Z'
  ]) assert.throws(() => parseCertificate(b), derErr(re), re.source);
  assert.throws(() => parseCertificate('MII...'), TypeError);
});

test('X.509: no mutation of a real certificate throws anything but a DerError', () => {
  // every truncation, and 3000 random byte changes (a fixed-seed PRNG)
  let parsed = 0, refused = 0;
  const tryParse = (b) => {
    try { parseCertificate(b); parsed++; } catch (e) {
      if (!(e instanceof der.DerError)) throw new Error(`${e.name} (not DerError) on a mutated certificate: ${e.message}`);
      assert.match(e.message, /^certificate: /);
      refused++;
    }
  };
  for (const c of [cape.certificate, ...cape.cabundle]) {
    for (let n = 0; n < c.length; n++) tryParse(c.subarray(0, n));
  }
  let seed = 0x2545f491;
  const rnd = (n) => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n; };
  for (let k = 0; k < 3000; k++) {
    const src = [cape.certificate, ...cape.cabundle][k % 5];
    const b = src.slice();
    for (let j = 0, m = 1 + rnd(3); j < m; j++) b[rnd(b.length)] = rnd(4) === 0 ? [0x00, 0x80, 0xff, 0x81][rnd(4)] : rnd(256);
    tryParse(b);
  }
  assert.ok(refused > 3000 && parsed > 100, `${refused} refused, ${parsed} parsed`);
});

test('ECDSA signature values and PEM', () => {
  const sig = (...b) => ({ unusedBits: 0, bytes: u8(...b) });
  assert.deepEqual([...ecdsaSignatureCompact(sig(0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02), 2)], [0, 1, 0, 2]);
  assert.throws(() => ecdsaSignatureCompact(sig(0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x02), 2), derErr(/negative r/));
  assert.throws(() => ecdsaSignatureCompact(sig(0x30, 0x07, 0x02, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01), 1), derErr(/r longer than 1 bytes/));
  assert.throws(() => ecdsaSignatureCompact(sig(0x30, 0x03, 0x02, 0x01, 0x01), 2), derErr(/of 1 items, not 2/));
  assert.throws(() => ecdsaSignatureCompact({ unusedBits: 1, bytes: u8(0x30, 0x00) }, 2), derErr(/unused bits/));

  const pem = km.AWS_NITRO_ROOT_G1_PEM;
  assert.deepEqual(pemToDer(pem), km.rootDer());
  assert.deepEqual(pemToDer(pem.replace(/=*\n-----END/, '\n-----END')), km.rootDer()); // padding optional
  assert.throws(() => pemToDer(pem.replace('MIIC', 'MI!C')), derErr(/PEM: the body is not standard base64/));
  assert.throws(() => pemToDer(pem.replace('3/Y=', '3/Z=')), derErr(/unused bits set/));
  assert.throws(() => pemToDer('nothing'), derErr(/not one CERTIFICATE block/));
});

test('rootDer: PEM, DER, PEM bytes, {raw}; anything else is a TypeError', () => {
  const d = km.rootDer();
  assert.deepEqual(km.rootDer(d), d);
  assert.deepEqual(km.rootDer(new TextEncoder().encode(km.AWS_NITRO_ROOT_G1_PEM)), d);
  assert.deepEqual(km.rootDer({ raw: d }), d);
  assert.deepEqual(km.rootDer(new X509Certificate(km.AWS_NITRO_ROOT_G1_PEM)), d); // through its .raw
  assert.throws(() => km.rootDer(d.subarray(0, 100)), { name: 'TypeError', message: /^the root is not an X.509 certificate: the root certificate: SEQUENCE of 529 bytes runs past the end/ });
  assert.throws(() => km.rootDer(''), { name: 'TypeError', message: /exactly one PEM certificate \(found 0\)/ });
  assert.throws(() => km.rootDer(42), { name: 'TypeError', message: /PEM text or DER bytes/ });
  assert.throws(() => km.rootDer(km.AWS_NITRO_ROOT_G1_PEM.replace('MIIC', 'MI!C')), { name: 'TypeError', message: /not standard base64/ });
});

test('base64', () => {
  const enc = (b) => btoa(String.fromCharCode(...b)).replace(/=+$/, '');
  for (let n = 0; n < 40; n++) {
    const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
    assert.deepEqual(base64Decode(enc(b)), b, `${n} bytes`);
  }
  assert.throws(() => base64Decode('AAAAA'), { name: 'RangeError', message: /wrong length/ });
  assert.throws(() => base64Decode('AB'), { name: 'RangeError', message: /unused bits set/ });
  assert.throws(() => base64Decode('AAF'), { name: 'RangeError', message: /unused bits set/ });
  assert.throws(() => base64Decode('A-'), { name: 'RangeError', message: /invalid character at 1/ });
  assert.throws(() => base64Decode('AAé'), { name: 'RangeError', message: /invalid character at 2/ });
});
