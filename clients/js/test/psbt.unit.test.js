// psbt.unit.test.js - signPsbt without a stack (imported by unit.test.js):
// the BIP-341 helpers against the official wallet test vectors (copied in
// fixtures/bip341-wallet-test-vectors.json; when the repository's
// tests/data/vectors is next to this package, the copy must still equal it),
// then signPsbt with client.sign replaced by a local MuSig2 signing of the
// same items (@scure/btc-signer's BIP-327 Session): which inputs and leaves
// it signs, under which key and item tweak, in one call; the metadata it
// adds; and its refusals, before anything is sent. test/psbt_roundtrip.test.js
// does the same through a real stack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { schnorr } from '@noble/curves/secp256k1.js';
import * as btc from '@scure/btc-signer';
import { tapLeafHash as scureLeafHash } from '@scure/btc-signer/payment.js';
import { Session, nonceGen, nonceAggregate, sortKeys } from '@scure/btc-signer/musig2.js';
import * as km from '../src/index.js';

const { bytesToHex: hex, hexToBytes } = km;
const here = fileURLToPath(new URL('.', import.meta.url));
const NUMS = hexToBytes('50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0');

test('BIP-341 wallet vectors: tapLeafHash, tapMerkleRoot, taprootTweakKey', (t) => {
  const text = readFileSync(here + 'fixtures/bip341-wallet-test-vectors.json', 'utf8');
  const repo = here + '../../../tests/data/vectors/bip341/wallet-test-vectors.json';
  if (existsSync(repo)) assert.equal(text, readFileSync(repo, 'utf8'), 'the fixture is the repository\'s copy');
  else t.diagnostic('tests/data/vectors not found (package outside the repository): fixture not compared');
  const vectors = JSON.parse(text).scriptPubKey;
  assert.equal(vectors.length, 7);
  for (const v of vectors) {
    const internal = hexToBytes(v.given.internalPubkey);
    const q = hexToBytes(v.intermediary.tweakedPubkey);
    if (!v.given.scriptTree) {
      assert.deepEqual(km.taprootTweakKey(internal).xonly, q);
      continue;
    }
    const leaves = [v.given.scriptTree].flat(Infinity).sort((a, b) => a.id - b.id);
    leaves.forEach((leaf, i) => {
      const hash = km.tapLeafHash(hexToBytes(leaf.script), leaf.leafVersion);
      assert.equal(hex(hash), v.intermediary.leafHashes[i]);
      const cb = hexToBytes(v.expected.scriptPathControlBlocks[i]);
      assert.equal(cb[0] & 0xfe, leaf.leafVersion);
      assert.deepEqual(cb.subarray(1, 33), internal);
      const path = Array.from({ length: (cb.length - 33) / 32 }, (_, k) => cb.subarray(33 + 32 * k, 65 + 32 * k));
      const root = km.tapMerkleRoot(hash, path);
      assert.equal(hex(root), v.intermediary.merkleRoot);
      const out = km.taprootTweakKey(internal, root);
      assert.deepEqual(out.xonly, q);
      assert.equal(out.parity, cb[0] & 1);
    });
  }
});

/** The tweaks of an item as BIP-327 tweak lists (crypto.js aggregateKey's mapping, written again). */
function bip327Tweaks(internalX, t) {
  const j = km.tweakJSON(t);
  if (j.type === 'none') return [[], []];
  if (j.type === 'unspendable_taproot') return [[km.taggedHash('TapTweak', internalX)], [true]];
  if (j.type === 'taproot_with_merkle_root') return [[km.taggedHash('TapTweak', internalX, hexToBytes(j.merkle_root))], [true]];
  return [[hexToBytes(j.tweak)], [j.type === 'x_only_tweak']];
}

/**
 * An offline keygen of `n` local participants, and a client whose sign()
 * is a local MuSig2 signing (every call and item recorded) and which must
 * send no request.
 */
function offline(tweak, n = 3) {
  const kg = new km.Keygen({
    keygenSessionId: km.uuidv7(), sessionSecret: km.newSecret(),
    participants: Array.from({ length: n }, () => ({ local: true })), tweak,
  });
  const pks = kg.local.map((p) => p.publicKey);
  kg.aggregate = km.aggregateKey(pks, tweak);
  const P = km.aggregateKey(pks).xonly;
  const client = new km.KeyMeldClient({ gateway: 'http://127.0.0.1:9', fetch: () => { throw new Error('no request expected'); } });
  const calls = [];
  client.sign = async (k, items) => {
    calls.push(items);
    return items.map((it) => {
      const { message, tweak: own } = it instanceof Uint8Array ? { message: it } : it;
      const [tweaks, isXonly] = bip327Tweaks(P, own ?? k.tweak);
      const signers = k.local;
      const nonces = signers.map((p) => nonceGen(p.publicKey, p.privateKey));
      const s = new Session(nonceAggregate(nonces.map((x) => x.public)), sortKeys(pks), message, tweaks, isXonly);
      return { signature: s.partialSigAgg(signers.map((p, i) => s.sign(nonces[i].secret, p.privateKey))) };
    });
  };
  return { kg, client, calls, P, Q: kg.aggregate.xonly, P33: km.aggregateKey(pks).plain, sorted: sortKeys(pks) };
}

