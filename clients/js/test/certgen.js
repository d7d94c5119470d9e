// certgen.js - test helper: builds X.509 certificates (a tiny DER encoder,
// signatures by @noble/curves) and Nitro-style attestation documents (a
// tiny CBOR encoder, COSE_Sign1 ES384) so that the chain checks of
// attest.js can be exercised on chains the real fixtures do not have: a CA
// leaf, a missing key usage, a path too long, another algorithm, ... The
// encoders write exactly what they are given; malformed variants are made
// by the tests by editing the bytes.
import { p384, p256 } from '@noble/curves/nist.js';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { concatBytes } from '@noble/hashes/utils.js';
import { sigStructure } from '../src/index.js';

const te = new TextEncoder();

// ---- DER ----------------------------------------------------------------------

const derLen = (n) => (n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 255] : [0x83, n >> 16, (n >> 8) & 255, n & 255]);
export const tlv = (tag, ...parts) => {
  const c = concatBytes(...parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p))));
  return concatBytes(Uint8Array.of(tag, ...derLen(c.length)), c);
};
export const seq = (...p) => tlv(0x30, ...p);
export const set = (...p) => tlv(0x31, ...p);
export const bool = (v) => tlv(0x01, [v ? 0xff : 0x00]);
export const octets = (b) => tlv(0x04, b);
export const bits = (b, unused = 0) => tlv(0x03, [unused], b);
export const utf8 = (s) => tlv(0x0c, te.encode(s));
export const printable = (s) => tlv(0x13, te.encode(s));
export const explicit = (n, x) => tlv(0xa0 + n, x);
export function int(v) {
  let x = BigInt(v);
  const out = [];
  do { out.unshift(Number(x & 0xffn)); x >>= 8n; } while (x > 0n);
  if (out[0] & 0x80) out.unshift(0);
  return tlv(0x02, out);
}
export function oid(dotted) {
  const a = dotted.split('.').map(BigInt);
  const arcs = [a[0] * 40n + a[1], ...a.slice(2)];
  const out = [];
  for (const arc of arcs) {
    const b = [Number(arc & 0x7fn)];
    for (let x = arc >> 7n; x > 0n; x >>= 7n) b.unshift(Number(x & 0x7fn) | 0x80);
    out.push(...b);
  }
  return tlv(0x06, out);
}
const two = (n) => String(n).padStart(2, '0');
/** UTCTime for 1950..2049, GeneralizedTime otherwise (RFC 5280's rule). */
export function time(ms) {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
  return y >= 1950 && y < 2050 ? tlv(0x17, te.encode(two(y % 100) + rest)) : tlv(0x18, te.encode(String(y).padStart(4, '0') + rest));
}

export const OID = {
  ecdsaSha256: '1.2.840.10045.4.3.2', ecdsaSha384: '1.2.840.10045.4.3.3', ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7', p384: '1.3.132.0.34', cn: '2.5.4.3', country: '2.5.4.6',
  bc: '2.5.29.19', ku: '2.5.29.15', ski: '2.5.29.14', aki: '2.5.29.35', nameConstraints: '2.5.29.30', crlDp: '2.5.29.31',
};

/** Name: C=US, CN=cn (CN as a UTF8String unless given other DER). */
export const name = (cn, cnValue = utf8(cn)) => seq(set(seq(oid(OID.country), printable('US'))), set(seq(oid(OID.cn), cnValue)));

const KU = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign'];
/** Extensions as {oid, critical, value (the DER inside extnValue)}. */
export const ext = {
  bc: (ca, pathLen, critical = true) => ({ oid: OID.bc, critical, value: seq(ca ? bool(true) : [], pathLen === undefined ? [] : int(pathLen)) }),
  ku: (names, critical = true) => {
    const v = names.reduce((a, n) => a | (0x80 >> KU.indexOf(n)), 0);
    let unused = 0;
    while (unused < 7 && !(v & (1 << unused))) unused++;
    return { oid: OID.ku, critical, value: bits([v], unused) };
  },
  ski: (id) => ({ oid: OID.ski, critical: false, value: octets(id) }),
  aki: (id) => ({ oid: OID.aki, critical: false, value: seq(tlv(0x80, id)) }),
  raw: (o, critical, value) => ({ oid: o, critical, value }),
};

/** A P-384 (or P-256) key pair: {secretKey, publicKey (uncompressed), curve}. */
export function keyPair(curve = 'p384') {
  const c = curve === 'p384' ? p384 : p256;
  const secretKey = c.utils.randomSecretKey();
  return { secretKey, publicKey: c.getPublicKey(secretKey, false), curve };
}
export const keyId = (k) => sha256(k.publicKey).slice(0, 20);

/**
 * A certificate: {subject, issuer (Name DER), key (its key pair), signer
 * (the issuer's key pair), notBefore, notAfter (ms), exts, sigAlg (default
 * ecdsa-with-SHA384), serial}. tamper(tbs) may edit the TBS before signing.
 */
export function certificate({ subject, issuer, key, signer, notBefore, notAfter, exts = [], sigAlg = OID.ecdsaSha384, serial = 1, tamper }) {
  const alg = seq(oid(sigAlg));
  const spki = seq(seq(oid(OID.ecPublicKey), oid(key.curve === 'p384' ? OID.p384 : OID.p256)), bits(key.publicKey));
  const extDer = exts.length ? explicit(3, seq(...exts.map((e) => seq(oid(e.oid), e.critical ? bool(true) : [], octets(e.value))))) : [];
  let tbs = seq(explicit(0, int(2)), int(serial), alg, issuer, seq(time(notBefore), time(notAfter)), subject, spki, extDer);
  if (tamper) tbs = tamper(tbs);
  const hash = sigAlg === OID.ecdsaSha256 ? sha256 : sha384;
  const c = signer.curve === 'p384' ? p384 : p256;
  const sig = c.sign(hash(tbs), signer.secretKey, { prehash: false, lowS: false, format: 'der' });
  return seq(tbs, alg, bits(sig));
}

