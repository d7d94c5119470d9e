// x509.js - X.509 v3 certificates (RFC 5280 section 4) read from DER with
// der.js: the fields the attestation chain check needs (attest.js), all
// others walked for structure only. Parsing checks syntax; what a verifier
// makes of the fields (algorithms, CA flags, key usage, validity) is
// attest.js's business, so a certificate of another algorithm parses and is
// refused there by name.
import {
  DerError, decodeDer, decodeInner, expect, tagName, isBytes, integerBytes, smallUnsigned, boolean, oid,
  bitString, octetString, time, TAG, UNIVERSAL, CONTEXT,
} from './der.js';
import { base64Decode } from './base64.js';

/** Object identifiers the chain check uses. */
export const OIDS = Object.freeze({
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
  ecPublicKey: '1.2.840.10045.2.1',
  secp384r1: '1.3.132.0.34',
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  certificatePolicies: '2.5.29.32',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
});

// Names for messages ("sha256WithRSAEncryption (1.2.840.113549.1.1.11)").
const NAMES = {
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1', '1.2.840.10045.4.3.1': 'ecdsa-with-SHA224', '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384', '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.2.840.113549.1.1.1': 'rsaEncryption', '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption', '1.2.840.113549.1.1.10': 'RSASSA-PSS',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption', '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption', '1.3.101.112': 'Ed25519', '1.3.101.113': 'Ed448',
  '1.2.840.10045.2.1': 'id-ecPublicKey', '1.2.840.10045.3.1.7': 'prime256v1', '1.3.132.0.34': 'secp384r1', '1.3.132.0.35': 'secp521r1',
  '1.3.132.0.10': 'secp256k1', '2.5.29.14': 'subjectKeyIdentifier', '2.5.29.15': 'keyUsage', '2.5.29.17': 'subjectAltName',
  '2.5.29.19': 'basicConstraints', '2.5.29.30': 'nameConstraints', '2.5.29.31': 'cRLDistributionPoints', '2.5.29.32': 'certificatePolicies',
  '2.5.29.33': 'policyMappings', '2.5.29.35': 'authorityKeyIdentifier', '2.5.29.36': 'policyConstraints', '2.5.29.37': 'extKeyUsage',
  '2.5.29.54': 'inhibitAnyPolicy', '1.3.6.1.5.5.7.1.1': 'authorityInfoAccess',
};
/** "name (dotted)" for a known OID, else the dotted form. */
export const oidName = (o) => (NAMES[o] ? `${NAMES[o]} (${o})` : o);

/** The largest certificate accepted (a Nitro one is under 1 KiB; the C verifier's bound is 64 KiB). */
export const CERT_MAX_BYTES = 65536;

const KEY_USAGE_BITS = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement',
  'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'];

export const equalBytes = (a, b) => {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
};
const hex = (u) => Array.from(u, (x) => x.toString(16).padStart(2, '0')).join('');

/**
 * Parses one DER certificate (nothing may follow it). Returns
 * {der, tbs (the signed bytes), version (1..3), serial (INTEGER content),
 * signatureAlgorithm {oid, params}, issuer and subject {der, cn, key},
 * notBefore and notAfter (ms since 1970), publicKey {algorithm, curve,
 * unusedBits, key}, extensions (Map oid -> {critical, value}),
 * basicConstraints {ca, pathLen} | null, keyUsage {digitalSignature, ...,
 * keyCertSign, ...} | null, subjectKeyId | null, authorityKeyId {keyId,
 * issuer, serial} | null, signatureValue {unusedBits, bytes}}. A name's `key`
 * compares names the way OpenSSL's X509_NAME_cmp does (below). Throws
 * DerError naming the field.
 */