const txid = (i) => km.taggedHash('txid', Uint8Array.of(i));
const foreignKey = () => km.publicKey(km.newSecret()).slice(1);

test('signPsbt: key path of Q, key path of P under the PSBT\'s own tree, a P leaf; foreign input untouched; one session', async () => {
  const o = offline({ type: 'unspendable_taproot' });
  const pLeaf = btc.p2tr_pk(o.P);
  const tree = btc.p2tr(NUMS, [pLeaf, btc.p2tr_pk(foreignKey())]);
  const ownTree = [btc.p2tr_pk(foreignKey()), btc.p2tr_pk(foreignKey())];
  const ownTreeOut = btc.p2tr(o.P, ownTree); // P under a merkle root the keygen was not made with
  const foreign = btc.p2wpkh(km.publicKey(km.newSecret()));
  const spent = [
    { script: btc.p2tr(o.P).script, amount: 1000n },
    { script: ownTreeOut.script, amount: 2000n },
    { script: tree.script, amount: 3000n },
    { script: foreign.script, amount: 4000n },
  ];
  assert.deepEqual(spent[0].script.subarray(2), o.Q);
  const tx = new btc.Transaction();
  tx.addInput({ txid: txid(0), index: 0, witnessUtxo: spent[0] });
  tx.addInput({ txid: txid(1), index: 0, witnessUtxo: spent[1], tapInternalKey: o.P, tapMerkleRoot: ownTreeOut.tapMerkleRoot, sighashType: 0x81 });
  tx.addInput({ txid: txid(2), index: 0, witnessUtxo: spent[2], tapLeafScript: tree.tapLeafScript, sighashType: btc.SigHash.SINGLE });
  tx.addInput({ txid: txid(3), index: 0, witnessUtxo: spent[3] });
  tx.addOutput({ script: btc.p2tr(o.P).script, amount: 5000n });
  tx.addOutput({ script: foreign.script, amount: 2000n });
  tx.addOutput({ script: foreign.script, amount: 2000n });
  const foreignBefore = tx.getInput(3);

  const signed = await o.client.signPsbt(o.kg, tx.toPSBT());
  assert.equal(o.calls.length, 1, 'one signing session');
  // The item tweaks: none given (the keygen's), the input's own BIP-341 tweak, none for P.
  assert.deepEqual(o.calls[0].map((it) => (it instanceof Uint8Array ? undefined : it.tweak)),
    [undefined, { type: 'taproot_with_merkle_root', merkleRoot: ownTreeOut.tapMerkleRoot }, { type: 'none' }]);

  const back = btc.Transaction.fromPSBT(signed.toPSBT());
  assert.deepEqual(back.getInput(3), foreignBefore, 'the foreign input is untouched');
  const bip373 = [[o.P33, o.sorted]];
  assert.deepEqual(back.getInput(0).tapInternalKey, o.P, 'BIP-371 internal key added on the key path of Q');
  for (const i of [0, 1, 2]) assert.deepEqual(back.getInput(i).musig2ParticipantPubkeys, bip373, `input ${i} BIP-373`);
  assert.deepEqual(back.getOutput(0).musig2ParticipantPubkeys, bip373, 'the output paying Q');
  assert.equal(back.getOutput(1).musig2ParticipantPubkeys, undefined);
  assert.equal(back.getInput(1).tapKeySig.length, 65);
  assert.equal(back.getInput(2).tapScriptSig.length, 1, 'the foreign leaf is not signed');
  assert.deepEqual(back.getInput(2).tapScriptSig[0][0], { pubKey: o.P, leafHash: scureLeafHash(pLeaf.script) });

  // Each signature, checked with @scure/btc-signer's sighash.
  const scripts = spent.map((u) => u.script);
  const amounts = spent.map((u) => u.amount);
  assert.ok(schnorr.verify(back.getInput(0).tapKeySig, back.preimageWitnessV1(0, scripts, 0, amounts), o.Q));
  assert.ok(schnorr.verify(back.getInput(1).tapKeySig.subarray(0, 64), back.preimageWitnessV1(1, scripts, 0x81, amounts), ownTreeOut.tweakedPubkey));
  const [, s2] = back.getInput(2).tapScriptSig[0];
  assert.equal(s2[64], btc.SigHash.SINGLE);
  assert.ok(schnorr.verify(s2.subarray(0, 64), back.preimageWitnessV1(2, scripts, btc.SigHash.SINGLE, amounts, -1, pLeaf.script, 0xc0), o.P));

  // Signing again replaces the script signature instead of adding a second one.
  const again = await o.client.signPsbt(o.kg, back);
  assert.equal(again.getInput(2).tapScriptSig.length, 1);
});

