// attest.js - client-side verification of AWS Nitro Enclave attestation
// documents (docs/ATTESTATION.md "Document format" and "Verification"): a
// strict CBOR decoder, the COSE_Sign1 / payload syntax, the ES384 signature,
// root pinning, the certificate chain and validity at a time T, freshness,
// debug mode, the PCR policy, the public_key and nonce bindings; and
// attestationVerifier(), the verifyEnclave hook of createKeygen/joinKeygen.
// The C reference is src/attest/{cbor,doc,verify,policy}.c and
// src/client/attest.c. No Node API: certificates are read by der.js and
// x509.js, ECDSA P-384 is @noble/curves', SHA-2 @noble/hashes', so the same
// code runs in browsers (README "Browsers").
import { p384 } from '@noble/curves/nist.js';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, concatBytes } from '@noble/hashes/utils.js';
import { KeyMeldError } from './errors.js';
import { base64Decode } from './base64.js';
import { DerError, isBytes } from './der.js';
import { parseCertificate, ecdsaSignatureCompact, equalBytes, oidName, pemToDer, PEM_CERTIFICATE, OIDS } from './x509.js';

/** A refused enclave (attestationVerifier): nothing was encrypted to its key. */
export class AttestationError extends KeyMeldError {
  constructor(message, { enclaveId, check, status = 0, type = 'attestation_failed', requestId, body, cause } = {}) {
    super(message, { status, type, requestId, body });
    this.name = 'AttestationError';
    this.enclaveId = enclaveId;
    this.check = check;
    if (cause) this.cause = cause;
  }
}

/** A failed check: `check` is its name (decode, signature, root, chain, validity, freshness, debug, pcrs, public_key, nonce). */
export class AttestationCheckError extends Error {
  constructor(check, why) {
    super(`${check}: ${why}`);
    this.name = 'AttestationCheckError';
    this.check = check;
  }
}
const fail = (check, why) => { throw new AttestationCheckError(check, why); };

/** The AWS Nitro Enclaves Root-G1 (SHA-256 of its DER 641A0321...BB5B), the default pinned root. */
export const AWS_NITRO_ROOT_G1_PEM = `-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
`;

// ---- strict CBOR (docs/ATTESTATION.md "Strict CBOR") -------------------------

const LIMITS = { maxLen: 32768, maxDepth: 8, maxItems: 512, maxElems: 64 };

/** A decoded CBOR map: entries in document order, keys decoded (string, number, ...). */
export class CborMap {
  constructor(entries) { this.entries = entries; }
  get size() { return this.entries.length; }
}
/** A decoded CBOR tag. */
export class CborTag {
  constructor(tag, value) { this.tag = tag; this.value = value; }
}
const BREAK = Symbol('break');
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes exactly one CBOR data item (no trailing bytes) under the limits of
 * docs/ATTESTATION.md. Integers above 2^53 come back as BigInt. Throws an
 * Error naming the offset.
 */