export function parseCertificate(der, what = 'certificate') {
  if (!isBytes(der)) throw new TypeError(`${what}: expected DER bytes (a Uint8Array)`);
  // Depth: Certificate > TBSCertificate > [3] > Extensions > Extension > field
  // is 5, and so is a name's attribute value; 8 leaves room for structured
  // values. Items: a 1 KiB certificate has about 100.
  const cert = decodeDer(der, { what, maxBytes: CERT_MAX_BYTES, maxDepth: 8, maxNodes: 2048 });
  const at = (n) => (n ? ` at offset ${n.offset}` : '');
  const bad = (n, m) => { throw new DerError(`${what}: ${m}${at(n)}`, n?.offset); };
  expect(cert, what, TAG.SEQUENCE);
  if (cert.children.length !== 3) bad(cert, `a SEQUENCE of ${cert.children.length} items, not 3 (tbsCertificate, signatureAlgorithm, signatureValue)`);
  const [tbsN, algN, sigN] = cert.children;
  expect(tbsN, `${what}: tbsCertificate`, TAG.SEQUENCE);
  const signatureAlgorithm = algorithmIdentifier(algN, `${what}: signatureAlgorithm`);
  const signatureValue = bitString(sigN, `${what}: signatureValue`);

  const f = tbsN.children;
  let i = 0;
  let version = 1;
  if (f[i]?.cls === CONTEXT && f[i].tag === 0) {
    const v = expect(f[i++], `${what}: version`, 0, CONTEXT, true);
    if (v.children.length !== 1) bad(v, 'version: not one INTEGER');
    const n = smallUnsigned(v.children[0], `${what}: version`);
    if (n > 2) bad(v, `version ${n + 1} (only 1, 2 and 3 exist)`);
    version = n + 1;
  }
  const serial = integerBytes(f[i++], `${what}: serialNumber`);
  const tbsAlgN = f[i++];
  algorithmIdentifier(tbsAlgN, `${what}: signature`);
  // RFC 5280 4.1.1.2: must be the signatureAlgorithm; OpenSSL's X509_verify refuses a difference.
  if (!equalBytes(tbsAlgN.der, algN.der)) bad(tbsAlgN, 'tbsCertificate.signature differs from signatureAlgorithm');
  const issuer = parseName(f[i++], `${what}: issuer`);
  const validity = expect(f[i++], `${what}: validity`, TAG.SEQUENCE);
  if (validity.children.length !== 2) bad(validity, 'validity: not a SEQUENCE of notBefore and notAfter');
  const notBefore = time(validity.children[0], `${what}: notBefore`);
  const notAfter = time(validity.children[1], `${what}: notAfter`);
  const subject = parseName(f[i++], `${what}: subject`);
  const publicKey = subjectPublicKeyInfo(f[i++], `${what}: subjectPublicKeyInfo`);
  for (const [tag, field] of [[1, 'issuerUniqueID'], [2, 'subjectUniqueID']]) {
    if (f[i]?.cls === CONTEXT && f[i].tag === tag) {
      if (version < 2) bad(f[i], `${field} in a version ${version} certificate`);
      bitString(f[i++], `${what}: ${field}`, tag, CONTEXT);
    }
  }
  let extensions = new Map();
  if (f[i]?.cls === CONTEXT && f[i].tag === 3) {
    if (version !== 3) bad(f[i], `extensions in a version ${version} certificate`);
    extensions = parseExtensions(expect(f[i++], `${what}: extensions`, 3, CONTEXT, true), `${what}: extensions`);
  }
  if (i < f.length) bad(f[i], `tbsCertificate: unexpected ${tagName(f[i])}`);

  const ext = (id, parse) => {
    const e = extensions.get(id);
    return e ? parse(decodeInner(e.value, `${what}: extension ${oidName(id)}`), `${what}: extension ${oidName(id)}`) : null;
  };
  return {
    der, tbs: tbsN.der, version, serial, signatureAlgorithm, issuer, subject, notBefore, notAfter, publicKey,
    extensions,
    basicConstraints: ext(OIDS.basicConstraints, basicConstraints),
    keyUsage: ext(OIDS.keyUsage, keyUsage),
    subjectKeyId: ext(OIDS.subjectKeyIdentifier, (n, w) => octetString(n, w)),
    authorityKeyId: ext(OIDS.authorityKeyIdentifier, authorityKeyId),
    signatureValue,
  };
}

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL } -> {oid, params (node or null)}. */
function algorithmIdentifier(node, what) {
  expect(node, what, TAG.SEQUENCE);
  if (node.children.length < 1 || node.children.length > 2) throw new DerError(`${what}: an AlgorithmIdentifier of ${node.children.length} items at offset ${node.offset}`, node.offset);
  return { oid: oid(node.children[0], what), params: node.children[1] ?? null };
}

/** SubjectPublicKeyInfo -> {algorithm, curve (the named curve of an EC key, else null), unusedBits, key}. */
function subjectPublicKeyInfo(node, what) {
  expect(node, what, TAG.SEQUENCE);
  if (node.children.length !== 2) throw new DerError(`${what}: not a SEQUENCE of algorithm and subjectPublicKey at offset ${node.offset}`, node.offset);
  const alg = algorithmIdentifier(node.children[0], `${what}: algorithm`);
  const { unusedBits, bytes } = bitString(node.children[1], `${what}: subjectPublicKey`);
  // An EC key names its curve (RFC 5480); explicit curve parameters leave `curve` null.
  const p = alg.params;
  const curve = alg.oid === OIDS.ecPublicKey && p?.cls === UNIVERSAL && p.tag === TAG.OID ? oid(p, `${what}: namedCurve`) : null;
  return { algorithm: alg.oid, curve, unusedBits, key: bytes };
}

// ---- names -------------------------------------------------------------------

