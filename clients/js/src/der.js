// der.js - a small, strict reader of DER (ITU-T X.690, Distinguished
// Encoding Rules), enough for X.509 certificates (x509.js).
//
// Certificates come from the attestation document, i.e. from whoever
// answers the attestation request, so the reader is written to refuse
// rather than guess: every length is checked against the bytes that are
// really there before anything is read; only the definite, shortest length
// form of DER is accepted (no BER indefinite lengths, no padded length
// octets, at most 4 length octets); SEQUENCE and SET must be constructed and
// every other universal type primitive (DER has no constructed strings);
// trailing bytes after the outermost item are an error; and the input size,
// the nesting depth and the number of items are bounded, so a hostile input
// costs at most a few thousand small objects and a bounded recursion.
// Every failure is a DerError naming what was being read and the offset.

/** A malformed or over-limit DER input. `offset` is where, in bytes from the start of the input. */
export class DerError extends Error {
  constructor(message, offset) {
    super(message);
    this.name = 'DerError';
    this.offset = offset;
  }
}

/** Default limits of decodeDer (a Nitro certificate is under 1 KiB and nests 6 deep). */
export const DER_LIMITS = Object.freeze({ maxBytes: 65536, maxDepth: 16, maxNodes: 4096 });

/** Tag classes (the two high bits of the identifier octet). */
export const UNIVERSAL = 0, APPLICATION = 1, CONTEXT = 2, PRIVATE = 3;

/** Universal tag numbers used by X.509. */
export const TAG = Object.freeze({
  BOOLEAN: 1, INTEGER: 2, BIT_STRING: 3, OCTET_STRING: 4, NULL: 5, OID: 6,
  UTF8String: 12, SEQUENCE: 16, SET: 17, PrintableString: 19, TeletexString: 20,
  IA5String: 22, UTCTime: 23, GeneralizedTime: 24, VisibleString: 26,
  UniversalString: 28, BMPString: 30,
});
const TAG_NAMES = Object.fromEntries(Object.entries(TAG).map(([k, v]) => [v, k.replace('_', ' ').replace('OID', 'OBJECT IDENTIFIER')]));

/** "SEQUENCE", "INTEGER", "[0]", "[APPLICATION 3]": for messages. */
export function tagName(node) {
  if (node.cls === UNIVERSAL) return TAG_NAMES[node.tag] ?? `universal tag ${node.tag}`;
  return node.cls === CONTEXT ? `[${node.tag}]` : `[${node.cls === APPLICATION ? 'APPLICATION' : 'PRIVATE'} ${node.tag}]`;
}

/**
 * Decodes exactly one DER item (nothing may follow it) into a tree of nodes
 * {cls, tag, constructed, offset, der, content, children}: `der` is the whole
 * TLV and `content` its value (both views into the input, not copies),
 * `children` the decoded items of a constructed value (null for primitive
 * ones). Options: what (the name used in messages), maxBytes, maxDepth (the
 * outermost item is depth 0), maxNodes. Throws DerError.
 */