export function decodeCbor(buf, what = 'CBOR') {
  const b = isBytes(buf) ? buf : new Uint8Array(buf);
  const err = (off, m) => { throw new Error(`${what}: ${m} at offset ${off}`); };
  if (b.length > LIMITS.maxLen) throw new Error(`${what}: ${b.length} bytes, more than ${LIMITS.maxLen}`);
  let pos = 0;
  let items = 0;
  const need = (n, off, m) => { if (pos + n > b.length) err(off, `${m} runs past the end`); };
  function head() {
    const off = pos;
    need(1, off, 'item');
    const ib = b[pos++];
    const major = ib >> 5, ai = ib & 31;
    let val;
    if (ai < 24) val = ai;
    else if (ai <= 27) {
      const n = 1 << (ai - 24);
      need(n, off, `${n}-byte argument`);
      let v = 0n;
      for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(b[pos++]);
      const min = [24n, 256n, 65536n, 4294967296n][ai - 24];
      if (major !== 7 && v < min) err(off, 'integer or length not in its shortest encoding');
      val = v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    } else if (ai === 31) val = -1;
    else err(off, `reserved additional information ${ai}`);
    return { off, major, ai, val };
  }
  function item(depth) {
    const h = head();
    const { off, major, ai, val } = h;
    if (major === 7 && ai === 31) return BREAK;
    if (++items > LIMITS.maxItems) err(off, `more than ${LIMITS.maxItems} items`);
    if (depth > LIMITS.maxDepth) err(off, `nesting deeper than ${LIMITS.maxDepth}`);
    switch (major) {
      case 0: return val;
      case 1: return typeof val === 'bigint' ? -1n - val : (val >= Number.MAX_SAFE_INTEGER ? -1n - BigInt(val) : -1 - val);
      case 2: case 3: {
        if (val === -1) err(off, 'indefinite-length string');
        if (typeof val === 'bigint' || pos + val > b.length) err(off, `string of ${val} bytes runs past the end`);
        const s = b.subarray(pos, pos + val);
        pos += val;
        if (major === 2) return s;
        try { return utf8.decode(s); } catch { return err(off, 'text that is not UTF-8'); }
      }
      case 4: case 5: {
        const arr = [];
        const n = val;
        if (typeof n === 'bigint' || n > LIMITS.maxElems) err(off, `more than ${LIMITS.maxElems} ${major === 4 ? 'elements' : 'pairs'}`);
        const keys = new Set();
        for (let i = 0; n === -1 || i < n; i++) {
          if (i >= LIMITS.maxElems) err(off, `more than ${LIMITS.maxElems} ${major === 4 ? 'elements' : 'pairs'}`);
          const kOff = pos;
          const k = item(depth + 1);
          if (k === BREAK) {
            if (n === -1) break;
            err(kOff, 'break outside an indefinite-length container');
          }
          if (major === 4) { arr.push(k); continue; }
          const kBytes = bytesToHex(b.subarray(kOff, pos));
          if (keys.has(kBytes)) err(kOff, 'duplicate map key');
          keys.add(kBytes);
          const vOff = pos;
          const v = item(depth + 1);
          if (v === BREAK) err(vOff, 'break in place of a map value');
          arr.push([k, v]);
        }
        return major === 4 ? arr : new CborMap(arr);
      }
      case 6: {
        if (val === -1) err(off, 'reserved additional information 31');
        const v = item(depth + 1);
        if (v === BREAK) err(off, 'break in place of a tagged item');
        return new CborTag(val, v);
      }
      default: // 7
        if (ai === 20) return false;
        if (ai === 21) return true;
        if (ai === 22) return null;
        if (ai === 23) return undefined;
        return err(off, ai >= 25 ? 'float' : 'simple value other than false, true, null, undefined');
    }
  }
  const v = item(0);
  if (v === BREAK) err(0, 'break outside an indefinite-length container');
  if (pos !== b.length) err(pos, `${b.length - pos} trailing bytes after the document`);
  return v;
}

// ---- the document ----------------------------------------------------------

const hex = (u) => bytesToHex(u);
const short = (u) => { const h = hex(u); return h.length > 16 ? `${h.slice(0, 16)}...` : h; };
const eq = equalBytes;
const iso = (ms) => {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString().replace('.000Z', 'Z');
};
const PROTECTED = Uint8Array.of(0xa1, 0x01, 0x38, 0x22);

/**
 * The bytes of a document given as raw CBOR (first byte 84, or d2 tagged) or
 * standard base64 (whitespace ignored, padding optional but right when
 * present, unused bits zero), at most 32 KiB.
 */
