// ecies_interop.js - src/crypto ECIES against the npm package eciesjs (its
// default configuration: secp256k1, uncompressed ephemeral key, 16-byte
// nonce, AES-256-GCM, HKDF-SHA256 over ephemeral || shared point).
//
//   node ecies_interop.js <path to ecies_helper>
//
// eciesjs encrypts -> C decrypts, C encrypts -> eciesjs decrypts, for many
// sizes and both public key encodings; then tampered, truncated and wrongly
// keyed eciesjs ciphertexts must be refused by C with a clean error (exit 1,
// no crash).
'use strict';

const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { encrypt, decrypt, PrivateKey } = require('eciesjs');

const helper = process.argv[2];
if (!helper) {
  console.error('usage: node ecies_interop.js <ecies_helper>');
  process.exit(2);
}

const hex = (b) => Buffer.from(b).toString('hex');
const run = (args, input) =>
  execFileSync(helper, args, { input: input || '', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }).trim();

// Runs the helper expecting a clean refusal: exit status 1, no signal.
function refuse(args, input, what) {
  try {
    execFileSync(helper, args, { input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    assert.strictEqual(e.signal, null, `${what}: helper died with ${e.signal}`);
    assert.strictEqual(e.status, 1, `${what}: exit ${e.status}: ${e.stderr}`);
    assert.match(String(e.stderr), /^error: /, `${what}: no error message`);
    return;
  }
  assert.fail(`${what}: ciphertext was accepted`);
}

const sizes = [0, 1, 15, 16, 17, 31, 32, 33, 64, 100, 1000, 4096, 65536];
let trips = 0;
let refusals = 0;

// eciesjs -> C
const jsKey = new PrivateKey();
for (const n of sizes) {
  for (const pk of [jsKey.publicKey.toBytes(true), jsKey.publicKey.toBytes(false)]) {
    const msg = crypto.randomBytes(n);
    const ct = encrypt(pk, msg);
    assert.strictEqual(ct.length, n + 97);
    assert.strictEqual(run(['decrypt', jsKey.toHex()], hex(ct)), hex(msg), `js->c size ${n}`);
    trips++;
  }
}

// C -> eciesjs
const [cSk, cPk33, cPk65] = run(['keygen']).split(' ');
for (const n of sizes) {
  for (const pk of [cPk33, cPk65]) {
    const msg = crypto.randomBytes(n);
    const ct = Buffer.from(run(['encrypt', pk], hex(msg)), 'hex');
    assert.strictEqual(ct.length, n + 97);
    assert.strictEqual(ct[0], 4, 'ephemeral key must be uncompressed');
    assert.strictEqual(hex(decrypt(cSk, ct)), hex(msg), `c->js size ${n}`);
    trips++;
  }
}

// Refusals: every region tampered, truncations, wrong key, garbage.
const msg = crypto.randomBytes(48);
const ct = Buffer.from(encrypt(jsKey.publicKey.toBytes(true), msg));
for (const pos of [0, 1, 40, 64, 65, 70, 80, 81, 90, 96, 97, 120, ct.length - 1]) {
  for (const bit of [0x01, 0x80]) {
    const bad = Buffer.from(ct);
    bad[pos] ^= bit;
    refuse(['decrypt', jsKey.toHex()], hex(bad), `flip byte ${pos}`);
    refusals++;
  }
}
for (const len of [0, 1, 64, 65, 80, 96, 97, ct.length - 1]) {
  refuse(['decrypt', jsKey.toHex()], hex(ct.subarray(0, len)), `truncated to ${len}`);
  refusals++;
}
refuse(['decrypt', new PrivateKey().toHex()], hex(ct), 'wrong key');
refuse(['decrypt', jsKey.toHex()], hex(Buffer.concat([ct, Buffer.from([0])])), 'extra byte');
refuse(['decrypt', jsKey.toHex()], 'ff'.repeat(200), 'garbage');
refusals += 3;

// And eciesjs refuses our tampered output too (sanity of the test itself).
const cct = Buffer.from(run(['encrypt', cPk33], hex(msg)), 'hex');
cct[cct.length - 1] ^= 1;
assert.throws(() => decrypt(cSk, cct));

const version = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'node_modules', 'eciesjs', 'package.json'), 'utf8')).version;
console.log(`eciesjs ${version} interop: ${trips} round trips, ${refusals} refusals OK`);
