// psbt_roundtrip.test.js - the PSBT round trip of issue #14 against a real
// stack (KEYMELD_GATEWAY; tests/js/js_client.sh starts one):
//
// A PSBT made by an independent implementation (@scure/btc-signer) with
//   input 0  a key-path spend of the group's BIP-86 output key Q (BIP-371
//            tapInternalKey P and tapBip32Derivation, BIP-373 participants),
//   input 1  a script-path spend of a P2TR whose internal key is the BIP-341
//            NUMS point H and whose only leaf is `<P> OP_CHECKSIG`, P being the
//            group's untweaked aggregate (KeyAgg, no tweak),
//   input 2  a script-path spend (SIGHASH_ALL) of a two-leaf tree, NUMS
//            internal key: `<Q> OP_CHECKSIG` and a leaf of a foreign key,
//   output 0 a foreign address, output 1 change to Q (tapInternalKey,
//            tapBip32Derivation),
// is signed through KeyMeld, by the JavaScript client (signPsbt) and by the C
// CLI (`keymeld psbt sign`, when KEYMELD_CLI and KEYMELD_CLI_SESSION name the
// binary and a session file of `keymeld keygen --tweak bip86`), then
// finalized and extracted by @scure/btc-signer, and every signature checked
// with its own sighash code and @noble/curves: the fields put in survive the
// signer and a serialize/parse round trip, the BIP-373 fields the signer adds
// parse. With --finalize, the CLI's transaction equals @scure/btc-signer's
// extraction of the CLI's finalized PSBT. A corrupted PSBT makes the CLI
// exit 1 with a message.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { schnorr } from '@noble/curves/secp256k1.js';
import { ripemd160 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import * as btc from '@scure/btc-signer';
import { tapLeafHash } from '@scure/btc-signer/payment.js';
import { sortKeys, keyAggregate } from '@scure/btc-signer/musig2.js';
import { tagSchnorr } from '@scure/btc-signer/utils.js';
import * as km from '../src/index.js';
import { waitReady, devStackTrust } from './stack.js';

const { bytesToHex: hex, hexToBytes } = km;
const gateway = process.env.KEYMELD_GATEWAY;
const cli = process.env.KEYMELD_CLI;
const cliSession = process.env.KEYMELD_CLI_SESSION;
const skip = gateway ? false : 'KEYMELD_GATEWAY not set (tests/js/js_client.sh starts a stack)';
const skipCli = skip || (cli && cliSession ? false : 'KEYMELD_CLI / KEYMELD_CLI_SESSION not set (tests/js/js_client.sh makes a group with the CLI)');
// Under CI a missing stack or CLI group is a failure, not a skip.
if (process.env.CI === 'true' && (skip || skipCli)) throw new Error(`CI=true: ${skip || skipCli}`);

// Attestation trust of the development stack, as in integration.test.js.
const trust = devStackTrust(gateway);
const sent = [];
const recording = (url, init) => { sent.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`); return fetch(url, init); };
const client = gateway && new km.KeyMeldClient({
  gateway, apiKey: process.env.KEYMELD_API_KEY, fetch: recording, verifyEnclave: trust && km.attestationVerifier(trust),
});

// BIP-341's NUMS point H: an internal key nobody can spend by the key path.
const NUMS = hexToBytes('50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0');
const REGTEST = { bech32: 'bcrt', pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef };
const AMOUNTS = [60000n, 50000n, 40000n];

before(async () => {
  if (!skip) await waitReady(client, gateway);
});

/**
 * The group's keys, computed by @scure/btc-signer from the participants'
 * keys: P (untweaked aggregate, 33 and 32 bytes), Q (BIP-86 output key).
 */
function groupKeys(participantKeys) {
  const sorted = sortKeys(participantKeys);
  const P33 = keyAggregate(sorted).aggPublicKey.toBytes(true);
  const P = P33.slice(1);
  const Q = btc.p2tr(P).tweakedPubkey;
  return { sorted, P33, P, Q };
}

/**
 * The PSBT (version 0) with @scure/btc-signer alone. Returns it with what
 * the checks need: the spent outputs, the leaves, the fields put in.
 */
function buildPsbt(g) {
  const keyPath = btc.p2tr(g.P, undefined, REGTEST);
  assert.deepEqual(keyPath.tweakedPubkey, g.Q);
  const pLeaf = btc.p2tr_pk(g.P);
  const qLeaf = btc.p2tr_pk(g.Q);
  const foreign = btc.p2tr_pk(km.publicKey(km.newSecret()).slice(1));
  const scriptP = btc.p2tr(NUMS, pLeaf, REGTEST);
  const scriptQ = btc.p2tr(NUMS, [qLeaf, foreign], REGTEST);
  // BIP-328/373: the aggregate's derivation is that of its synthetic xpub,
  // whose fingerprint is hash160(P33)[0..4], with an empty path.
  const id = ripemd160(sha256(g.P33));
  const fingerprint = new DataView(id.buffer, id.byteOffset).getUint32(0, false);
  const der = (hashes) => [[g.P, { hashes, der: { fingerprint, path: [] } }]];
  const pLeafHash = tapLeafHash(pLeaf.script);
  const spent = [keyPath, scriptP, scriptQ].map((o, i) => ({ script: o.script, amount: AMOUNTS[i] }));
  const fields = {
    inputs: [
      { tapInternalKey: g.P, tapBip32Derivation: der([]) },
      { tapLeafScript: scriptP.tapLeafScript, tapBip32Derivation: der([pLeafHash]), tapInternalKey: NUMS },
      { tapLeafScript: scriptQ.tapLeafScript, tapInternalKey: NUMS, sighashType: btc.SigHash.ALL },
    ],
    outputs: [{}, { tapInternalKey: g.P, tapBip32Derivation: der([]) }],
  };
  const tx = new btc.Transaction();
  spent.forEach((u, i) => tx.addInput({
    txid: km.taggedHash('txid', Uint8Array.of(i)), index: i, witnessUtxo: u, ...fields.inputs[i],
  }));
  tx.addOutputAddress(btc.p2wpkh(km.publicKey(km.newSecret())).address, 100000n);
  tx.addOutput({ script: keyPath.script, amount: 49000n, ...fields.outputs[1] });
  return {
    psbt: tx.toPSBT(), txid: tx.id, spent, fields,
    // The signatures each input must carry: the key it verifies under, the leaf.
    sigs: [
      // BIP-373 participant keys describe P and its BIP-341 tweaks, so Q
      // inside a leaf gets none.
      { idx: 0, key: g.Q, hashType: 0, bip373: true },
      { idx: 1, key: g.P, hashType: 0, leaf: pLeaf.script, bip373: true },
      { idx: 2, key: g.Q, hashType: btc.SigHash.ALL, leaf: qLeaf.script, bip373: false },
    ],
  };
}

/**
 * A field's value with the entries of a keyed field ([key, value][]) in
 * key order: a PSBT holds them sorted by key bytes, whatever order they
 * were added in.
 */
function keyOrder(v) {
  if (!Array.isArray(v) || !v.every((e) => Array.isArray(e) && e.length === 2)) return v;
  const text = (k) => (k instanceof Uint8Array ? hex(k) : JSON.stringify(k, (_, x) => (x instanceof Uint8Array ? hex(x) : x)));
  return [...v].sort((a, b) => (text(a[0]) < text(b[0]) ? -1 : 1));
}

/** sig (64 bytes, or 65 with the hash type) -> [64 bytes, hash type]. */
function splitSig(sig) {
  assert.ok(sig.length === 64 || (sig.length === 65 && sig[64] !== 0), `signature of ${sig.length} bytes`);
  return [sig.subarray(0, 64), sig.length === 65 ? sig[64] : 0];
}

/** The spent output key a control block and leaf script commit to (@scure/btc-signer's arithmetic). */
function committedKey(cb, script) {
  let h = tapLeafHash(script, cb.version & 0xfe);
  for (const n of cb.merklePath) h = btc.utils.compareBytes(h, n) < 0 ? tagSchnorr('TapBranch', h, n) : tagSchnorr('TapBranch', n, h);
  return btc.utils.taprootTweakPubkey(cb.internalKey, h);
}

/**
 * The signed, not yet finalized PSBT: every field put in is still there and
 * survives a serialize/parse round trip; the BIP-373 participant keys are on
 * the inputs signed under P or its BIP-341 tweak and on the change; each
 * signature verifies for the sighash @scure/btc-signer computes.
 */
function checkSigned(b64OrBytes, built, g) {
  const tx = btc.Transaction.fromPSBT(typeof b64OrBytes === 'string' ? Buffer.from(b64OrBytes, 'base64') : b64OrBytes);
  const again = btc.Transaction.fromPSBT(tx.toPSBT());
  const bip373 = [[g.P33, g.sorted]];
  for (let i = 0; i < 3; i++) {
    const inp = tx.getInput(i);
    assert.deepEqual(again.getInput(i), inp, `input ${i} survives serialize/parse`);
    for (const [k, v] of Object.entries(built.fields.inputs[i])) assert.deepEqual(keyOrder(inp[k]), keyOrder(v), `input ${i} ${k}`);
    assert.deepEqual(inp.witnessUtxo, built.spent[i], `input ${i} witnessUtxo`);
    assert.deepEqual(inp.musig2ParticipantPubkeys, built.sigs[i].bip373 ? bip373 : undefined, `input ${i} BIP-373 participant keys`);
  }
  for (let i = 0; i < 2; i++) {
    const out = tx.getOutput(i);
    assert.deepEqual(again.getOutput(i), out, `output ${i} survives serialize/parse`);
    for (const [k, v] of Object.entries(built.fields.outputs[i])) assert.deepEqual(keyOrder(out[k]), keyOrder(v), `output ${i} ${k}`);
  }
  assert.deepEqual(tx.getOutput(1).musig2ParticipantPubkeys, bip373, 'the change output\'s BIP-373 participant keys');
  assert.equal(tx.getOutput(0).musig2ParticipantPubkeys, undefined);

  const scripts = built.spent.map((u) => u.script);
  const amounts = built.spent.map((u) => u.amount);
  for (const s of built.sigs) {
    const inp = tx.getInput(s.idx);
    let sig, msg;
    if (!s.leaf) {
      sig = inp.tapKeySig;
      assert.equal(inp.tapScriptSig, undefined, `input ${s.idx}: no script signature`);
      msg = (ht) => tx.preimageWitnessV1(s.idx, scripts, ht, amounts);
    } else {
      assert.equal(inp.tapKeySig, undefined, `input ${s.idx}: no key path signature`);
      // One signature, for the leaf holding the group's key (not the foreign leaf).
      assert.equal(inp.tapScriptSig?.length, 1, `input ${s.idx}: one script signature`);
      const [{ pubKey, leafHash }, v] = inp.tapScriptSig[0];
      assert.deepEqual(pubKey, s.key, `input ${s.idx}: signed by the leaf's key`);
      assert.deepEqual(leafHash, tapLeafHash(s.leaf), `input ${s.idx}: the leaf's hash`);
      sig = v;
      msg = (ht) => tx.preimageWitnessV1(s.idx, scripts, ht, amounts, -1, s.leaf, 0xc0);
    }
    assert.ok(sig, `input ${s.idx} signed`);
    const [sig64, ht] = splitSig(sig);
    assert.equal(ht, s.hashType, `input ${s.idx}: hash type`);
    assert.ok(schnorr.verify(sig64, msg(ht), s.key), `input ${s.idx}: the signature verifies under ${hex(s.key)}`);
  }
  return tx;
}