export function decodeDer(input, { what = 'DER', maxBytes = DER_LIMITS.maxBytes, maxDepth = DER_LIMITS.maxDepth, maxNodes = DER_LIMITS.maxNodes } = {}) {
  if (!isBytes(input)) throw new TypeError(`${what}: expected a Uint8Array`);
  const b = input;
  const err = (off, m) => { throw new DerError(`${what}: ${m} at offset ${off}`, off); };
  if (b.length === 0) err(0, 'no data');
  if (b.length > maxBytes) throw new DerError(`${what}: ${b.length} bytes, more than ${maxBytes}`, 0);
  let nodes = 0;

  // Reads the item starting at `off`, which must end at or before `limit`.
  function item(off, limit, depth) {
    if (depth > maxDepth) err(off, `nesting deeper than ${maxDepth}`);
    if (++nodes > maxNodes) err(off, `more than ${maxNodes} items`);
    if (off >= limit) err(off, 'item runs past the end');
    const id = b[off];
    const cls = id >> 6, constructed = (id & 0x20) !== 0, tag = id & 0x1f;
    // X.509 uses no tag number above 30, so the multi-octet form is refused
    // rather than parsed.
    if (tag === 0x1f) err(off, 'a multi-octet tag number (not used by X.509)');
    if (cls === UNIVERSAL && tag === 0) err(off, 'an end-of-contents marker (BER indefinite length, not DER)');
    if (off + 1 >= limit) err(off, 'length runs past the end');
    let len = b[off + 1], hdr = 2;
    if (len === 0x80) err(off, 'an indefinite length (BER, not DER)');
    if (len === 0xff) err(off, 'a reserved length octet 0xff');
    if (len > 0x80) {
      const n = len & 0x7f;
      if (n > 4) err(off, `a length of ${n} octets (at most 4 accepted)`);
      if (off + 2 + n > limit) err(off, 'length runs past the end');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[off + 2 + i];
      // DER: the shortest form, so no leading zero octet and no long form below 128.
      if (b[off + 2] === 0) err(off, 'a length with a leading zero octet (not DER)');
      if (len < 0x80) err(off, `a length of ${len} in the long form (not DER)`);
      hdr = 2 + n;
    }
    const start = off + hdr, end = start + len;
    if (end > limit) err(off, `${tagName({ cls, tag })} of ${len} bytes runs past the end`);
    if (cls === UNIVERSAL) {
      const mustBeConstructed = tag === TAG.SEQUENCE || tag === TAG.SET;
      if (mustBeConstructed && !constructed) err(off, `a primitive ${tagName({ cls, tag })}`);
      if (!mustBeConstructed && constructed) err(off, `a constructed ${tagName({ cls, tag })} (BER, not DER)`);
    }
    const node = { cls, tag, constructed, offset: off, der: b.subarray(off, end), content: b.subarray(start, end), children: null };
    if (constructed) {
      node.children = [];
      for (let p = start; p < end;) {
        const c = item(p, end, depth + 1);
        node.children.push(c);
        p = c.offset + c.der.length;
      }
    }
    return node;
  }

  const root = item(0, b.length, 0);
  if (root.der.length !== b.length) err(root.der.length, `${b.length - root.der.length} trailing bytes after the item`);
  return root;
}

/** True for a Uint8Array, also one of another realm (an iframe, a vm context). */
export function isBytes(x) {
  return x instanceof Uint8Array || (ArrayBuffer.isView(x) && x.constructor?.name === 'Uint8Array');
}

// ---- typed readers: each checks the node's tag and DER's rules for the type

/** Throws unless `node` exists and has the class, tag and form given; returns it. */
export function expect(node, what, tag, cls = UNIVERSAL, constructed) {
  const want = tagName({ cls, tag });
  if (!node) throw new DerError(`${what}: missing (expected ${want})`);
  if (node.cls !== cls || node.tag !== tag) throw new DerError(`${what}: expected ${want}, found ${tagName(node)} at offset ${node.offset}`, node.offset);
  if (constructed !== undefined && node.constructed !== constructed)
    throw new DerError(`${what}: ${want} at offset ${node.offset} is ${node.constructed ? 'constructed' : 'primitive'}`, node.offset);
  return node;
}

const bad = (node, what, m) => { throw new DerError(`${what}: ${m} at offset ${node.offset}`, node.offset); };

/**
 * The content octets of an INTEGER (or of an implicitly tagged one: pass the
 * tag) in two's complement, checked to be in the shortest form.
 */
export function integerBytes(node, what, tag = TAG.INTEGER, cls = UNIVERSAL) {
  const c = expect(node, what, tag, cls, false).content;
  if (c.length === 0) bad(node, what, 'an empty INTEGER');
  if (c.length > 1 && ((c[0] === 0x00 && !(c[1] & 0x80)) || (c[0] === 0xff && (c[1] & 0x80))))
    bad(node, what, 'an INTEGER not in its shortest form (not DER)');
  return c;
}

/** A non-negative INTEGER that fits a JS number below 2^31 (versions, path lengths). */
export function smallUnsigned(node, what) {
  const c = integerBytes(node, what);
  if (c[0] & 0x80) bad(node, what, 'a negative INTEGER');
  const v = c.length > 5 ? Infinity : c.reduce((a, x) => a * 256 + x, 0);
  if (v >= 2 ** 31) bad(node, what, 'an INTEGER of 2^31 or more');
  return v;
}

/** A BOOLEAN: DER allows exactly 00 (false) and ff (true). */
export function boolean(node, what) {
  const c = expect(node, what, TAG.BOOLEAN).content;
  if (c.length !== 1 || (c[0] !== 0x00 && c[0] !== 0xff)) bad(node, what, 'a BOOLEAN other than 00 or ff (not DER)');
  return c[0] === 0xff;
}