const STRING_TYPES = new Set([TAG.UTF8String, TAG.PrintableString, TAG.TeletexString, TAG.IA5String, TAG.VisibleString, TAG.UniversalString, TAG.BMPString]);
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The text of a directory string value, or null for a value of another type. */
function directoryString(node, what) {
  if (node.cls !== UNIVERSAL || !STRING_TYPES.has(node.tag)) return null;
  const c = node.content;
  const err = (m) => { throw new DerError(`${what}: ${m} at offset ${node.offset}`, node.offset); };
  switch (node.tag) {
    case TAG.UTF8String:
      try { return utf8.decode(c); } catch { return err('a UTF8String that is not UTF-8'); }
    case TAG.BMPString: {
      if (c.length % 2) err('a BMPString of an odd length');
      let s = '';
      for (let i = 0; i < c.length; i += 2) s += String.fromCharCode((c[i] << 8) | c[i + 1]);
      return s;
    }
    case TAG.UniversalString: {
      if (c.length % 4) err('a UniversalString whose length is not a multiple of 4');
      let s = '';
      for (let i = 0; i < c.length; i += 4) {
        const cp = ((c[i] << 24) | (c[i + 1] << 16) | (c[i + 2] << 8) | c[i + 3]) >>> 0;
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) err('a UniversalString with an invalid character');
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    default: // PrintableString, IA5String, VisibleString, TeletexString: one byte per character (as OpenSSL reads them)
      return Array.from(c, (x) => String.fromCharCode(x)).join('');
  }
}

// OpenSSL compares names (X509_NAME_cmp, used to match a certificate's
// issuer to its issuer's subject) on a canonical form: string values as
// UTF-8 with leading and trailing ASCII whitespace removed, inner runs of it
// made one space, and ASCII letters lower-cased; other values as their DER.
// Matching on the same form accepts exactly the chains OpenSSL accepts.
const canon = (s) => s.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '').replace(/[ \t\n\v\f\r]+/g, ' ').replace(/[A-Z]/g, (x) => x.toLowerCase());

/** Name ::= SEQUENCE OF SET OF {type OID, value ANY} -> {der, cn (the first commonName, or null), key}. */
export function parseName(node, what) {
  expect(node, what, TAG.SEQUENCE);
  let cn = null;
  const rdns = node.children.map((set) => {
    expect(set, `${what}: RDN`, TAG.SET);
    if (set.children.length === 0) throw new DerError(`${what}: an empty RDN at offset ${set.offset}`, set.offset);
    return set.children.map((atv) => {
      expect(atv, `${what}: attribute`, TAG.SEQUENCE);
      if (atv.children.length !== 2) throw new DerError(`${what}: an attribute of ${atv.children.length} items at offset ${atv.offset}`, atv.offset);
      const type = oid(atv.children[0], `${what}: attribute type`);
      const text = directoryString(atv.children[1], `${what}: ${oidName(type)}`);
      if (type === OIDS.commonName && cn === null && text !== null) cn = text;
      return [type, text === null ? `der:${hex(atv.children[1].der)}` : `str:${canon(text)}`];
    });
  });
  return { der: node.der, cn, key: JSON.stringify(rdns) };
}

// ---- extensions ------------------------------------------------------------------

// Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension {extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING}
function parseExtensions(node, what) {
  if (node.children.length !== 1) throw new DerError(`${what}: [3] does not hold one SEQUENCE at offset ${node.offset}`, node.offset);
  const seq = expect(node.children[0], what, TAG.SEQUENCE);
  if (seq.children.length === 0) throw new DerError(`${what}: an empty list at offset ${seq.offset}`, seq.offset);
  const out = new Map();
  for (const e of seq.children) {
    expect(e, `${what}: extension`, TAG.SEQUENCE);
    const c = e.children;
    if (c.length < 2 || c.length > 3) throw new DerError(`${what}: an extension of ${c.length} items at offset ${e.offset}`, e.offset);
    const id = oid(c[0], `${what}: extnID`);
    // DER leaves out a DEFAULT value, but an explicit FALSE changes nothing and
    // OpenSSL accepts it: accepted too, rather than refusing a harmless quirk.
    const critical = c.length === 3 ? boolean(c[1], `${what}: ${oidName(id)}: critical`) : false;
    const value = octetString(c[c.length - 1], `${what}: ${oidName(id)}: extnValue`);
    // RFC 5280 4.2: at most one instance of an extension (a second could say the opposite).
    if (out.has(id)) throw new DerError(`${what}: a second ${oidName(id)} extension at offset ${e.offset}`, e.offset);
    out.set(id, { critical, value });
  }
  return out;
}

// BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }
function basicConstraints(n, what) {
  expect(n, what, TAG.SEQUENCE);
  const c = n.children;
  let k = 0, ca = false, pathLen;
  if (c[k]?.cls === UNIVERSAL && c[k].tag === TAG.BOOLEAN) ca = boolean(c[k++], `${what}: cA`);
  if (c[k]) pathLen = smallUnsigned(c[k++], `${what}: pathLenConstraint`);
  if (k !== c.length) throw new DerError(`${what}: unexpected ${tagName(c[k])}`, c[k].offset);
  // OpenSSL marks such a certificate invalid (RFC 5280 4.2.1.9: only with cA).
  if (pathLen !== undefined && !ca) throw new DerError(`${what}: a pathLenConstraint without cA`);
  return { ca, pathLen };
}

// KeyUsage ::= BIT STRING { digitalSignature (0), ..., keyCertSign (5), ... }
function keyUsage(n, what) {
  const { bytes } = bitString(n, what);
  return Object.fromEntries(KEY_USAGE_BITS.map((name, bit) => [name, ((bytes[bit >> 3] ?? 0) & (0x80 >> (bit & 7))) !== 0]));
}

// AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] OCTET STRING OPTIONAL,
//   authorityCertIssuer [1] GeneralNames OPTIONAL, authorityCertSerialNumber [2] INTEGER OPTIONAL } (IMPLICIT tags)
function authorityKeyId(n, what) {
  expect(n, what, TAG.SEQUENCE);
  const out = { keyId: null, issuer: null, serial: null };
  let last = -1;
  for (const c of n.children) {
    if (c.cls !== CONTEXT || c.tag > 2 || c.tag <= last) throw new DerError(`${what}: unexpected ${tagName(c)} at offset ${c.offset}`, c.offset);
    last = c.tag;
    if (c.tag === 0) out.keyId = octetString(c, `${what}: keyIdentifier`, 0, CONTEXT);
    else if (c.tag === 2) out.serial = integerBytes(c, `${what}: authorityCertSerialNumber`, 2, CONTEXT);
    else {
      expect(c, `${what}: authorityCertIssuer`, 1, CONTEXT, true);
      if (c.children.length === 0) throw new DerError(`${what}: an empty authorityCertIssuer at offset ${c.offset}`, c.offset);
      // OpenSSL's X509_check_akid compares the first directoryName ([4] EXPLICIT Name).
      const dn = c.children.find((g) => g.cls === CONTEXT && g.tag === 4);
      if (dn) {
        expect(dn, `${what}: directoryName`, 4, CONTEXT, true);
        if (dn.children.length !== 1) throw new DerError(`${what}: a directoryName that is not one Name at offset ${dn.offset}`, dn.offset);
        out.issuer = parseName(dn.children[0], `${what}: directoryName`);
      }
    }
  }
  return out;
}

// ---- signatures and PEM --------------------------------------------------------

/**
 * The fixed-size r ‖ s (2 × size bytes) of an ECDSA signature given as the
 * DER Ecdsa-Sig-Value (RFC 5480: SEQUENCE { r INTEGER, s INTEGER }) in a
 * certificate's signatureValue. Throws DerError for anything else: another
 * form, a negative or oversized integer.
 */
export function ecdsaSignatureCompact(signatureValue, size, what = 'signature') {
  if (signatureValue.unusedBits !== 0) throw new DerError(`${what}: a signature BIT STRING with unused bits`);
  const n = decodeDer(signatureValue.bytes, { what, maxDepth: 1, maxNodes: 3 });
  expect(n, what, TAG.SEQUENCE);
  if (n.children.length !== 2) throw new DerError(`${what}: an Ecdsa-Sig-Value of ${n.children.length} items, not 2 (r, s)`);
  const out = new Uint8Array(2 * size);
  n.children.forEach((c, k) => {
    let v = integerBytes(c, `${what}: ${'rs'[k]}`);
    if (v[0] & 0x80) throw new DerError(`${what}: a negative ${'rs'[k]}`);
    if (v[0] === 0 && v.length > 1) v = v.subarray(1);
    if (v.length > size) throw new DerError(`${what}: ${'rs'[k]} longer than ${size} bytes`);
    out.set(v, (k + 1) * size - v.length);
  });
  return out;
}

/** PEM certificate blocks in text. */
export const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/**
 * The DER of one PEM certificate block ("-----BEGIN CERTIFICATE-----" ...
 * "-----END CERTIFICATE-----"): its body is standard base64, whitespace
 * ignored, padding optional but right when present. Throws DerError.
 */
export function pemToDer(block) {
  const m = /^-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----$/.exec(block.trim());
  if (!m) throw new DerError('PEM: not one CERTIFICATE block');
  const text = m[1].replace(/\s+/g, '');
  const p = /^([A-Za-z0-9+/]*)(={0,2})$/.exec(text);
  if (!p || (p[2] && (p[1].length + p[2].length) % 4 !== 0)) throw new DerError('PEM: the body is not standard base64');
  try {
    return base64Decode(p[1]);
  } catch (e) {
    throw new DerError(`PEM: ${e.message}`);
  }
}