export function readAttestationDocument(input) {
  // Raw CBOR unless it looks like base64 text (a document starts with 84 or d2).
  if (isBytes(input) && !(input.length && /[A-Za-z0-9+/=\s]/.test(String.fromCharCode(input[0])))) {
    if (input.length > LIMITS.maxLen) fail('decode', `the document is ${input.length} bytes, more than ${LIMITS.maxLen}`);
    return input;
  }
  const text = (typeof input === 'string' ? input : new TextDecoder().decode(input)).replace(/\s+/g, '');
  const m = /^([A-Za-z0-9+/]*)(={0,2})$/.exec(text);
  if (!m) fail('decode', 'the document is neither CBOR nor standard base64');
  const [, body, pad] = m;
  if (body.length % 4 === 1 || (pad && (body.length + pad.length) % 4 !== 0)) fail('decode', 'base64 of a wrong length or padding');
  let out;
  try { out = base64Decode(body); } catch (e) { fail('decode', e.message); }
  if (out.length > LIMITS.maxLen) fail('decode', `the document is ${out.length} bytes, more than ${LIMITS.maxLen}`);
  return out;
}

const FIELDS = {
  module_id: 'text', digest: 'text', timestamp: 'uint', pcrs: 'map', certificate: 'bytes',
  cabundle: 'array', public_key: 'opt', user_data: 'opt', nonce: 'opt',
};

/**
 * Decodes a document (raw CBOR or base64) and checks its syntax. Returns
 * {moduleId, digest, timestampMs, pcrs: Map<number, Uint8Array>, certificate,
 * cabundle: Uint8Array[], publicKey, userData, nonce (null when not provided),
 * protectedHeader, payload, signature, raw}. Throws AttestationCheckError 'decode'.
 */
export function parseAttestationDocument(input) {
  const raw = readAttestationDocument(input);
  const d = (what, bytes) => {
    try { return decodeCbor(bytes, what); } catch (e) { return fail('decode', e.message); }
  };
  let top = d('COSE_Sign1', raw);
  if (top instanceof CborTag) {
    if (top.tag !== 18) fail('decode', `COSE_Sign1: tag ${top.tag}, not 18 (COSE_Sign1)`);
    top = top.value;
  }
  if (!Array.isArray(top) || top.length !== 4) fail('decode', 'COSE_Sign1: not an array of 4 elements');
  const [prot, unprot, payload, signature] = top;
  if (!isBytes(prot) || !eq(prot, PROTECTED)) fail('decode', 'protected header: not exactly {1: -35} (alg ES384)');
  if (!(unprot instanceof CborMap)) fail('decode', 'COSE_Sign1: the unprotected header is not a map');
  if (!(payload instanceof Uint8Array)) fail('decode', 'COSE_Sign1: the payload is not a byte string');
  if (!(signature instanceof Uint8Array) || signature.length !== 96) fail('decode', 'COSE_Sign1: the signature is not a byte string of 96 bytes');
  const map = d('payload', payload);
  if (!(map instanceof CborMap)) fail('decode', 'payload: not a map');
  const f = {};
  for (const [k, v] of map.entries) {
    if (typeof k !== 'string') fail('decode', 'payload: a key that is not text');
    if (!(k in FIELDS)) fail('decode', `payload: unknown key ${JSON.stringify(k.replace(/[^\x20-\x7e]/g, '?').slice(0, 64))}`);
    f[k] = v;
  }
  const bad = (k, why) => fail('decode', `payload: ${k}: ${why}`);
  for (const k of ['module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle']) if (!(k in f)) bad(k, 'missing');
  const te = new TextEncoder();
  if (typeof f.module_id !== 'string') bad('module_id', 'not text');
  const mlen = te.encode(f.module_id).length;
  if (mlen < 1 || mlen > 128 || f.module_id.includes('\0')) bad('module_id', 'not 1..128 bytes without NUL');
  if (f.digest !== 'SHA384') bad('digest', 'not "SHA384"');
  if (typeof f.timestamp !== 'number' || !(f.timestamp > 0)) bad('timestamp', 'not an unsigned integer > 0');
  if (!(f.pcrs instanceof CborMap) || f.pcrs.size < 1 || f.pcrs.size > 32) bad('pcrs', 'not a map of 1..32 entries');
  const pcrs = new Map();
  for (const [k, v] of f.pcrs.entries) {
    if (typeof k !== 'number' || k < 0 || k > 31) bad('pcrs', 'a key that is not 0..31');
    if (!(v instanceof Uint8Array) || ![32, 48, 64].includes(v.length)) bad('pcrs', `PCR${k} is not a byte string of 32, 48 or 64 bytes`);
    pcrs.set(k, v);
  }
  const der = (k, v) => { if (!(v instanceof Uint8Array) || v.length < 1 || v.length > 1024) bad(k, 'not a byte string of 1..1024 bytes'); return v; };
  der('certificate', f.certificate);
  if (!Array.isArray(f.cabundle) || f.cabundle.length < 1 || f.cabundle.length > 16) bad('cabundle', 'not an array of 1..16 byte strings');
  f.cabundle.forEach((c, i) => der(`cabundle[${i}]`, c));
  const opt = (k, min, max) => {
    const v = f[k];
    if (v === undefined || v === null) return null;
    if (!(v instanceof Uint8Array) || v.length < min || v.length > max) bad(k, `not null or a byte string of ${min}..${max} bytes`);
    return v;
  };
  return {
    moduleId: f.module_id, digest: f.digest, timestampMs: f.timestamp, pcrs,
    certificate: f.certificate, cabundle: f.cabundle,
    publicKey: opt('public_key', 1, 1024), userData: opt('user_data', 0, 512), nonce: opt('nonce', 0, 512),
    protectedHeader: prot, payload, signature, raw,
  };
}