/**
 * A final transaction (raw bytes): its txid is the unsigned one, input 0's
 * witness is one key path signature, inputs 1 and 2 are [signature, leaf
 * script, control block] with a control block committing to the spent
 * output; every signature verifies for @scure/btc-signer's sighash.
 */
function checkFinal(raw, built) {
  const tx = btc.Transaction.fromRaw(raw, { allowUnknownOutputs: true });
  assert.equal(tx.id, built.txid);
  const scripts = built.spent.map((u) => u.script);
  const amounts = built.spent.map((u) => u.amount);
  for (const s of built.sigs) {
    const w = tx.getInput(s.idx).finalScriptWitness;
    let msg;
    if (!s.leaf) {
      assert.equal(w.length, 1, `input ${s.idx}: key path witness`);
      msg = (ht) => tx.preimageWitnessV1(s.idx, scripts, ht, amounts);
    } else {
      assert.equal(w.length, 3, `input ${s.idx}: script path witness`);
      assert.deepEqual(w[1], s.leaf, `input ${s.idx}: the leaf script`);
      const cb = btc.TaprootControlBlock.decode(w[2]);
      const [key, parity] = committedKey(cb, w[1]);
      assert.deepEqual(key, scripts[s.idx].subarray(2), `input ${s.idx}: the control block commits to the spent output`);
      assert.equal(parity, cb.version & 1);
      msg = (ht) => tx.preimageWitnessV1(s.idx, scripts, ht, amounts, -1, w[1], cb.version & 0xfe);
    }
    const [sig64, ht] = splitSig(w[0]);
    assert.equal(ht, s.hashType);
    assert.ok(schnorr.verify(sig64, msg(ht), s.key), `input ${s.idx}: the final witness's signature verifies`);
  }
}

