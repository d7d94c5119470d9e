// unit.test.js - the client formulas against the test vectors of
// docs/CRYPTO.md "Client formulas" (copied in fixtures/crypto-vectors.json;
// when the repository's docs/CRYPTO.md is next to this package, the copy
// must still equal it), plus round trips of ECIES and sealing; the
// attestation tests (attest.test.js: the real Nitro documents;
// der.test.js: the DER / X.509 parser; chain.test.js: the certificate
// checks on synthetic chains), the browser build (browser.test.js) and
// signPsbt offline (psbt.unit.test.js) run with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sha256 } from '@noble/hashes/sha2.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { parseKmvec } from './kmvec.js';
import * as km from '../src/index.js';

const { bytesToHex: hex, hexToBytes } = km;
const here = fileURLToPath(new URL('.', import.meta.url));
const { vectors } = JSON.parse(readFileSync(here + 'fixtures/crypto-vectors.json', 'utf8'));
const of = (kind) => vectors.filter((v) => v.vector === kind);

test('fixtures equal the kmvec blocks of docs/CRYPTO.md', (t) => {
  const doc = here + '../../../docs/CRYPTO.md';
  if (!existsSync(doc)) return t.skip('docs/CRYPTO.md not found (package outside the repository)');
  assert.deepEqual(parseKmvec(readFileSync(doc, 'utf8')), vectors);
  assert.equal(vectors.length, 8);
});

test('session auth key', () => {
  const [v] = of('session_auth_key');
  assert.equal(v.salt, 'keymeld-session-auth-v1');
  assert.equal(v.info, 'session-auth-key');
  const k = km.sessionAuthKey(hexToBytes(v.session_secret));
  assert.equal(hex(k.seckey), v.auth_seckey);
  assert.equal(hex(k.pubkey), v.auth_pubkey);
});

test('participant auth key', () => {
  const [v] = of('participant_auth_key');
  assert.equal(v.info, v.keygen_session_id);
  const k = km.participantAuthKey(hexToBytes(v.private_key), v.keygen_session_id);
  assert.equal(hex(k.seckey), v.auth_seckey);
  assert.equal(hex(k.pubkey), v.auth_pubkey);
  assert.equal(hex(km.publicKey(hexToBytes(v.private_key))), v.public_key);
  // The text form is lower-case whatever the caller passes.
  assert.equal(hex(km.participantAuthKey(hexToBytes(v.private_key), v.keygen_session_id.toUpperCase()).pubkey), v.auth_pubkey);
});

test('signing approval', () => {
  const [v] = of('approval');
  const items = v.item_id.map((id, i) => ({ itemId: id, message: hexToBytes(v.msg[i]) }));
  const ts = Number(v.timestamp);
  assert.equal(hex(km.approvalPreimage(v.signing_session_id, v.keygen_session_id, ts, items)), v.preimage);
  assert.equal(hex(km.approvalDigest(v.signing_session_id, v.keygen_session_id, ts, items)), v.digest);
  const sig = km.signApproval(hexToBytes(v.auth_seckey), v.signing_session_id, v.keygen_session_id, ts, items, hexToBytes(v.aux_rand));
  assert.equal(hex(sig), v.signature);
  assert.ok(km.verifySignature(sig, hexToBytes(v.digest), hexToBytes(v.auth_pubkey)));
});

test('request signatures', () => {
  const vs = of('request');
  assert.equal(vs.length, 2);
  for (const v of vs) {
    const nonce = hexToBytes(v.nonce);
    assert.equal(hex(sha256(new TextEncoder().encode(v.body))), v.body_sha256);
    assert.equal(hex(km.requestDigest(v.method, v.path, Number(v.timestamp), nonce, v.body)), v.digest);
    const h = km.signRequest(hexToBytes(v.seckey), v.method, v.path, v.body, {
      timestamp: Number(v.timestamp), nonce, auxRand: hexToBytes(v.aux_rand),
    });
    assert.deepEqual(h, { 'X-KeyMeld-Timestamp': v.timestamp, 'X-KeyMeld-Nonce': v.nonce, 'X-KeyMeld-Signature': v.signature });
  }
  // docs/API.md "What is signed": the same digest.
  assert.equal(hex(km.requestDigest('GET', '/api/v1/keygen/0190f5e2-6c1a-7b3e-9a4d-1c2b3a4d5e6f/status?wait_ms=1000', 1795538754, hexToBytes('000102030405060708090a0b0c0d0e0f'), '')),
    'e18f698f7fdb42aecdf519702e18f0be0f90468b27ce26c2b370f68ded0e43de');
});

