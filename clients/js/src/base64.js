// base64.js - strict standard base64 (RFC 4648 section 4) without Node's
// Buffer or the browser's atob, so that attestation documents and PEM roots
// decode the same way everywhere: the caller strips whitespace and padding
// (and checks the padding it found), this decodes the body and refuses what
// a lenient decoder would silently accept.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;

/**
 * Decodes the body of standard base64 (no whitespace, no '=' padding).
 * Throws RangeError for a character outside the alphabet, a length of
 * 4k+1 characters (no byte string encodes to that), or a last character
 * whose unused low bits are set (another text would encode the same bytes).
 */
export function base64Decode(body) {
  if (typeof body !== 'string') throw new TypeError('base64: expected a string');
  if (body.length % 4 === 1) throw new RangeError('base64 of a wrong length');
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  let acc = 0, bits = 0, o = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    const v = c < 128 ? VALUE[c] : -1;
    if (v < 0) throw new RangeError(`base64: invalid character at ${i}`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1; // keep only the bits not yet written
  }
  // 2 or 4 bits are left over after a 3- or 2-character tail: they must be zero.
  if (acc !== 0) throw new RangeError('base64 whose last character has unused bits set');
  return out;
}
