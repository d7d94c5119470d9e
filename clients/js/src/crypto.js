// crypto.js - the client formulas of docs/CRYPTO.md "Client formulas" and
// docs/API.md "Authentication", written from those definitions:
// auth key derivations, request signatures, signing approvals, ECIES to an
// enclave key (eciesjs default format), sealing with the session secret,
// BIP-327 KeySort/KeyAgg with the keygen tweak, aggregate_check, adaptor
// completion. Pure functions on Uint8Array; no I/O.
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import {
  bytesToHex,
  hexToBytes,
  concatBytes,
  randomBytes,
  utf8ToBytes,
} from '@noble/hashes/utils.js';
import { gcm } from '@noble/ciphers/aes.js';
import { encrypt as eciesEncrypt, decrypt as eciesDecrypt } from 'eciesjs';
import { keyAggregate, sortKeys } from '@scure/btc-signer/musig2.js';

export { bytesToHex, hexToBytes, concatBytes, randomBytes };

const Point = secp256k1.Point;
/** The secp256k1 group order n. */
export const N = Point.Fn.ORDER;

const enc = (s) => utf8ToBytes(s);
const mod = (a) => ((a % N) + N) % N;

function toBytes(x, name, len) {
  let b;
  if (typeof x === 'string') b = hexToBytes(x);
  else if (x instanceof Uint8Array) b = x;
  else throw new TypeError(`${name}: expected hex or Uint8Array`);
  if (len !== undefined && b.length !== len)
    throw new RangeError(`${name}: expected ${len} bytes, got ${b.length}`);
  return b;
}
export { toBytes as bytes };

const bytesToBig = (b) => BigInt('0x' + (bytesToHex(b) || '0'));
const bigToBytes = (x) => hexToBytes(x.toString(16).padStart(64, '0'));

function be32(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}
function be64(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), false);
  return b;
}

/** tagged_hash(tag, m) = SHA-256(SHA-256(tag) ‖ SHA-256(tag) ‖ m) (BIP-340). */
export function taggedHash(tag, ...msgs) {
  const t = sha256(enc(tag));
  return sha256(concatBytes(t, t, ...msgs));
}

/** HKDF-SHA256 (RFC 5869), 32 bytes; salt undefined = none. */
export function hkdf32(ikm, salt, info) {
  return hkdf(sha256, ikm, salt === undefined ? undefined : enc(salt), enc(info), 32);
}

// ---- UUIDs ---------------------------------------------------------------

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The 16 bytes of a UUID (RFC 9562 order) from its text form. */
export function uuidBytes(id) {
  if (typeof id !== 'string' || !UUID_RE.test(id)) throw new TypeError(`not a UUID: ${id}`);
  return hexToBytes(id.replace(/-/g, '').toLowerCase());
}

/** Lower-case hyphenated text form (what the auth key info and the API use). */
export function uuidText(id) {
  return bytesToHex(uuidBytes(id)).replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
}

