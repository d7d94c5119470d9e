// integration.test.js - the client against a real stack: KEYMELD_GATEWAY
// (tests/js/js_client.sh starts one with scripts/keymeld-dev on TCP; or
// `make start` and KEYMELD_GATEWAY=http://127.0.0.1:8090). The gateway must
// allow open reserve (development) or KEYMELD_API_KEY must hold a key.
// Every signature is opened with the session secret and verified with
// @noble/curves (BIP-340), every aggregate key recomputed (BIP-327).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { schnorr } from '@noble/curves/secp256k1.js';
import * as btc from '@scure/btc-signer';
import * as km from '../src/index.js';

const gateway = process.env.KEYMELD_GATEWAY;
const client = gateway && new km.KeyMeldClient({ gateway, apiKey: process.env.KEYMELD_API_KEY });
const skip = gateway ? false : 'KEYMELD_GATEWAY not set (tests/js/js_client.sh starts a stack)';
const msgs = (n, tag) => Array.from({ length: n }, (_, i) => km.taggedHash('test', new TextEncoder().encode(`${tag} ${i}`)));

before(async () => {
  if (skip) return;
  // The stack is up once every enclave is reachable.
  for (let i = 0; i < 60; i++) {
    try {
      if ((await client.ready()).status === 'ready') return;
    } catch { /* 503 until ready */ }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${gateway} not ready`);
});

test('keygen with 3 local participants, batch signing, delete', { skip }, async () => {
  const t0 = Date.now();
  const kg = await client.createKeygen({ participants: 3 });
  assert.equal(kg.status.status, 'completed');
  assert.equal(kg.aggregate.plain.length, 33);
  // The same key, computed here from the three public keys (BIP-327).
  assert.deepEqual(km.aggregateKey(kg.local.map((p) => p.publicKey)).plain, kg.aggregate.plain);

  const batch = msgs(5, 'batch');
  const results = await client.sign(kg, batch);
  assert.equal(results.length, 5);
  results.forEach((r, i) => {
    assert.equal(r.verified, true);
    assert.ok(schnorr.verify(r.signature, batch[i], kg.aggregate.xonly), `signature ${i}`);
  });
  const del = await client.deleteKeygen(kg);
  assert.equal(del.deleted, true);
  await assert.rejects(client.keygenStatus(kg), (e) => e instanceof km.KeyMeldError && e.status === 401);
  console.log(`# keygen + 5 signatures in ${Date.now() - t0} ms`);
});

test('approvals and long polling', { skip }, async () => {
  const kg = await client.createKeygen({
    participants: [{ local: true }, { local: true, requireSigningApproval: true }, { local: true, requireSigningApproval: true }],
  });
  const [, b, c] = kg.local;
  const batch = msgs(3, 'approve');
  const s = await client.createSigning(kg, batch, { waitMs: 30000 });
  assert.equal(s.status.status, 'awaiting_approvals'); // answered at once despite wait_ms
  assert.deepEqual([...s.requiresApprovalFrom].sort(), [b.userId, c.userId].sort());
  // A short long poll times out with the status unchanged.
  const st = await client.signingStatus(s, { waitMs: 300 });
  assert.equal(st.status, 'awaiting_approvals');
  assert.equal((await client.approve(s, b.userId)).status, 'awaiting_approvals');
  assert.equal((await client.approve(s, c.userId)).status, 'running');
  const results = await client.waitSigning(s, { userId: c.userId });
  results.forEach((r, i) => assert.ok(schnorr.verify(r.signature, batch[i], kg.aggregate.xonly)));
  // An approval by a participant that need not approve is refused.
  await assert.rejects(client.approve(s, kg.local[0].userId), (e) => e.status === 409);
  await client.deleteKeygen(kg);
});

test('a joining party registers itself', { skip }, async () => {
  const joinerId = km.uuidv7();
  const kg = await client.createKeygen({ participants: [{ local: true }, { local: true }, { userId: joinerId }] });
  assert.equal(kg.status.status, 'collecting_participants');
  // The joiner got the keygen id and the session secret out of band.
  const joiner = await client.joinKeygen({ keygenSessionId: kg.id, sessionSecret: kg.sessionSecret, userId: joinerId, wait: true });
  await client.waitKeygen(kg); // the coordinator does not know the joiner's public key: aggregate_check only
  assert.deepEqual(joiner.aggregate.plain, kg.aggregate.plain);
  const [r] = await client.sign(joiner, msgs(1, 'joiner'));
  assert.equal(r.verified, true);
  await client.deleteKeygen(kg);
});

test('keygen tweak, subsets, per-item tweaks and adaptors', { skip }, async () => {
  const kg = await client.createKeygen({
    participants: 3,
    tweak: { type: 'unspendable_taproot' },
    subsets: [{ participants: [0, 1] }, { participants: [1, 2] }],
  });
  const [sub01, sub12] = kg.subsets;
  const pks = kg.local.map((p) => p.publicKey);
  assert.deepEqual(kg.subsetKeys.get(sub01.subsetId).plain, km.aggregateKey([pks[0], pks[1]], kg.tweak).plain);
  // BIP-86: the output key of @scure/btc-signer's p2tr on the untweaked aggregate.
  const internal = km.aggregateKey(pks).xonly;
  assert.deepEqual(btc.p2tr(internal).tweakedPubkey, kg.aggregate.xonly);
  assert.equal(kg.address(btc.TEST_NETWORK), btc.p2tr(internal, undefined, btc.TEST_NETWORK).address);

  const [m0, m1, m2, m3, m4] = msgs(5, 'mixed');
  const t1 = km.newSecret(), t2 = km.newSecret(), t3 = km.newSecret();
  const T = (t) => km.adaptorPoint(t);
  const tweak = { type: 'x_only_tweak', tweak: km.taggedHash('x', new Uint8Array(1)) };
  const items = [
    m0,
    { message: m1, subsetId: sub12.subsetId },
    { message: m2, tweak },
    { message: m3, adaptors: [{ type: 'single', points: [T(t1)] }, { type: 'and', points: [T(t2), T(t3)] }] },
    { message: m4, subsetId: sub01.subsetId, adaptors: [{ type: 'or', points: [T(t1), T(t2)] }] },
  ];
  const r = await client.sign(kg, items);
  assert.ok(schnorr.verify(r[0].signature, m0, kg.aggregate.xonly));
  assert.ok(schnorr.verify(r[1].signature, m1, kg.subsetKeys.get(sub12.subsetId).xonly));
  assert.ok(schnorr.verify(r[2].signature, m2, km.aggregateKey(pks, tweak).xonly));
  // Adaptors: 2 units (single, and), then 2 (or, one per point).
  assert.equal(r[3].adaptorSignatures.length, 2);
  const single = km.adaptorComplete(r[3].adaptorSignatures[0], [t1]);
  const and = km.adaptorComplete(r[3].adaptorSignatures[1], [t2, t3]);
  assert.ok(schnorr.verify(single, m3, kg.aggregate.xonly));
  assert.ok(schnorr.verify(and, m3, kg.aggregate.xonly));
  assert.deepEqual(km.adaptorExtract(r[3].adaptorSignatures[0], single), t1);
  assert.equal(r[4].adaptorSignatures.length, 2);
  const or1 = km.adaptorComplete(r[4].adaptorSignatures[1], [t1, t2]); // branch 1: t2
  assert.ok(schnorr.verify(or1, m4, kg.subsetKeys.get(sub01.subsetId).xonly));
  await client.deleteKeygen(kg);
});

test('PSBT: a Taproot key-path spend signed by the keygen', { skip }, async () => {
  const kg = await client.createKeygen({ participants: 3, tweak: { type: 'unspendable_taproot' } });
  const script = btc.p2tr(km.aggregateKey(kg.local.map((p) => p.publicKey)).xonly).script;
  const tx = new btc.Transaction();
  for (const [i, amount] of [[0, 50000n], [1, 70000n]])
    tx.addInput({ txid: km.taggedHash('txid', Uint8Array.of(i)), index: i, witnessUtxo: { script, amount } });
  tx.addOutputAddress(btc.p2wpkh(km.publicKey(km.newSecret())).address, 110000n);
  const signed = await client.signPsbt(kg, tx.toPSBT());
  signed.finalize();
  const raw = signed.extract();
  const back = btc.Transaction.fromRaw(raw, { allowUnknownOutputs: true });
  assert.equal(back.inputsLength, 2);
  // Each witness is one 64-byte BIP-340 signature valid for its sighash.
  for (let i = 0; i < 2; i++) {
    const sighash = signed.preimageWitnessV1(i, [script, script], 0, [50000n, 70000n]);
    const w = back.getInput(i).finalScriptWitness;
    assert.equal(w.length, 1);
    assert.ok(schnorr.verify(w[0], sighash, kg.aggregate.xonly));
  }
  await client.deleteKeygen(kg);
});

test('gateway errors are KeyMeldError with type and request id', { skip }, async () => {
  const kg = new km.Keygen({ keygenSessionId: km.uuidv7(), sessionSecret: km.newSecret() });
  await assert.rejects(client.keygenStatus(kg), (e) => {
    assert.ok(e instanceof km.KeyMeldError);
    assert.equal(e.status, 401);
    assert.equal(e.type, 'unauthorized');
    assert.match(e.requestId, /^[0-9a-f-]{36}$/);
    return true;
  });
});