// ---- CBOR and the document ---------------------------------------------------------

function head(major, n) {
  const m = major << 5;
  if (n < 24) return [m | n];
  if (n < 0x100) return [m | 24, n];
  if (n < 0x10000) return [m | 25, n >> 8, n & 255];
  if (n < 0x100000000) return [m | 26, (n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255];
  const b = [];
  for (let x = BigInt(n), i = 0; i < 8; i++, x >>= 8n) b.unshift(Number(x & 0xffn));
  return [m | 27, ...b];
}
/** CBOR of numbers (unsigned), text, bytes, arrays, Maps (in insertion order) and null. */
export function cbor(v) {
  if (v === null) return Uint8Array.of(0xf6);
  if (typeof v === 'number') return Uint8Array.from(head(0, v));
  if (typeof v === 'string') { const b = te.encode(v); return concatBytes(Uint8Array.from(head(3, b.length)), b); }
  if (v instanceof Uint8Array) return concatBytes(Uint8Array.from(head(2, v.length)), v);
  if (Array.isArray(v)) return concatBytes(Uint8Array.from(head(4, v.length)), ...v.map(cbor));
  if (v instanceof Map) return concatBytes(Uint8Array.from(head(5, v.size)), ...[...v].flatMap(([k, x]) => [cbor(k), cbor(x)]));
  throw new TypeError(`cbor: ${typeof v}`);
}

/**
 * An attestation document (raw COSE_Sign1 bytes) with the payload fields
 * in the NSM's order, signed ES384 by leafKey.
 */
export function document({ leafKey, certificate: cert, cabundle, timestampMs, pcrs, publicKey = null, nonce = null, userData = null, moduleId = 'test-enclave' }) {
  const payload = cbor(new Map([
    ['module_id', moduleId], ['digest', 'SHA384'], ['timestamp', timestampMs],
    ['pcrs', pcrs ?? new Map(Array.from({ length: 16 }, (_, i) => [i, new Uint8Array(48).fill(i === 0 ? 0xaa : 0)]))],
    ['certificate', cert], ['cabundle', cabundle], ['public_key', publicKey], ['user_data', userData], ['nonce', nonce],
  ]));
  const protectedHeader = Uint8Array.of(0xa1, 0x01, 0x38, 0x22);
  const signature = p384.sign(sha384(sigStructure({ protectedHeader, payload })), leafKey.secretKey, { prehash: false, lowS: false });
  return cbor([protectedHeader, new Map(), payload, signature]);
}

/**
 * A chain like the NSM's, valid from `from` for `hours`: a root CA, CA
 * intermediates (pathLen 2, 1, ...) and a leaf (CA:FALSE, digitalSignature),
 * every certificate carrying SKI/AKI like AWS's. Overrides per certificate:
 * opts.root / opts.inter[i] / opts.leaf are merged into that certificate's
 * spec (e.g. {exts: [...]}) before it is made. Returns {root, inters (DER,
 * top first), leaf, keys, cabundle, doc(fields)}.
 */
export function chain({ from = Date.UTC(2030, 0, 1), hours = 3, intermediates = 1, root: rootOpt = {}, inter = [], leaf: leafOpt = {} } = {}) {
  const to = from + hours * 3600e3;
  const rootKey = keyPair();
  const rootName = name('test root');
  const root = certificate({
    subject: rootName, issuer: rootName, key: rootKey, signer: rootKey, notBefore: from - 86400e3, notAfter: to + 86400e3, serial: 100,
    exts: [ext.bc(true), ext.ski(keyId(rootKey)), ext.ku(['keyCertSign', 'cRLSign'])], ...rootOpt,
  });
  const inters = [];
  const keys = [rootKey];
  let issuerKey = rootKey, issuerName = rootName;
  for (let i = 0; i < intermediates; i++) {
    const k = keyPair();
    const n = name(`test intermediate ${i + 1}`);
    inters.push(certificate({
      subject: n, issuer: issuerName, key: k, signer: issuerKey, notBefore: from - 3600e3, notAfter: to + 3600e3, serial: 200 + i,
      exts: [ext.bc(true, intermediates - 1 - i), ext.aki(keyId(issuerKey)), ext.ski(keyId(k)), ext.ku(['digitalSignature', 'keyCertSign', 'cRLSign'])],
      ...(inter[i] ?? {}),
    }));
    keys.push(k);
    issuerKey = k;
    issuerName = n;
  }
  const leafKey = keyPair();
  keys.push(leafKey);
  const leaf = certificate({
    subject: name('i-0123.test.nitro-enclaves'), issuer: issuerName, key: leafKey, signer: issuerKey, notBefore: from, notAfter: to, serial: 300,
    exts: [ext.bc(false), ext.ku(['digitalSignature', 'nonRepudiation'], false)], ...leafOpt,
  });
  const cabundle = [root, ...inters];
  return {
    root, inters, leaf, keys, leafKey, cabundle, from, to,
    doc: (fields = {}) => document({ leafKey: fields.leafKey ?? leafKey, certificate: leaf, cabundle, timestampMs: from + 60e3, ...fields }),
  };
}