/** A new UUIDv7 (RFC 9562), text form. */
export function uuidv7() {
  const b = randomBytes(16);
  const ms = BigInt(Date.now());
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  return uuidText(bytesToHex(b).replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5'));
}

// ---- keys ----------------------------------------------------------------

/** 32 fresh random bytes: a session secret or a participant private key. */
export function newSecret() {
  for (;;) {
    const k = randomBytes(32);
    const d = bytesToBig(k);
    if (d > 0n && d < N) return k;
  }
}

/** The 33-byte compressed public key of a 32-byte secret key. */
export function publicKey(seckey) {
  return secp256k1.getPublicKey(toBytes(seckey, 'seckey', 32), true);
}

/**
 * auth_derive_keypair: d = HKDF-SHA256(salt, ikm, info), used as is as the
 * BIP-340 secret key (no reduction; 0 or >= n fails, no retry).
 * Returns {seckey (32), pubkey (32, x-only)}.
 */
export function deriveAuthKey(ikm, salt, info) {
  const seckey = hkdf32(toBytes(ikm, 'ikm'), salt, info);
  const d = bytesToBig(seckey);
  if (d === 0n || d >= N) throw new Error('auth key derivation gave an invalid secret key');
  return { seckey, pubkey: schnorr.getPublicKey(seckey) };
}

/** The session auth key, from the 32-byte session secret (CRYPTO.md "Session auth key"). */
export function sessionAuthKey(sessionSecret) {
  return deriveAuthKey(toBytes(sessionSecret, 'session secret', 32), 'keymeld-session-auth-v1', 'session-auth-key');
}

/** The participant auth key for one keygen (CRYPTO.md "Participant auth key"). */
export function participantAuthKey(privateKey, keygenSessionId) {
  return deriveAuthKey(toBytes(privateKey, 'private key', 32), 'keymeld-approval-v1', uuidText(keygenSessionId));
}

// ---- request signatures (API.md "Authentication") -------------------------

/** digest = tagged_hash("KeyMeld/request/v1", be32|method|be32|path|be64 ts|nonce16|SHA-256(body)). */
export function requestDigest(method, path, timestamp, nonce, body) {
  const m = enc(method);
  const p = enc(path);
  const b = typeof body === 'string' ? enc(body) : body ?? new Uint8Array(0);
  return taggedHash(
    'KeyMeld/request/v1',
    be32(m.length), m, be32(p.length), p, be64(timestamp), toBytes(nonce, 'nonce', 16), sha256(b),
  );
}

/**
 * The three X-KeyMeld-* headers for a request signed with seckey (32 bytes).
 * opts.timestamp (Unix seconds), opts.nonce (16 bytes), opts.auxRand (32) for tests.
 */
export function signRequest(seckey, method, path, body, opts = {}) {
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const nonce = opts.nonce ? toBytes(opts.nonce, 'nonce', 16) : randomBytes(16);
  const digest = requestDigest(method, path, timestamp, nonce, body);
  const sig = schnorr.sign(digest, toBytes(seckey, 'seckey', 32), opts.auxRand ?? randomBytes(32));
  return {
    'X-KeyMeld-Timestamp': String(timestamp),
    'X-KeyMeld-Nonce': bytesToHex(nonce),
    'X-KeyMeld-Signature': bytesToHex(sig),
  };
}

// ---- signing approvals (CRYPTO.md "Signing approval") ---------------------

/** preimage = sid(16) ‖ kid(16) ‖ be64(ts) ‖ be32(N) ‖ (item_id(16) ‖ msg(32))*N. */
export function approvalPreimage(signingSessionId, keygenSessionId, timestamp, items) {
  const parts = [uuidBytes(signingSessionId), uuidBytes(keygenSessionId), be64(timestamp), be32(items.length)];
  for (const it of items) parts.push(uuidBytes(it.itemId), toBytes(it.message, 'message', 32));
  return concatBytes(...parts);
}

export function approvalDigest(signingSessionId, keygenSessionId, timestamp, items) {
  return taggedHash('KeyMeld/signing-approval', approvalPreimage(signingSessionId, keygenSessionId, timestamp, items));
}

/** BIP-340 signature of the approval digest with the participant auth secret key. */
export function signApproval(authSeckey, signingSessionId, keygenSessionId, timestamp, items, auxRand) {
  const digest = approvalDigest(signingSessionId, keygenSessionId, timestamp, items);
  return schnorr.sign(digest, toBytes(authSeckey, 'auth seckey', 32), auxRand ?? randomBytes(32));
}

// ---- ECIES (eciesjs default) and session encryption -----------------------

/** ecies(enclave key, plaintext): E(65) ‖ nonce(16) ‖ tag(16) ‖ AES-256-GCM. */
export function eciesTo(enclavePublicKey, plaintext) {
  return new Uint8Array(eciesEncrypt(toBytes(enclavePublicKey, 'enclave public key'), toBytes(plaintext, 'plaintext')));
}

/** The inverse of eciesTo (tests, tools). */
export function eciesOpen(seckey, ciphertext) {
  return new Uint8Array(eciesDecrypt(toBytes(seckey, 'seckey', 32), toBytes(ciphertext, 'ciphertext')));
}

/** sealed(ctx, m) = ctx_len(1) ‖ ctx ‖ nonce(12) ‖ AES-256-GCM(m) ‖ tag(16), key HKDF(secret, info=ctx). */
export function seal(sessionSecret, context, plaintext, nonce) {
  const ctx = enc(context);
  if (ctx.length < 1 || ctx.length > 255) throw new RangeError('context must be 1..255 bytes');
  const key = hkdf32(toBytes(sessionSecret, 'session secret', 32), undefined, context);
  const iv = nonce ? toBytes(nonce, 'nonce', 12) : randomBytes(12);
  const ct = gcm(key, iv).encrypt(toBytes(plaintext, 'plaintext'));
  return concatBytes(Uint8Array.of(ctx.length), ctx, iv, ct);
}

/** Opens a sealed blob; throws unless its context is `context` and it authenticates. */
export function open(sessionSecret, context, blob) {
  const b = toBytes(blob, 'sealed blob');
  if (b.length < 1 || b.length < 1 + b[0] + 12 + 16) throw new Error(`sealed ${context}: too short`);
  const got = new TextDecoder().decode(b.subarray(1, 1 + b[0]));
  if (got !== context) throw new Error(`context mismatch: expected '${context}', got '${got}'`);
  const key = hkdf32(toBytes(sessionSecret, 'session secret', 32), undefined, context);
  const iv = b.subarray(1 + b[0], 13 + b[0]);
  try {
    return gcm(key, iv).decrypt(b.subarray(13 + b[0]));
  } catch {
    throw new Error(`sealed ${context}: does not authenticate with this session secret`);
  }
}

export function sealJSON(sessionSecret, context, value) {
  return seal(sessionSecret, context, enc(JSON.stringify(value)));
}
export function openJSON(sessionSecret, context, blob) {
  return JSON.parse(new TextDecoder().decode(open(sessionSecret, context, blob)));
}

// ---- tweaks and key aggregation (BIP-327, BIP-341/86) ---------------------

/**
 * Normalizes a tweak description to the tweak JSON of docs/PROTOCOL.md:
 * {type:'none'|'unspendable_taproot'|'taproot_with_merkle_root'|'plain_tweak'|'x_only_tweak',
 *  merkle_root?, tweak?} (hex or bytes accepted).
 */
export function tweakJSON(t) {
  if (t === undefined || t === null) return { type: 'none' };
  switch (t.type) {
    case 'none':
    case 'unspendable_taproot':
      return { type: t.type };
    case 'taproot_with_merkle_root':
      return { type: t.type, merkle_root: bytesToHex(toBytes(t.merkle_root ?? t.merkleRoot, 'merkle_root', 32)) };
    case 'plain_tweak':
    case 'x_only_tweak':
      return { type: t.type, tweak: bytesToHex(toBytes(t.tweak, 'tweak', 32)) };
    default:
      throw new TypeError(`unknown tweak type ${t.type}`);
  }
}

/**
 * KeySort + KeyAgg of compressed keys, then the tweak. Returns
 * {plain: 33-byte compressed key, xonly: 32-byte key signatures verify against}.
 */
export function aggregateKey(publicKeys, tweak) {
  const keys = sortKeys(publicKeys.map((k) => toBytes(k, 'public key', 33)));
  const t = tweakJSON(tweak);
  let ctx;
  switch (t.type) {
    case 'none':
      ctx = keyAggregate(keys);
      break;
    case 'unspendable_taproot':
    case 'taproot_with_merkle_root': {
      const inner = keyAggregate(keys).aggPublicKey.toBytes(true).subarray(1);
      const root = t.type === 'unspendable_taproot' ? new Uint8Array(0) : hexToBytes(t.merkle_root);
      ctx = keyAggregate(keys, [taggedHash('TapTweak', inner, root)], [true]);
      break;
    }
    default:
      ctx = keyAggregate(keys, [hexToBytes(t.tweak)], [t.type === 'x_only_tweak']);
  }
  const plain = ctx.aggPublicKey.toBytes(true);
  return { plain, xonly: plain.slice(1) };
}

/** aggregate_check = HMAC-SHA256(HKDF(secret, info "aggregate_check"), agg33 ‖ subset keys33...). */
export function aggregateCheck(sessionSecret, aggregate, subsetKeys = []) {
  const key = hkdf32(toBytes(sessionSecret, 'session secret', 32), undefined, 'aggregate_check');
  return hmac(sha256, key, concatBytes(toBytes(aggregate, 'aggregate', 33), ...subsetKeys.map((k) => toBytes(k, 'subset key', 33))));
}

/** BIP-340 verification (xonly 32-byte key). */
export function verifySignature(signature, message, xonly) {
  try {
    return schnorr.verify(toBytes(signature, 'signature', 64), toBytes(message, 'message'), toBytes(xonly, 'key', 32));
  } catch {
    return false;
  }
}

// ---- Taproot script trees (BIP-341) --------------------------------------
// What signPsbt needs to check a control block on its own, whatever the
// PSBT library did or did not validate.

/** The default (and only consensus-defined) leaf version, 0xc0. */
export const TAPSCRIPT_LEAF_VERSION = 0xc0;

function compactSize(n) {
  if (n < 0xfd) return Uint8Array.of(n);
  if (n <= 0xffff) return Uint8Array.of(0xfd, n & 0xff, n >> 8);
  const b = new Uint8Array(5);
  b[0] = 0xfe;
  new DataView(b.buffer).setUint32(1, n, true);
  return b;
}

/** hash_TapLeaf(leaf_version ‖ compact_size(len) ‖ script). */
export function tapLeafHash(script, leafVersion = TAPSCRIPT_LEAF_VERSION) {
  const s = toBytes(script, 'script');
  return taggedHash('TapLeaf', Uint8Array.of(leafVersion & 0xfe), compactSize(s.length), s);
}

/** The merkle root a control block's path proves for a leaf hash (hash_TapBranch of each sorted pair). */
export function tapMerkleRoot(leafHash, path = []) {
  let k = toBytes(leafHash, 'leaf hash', 32);
  for (const e of path) {
    const n = toBytes(e, 'merkle path element', 32);
    k = bytesToHex(k) < bytesToHex(n) ? taggedHash('TapBranch', k, n) : taggedHash('TapBranch', n, k);
  }
  return k;
}

/**
 * The BIP-341 output key of an x-only internal key and a merkle root (none:
 * key path only, BIP-86): Q = P + hash_TapTweak(P ‖ root)·G.
 * Returns {xonly: 32 bytes, parity: 0 | 1 (y of Q odd)}.
 */
export function taprootTweakKey(internalKey, merkleRoot) {
  const p = toBytes(internalKey, 'internal key', 32);
  const root = merkleRoot === undefined ? new Uint8Array(0) : toBytes(merkleRoot, 'merkle root', 32);
  const t = bytesToBig(taggedHash('TapTweak', p, root));
  if (t >= N) throw new Error('the Taproot tweak is not below the group order');
  const P = schnorr.utils.lift_x(bytesToBig(p));
  const Q = t === 0n ? P : P.add(Point.BASE.multiply(t));
  if (Q.equals(Point.ZERO)) throw new Error('the Taproot output key is infinity');
  const c = Q.toBytes(true);
  return { xonly: c.slice(1), parity: c[0] & 1 };
}

// ---- adaptor signatures (CRYPTO.md "Adaptor completion") ------------------

/** T = t·G, 33 bytes compressed. */
export function adaptorPoint(secret) {
  return secp256k1.getPublicKey(toBytes(secret, 'adaptor secret', 32), true);
}

/** The combined secret of a unit: t for single/or (the branch's), (t1+…+tk) mod n for and. */
export function adaptorSecret(result, secrets) {
  const list = secrets.map((s) => toBytes(s, 'adaptor secret', 32));
  let t;
  if (result.adaptor_type === 'and') t = mod(list.reduce((a, s) => a + bytesToBig(s), 0n));
  else t = bytesToBig(list.length === 1 ? list[0] : list[result.branch ?? 0]);
  if (t === 0n) throw new Error('adaptor secret is zero');
  const tb = bigToBytes(t);
  if (bytesToHex(adaptorPoint(tb)) !== result.adaptor_point.toLowerCase())
    throw new Error(`adaptor secret does not match adaptor_point ${result.adaptor_point}`);
  return tb;
}

/**
 * Checks a pre-signature before relying on it: s'·G = g·(R − T) + e·P
 * (g = 1 for even R, −1 for odd), e = BIP-340 challenge of x(R), P, m.
 */
export function verifyPresignature(result, message, xonly) {
  const pre = toBytes(result.presignature, 'presignature', 64);
  const T = Point.fromBytes(toBytes(result.adaptor_point, 'adaptor_point', 33));
  const R = Point.fromBytes(concatBytes(Uint8Array.of(result.nonce_parity ? 3 : 2), pre.subarray(0, 32)));
  const s = bytesToBig(pre.subarray(32));
  if (s >= N) return false;
  const P = schnorr.utils.lift_x(bytesToBig(toBytes(xonly, 'key', 32)));
  const e = mod(bytesToBig(taggedHash('BIP0340/challenge', pre.subarray(0, 32), toBytes(xonly, 'key', 32), toBytes(message, 'message'))));
  let lhs = R.subtract(T);
  if (result.nonce_parity) lhs = lhs.negate();
  if (e !== 0n) lhs = lhs.add(P.multiply(e));
  const sG = s === 0n ? Point.ZERO : Point.BASE.multiply(s);
  return sG.equals(lhs);
}

/** s = s' + t (parity 0) or s' − t (parity 1); signature = x(R) ‖ s. */
export function adaptorComplete(result, secrets) {
  const t = bytesToBig(adaptorSecret(result, secrets));
  const pre = toBytes(result.presignature, 'presignature', 64);
  const s1 = bytesToBig(pre.subarray(32));
  const s = result.nonce_parity ? mod(s1 - t) : mod(s1 + t);
  return concatBytes(pre.subarray(0, 32), bigToBytes(s));
}

/** The adaptor secret from a published signature: (s − s') (parity 0) or (s' − s) (parity 1). */
export function adaptorExtract(result, signature) {
  const pre = toBytes(result.presignature, 'presignature', 64);
  const sig = toBytes(signature, 'signature', 64);
  const s1 = bytesToBig(pre.subarray(32));
  const s = bytesToBig(sig.subarray(32));
  return bigToBytes(result.nonce_parity ? mod(s1 - s) : mod(s - s1));
}
