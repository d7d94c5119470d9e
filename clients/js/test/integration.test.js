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
import { waitReady, devStackTrust } from './stack.js';

const gateway = process.env.KEYMELD_GATEWAY;
// The stack's attestation trust (scripts/keymeld-dev writes DEV_DIR/dev-ca/root.pem
// and DEV_DIR/pcrs.json; KEYMELD_TRUST_ROOT / KEYMELD_PCR_POLICY of run/client.env
// win): every keygen below verifies every enclave before encrypting to it.
const trust = devStackTrust(gateway);
// Every request path, to check what was sent before a refusal.
const sent = [];
const recording = (url, init) => { sent.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`); return fetch(url, init); };
const verifier = trust && km.attestationVerifier(trust);
const client = gateway && new km.KeyMeldClient({ gateway, apiKey: process.env.KEYMELD_API_KEY, fetch: recording, verifyEnclave: verifier });
const skip = gateway ? false : 'KEYMELD_GATEWAY not set (tests/js/js_client.sh starts a stack)';
const msgs = (n, tag) => Array.from({ length: n }, (_, i) => km.taggedHash('test', new TextEncoder().encode(`${tag} ${i}`)));

before(async () => {
  if (!skip) await waitReady(client, gateway);
});

const noTrust = skip || (trust ? false : `no attestation trust (dev-ca/root.pem and pcrs.json of a stack with KEYMELD_DEV_ATTESTATION=development)`);

test('keygen with 3 local participants, batch signing, delete', { skip }, async () => {
  const t0 = Date.now();
  sent.length = 0;
  const kg = await client.createKeygen({ participants: 3 });
  if (trust) {
    // Every enclave a key went to was attested (with a fresh nonce) before initialize.
    const init = sent.indexOf(`POST /api/v1/keygen/${kg.id}/initialize`);
    const attested = new Set(sent.slice(0, init).filter((p) => p.includes('/attestation')).map((p) => Number(p.split('/')[4])));
    for (const a of kg.reservation.assignments) assert.ok(attested.has(a.enclave_id) || verifier.documents.has(a.enclave_id), `enclave ${a.enclave_id} attested`);
    for (const a of kg.reservation.assignments) assert.match(verifier.documents.get(a.enclave_id).moduleId, /^development-enclave/);
  }
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

test('attestation: every enclave verifies with the stack\'s development CA and PCR policy', { skip: noTrust }, async () => {
  const { enclaves } = await client.enclaves();
  const v = km.attestationVerifier(trust);
  await v(enclaves.map((e) => ({ enclave_id: e.enclave_id, public_key: e.public_key })), client);
  assert.equal(v.documents.size, enclaves.length);
  const policy = km.parsePcrPolicy(trust.pcrs)[0];
  for (const d of v.documents.values()) assert.deepEqual(d.pcrs.get(0), policy.get(0));
  // The AWS root (the default) refuses the development CA's documents.
  await assert.rejects(km.attestationVerifier({ pcrs: trust.pcrs })([enclaves[0]], client), (e) => e.check === 'root');
  // A key other than the attested one is refused.
  await assert.rejects(v([{ enclave_id: enclaves[0].enclave_id, public_key: '02' + '11'.repeat(32) }], client),
    (e) => e.check === 'public_key' && /the attested key differs from the key given for this enclave/.test(e.message));
});

test('attestation: a wrong PCR policy makes createKeygen refuse before sending any key', { skip: noTrust }, async () => {
  const wrong = { pcr_sets: [{ PCR0: 'ab'.repeat(48), PCR1: '00'.repeat(48), PCR2: '00'.repeat(48) }] };
  sent.length = 0;
  await assert.rejects(client.createKeygen({ participants: 3, verifyEnclave: km.attestationVerifier({ root: trust.root, pcrs: wrong }) }), (e) => {
    assert.ok(e instanceof km.AttestationError);
    assert.equal(e.check, 'pcrs');
    assert.match(e.message, /^enclave \d+'s key is not attested; nothing was encrypted to it: pcrs: the document matches none of the 1 allowed PCR sets; closest is set 0, where PCR0 differs: expected abababababababab\.\.\., got /);
    return true;
  });
  assert.equal(sent[0], 'POST /api/v1/keygen/reserve');
  assert.ok(sent.slice(1).every((p) => p.startsWith('GET /api/v1/enclaves/')), sent.join(', '));
  // A joining party with the wrong policy refuses too, before registering.
  const joinerId = km.uuidv7();
  const kg = await client.createKeygen({ participants: [{ local: true }, { userId: joinerId }] });
  sent.length = 0;
  await assert.rejects(client.joinKeygen({ keygenSessionId: kg.id, sessionSecret: kg.sessionSecret, userId: joinerId,
    verifyEnclave: km.attestationVerifier({ root: trust.root, pcrs: wrong }) }), (e) => e instanceof km.AttestationError && e.check === 'pcrs');
  assert.ok(!sent.some((p) => p.endsWith('/participants')), sent.join(', '));
  await client.deleteKeygen(kg);
});
