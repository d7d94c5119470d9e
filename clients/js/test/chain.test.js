// chain.test.js - the certificate checks of verifyAttestation on chains the
// real fixtures do not have, made by certgen.js (a root, CA intermediates
// and a leaf like the NSM's, each certificate signed ECDSA P-384/SHA-384
// by @noble/curves): each variant fails exactly the check, with the message,
// that the C verifier (OpenSSL) gives, or the one this client documents.
// Imported by unit.test.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { p384 } from '@noble/curves/nist.js';
import * as km from '../src/index.js';
import * as g from './certgen.js';

const { ext, name, OID } = g;
const failsWith = (check, message) => (e) => {
  assert.ok(e instanceof km.AttestationCheckError, `expected an AttestationCheckError, got ${e?.name}: ${e?.message}`);
  assert.equal(e.check, check, e.message);
  if (message) assert.match(e.message, message);
  return true;
};
const mid = (c) => (c.from + 120e3) / 1000;
const verify = (c, opts = {}) => km.verifyAttestation(opts.doc ?? c.doc(), { root: c.root, at: mid(c), ...opts });
const LEAF = 'CN=i-0123.test.nitro-enclaves';

test('a synthetic chain verifies like a real one, at its window edges only', () => {
  for (const intermediates of [0, 1, 3]) {
    const c = g.chain({ intermediates });
    assert.equal(verify(c).moduleId, 'test-enclave');
    verify(c, { at: c.from / 1000 });
    verify(c, { at: c.to / 1000 }); // notAfter itself is still valid (RFC 5280)
    assert.throws(() => verify(c, { at: c.to / 1000 + 1 }), failsWith('validity', new RegExp(`^validity: certificate has expired \\(depth 0, ${LEAF}, valid 2030-01-01T00:00:00Z \\.\\. 2030-01-01T03:00:00Z, verification time 2030-01-01T03:00:01Z\\)$`)));
    assert.throws(() => verify(c, { at: c.from / 1000 - 1 }), failsWith('validity', /^validity: certificate is not yet valid \(depth 0, /));
  }
  // the root is checked first (OpenSSL's order): a time after everything names it
  const c = g.chain();
  assert.throws(() => verify(c, { at: c.to / 1000 + 86400 * 2 }), failsWith('validity', /\(depth 2, CN=test root, /));
  // a GeneralizedTime (2050 and later) reads as well
  const late = g.chain({ from: Date.UTC(2051, 5, 1) });
  verify(late);
});

test('the leaf: not a CA, key usage with digitalSignature', () => {
  // CA:TRUE refuses the leaf whatever its key usage says (the C verifier's EXFLAG_CA)
  for (const ku of [['digitalSignature'], ['digitalSignature', 'keyCertSign']]) {
    assert.throws(() => verify(g.chain({ leaf: { exts: [ext.bc(true), ext.ku(ku)] } })),
      failsWith('chain', /^chain: the leaf certificate is a CA \(basicConstraints CA:TRUE\)$/));
  }
  assert.throws(() => verify(g.chain({ leaf: { exts: [ext.bc(false), ext.ku(['keyEncipherment'])] } })),
    failsWith('chain', /^chain: the leaf certificate's key usage does not allow digitalSignature$/));
  verify(g.chain({ leaf: { exts: [] } })); // no extensions: nothing restricts it
});

test('issuers: CA, keyCertSign, path length', () => {
  assert.throws(() => verify(g.chain({ inter: [{ exts: [ext.ku(['keyCertSign'])] }] })),
    failsWith('chain', /^chain: invalid CA certificate \(depth 1, CN=test intermediate 1\)$/));
  assert.throws(() => verify(g.chain({ inter: [{ exts: [ext.bc(false), ext.ku(['keyCertSign'])] }] })),
    failsWith('chain', /^chain: invalid CA certificate \(depth 1, /));
  assert.throws(() => verify(g.chain({ inter: [{ exts: [ext.bc(true), ext.ku(['digitalSignature'])] }] })),
    failsWith('chain', /^chain: key usage does not include certificate signing \(depth 1, CN=test intermediate 1\)$/));
  verify(g.chain({ inter: [{ exts: [ext.bc(true)] }] })); // no key usage: any
  // pathLen counts the CAs below the issuer, the leaf excluded
  assert.throws(() => verify(g.chain({ intermediates: 2, inter: [{ exts: [ext.bc(true, 0), ext.ku(['keyCertSign'])] }] })),
    failsWith('chain', /^chain: path length constraint exceeded \(depth 2, CN=test intermediate 1\)$/));
  verify(g.chain({ intermediates: 2, inter: [{ exts: [ext.bc(true, 1), ext.ku(['keyCertSign'])] }] }));
  assert.throws(() => verify(g.chain({ intermediates: 2, root: { exts: [ext.bc(true, 1), ext.ku(['keyCertSign'])] } })),
    failsWith('chain', /^chain: path length constraint exceeded \(depth 3, CN=test root\)$/));
});

test('issuer and subject: names as OpenSSL compares them, key identifiers', () => {
  assert.throws(() => verify(g.chain({ leaf: { issuer: name('someone else') } })),
    failsWith('chain', new RegExp(`^chain: subject issuer mismatch \\(depth 0, ${LEAF}\\)$`)));
  // case, surrounding and repeated spaces and the string type do not matter (X509_NAME_cmp) ...
  verify(g.chain({ leaf: { issuer: name('x', g.printable('  TEST   Intermediate 1 ')) } }));
  // ... the characters do
  assert.throws(() => verify(g.chain({ leaf: { issuer: name('x', g.printable('test intermediate1')) } })), failsWith('chain', /subject issuer mismatch/));
  assert.throws(() => verify(g.chain({ leaf: { exts: [ext.bc(false), ext.aki(new Uint8Array(20).fill(7))] } })),
    failsWith('chain', new RegExp(`^chain: authority and subject key identifier mismatch \\(depth 0, ${LEAF}\\)$`)));
});

test('signatures: ecdsa-with-SHA384 by a P-384 issuer key only, and it must verify', () => {
  assert.throws(() => verify(g.chain({ leaf: { sigAlg: OID.ecdsaSha256 } })),
    failsWith('chain', new RegExp(`^chain: unsupported certificate signature algorithm ecdsa-with-SHA256 \\(1\\.2\\.840\\.10045\\.4\\.3\\.2\\): only ecdsa-with-SHA384 is accepted \\(depth 0, ${LEAF}\\)$`)));
  const c = g.chain();
  // another signer than the intermediate
  const forged = g.certificate({ subject: name('forged'), issuer: name('test intermediate 1'), key: c.leafKey, signer: g.keyPair(), notBefore: c.from, notAfter: c.to });
  assert.throws(() => verify(c, { doc: g.document({ leafKey: c.leafKey, certificate: forged, cabundle: c.cabundle, timestampMs: c.from }) }),
    failsWith('chain', /^chain: certificate signature failure \(depth 0, CN=forged\)$/));
  // a P-256 intermediate (its signature would verify with OpenSSL, but KeyMeld pins P-384)
  const ik = g.keyPair('p256');
  const inter = g.certificate({ subject: name('p256 ca'), issuer: name('test root'), key: ik, signer: c.keys[0], notBefore: c.from, notAfter: c.to, exts: [ext.bc(true)] });
  const leaf = g.certificate({ subject: name('leaf'), issuer: name('p256 ca'), key: c.leafKey, signer: ik, notBefore: c.from, notAfter: c.to });
  assert.throws(() => verify(c, { doc: g.document({ leafKey: c.leafKey, certificate: leaf, cabundle: [c.root, inter], timestampMs: c.from }) }),
    failsWith('chain', /^chain: the issuer's key is not an EC P-384 key \(depth 1, CN=p256 ca\)$/));
  // a P-256 leaf cannot make an ES384 document
  const pk = g.keyPair('p256');
  const leaf256 = g.certificate({ subject: name('leaf'), issuer: name('test intermediate 1'), key: pk, signer: c.keys[1], notBefore: c.from, notAfter: c.to });
  assert.throws(() => verify(c, { doc: g.document({ leafKey: c.leafKey, certificate: leaf256, cabundle: c.cabundle, timestampMs: c.from }) }),
    failsWith('signature', /^signature: the leaf certificate's key is not an EC P-384 key$/));
});

test('ES384 signatures with a high s verify (P-384 has no low-s rule)', () => {
  const c = g.chain();
  const raw = c.doc();
  const doc = km.parseAttestationDocument(raw);
  const n = p384.Point.Fn.ORDER;
  const s = BigInt('0x' + km.bytesToHex(doc.signature.subarray(48)));
  const flipped = raw.slice();
  flipped.set(km.hexToBytes((n - s).toString(16).padStart(96, '0')), raw.length - 48); // the signature ends the document
  // (r, s) and (r, n - s) are both valid: one of them is "high"
  verify(c, { doc: raw });
  verify(c, { doc: flipped });
});

test('critical extensions: those not processed are refused, others are ignored', () => {
  const nc = g.seq(g.tlv(0xa0, g.seq(g.tlv(0x82, new TextEncoder().encode('example.com')))));
  assert.throws(() => verify(g.chain({ inter: [{ exts: [ext.bc(true, 0), ext.ku(['keyCertSign']), ext.raw(OID.nameConstraints, true, nc)] }] })),
    failsWith('chain', /^chain: unhandled critical extension nameConstraints \(2\.5\.29\.30\) \(depth 1, CN=test intermediate 1\)$/));
  assert.throws(() => verify(g.chain({ leaf: { exts: [ext.bc(false), ext.raw('1.2.3.4', true, g.seq())] } })),
    failsWith('chain', new RegExp(`^chain: unhandled critical extension 1\\.2\\.3\\.4 \\(depth 0, ${LEAF}\\)$`)));
  verify(g.chain({ leaf: { exts: [ext.bc(false), ext.raw('1.2.3.4', false, g.seq()), ext.raw(OID.crlDp, false, g.seq())] } }));
});

test('malformed certificates in the document: the check that reads them fails, with the reason', () => {
  const c = g.chain({ intermediates: 2 });
  const doc = (fields) => g.document({ leafKey: c.leafKey, certificate: c.leaf, cabundle: c.cabundle, timestampMs: c.from, ...fields });
  assert.throws(() => verify(c, { doc: doc({ certificate: Uint8Array.of(...c.leaf, 0) }) }),
    failsWith('signature', /^signature: the leaf certificate is not a DER X\.509 certificate \(1 trailing bytes after the item at offset \d+\)$/));
  assert.throws(() => verify(c, { doc: doc({ certificate: c.leaf.subarray(0, 300) }) }),
    failsWith('signature', /^signature: the leaf certificate is not a DER X\.509 certificate \(SEQUENCE of \d+ bytes runs past the end at offset 0\)$/));
  const bad = c.inters[0].slice();
  bad[1] = 0x80; // indefinite length
  assert.throws(() => verify(c, { doc: doc({ cabundle: [c.root, bad, c.inters[1]] }) }),
    failsWith('chain', /^chain: cabundle\[1\] is not a DER X\.509 certificate \(an indefinite length \(BER, not DER\) at offset 0\)$/));
  // two basicConstraints could say two things: refused
  const dup = g.chain({ leaf: { exts: [ext.bc(false), ext.bc(true)] } });
  assert.throws(() => verify(dup), failsWith('signature', /^signature: the leaf certificate is not a DER X\.509 certificate \(extensions: a second basicConstraints \(2\.5\.29\.19\) extension at offset \d+\)$/));
  // a pathLenConstraint without cA: OpenSSL marks the certificate invalid
  assert.throws(() => verify(g.chain({ inter: [{ exts: [ext.bc(false, 1)] }] })), failsWith('chain', /^chain: cabundle\[1\] is not a DER X\.509 certificate \(extension basicConstraints \(2\.5\.29\.19\): a pathLenConstraint without cA\)$/));
});

test('expected key and nonce given as hex must be hex', () => {
  const c = g.chain();
  const key = Uint8Array.of(2, ...new Uint8Array(32).fill(5));
  const doc = c.doc({ publicKey: key, nonce: new Uint8Array(0) });
  verify(c, { doc, publicKey: km.bytesToHex(key), nonce: '' });
  // Buffer.from(x, 'hex') used to read 'zz' as no bytes, equal to an empty nonce
  assert.throws(() => verify(c, { doc, nonce: 'zz' }), failsWith('nonce', /^nonce: the expected nonce is not hex$/));
  assert.throws(() => verify(c, { doc, publicKey: '0' }), failsWith('public_key', /not hex/));
});