/** NULL: no content. */
export function nullValue(node, what) {
  if (expect(node, what, TAG.NULL).content.length !== 0) bad(node, what, 'a NULL with content');
  return null;
}

/** An OBJECT IDENTIFIER as dotted text ("1.2.840.10045.4.3.3"), each arc in its shortest base-128 form. */
export function oid(node, what) {
  const c = expect(node, what, TAG.OID).content;
  if (c.length === 0 || c.length > 64) bad(node, what, `an OBJECT IDENTIFIER of ${c.length} bytes (1..64 accepted)`);
  if (c[c.length - 1] & 0x80) bad(node, what, 'an OBJECT IDENTIFIER whose last arc is cut');
  const arcs = [];
  let v = 0n, first = true;
  for (let i = 0; i < c.length; i++) {
    if (first && c[i] === 0x80) bad(node, what, 'an OBJECT IDENTIFIER arc with a leading 0x80 (not DER)');
    first = false;
    v = (v << 7n) | BigInt(c[i] & 0x7f);
    if (!(c[i] & 0x80)) {
      if (arcs.length === 0) arcs.push(...(v < 40n ? [0n, v] : v < 80n ? [1n, v - 40n] : [2n, v - 80n]));
      else arcs.push(v);
      v = 0n;
      first = true;
    }
  }
  return arcs.join('.');
}

/** A BIT STRING: {unusedBits, bytes}; DER requires the unused bits to be zero. */
export function bitString(node, what, tag = TAG.BIT_STRING, cls = UNIVERSAL) {
  const c = expect(node, what, tag, cls, false).content;
  if (c.length === 0) bad(node, what, 'a BIT STRING without its unused-bits octet');
  const unusedBits = c[0];
  if (unusedBits > 7) bad(node, what, `a BIT STRING with ${unusedBits} unused bits`);
  if (c.length === 1 && unusedBits !== 0) bad(node, what, 'an empty BIT STRING with unused bits');
  if (c.length > 1 && (c[c.length - 1] & ((1 << unusedBits) - 1))) bad(node, what, 'a BIT STRING whose unused bits are set (not DER)');
  return { unusedBits, bytes: c.subarray(1) };
}

/** The content of an OCTET STRING (or of an implicitly tagged one). */
export function octetString(node, what, tag = TAG.OCTET_STRING, cls = UNIVERSAL) {
  return expect(node, what, tag, cls, false).content;
}

/**
 * A UTCTime "YYMMDDHHMMSSZ" (YY < 50: 20YY, else 19YY) or GeneralizedTime
 * "YYYYMMDDHHMMSSZ", as milliseconds since 1970. Exactly the forms RFC 5280
 * (4.1.2.5) allows, and that OpenSSL's verifier accepts: seconds present, no
 * fraction, UTC ('Z'); each field in range (a 31 April is refused).
 */
export function time(node, what) {
  if (!node) throw new DerError(`${what}: missing (expected UTCTime or GeneralizedTime)`);
  const utc = node.cls === UNIVERSAL && node.tag === TAG.UTCTime;
  if (!utc && !(node.cls === UNIVERSAL && node.tag === TAG.GeneralizedTime))
    bad(node, what, `expected UTCTime or GeneralizedTime, found ${tagName(node)}`);
  if (node.content.length !== (utc ? 13 : 15)) bad(node, what, `a ${utc ? 'UTCTime' : 'GeneralizedTime'} of ${node.content.length} bytes, not of the form ${utc ? 'YYMMDDHHMMSSZ' : 'YYYYMMDDHHMMSSZ'}`);
  const s = String.fromCharCode(...node.content);
  const m = (utc ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/).exec(s);
  if (!m) bad(node, what, `a ${utc ? 'UTCTime' : 'GeneralizedTime'} not of the form ${utc ? 'YYMMDDHHMMSSZ' : 'YYYYMMDDHHMMSSZ'}`);
  let [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  if (utc) year += year < 50 ? 2000 : 1900;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const d = new Date(ms);
  // Date.UTC rolls 31 April over into 1 May and treats years 0..99 as 19xx: compare back.
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day ||
      d.getUTCHours() !== hour || d.getUTCMinutes() !== minute || d.getUTCSeconds() !== second)
    bad(node, what, `an invalid date or time ${JSON.stringify(s)}`);
  return ms;
}

/** Decodes the DER held in an OCTET STRING (an extension's value) as one item. */
export function decodeInner(bytes, what) {
  return decodeDer(bytes, { what, maxDepth: 8, maxNodes: 512 });
}