/** @scure/btc-signer finalizes and extracts a signed PSBT. */
function finalizeScure(tx) {
  tx.finalize();
  return tx.extract();
}

test('PSBT round trip: the JavaScript client signs key path and script path inputs in one session', { skip }, async () => {
  const kg = await client.createKeygen({ participants: 3, tweak: { type: 'unspendable_taproot' } });
  const g = groupKeys(kg.local.map((p) => p.publicKey));
  assert.deepEqual(g.Q, kg.aggregate.xonly);
  const built = buildPsbt(g);

  sent.length = 0;
  const signed = await client.signPsbt(kg, built.psbt);
  assert.equal(sent.filter((r) => r === 'POST /api/v1/signing').length, 1, `one signing session: ${sent.join(', ')}`);
  const tx = checkSigned(signed.toPSBT(), built, g);
  checkFinal(finalizeScure(tx), built);

  // The same PSBT as a Transaction object, with one signature already in: a
  // new one replaces it (one entry per key and leaf).
  const again = await client.signPsbt(kg, btc.Transaction.fromPSBT(signed.toPSBT()));
  checkSigned(again.toPSBT(), built, g);
  await client.deleteKeygen(kg);
});

/** `keymeld ARGS` with input on stdin: {status, stdout, stderr}. */
function keymeld(args, input) {
  const r = spawnSync(cli, args, { input, encoding: 'utf8', timeout: 120000 });
  if (r.error) throw r.error;
  return r;
}