const bstrHead = (n) => (n < 24 ? [0x40 + n] : n < 256 ? [0x58, n] : n < 65536 ? [0x59, n >> 8, n & 255]
  : [0x5a, (n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255]);

/** The CBOR of the COSE Sig_structure ["Signature1", protected, h'', payload] the signature covers. */
export function sigStructure(doc) {
  return concatBytes(
    Uint8Array.of(0x84, 0x6a, ...new TextEncoder().encode('Signature1')),
    Uint8Array.from(bstrHead(doc.protectedHeader.length)), doc.protectedHeader,
    Uint8Array.of(0x40),
    Uint8Array.from(bstrHead(doc.payload.length)), doc.payload,
  );
}

// ---- trust: root and PCR policy ---------------------------------------------

/**
 * The DER of a root given as PEM text (exactly one certificate), DER bytes,
 * bytes holding PEM text, or an object carrying the DER in `raw` (such as
 * Node's X509Certificate: read without importing node:crypto). The
 * certificate is parsed (x509.js) so that a wrong file fails here, with a
 * TypeError, rather than as a 'root' mismatch later.
 */
export function rootDer(root = AWS_NITRO_ROOT_G1_PEM) {
  if (root !== null && typeof root === 'object' && !isBytes(root) && isBytes(root.raw)) root = root.raw;
  // PEM read from a file as bytes (readFileSync without an encoding).
  if (isBytes(root) && root[0] !== 0x30) root = new TextDecoder().decode(root);
  let der;
  if (typeof root === 'string') {
    const blocks = root.match(PEM_CERTIFICATE) ?? [];
    if (blocks.length !== 1) throw new TypeError(`the root must be exactly one PEM certificate (found ${blocks.length})`);
    try { der = pemToDer(blocks[0]); } catch (e) { throw new TypeError(`the root is not an X.509 certificate: ${e.message}`); }
  } else if (isBytes(root)) {
    der = root;
  } else {
    throw new TypeError('the root must be PEM text or DER bytes (a Uint8Array)');
  }
  try {
    parseCertificate(der, 'the root certificate');
  } catch (e) {
    if (!(e instanceof DerError)) throw e;
    throw new TypeError(`the root is not an X.509 certificate: ${e.message}`);
  }
  return Uint8Array.from(der);
}

/**
 * A PCR policy ({"pcr_sets": [{"PCR0": "<96 hex>", ...}, ...]}, as JSON text
 * or the parsed object) as an array of Map<number, Uint8Array>. Throws
 * TypeError naming the offending key.
 */
export function parsePcrPolicy(policy) {
  if (Array.isArray(policy) && policy.every((s) => s instanceof Map)) return policy;
  let o = policy;
  if (typeof policy === 'string' || isBytes(policy)) {
    const text = typeof policy === 'string' ? policy : new TextDecoder().decode(policy);
    if (text.length > 65536) throw new TypeError('PCR policy: more than 64 KiB');
    try { o = JSON.parse(text); } catch (e) { throw new TypeError(`PCR policy: not JSON: ${e.message}`); }
  }
  const err = (m) => { throw new TypeError(`PCR policy: ${m}`); };
  if (!o || typeof o !== 'object' || Array.isArray(o)) err('not a JSON object');
  for (const k of Object.keys(o)) if (k !== 'pcr_sets') err(`unknown key ${JSON.stringify(k)} (expected pcr_sets)`);
  if (!Array.isArray(o.pcr_sets)) err('pcr_sets is not an array');
  if (o.pcr_sets.length === 0) err('pcr_sets is empty');
  if (o.pcr_sets.length > 16) err('more than 16 pcr_sets');
  return o.pcr_sets.map((s, i) => {
    if (!s || typeof s !== 'object' || Array.isArray(s)) err(`pcr_sets[${i}]: not an object`);
    const keys = Object.keys(s);
    if (keys.length < 1 || keys.length > 32) err(`pcr_sets[${i}]: not 1..32 PCRs`);
    const set = new Map();
    for (const k of keys) {
      const m = /^PCR(0|[1-9][0-9]?)$/.exec(k);
      if (!m || Number(m[1]) > 31) err(`pcr_sets[${i}]: unknown key ${JSON.stringify(k)} (expected PCR0..PCR31)`);
      if (typeof s[k] !== 'string' || !/^[0-9a-fA-F]{96}$/.test(s[k])) err(`pcr_sets[${i}].${k}: not 48 bytes of hex (96 hex digits)`);
      set.set(Number(m[1]), hexToBytes(s[k]));
    }
    return set;
  });
}

// ---- verification ------------------------------------------------------------

// The certificate's first CN for messages: printable ASCII only and cut at
// 64 characters (it comes from the document), "?" when there is none.
const cn = (c) => (c.subject.cn ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 64) || '?';

// A certificate from the document, parsed strictly; `check` fails when it is not one.
function certificate(der, check, what) {
  try {
    return parseCertificate(der, what);
  } catch (e) {
    if (!(e instanceof DerError)) throw e;
    const why = e.message.startsWith(`${what}: `) ? e.message.slice(what.length + 2) : e.message;
    return fail(check, `${what} is not a DER X.509 certificate (${why})`);
  }
}

// The public key of a certificate when it is a valid EC P-384 point under
// the named curve secp384r1 (compressed or not), else null.
function p384Key(c) {
  const k = c.publicKey;
  if (k.algorithm !== OIDS.ecPublicKey || k.curve !== OIDS.secp384r1 || k.unusedBits !== 0) return null;
  try {
    p384.Point.fromBytes(k.key).assertValidity();
    return k.key;
  } catch {
    return null;
  }
}

// ECDSA verification of a SHA-384 digest (sig: r ‖ s, 96 bytes). lowS:
// false because P-384 signatures (unlike Bitcoin's) may have any s and
// @noble/curves refuses a high s by default; prehash: false because the
// digest is already SHA-384. Anything it throws on is a failed signature.
function es384(sig, digest, key) {
  try {
    return p384.verify(sig, digest, key, { prehash: false, lowS: false, format: 'compact' });
  } catch {
    return false;
  }
}

// Critical extensions the chain check may meet (RFC 5280 4.2: a verifier
// refuses a certificate with a critical extension it does not process).
// basicConstraints and keyUsage are checked below; extKeyUsage,
// subjectAltName and certificatePolicies restrict nothing in OpenSSL's
// verifier as the C reference runs it (no purpose, host or policy set), so
// they are accepted as there. Anything else is refused: an unknown one as
// OpenSSL refuses it, and one OpenSSL would enforce but this client does
// not (nameConstraints, policyConstraints, ...) rather than ignored.
const HANDLED_CRITICAL = new Set([OIDS.basicConstraints, OIDS.keyUsage, OIDS.extKeyUsage, OIDS.subjectAltName, OIDS.certificatePolicies]);
const unhandledCritical = (c) => [...c.extensions].find(([id, e]) => e.critical && !HANDLED_CRITICAL.has(id))?.[0];

/**
 * Verifies a document (raw CBOR, base64, or the result of
 * parseAttestationDocument) with docs/ATTESTATION.md's checks, in order:
 * decode, signature, root, chain, validity, freshness, debug, pcrs,
 * public_key, nonce. Options: root (PEM / DER, see rootDer; default the AWS
 * root), pcrs (a policy; none = not checked), at (the verification time:
 * Unix seconds or a Date; default now), maxAgeSecs (0/undefined = no
 * freshness check), allowDebug, publicKey and nonce (expected values, bytes
 * or hex; undefined = not checked). Returns the parsed document; throws
 * AttestationCheckError (with .check) at the first failed check.
 */
export function verifyAttestation(input, opts = {}) {
  const doc = input && input.payload && input.protectedHeader ? input : parseAttestationDocument(input);
  const T = opts.at === undefined ? Date.now() / 1000 : opts.at instanceof Date ? opts.at.getTime() / 1000 : Number(opts.at);
  const Tms = Math.floor(T) * 1000;

  // 2. signature: ES384 (ECDSA P-384, SHA-384) over the Sig_structure, by the leaf's key
  const leaf = certificate(doc.certificate, 'signature', 'the leaf certificate');
  const leafKey = p384Key(leaf);
  if (!leafKey) fail('signature', "the leaf certificate's key is not an EC P-384 key");
  if (!es384(doc.signature, sha384(sigStructure(doc)), leafKey))
    fail('signature', "the ES384 signature over the COSE Sig_structure does not verify with the leaf certificate's key");

  // 3. root: byte for byte the pinned one; a root the document brings is never trusted
  const pinned = rootDer(opts.root);
  if (!eq(doc.cabundle[0], pinned))
    fail('root', `cabundle[0] is not the pinned root certificate (its SHA-256 is ${hex(sha256(doc.cabundle[0])).slice(0, 16)}...)`);

  // 4. chain: leaf <- cabundle[n-1] <- ... <- cabundle[1] <- pinned root
  const path = [leaf];
  for (let i = doc.cabundle.length - 1; i >= 1; i--) path.push(certificate(doc.cabundle[i], 'chain', `cabundle[${i}]`));
  path.push(parseCertificate(pinned, 'the pinned root')); // parsed by rootDer already: cannot fail
  if (leaf.basicConstraints?.ca) fail('chain', 'the leaf certificate is a CA (basicConstraints CA:TRUE)');
  if (leaf.keyUsage && !leaf.keyUsage.digitalSignature) fail('chain', "the leaf certificate's key usage does not allow digitalSignature");
  for (let depth = 0; depth < path.length; depth++) {
    const crit = unhandledCritical(path[depth]);
    if (crit) fail('chain', `unhandled critical extension ${oidName(crit)} (depth ${depth}, CN=${cn(path[depth])})`);
  }
  for (let depth = 0; depth < path.length - 1; depth++) {
    const c = path[depth], issuer = path[depth + 1];
    const at = `(depth ${depth}, CN=${cn(c)})`, iat = `(depth ${depth + 1}, CN=${cn(issuer)})`;
    // OpenSSL's X509_check_issued: the names, then the authority key identifier.
    if (c.issuer.key !== issuer.subject.key) fail('chain', `subject issuer mismatch ${at}`);
    const akid = c.authorityKeyId;
    if (akid?.keyId && issuer.subjectKeyId && !eq(akid.keyId, issuer.subjectKeyId)) fail('chain', `authority and subject key identifier mismatch ${at}`);
    if ((akid?.serial && !eq(akid.serial, issuer.serial)) || (akid?.issuer && akid.issuer.key !== issuer.issuer.key))
      fail('chain', `authority and issuer serial number mismatch ${at}`);
    if (!issuer.basicConstraints?.ca) fail('chain', `invalid CA certificate ${iat}`);
    if (issuer.keyUsage && !issuer.keyUsage.keyCertSign) fail('chain', `key usage does not include certificate signing ${iat}`);
    // CAs below the issuer on the path (the leaf excluded).
    const pathLen = issuer.basicConstraints.pathLen;
    if (pathLen !== undefined && depth > pathLen) fail('chain', `path length constraint exceeded ${iat}`);
    // Only ECDSA P-384 with SHA-384, what AWS (and the development CA) use.
    const alg = c.signatureAlgorithm;
    if (alg.oid !== OIDS.ecdsaWithSHA384 || alg.params !== null)
      fail('chain', `unsupported certificate signature algorithm ${oidName(alg.oid)}${alg.params ? ' with parameters' : ''}: only ecdsa-with-SHA384 is accepted ${at}`);
    const issuerKey = p384Key(issuer);
    if (!issuerKey) fail('chain', `the issuer's key is not an EC P-384 key ${iat}`);
    let sig;
    try { sig = ecdsaSignatureCompact(c.signatureValue, 48); } catch (e) { if (!(e instanceof DerError)) throw e; }
    if (!sig || !es384(sig, sha384(c.tbs), issuerKey)) fail('chain', `certificate signature failure ${at}`);
  }

  // 5. validity of every certificate, the root first (as OpenSSL reports it);
  // notBefore <= T <= notAfter, both inclusive (RFC 5280 4.1.2.5)
  if (!(T <= 253402300799)) fail('validity', `the verification time ${T} is past 9999-12-31`);
  for (let depth = path.length - 1; depth >= 0; depth--) {
    const c = path[depth];
    const span = `(depth ${depth}, CN=${cn(c)}, valid ${iso(c.notBefore)} .. ${iso(c.notAfter)}, verification time ${iso(Tms)})`;
    if (Tms < c.notBefore) fail('validity', `certificate is not yet valid ${span}`);
    if (Tms > c.notAfter) fail('validity', `certificate has expired ${span}`);
  }

  // 6. freshness (whole seconds, as the C verifier)
  if (opts.maxAgeSecs) {
    const at = Math.floor(T), ts = Math.floor(doc.timestampMs / 1000);
    if (ts > at && ts - at > 300)
      fail('freshness', `the document's timestamp ${iso(ts * 1000)} is ${ts - at} s after the verification time ${iso(at * 1000)} (at most 300 s allowed)`);
    if (at > ts && at - ts > opts.maxAgeSecs)
      fail('freshness', `the document is ${at - ts} s old (timestamp ${iso(ts * 1000)}, verification time ${iso(at * 1000)}, at most ${opts.maxAgeSecs} s allowed)`);
  }

  // 7. debug
  if (!opts.allowDebug && [0, 1, 2].every((i) => doc.pcrs.has(i) && doc.pcrs.get(i).every((x) => x === 0)))
    fail('debug', 'PCR0, PCR1 and PCR2 are all zero (a debug-mode enclave, whose memory the parent instance can read)');

  // 8. pcrs
  if (opts.pcrs) {
    const sets = parsePcrPolicy(opts.pcrs);
    let best;
    for (let i = 0; i < sets.length; i++) {
      let misses = 0, first;
      for (const [n, want] of [...sets[i]].sort((a, b) => a[0] - b[0])) {
        const got = doc.pcrs.get(n);
        if (got && got.length === 48 && eq(got, want)) continue;
        misses++;
        first ??= `PCR${n} differs: expected ${short(want)}, got ${!got ? 'absent' : got.length !== 48 ? `${got.length} bytes` : short(got)}`;
      }
      if (misses === 0) { best = undefined; break; }
      if (!best || misses < best.misses) best = { i, misses, first };
    }
    if (best) fail('pcrs', `the document matches none of the ${sets.length} allowed PCR sets; closest is set ${best.i}, where ${best.first}`);
  }

  // 9. public_key, 10. nonce
  const expect = (name, want, got) => {
    if (want === undefined || want === null) return;
    let w = want;
    if (typeof want === 'string') {
      try { w = hexToBytes(want); } catch { fail(name, `the expected ${name} is not hex`); }
    }
    if (!got) fail(name, `the document carries no ${name}`);
    if (!eq(w, got)) fail(name, `the document's ${name} (${got.length} bytes, ${short(got)}) differs from the expected one (${w.length} bytes, ${short(w)})`);
  };
  expect('public_key', opts.publicKey, doc.publicKey);
  expect('nonce', opts.nonce, doc.nonce);
  return doc;
}

/** PCR0, PCR1 and PCR2 of a parsed document as hex (what a PCR policy pins). */
export function documentPcrs(doc, which = [0, 1, 2]) {
  return Object.fromEntries(which.filter((n) => doc.pcrs.has(n)).map((n) => [`PCR${n}`, hex(doc.pcrs.get(n))]));
}


// ---- the verifyEnclave hook (docs/ATTESTATION.md "The client") ---------------

/**
 * The verifyEnclave hook of createKeygen / joinKeygen (or the client's
 * default): for every enclave it is given ({enclave_id, public_key}, the key
 * about to be encrypted to), it draws a fresh 32-byte nonce, fetches
 * GET /api/v1/enclaves/{id}/attestation?nonce=..., verifies the document with
 * the pinned root (default the AWS root), the PCR policy (required),
 * maxAgeSecs (300), debug refused unless allowDebug, the nonce and the key
 * the gateway relays, and requires that key to equal the one given. A
 * verified (enclave, key) pair is not fetched again by the same verifier.
 * Throws AttestationError (a KeyMeldError, type 'attestation_failed', with
 * .check and .enclaveId) before anything is encrypted.
 * opts.client: the KeyMeldClient to fetch with (default: the one calling the hook).
 */
export function attestationVerifier({ root, pcrs, maxAgeSecs = 300, allowDebug = false, client } = {}) {
  if (pcrs === undefined || pcrs === null)
    throw new TypeError('attestation needs a PCR policy: pass pcrs (deploy/nitro writes it; the development stack writes DEV_DIR/pcrs.json)');
  const policy = parsePcrPolicy(pcrs);
  const pinned = rootDer(root);
  const verified = new Set();
  const hook = async (enclaves, caller) => {
    const c = client ?? caller;
    if (!c) throw new TypeError('attestationVerifier: no client to fetch documents with (pass {client})');
    for (const e of enclaves) {
      const id = Number(e.enclave_id);
      const key = String(e.public_key ?? e.enclave_public_key).toLowerCase();
      const pair = `${id}:${key}`;
      if (verified.has(pair)) continue;
      const prefix = `enclave ${id}'s key is not attested; nothing was encrypted to it`;
      const nonce = new Uint8Array(32);
      globalThis.crypto.getRandomValues(nonce);
      let reply;
      try {
        reply = await c.attestation(id, nonce);
      } catch (err) {
        throw new AttestationError(`${prefix}: ${err.message}`, { enclaveId: id, check: 'fetch', status: err.status ?? 0, type: err.type ?? 'attestation_failed', requestId: err.requestId, body: err.body, cause: err });
      }
      let doc;
      try {
        if (typeof reply?.document !== 'string' || typeof reply?.public_key !== 'string') fail('decode', 'the reply has no document and public_key');
        doc = verifyAttestation(reply.document, { root: pinned, pcrs: policy, maxAgeSecs, allowDebug, nonce, publicKey: reply.public_key });
        if (reply.public_key.toLowerCase() !== key) fail('public_key', 'the attested key differs from the key given for this enclave');
      } catch (err) {
        if (!(err instanceof AttestationCheckError)) throw err;
        throw new AttestationError(`${prefix}: ${err.message}`, { enclaveId: id, check: err.check, body: reply });
      }
      if (verified.size >= 64) verified.clear();
      verified.add(pair);
      hook.documents.set(id, doc);
    }
  };
  /** The last verified document of each enclave id (parsed). */
  hook.documents = new Map();
  return hook;
}