test('adaptor completion', () => {
  const vs = of('adaptor');
  assert.equal(vs.length, 3);
  for (const v of vs) {
    const res = { adaptor_type: v.adaptor_type, adaptor_point: v.adaptor_point, presignature: v.presignature, nonce_parity: Number(v.nonce_parity), branch: 0 };
    const msg = hexToBytes(v.msg[0]); // msg may repeat (approvals), so it is a list
    const pk = hexToBytes(v.aggregate_xonly);
    assert.ok(km.verifyPresignature(res, msg, pk), 'pre-signature verifies');
    const sig = km.adaptorComplete(res, v.adaptor_secret);
    assert.equal(hex(sig), v.signature);
    assert.ok(km.verifySignature(sig, msg, pk));
    const t = km.adaptorSecret(res, v.adaptor_secret);
    assert.equal(hex(km.adaptorExtract(res, sig)), hex(t));
    // The wrong sign gives a signature that does not verify.
    const wrong = km.adaptorComplete({ ...res, nonce_parity: 1 - res.nonce_parity }, v.adaptor_secret);
    assert.ok(!km.verifySignature(wrong, msg, pk));
    assert.ok(!km.verifyPresignature({ ...res, nonce_parity: 1 - res.nonce_parity }, msg, pk));
  }
  // The adaptor vectors' key is the MuSig2 of 33×32 and 44×32 (no tweak).
  const agg = km.aggregateKey([km.publicKey('33'.repeat(32)), km.publicKey('44'.repeat(32))]);
  assert.equal(hex(agg.xonly), vs[0].aggregate_xonly);
});

test('ECIES to an enclave key round-trips (eciesjs format, either key encoding)', () => {
  const sk = km.newSecret();
  const msg = km.newSecret();
  const pk33 = km.publicKey(sk);
  const pk65 = secp256k1.Point.fromBytes(pk33).toBytes(false);
  for (const pk of [pk33, pk65]) {
    const ct = km.eciesTo(pk, msg);
    assert.equal(ct.length, 65 + 16 + 16 + 32); // E(65) ‖ nonce(16) ‖ tag(16) ‖ ciphertext
    assert.equal(ct[0], 4);
    assert.deepEqual(km.eciesOpen(sk, ct), msg);
  }
});

test('sealing with the session secret', () => {
  const secret = hexToBytes('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
  const m = new Uint8Array(32).fill(0xaa);
  const blob = km.seal(secret, 'session_data', m, hexToBytes('a0a1a2a3a4a5a6a7a8a9aaab'));
  assert.equal(blob.length, 1 + 12 + 12 + 32 + 16);
  assert.equal(blob[0], 12);
  assert.equal(new TextDecoder().decode(blob.subarray(1, 13)), 'session_data');
  assert.deepEqual(km.open(secret, 'session_data', blob), m);
  assert.throws(() => km.open(secret, 'signature', blob), /context mismatch: expected 'signature', got 'session_data'/);
  const bad = blob.slice(); bad[bad.length - 1] ^= 1;
  assert.throws(() => km.open(secret, 'session_data', bad), /authenticate/);
  assert.throws(() => km.open(km.newSecret(), 'session_data', blob), /authenticate/);
  // Relabelled with another context of the same length: the key differs, so it fails.
  const relabel = blob.slice(); relabel.set(new TextEncoder().encode('taproot_twea'), 1);
  assert.throws(() => km.open(secret, 'taproot_twea', relabel), /authenticate/);
  assert.deepEqual(km.openJSON(secret, 'taproot_tweak', km.sealJSON(secret, 'taproot_tweak', { type: 'none' })), { type: 'none' });
});

test('aggregate key: KeySort is order-independent, tweaks change it', () => {
  const pks = [km.newSecret(), km.newSecret(), km.newSecret()].map(km.publicKey);
  const a = km.aggregateKey(pks);
  assert.deepEqual(km.aggregateKey([pks[2], pks[0], pks[1]]).plain, a.plain);
  const t = km.aggregateKey(pks, { type: 'unspendable_taproot' });
  assert.notDeepEqual(t.xonly, a.xonly);
  // BIP-86: Q = P + hash_TapTweak(P)·G on the even-Y P (compare with @scure/btc-signer p2tr).
  assert.equal(t.plain.length, 33);
});

test('uuidv7', () => {
  const u = km.uuidv7();
  assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('the README example is examples/readme.mjs, verbatim', () => {
  const readme = readFileSync(here + '../README.md', 'utf8');
  const block = readme.match(/```js\n([\s\S]*?)```/)[1];
  const example = readFileSync(here + '../examples/readme.mjs', 'utf8');
  assert.equal(example.slice(example.indexOf('import ')), block);
});
import './attest.test.js';
import './der.test.js';
import './chain.test.js';
import './browser.test.js';
import './psbt.unit.test.js';