/** The participants' keys and address of the CLI's group, from `keymeld descriptor --json`. */
function cliGroup() {
  const d = JSON.parse(execFileSync(cli, ['descriptor', '--session', cliSession, '--json'], { encoding: 'utf8' }));
  const m = /^tr\(musig\(([0-9a-f,]+)\)\)#[a-z0-9]{8}$/.exec(d.descriptor);
  assert.ok(m, `a BIP-86 group: ${d.descriptor}`);
  const g = groupKeys(m[1].split(',').map(hexToBytes));
  assert.equal(btc.p2tr(g.P, undefined, REGTEST).address, d.address, 'the CLI\'s address is @scure/btc-signer\'s');
  const session = JSON.parse(readFileSync(cliSession, 'utf8'));
  assert.equal(session.aggregate_public_key.slice(2), hex(g.Q), 'the session file\'s output key');
  return g;
}

test('PSBT round trip: the CLI signs key path and script path inputs, --finalize', { skip: skipCli }, () => {
  const g = cliGroup();
  const built = buildPsbt(g);
  const b64 = Buffer.from(built.psbt).toString('base64');

  const r = keymeld(['psbt', 'sign', '--session', cliSession, '--psbt', '-', '--gateway', gateway], b64);
  assert.equal(r.status, 0, `keymeld psbt sign: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, 'one line: the PSBT in base64');
  checkFinal(finalizeScure(checkSigned(lines[0], built, g)), built);

  // --finalize: the finalized PSBT, then the transaction; @scure/btc-signer
  // extracts the same transaction from that PSBT.
  const f = keymeld(['psbt', 'sign', '--session', cliSession, '--psbt', '-', '--out', '-', '--finalize', '--gateway', gateway], b64);
  assert.equal(f.status, 0, `keymeld psbt sign --finalize: ${f.stderr}`);
  const [psbtLine, txHex, ...rest] = f.stdout.trim().split('\n');
  assert.deepEqual(rest, []);
  assert.match(txHex, /^[0-9a-f]+$/);
  const fin = btc.Transaction.fromPSBT(Buffer.from(psbtLine, 'base64'));
  for (let i = 0; i < 3; i++) assert.ok(fin.getInput(i).finalScriptWitness, `input ${i} final`);
  const extracted = fin.extract();
  assert.equal(hex(extracted), txHex, 'the CLI\'s transaction is @scure/btc-signer\'s extraction');
  checkFinal(extracted, built);
});

test('PSBT round trip: the CLI refuses a corrupted PSBT with exit code 1', { skip: skipCli }, () => {
  const g = cliGroup();
  const raw = buildPsbt(g).psbt;
  // Cut short: a record announces more bytes than are left.
  const truncated = Buffer.from(raw.subarray(0, raw.length - 20)).toString('base64');
  // A key length (the first byte after the magic) pointing past the end.
  const badLength = Buffer.from(raw);
  badLength[5] = 0xfe;
  for (const [what, input] of [['truncated', truncated], ['bad key length', badLength.toString('base64')]]) {
    const r = keymeld(['psbt', 'sign', '--session', cliSession, '--psbt', '-', '--gateway', gateway], input);
    assert.equal(r.status, 1, `${what}: exit status (stderr: ${r.stderr})`);
    assert.equal(r.stdout, '', `${what}: nothing on stdout`);
    assert.match(r.stderr, /^keymeld psbt sign: psbt: .+\n$/, `${what}: one line naming the PSBT problem`);
  }
});