test('signPsbt: a keygen without tweak signs its key in a leaf with no item tweak', async () => {
  const o = offline(undefined, 2);
  assert.deepEqual(o.P, o.Q);
  const leaf = btc.p2tr_pk(o.P);
  const out = btc.p2tr(NUMS, leaf);
  const tx = new btc.Transaction();
  tx.addInput({ txid: txid(0), index: 0, witnessUtxo: { script: out.script, amount: 1000n }, tapLeafScript: out.tapLeafScript });
  tx.addOutput({ script: out.script, amount: 900n });
  const signed = await o.client.signPsbt(o.kg, tx);
  assert.ok(o.calls[0][0] instanceof Uint8Array, 'no item tweak');
  signed.finalize();
  const w = btc.Transaction.fromRaw(signed.extract(), { allowUnknownOutputs: true }).getInput(0).finalScriptWitness;
  assert.equal(w.length, 3);
  assert.ok(schnorr.verify(w[0], signed.preimageWitnessV1(0, [out.script], 0, [1000n], -1, leaf.script, 0xc0), o.P));
});

test('signPsbt refusals: nothing is sent', async () => {
  const o = offline({ type: 'unspendable_taproot' });
  const refuse = async (tx, re) => {
    await assert.rejects(o.client.signPsbt(o.kg, tx), (e) => e instanceof km.KeyMeldError && re.test(e.message));
    assert.equal(o.calls.length, 0);
  };
  const pay = (tx) => tx.addOutput({ script: btc.p2wpkh(km.publicKey(km.newSecret())).script, amount: 500n });

  // A control block that commits to another output (@scure/btc-signer refuses it too unless told not to check).
  let tx = new btc.Transaction({ disableScriptCheck: true });
  const mine = btc.p2tr(NUMS, btc.p2tr_pk(o.P));
  tx.addInput({ txid: txid(0), index: 0, witnessUtxo: { script: btc.p2tr(NUMS, btc.p2tr_pk(foreignKey())).script, amount: 1000n }, tapLeafScript: mine.tapLeafScript });
  pay(tx);
  await refuse(tx, /^input 0: the control block of leaf [0-9a-f]{64} \(internal key 50929b74[0-9a-f]{56}\) does not commit to the spent output key [0-9a-f]{64}: refusing to sign its script path$/);

  // tapInternalKey P, but the output is P under another tree than tapMerkleRoot says.
  tx = new btc.Transaction({ disableScriptCheck: true });
  tx.addInput({ txid: txid(0), index: 0, witnessUtxo: { script: btc.p2tr(o.P, btc.p2tr_pk(foreignKey())).script, amount: 1000n }, tapInternalKey: o.P });
  pay(tx);
  await refuse(tx, /^input 0: its tapInternalKey is this keygen's untweaked key, but the output it spends is not that key tweaked with no script tree/);

  // The bytes 0x20 ‖ P inside a longer push are no push of P: nothing to sign.
  const hidden = btc.Script.encode([new Uint8Array([0x20, ...o.P, 1]), 'DROP', 'OP_1']);
  const h = btc.p2tr(NUMS, { script: hidden }, undefined, true);
  tx = new btc.Transaction({ allowUnknownInputs: true });
  tx.addInput({ txid: txid(0), index: 0, witnessUtxo: { script: h.script, amount: 1000n }, tapLeafScript: h.tapLeafScript });
  pay(tx);
  await refuse(tx, /^no input of the PSBT left to sign spends this keygen's key \(output key [0-9a-f]{64}, untweaked key [0-9a-f]{64}\) by its key path or a leaf: nothing signed$/);

  // SIGHASH_DEFAULT commits to every spent output: one is unknown.
  tx = new btc.Transaction();
  tx.addInput({ txid: txid(0), index: 0, witnessUtxo: { script: btc.p2tr(o.P).script, amount: 1000n } });
  tx.addInput({ txid: txid(1), index: 0 });
  pay(tx);
  await refuse(tx, /^input 0: its sighash commits to every spent output, but input 1 has no witnessUtxo or nonWitnessUtxo$/);

  // Not a BIP-341 hash type.
  tx = new btc.Transaction();
  tx.addInput({ txid: txid(0), index: 0, witnessUtxo: { script: btc.p2tr(o.P).script, amount: 1000n }, sighashType: 0x04 });
  pay(tx);
  await refuse(tx, /^input 0: sighash type 0x04 is not a BIP-341 hash type$/);
});

test('signPsbt: a party that does not know every participant\'s key signs Q only', async () => {
  const o = offline({ type: 'unspendable_taproot' });
  // As joinKeygen leaves it: the other participants by user id only.
  for (const p of o.kg.participants.values()) if (p !== o.kg.local[0]) { delete p.publicKey; delete p.privateKey; delete p.auth; }
  assert.equal(o.kg.keyFor({ tweak: { type: 'none' } }), undefined);
  const pOut = btc.p2tr(NUMS, btc.p2tr_pk(o.P));
  const tx = new btc.Transaction();
  tx.addInput({ txid: txid(0), index: 0, witnessUtxo: { script: pOut.script, amount: 1000n }, tapLeafScript: pOut.tapLeafScript });
  tx.addOutput({ script: pOut.script, amount: 900n });
  await assert.rejects(o.client.signPsbt(o.kg, tx), /no input of the PSBT left to sign spends this keygen's key \(output key [0-9a-f]{64}\) by/);
});
