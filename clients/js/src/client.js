// client.js - the KeyMeld gateway REST API (docs/API.md) and the flows on top
// of it: keygen as coordinator or joining party, batch signing (subsets,
// per-item tweaks, adaptors), approvals, long polling, PSBT signing.
import { schnorr } from '@noble/curves/secp256k1.js';
import { Address, NETWORK, Transaction } from '@scure/btc-signer';
import { sortKeys } from '@scure/btc-signer/musig2.js';
import * as c from './crypto.js';
import { KeyMeldError } from './errors.js';

export { KeyMeldError };

const { bytesToHex: hex, hexToBytes, bytes } = c;
const MAX_WAIT_MS = 30000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// One signing session holds at most this many items (docs/API.md).
const MAX_ITEMS = 100;
// Parsing a PSBT keeps the records it does not know (BIP-174: a signer must
// not drop them) and outputs of any script.
const PSBT_OPTS = { unknown: 'ignore', allowUnknownOutputs: true };
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The output an input spends: witnessUtxo, else nonWitnessUtxo's output at its index. */
function spentOutput(inp) {
  return inp.witnessUtxo ?? inp.nonWitnessUtxo?.outputs?.[inp.index];
}

/**
 * The 32-byte pushes (opcode 0x20, then 32 bytes) of a script, found by
 * walking its opcodes, so the bytes of a longer push never match. A
 * truncated script has none.
 */
function pushes32(script) {
  const out = [];
  for (let i = 0; i < script.length;) {
    const op = script[i++];
    let n = op >= 0x01 && op <= 0x4b ? op : 0;
    // OP_PUSHDATA1/2/4: a little-endian length of 1, 2 or 4 bytes follows.
    const width = { 0x4c: 1, 0x4d: 2, 0x4e: 4 }[op] ?? 0;
    if (i + width > script.length) return [];
    for (let b = width - 1; b >= 0; b--) n = n * 256 + script[i + b];
    i += width;
    if (i + n > script.length) return [];
    if (op === 0x20) out.push(script.subarray(i, i + n));
    i += n;
  }
  return out;
}

const isP2TR = (spk) => spk.length === 34 && spk[0] === 0x51 && spk[1] === 0x20;

/**
 * Input i's key path, when it is this keygen's: {key, tweak?} (tweak: the
 * item's own BIP-341 tweak of P). See signPsbt.
 */
function keyPath(i, inp, spk, P, Q) {
  if (isP2TR(spk) && same(spk.subarray(2), Q)) return { key: Q };
  if (!P || !inp.tapInternalKey || !same(inp.tapInternalKey, P)) return undefined;
  const root = inp.tapMerkleRoot;
  const out = c.taprootTweakKey(P, root).xonly;
  if (!isP2TR(spk) || !same(spk.subarray(2), out))
    throw new KeyMeldError(`input ${i}: its tapInternalKey is this keygen's untweaked key, but the output it spends is not that key tweaked with `
      + `${root ? 'its tapMerkleRoot' : 'no script tree (BIP-86: the input has no tapMerkleRoot)'}`);
  return { key: out, tweak: root ? { type: 'taproot_with_merkle_root', merkleRoot: root } : { type: 'unspendable_taproot' } };
}

/**
 * Input i's leaves naming this keygen's key: [{key, tweak?, leaf}]. Each
 * leaf's control block must commit to the spent output key: a signature
 * for a leaf the output cannot spend is useless, or meant for another
 * output, so that is an error, not a skip.
 */
function leafJobs(i, inp, spk, P, Q) {
  const out = [];
  const seen = new Set();
  for (const [cb, scriptVer] of inp.tapLeafScript ?? []) {
    const script = scriptVer.subarray(0, -1);
    const version = scriptVer[scriptVer.length - 1];
    if (version !== c.TAPSCRIPT_LEAF_VERSION) continue; // another leaf version: no known semantics
    const pushes = pushes32(script);
    const pushed = (k) => k && pushes.some((x) => same(x, k));
    // Q first: with no keygen tweak P is Q, signed without an own tweak.
    const [key, tweak] = pushed(Q) ? [Q, undefined] : pushed(P) ? [P, { type: 'none' }] : [];
    if (!key) continue;
    if (!isP2TR(spk)) throw new KeyMeldError(`input ${i}: a leaf names this keygen's key, but the output it spends is not P2TR`);
    const hash = c.tapLeafHash(script, version);
    const committed = c.taprootTweakKey(cb.internalKey, c.tapMerkleRoot(hash, cb.merklePath));
    if ((cb.version & 0xfe) !== version || !same(committed.xonly, spk.subarray(2)) || committed.parity !== (cb.version & 1))
      throw new KeyMeldError(`input ${i}: the control block of leaf ${hex(hash)} (internal key ${hex(cb.internalKey)}) `
        + `does not commit to the spent output key ${hex(spk.subarray(2))}: refusing to sign its script path`);
    if (seen.has(hex(hash))) continue; // the same leaf twice in the tree: one signature serves both
    seen.add(hex(hash));
    out.push({ key, tweak, leaf: { script, version, hash } });
  }
  return out;
}

/** BIP-341 hash types: SIGHASH_DEFAULT, ALL, NONE, SINGLE, each but DEFAULT with ANYONECANPAY. */
const BIP341_HASH_TYPES = new Set([0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83]);

/** The BIP-341 sighash of one job (key path, or the script path of job.leaf). */
function sighash(tx, job, spent) {
  const { idx, hashType, leaf } = job;
  if (!BIP341_HASH_TYPES.has(hashType))
    throw new KeyMeldError(`input ${idx}: sighash type 0x${hashType.toString(16).padStart(2, '0')} is not a BIP-341 hash type`);
  const missing = spent.findIndex((u) => !u);
  if (!(hashType & 0x80) && missing >= 0)
    throw new KeyMeldError(`input ${idx}: its sighash commits to every spent output, but input ${missing} has no witnessUtxo or nonWitnessUtxo`);
  // With ANYONECANPAY only this input's spent output is hashed: the
  // placeholders of unknown ones are never read.
  const scripts = spent.map((u) => u?.script ?? new Uint8Array(0));
  const amounts = spent.map((u) => u?.amount ?? 0n);
  try {
    return leaf
      ? tx.preimageWitnessV1(idx, scripts, hashType, amounts, -1, leaf.script, leaf.version)
      : tx.preimageWitnessV1(idx, scripts, hashType, amounts);
  } catch (e) {
    throw new KeyMeldError(`input ${idx}: ${e.message}`);
  }
}

/**
 * The BIP-371 / BIP-373 fields signPsbt adds where absent and where they
 * describe the signed key (as `keymeld psbt sign` does): nothing when P is
 * unknown here.
 */
function psbtMetadata(kg, tx, P, Q, jobs) {
  if (!P) return;
  const type = kg.tweak.type;
  const bip341 = type === 'unspendable_taproot' || type === 'taproot_with_merkle_root';
  // P -> Q is a BIP-341 tweak (or none): what BIP-373 consumers can follow.
  const describesQ = bip341 || type === 'none';
  const pks = [...kg.participants.values()].map((p) => p.publicKey);
  const agg = c.aggregateKey(pks).plain;
  const participants = [[agg, sortKeys(pks)]];
  const hasAgg = (list) => (list ?? []).some(([k]) => same(k, agg));
  const add = new Map(); // input index -> fields
  for (const j of jobs) {
    const inp = tx.getInput(j.idx);
    const fields = add.get(j.idx) ?? {};
    if (j.leaf ? same(j.key, P) : j.tweak) {
      // A leaf naming P, or a key path under the PSBT's own tweak of P.
      fields.musig2ParticipantPubkeys = participants;
    } else if (!j.leaf && describesQ && (!inp.tapInternalKey || (bip341 && same(inp.tapInternalKey, P)))) {
      // The key path of Q; a tapInternalKey other than P says something else: leave it be.
      if (bip341 && !inp.tapInternalKey) fields.tapInternalKey = P;
      if (type === 'taproot_with_merkle_root' && !inp.tapMerkleRoot) fields.tapMerkleRoot = hexToBytes(kg.tweak.merkle_root);
      fields.musig2ParticipantPubkeys = participants;
    }
    if (fields.musig2ParticipantPubkeys && hasAgg(inp.musig2ParticipantPubkeys)) delete fields.musig2ParticipantPubkeys;
    add.set(j.idx, fields);
  }
  for (const [idx, fields] of add) if (Object.keys(fields).length) tx.updateInput(idx, fields, true);
  for (let i = 0; describesQ && i < tx.outputsLength; i++) {
    const o = tx.getOutput(i);
    if (o.script && isP2TR(o.script) && same(o.script.subarray(2), Q) && !hasAgg(o.musig2ParticipantPubkeys))
      tx.updateOutput(i, { musig2ParticipantPubkeys: participants }, true);
  }
}

/** What one party of a keygen holds for one participant. */
function makeParticipant(keygenId, p) {
  const userId = c.uuidText(p.userId ?? c.uuidv7());
  const out = { userId, requireSigningApproval: Boolean(p.requireSigningApproval) };
  if (p.privateKey !== undefined || p.local) {
    out.privateKey = p.privateKey !== undefined ? bytes(p.privateKey, 'privateKey', 32) : c.newSecret();
    out.publicKey = c.publicKey(out.privateKey);
    out.auth = c.participantAuthKey(out.privateKey, keygenId);
  } else if (p.publicKey !== undefined) {
    out.publicKey = bytes(p.publicKey, 'publicKey', 33);
  }
  return out;
}

/**
 * One keygen as this party sees it. `sessionSecret` is the 32-byte secret
 * every participant holds; `participants` maps user id to
 * {userId, privateKey?, publicKey?, auth?, requireSigningApproval}: local
 * participants have a privateKey (and their participant auth key `auth`).
 */
export class Keygen {
  constructor({ keygenSessionId, sessionSecret, participants = [], coordinatorUserId, tweak, subsets = [] }) {
    this.id = c.uuidText(keygenSessionId);
    this.sessionSecret = bytes(sessionSecret, 'sessionSecret', 32);
    this.sessionAuth = c.sessionAuthKey(this.sessionSecret);
    this.participants = new Map();
    for (const p of participants) {
      const q = makeParticipant(this.id, p);
      this.participants.set(q.userId, q);
    }
    this.coordinatorUserId = coordinatorUserId ? c.uuidText(coordinatorUserId) : undefined;
    this.tweak = c.tweakJSON(tweak);
    this.subsets = subsets.map((s) => ({ subsetId: c.uuidText(s.subsetId ?? c.uuidv7()), participants: s.participants.map(c.uuidText) }));
    this.status = undefined; // the last status reply
    this.aggregate = undefined; // {plain: 33 bytes, xonly: 32 bytes} once completed and checked
    this.subsetKeys = new Map(); // subset id -> {plain, xonly}
  }

  /** Local participants (those whose private key this party holds). */
  get local() {
    return [...this.participants.values()].filter((p) => p.privateKey);
  }

  /** The x-only key a signature of an item verifies against (undefined if not computable here). */
  keyFor(item = {}) {
    if (!this.aggregate) throw new KeyMeldError(`keygen ${this.id} is not completed`);
    const signers = item.subsetId
      ? this.subsets.find((s) => s.subsetId === c.uuidText(item.subsetId))?.participants
      : [...this.participants.keys()];
    if (item.tweak !== undefined) {
      // An item's own tweak replaces the keygen tweak, on the untweaked key of its signers.
      const pks = (signers ?? []).map((u) => this.participants.get(u)?.publicKey);
      if (!signers || pks.some((k) => !k)) return undefined;
      return c.aggregateKey(pks, item.tweak).xonly;
    }
    return item.subsetId ? this.subsetKeys.get(c.uuidText(item.subsetId))?.xonly : this.aggregate.xonly;
  }

  /**
   * The P2TR address paying to the aggregate key after the keygen tweak
   * (make the keygen with {type:'unspendable_taproot'} for BIP-86).
   * network: an @scure/btc-signer network (default mainnet, btc.TEST_NETWORK...).
   */
  address(network = NETWORK) {
    if (!this.aggregate) throw new KeyMeldError(`keygen ${this.id} is not completed`);
    return Address(network).encode({ type: 'tr', pubkey: this.aggregate.xonly });
  }
}

/** One signing session: its ids, its items (with their messages in clear), the last status. */
export class Signing {
  constructor(keygen, id, items) {
    this.keygen = keygen;
    this.id = id;
    this.items = items; // [{itemId, message, subsetId?, tweak?, adaptors?}]
    this.status = undefined;
    this.requiresApprovalFrom = [];
    this.results = undefined;
  }
}

export class KeyMeldClient {
  /**
   * @param {object} o
   * @param {string} o.gateway  base URL, e.g. http://127.0.0.1:8090
   * @param {string} [o.apiKey] operator API key for reserve (kmk_...)
   * @param {typeof fetch} [o.fetch]
   * @param {number} [o.retries] retries of 429/503 replies (2), each signed afresh
   * @param {Function} [o.verifyEnclave] the default verifyEnclave hook of
   *   createKeygen / joinKeygen, e.g. attestationVerifier({root, pcrs})
   */
  constructor({ gateway, apiKey, fetch: f = globalThis.fetch, retries = 2, verifyEnclave } = {}) {
    if (!gateway) throw new TypeError('gateway URL required');
    this.gateway = gateway.replace(/\/+$/, '');
    this.apiKey = apiKey;
    this.fetch = f;
    this.retries = retries;
    this.verifyEnclave = verifyEnclave;
  }

  /**
   * One request. `signer` is the 32-byte secret key that signs it (session or
   * participant auth key); `body` an object (serialized once, signed byte for byte).
   */
  async request(method, path, { body, signer, apiKey } = {}) {
    const text = body === undefined ? '' : JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      const headers = { Accept: 'application/json' };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
      if (signer) Object.assign(headers, c.signRequest(signer, method, path, text));
      const res = await this.fetch(this.gateway + path, { method, headers, body: body === undefined ? undefined : text });
      const raw = await res.text();
      let json;
      try {
        json = raw ? JSON.parse(raw) : undefined;
      } catch {
        json = undefined;
      }
      if (res.ok) return json;
      const requestId = res.headers.get('x-request-id') ?? undefined;
      const retryAfter = Number(res.headers.get('retry-after') ?? 0);
      if ((res.status === 429 || res.status === 503) && attempt < this.retries && retryAfter <= 5) {
        await sleep(Math.max(1, retryAfter) * 1000);
        continue;
      }
      const e = json?.error;
      throw new KeyMeldError(`${method} ${path}: ${res.status} ${e?.message ?? raw.slice(0, 200)}`, {
        status: res.status, type: e?.type ?? 'http_error', requestId, body: json ?? raw,
      });
    }
  }

  // ---- unauthenticated routes ---------------------------------------------

  health() { return this.request('GET', '/api/v1/health'); }
  ready() { return this.request('GET', '/api/v1/health/ready'); }
  version() { return this.request('GET', '/api/v1/version'); }
  enclaves() { return this.request('GET', '/api/v1/enclaves'); }
  enclavePublicKey(id) { return this.request('GET', `/api/v1/enclaves/${Number(id)}/public-key`); }
  attestation(id, nonce) {
    return this.request('GET', `/api/v1/enclaves/${Number(id)}/attestation${nonce ? `?nonce=${hex(bytes(nonce, 'nonce'))}` : ''}`);
  }

  // ---- keygen routes -------------------------------------------------------

  reserve(body) { return this.request('POST', '/api/v1/keygen/reserve', { body, apiKey: this.apiKey }); }
  initialize(kg, body) { return this.request('POST', `/api/v1/keygen/${kg.id}/initialize`, { body, signer: kg.sessionAuth.seckey }); }
  slots(kg) { return this.request('GET', `/api/v1/keygen/${kg.id}/slots`, { signer: kg.sessionAuth.seckey }); }
  registerBody(kg, body) { return this.request('POST', `/api/v1/keygen/${kg.id}/participants`, { body, signer: kg.sessionAuth.seckey }); }
  keygenStatus(kg, waitMs = 0) {
    return this.request('GET', `/api/v1/keygen/${kg.id}/status${waitMs ? `?wait_ms=${waitMs}` : ''}`, { signer: kg.sessionAuth.seckey });
  }
  deleteKeygen(kg) { return this.request('DELETE', `/api/v1/keygen/${kg.id}`, { signer: kg.sessionAuth.seckey }); }

  /**
   * Keygen as coordinator: reserve, initialize, register every local
   * participant and (when all are local, or opts.wait) wait for completion and
   * check the aggregate key.
   *
   * opts.participants: [{userId?, privateKey?, requireSigningApproval?, local?}]:
   *   an entry with a privateKey (or local: true, a fresh key) is registered
   *   here; one with only a userId (and optionally its publicKey) joins itself
   *   with joinKeygen. The first local one is the coordinator unless
   *   opts.coordinatorUserId says otherwise. A number n means n fresh local
   *   participants.
   * opts.tweak: tweak JSON or {type, merkleRoot|tweak}; opts.subsets:
   * [{subsetId?, participants: [userId...]}]; opts.timeoutSecs (3600);
   * opts.maxSigningSessions; opts.sessionSecret, opts.keygenSessionId;
   * opts.wait (default: true when every participant is local); opts.waitMs (120000).
   */
  async createKeygen(opts = {}) {
    let parts = opts.participants ?? 3;
    if (typeof parts === 'number') parts = Array.from({ length: parts }, () => ({ local: true }));
    const id = c.uuidText(opts.keygenSessionId ?? c.uuidv7());
    const preset = parts.map((p) => ({ ...p, userId: p.userId ?? c.uuidv7() }));
    const subsets = (opts.subsets ?? []).map((s) => ({
      subsetId: s.subsetId, participants: s.participants.map((x) => (typeof x === 'number' ? preset[x].userId : x)),
    }));
    const kg = new Keygen({
      keygenSessionId: id,
      sessionSecret: opts.sessionSecret ?? c.newSecret(),
      participants: preset,
      tweak: opts.tweak,
      subsets,
    });
    const coord = opts.coordinatorUserId ? kg.participants.get(c.uuidText(opts.coordinatorUserId)) : kg.local[0];
    if (!coord?.privateKey) throw new KeyMeldError('the coordinator must be a local participant (with its private key)');
    kg.coordinatorUserId = coord.userId;

    const body = {
      keygen_session_id: kg.id,
      session_public_key: hex(kg.sessionAuth.pubkey),
      coordinator_user_id: coord.userId,
      expected_participants: [...kg.participants.keys()],
      timeout_secs: opts.timeoutSecs ?? 3600,
    };
    if (opts.maxSigningSessions !== undefined) body.max_signing_sessions = opts.maxSigningSessions;
    if (opts.tweak !== undefined) body.encrypted_taproot_tweak = hex(c.sealJSON(kg.sessionSecret, 'taproot_tweak', kg.tweak));
    if (kg.subsets.length)
      body.subset_definitions = kg.subsets.map((s) => ({ subset_id: s.subsetId, participants: s.participants }));
    kg.reservation = await this.reserve(body);

    const assigned = new Map(kg.reservation.assignments.map((a) => [a.user_id, a.enclave_public_key]));
    const enclaveKey = assigned.get(coord.userId);
    if (enclaveKey !== kg.reservation.coordinator_public_key)
      throw new KeyMeldError('reserve assigned the coordinator to another enclave than coordinator_public_key');
    // Attestation: every enclave a local participant's key (or the session
    // secret) is about to be encrypted to, before anything is encrypted.
    const verify = opts.verifyEnclave ?? this.verifyEnclave;
    if (verify) {
      const seen = new Map();
      for (const a of kg.reservation.assignments)
        if (kg.participants.get(a.user_id)?.privateKey) seen.set(`${a.enclave_id}:${a.enclave_public_key}`, { enclave_id: a.enclave_id, public_key: a.enclave_public_key });
      await verify([...seen.values()], this);
    }
    const ek = hexToBytes(enclaveKey);
    const init = {
      session_public_key: hex(kg.sessionAuth.pubkey),
      encrypted_session_secret: hex(c.eciesTo(ek, kg.sessionSecret)),
      coordinator_encrypted_private_key: hex(c.eciesTo(ek, coord.privateKey)),
      coordinator_auth_pubkey: hex(coord.auth.pubkey),
      enclave_public_key: enclaveKey,
    };
    if (coord.requireSigningApproval) init.coordinator_require_signing_approval = true;
    kg.status = await this.initialize(kg, init);

    for (const p of kg.local) {
      if (p.userId === coord.userId) continue;
      kg.status = await this.register(kg, p, assigned.get(p.userId));
    }
    const allLocal = kg.local.length === kg.participants.size;
    if (opts.wait ?? allLocal) await this.waitKeygen(kg, { timeoutMs: opts.waitMs });
    return kg;
  }

  /** Registers one local participant of kg (enclave key from reserve or /slots). */
  async register(kg, p, enclavePublicKey) {
    if (!enclavePublicKey) {
      const slots = await this.slots(kg);
      enclavePublicKey = slots.slots.find((s) => s.user_id === p.userId)?.enclave_public_key;
      if (!enclavePublicKey) throw new KeyMeldError(`user ${p.userId} has no slot in keygen ${kg.id}`);
    }
    // A retry must resend the identical body: keep it.
    p.registration ??= {
      user_id: p.userId,
      encrypted_private_key: hex(c.eciesTo(hexToBytes(enclavePublicKey), p.privateKey)),
      auth_pubkey: hex(p.auth.pubkey),
      require_signing_approval: p.requireSigningApproval,
      enclave_public_key: enclavePublicKey,
    };
    return this.registerBody(kg, p.registration);
  }

  /**
   * Keygen as a joining party: holds the session secret (from the
   * coordinator, out of band), looks up its slot and registers.
   * opts: {keygenSessionId, sessionSecret, userId, privateKey?, requireSigningApproval?, wait?, waitMs?}
   */
  async joinKeygen(opts) {
    const kg = new Keygen({
      keygenSessionId: opts.keygenSessionId,
      sessionSecret: opts.sessionSecret,
      participants: [{ userId: opts.userId, privateKey: opts.privateKey, local: true, requireSigningApproval: opts.requireSigningApproval }],
      tweak: opts.tweak,
      subsets: opts.subsets,
    });
    const slots = await this.slots(kg);
    kg.coordinatorEnclaveId = slots.coordinator_enclave_id;
    for (const s of slots.slots) if (!kg.participants.has(s.user_id)) kg.participants.set(s.user_id, { userId: s.user_id, requireSigningApproval: false });
    const me = kg.participants.get(c.uuidText(opts.userId));
    const slot = slots.slots.find((s) => s.user_id === me.userId);
    if (!slot) throw new KeyMeldError(`user ${me.userId} is not an expected participant of keygen ${kg.id}`);
    const verify = opts.verifyEnclave ?? this.verifyEnclave;
    if (verify) await verify([{ enclave_id: slot.enclave_id, public_key: slot.enclave_public_key }], this);
    kg.status = await this.register(kg, me, slot.enclave_public_key);
    if (opts.wait) await this.waitKeygen(kg, { timeoutMs: opts.waitMs });
    return kg;
  }

  /**
   * Long-polls GET path (signed by signer) until status is completed or
   * failed, or timeoutMs passed (each request waits at most 30 s).
   */
  async pollFinal(pathBase, signer, timeoutMs = 120000) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const chunk = Math.max(0, Math.min(MAX_WAIT_MS, until - Date.now()));
      const st = await this.request('GET', `${pathBase}?wait_ms=${chunk}`, { signer });
      if (st.status === 'completed' || st.status === 'failed') return st;
      if (Date.now() >= until) throw new KeyMeldError(`${pathBase}: still ${st.status} after ${timeoutMs} ms`, { type: 'timeout', body: st });
    }
  }

  /**
   * Waits for the keygen, opens the aggregate (and subset) keys with the
   * session secret, checks aggregate_check, and, for every key whose
   * participants' public keys are all known here, recomputes it (BIP-327
   * KeySort + KeyAgg + the keygen tweak) and requires equality.
   */
  async waitKeygen(kg, { timeoutMs = 120000 } = {}) {
    const st = await this.pollFinal(`/api/v1/keygen/${kg.id}/status`, kg.sessionAuth.seckey, timeoutMs);
    kg.status = st;
    if (st.status === 'failed') throw new KeyMeldError(`keygen ${kg.id} failed: ${st.error}`, { type: 'keygen_failed', body: st });
    const plain = c.open(kg.sessionSecret, 'aggregate_public_key', hexToBytes(st.encrypted_aggregate_public_key));
    if (plain.length !== 33) throw new KeyMeldError('the aggregate key is not 33 bytes');
    const subsetPlain = (st.subsets ?? []).map((s) => {
      const k = c.open(kg.sessionSecret, 'subset_aggregate_public_key', hexToBytes(s.encrypted_aggregate_public_key));
      if (k.length !== 33) throw new KeyMeldError(`subset ${s.subset_id}: key is not 33 bytes`);
      return k;
    });
    const check = c.aggregateCheck(kg.sessionSecret, plain, subsetPlain);
    if (hex(check) !== st.aggregate_check)
      throw new KeyMeldError('aggregate_check does not match the opened keys: the gateway or an enclave misbehaves');
    const pks = [...kg.participants.values()].map((p) => p.publicKey);
    if (pks.every(Boolean) && hex(c.aggregateKey(pks, kg.tweak).plain) !== hex(plain))
      throw new KeyMeldError('the aggregate key from the enclaves differs from the one computed from the participants\' keys');
    kg.aggregate = { plain, xonly: plain.slice(1) };
    (st.subsets ?? []).forEach((s, i) => {
      const def = kg.subsets.find((d) => d.subsetId === s.subset_id);
      const mpks = def?.participants.map((u) => kg.participants.get(u)?.publicKey);
      if (mpks && mpks.every(Boolean) && hex(c.aggregateKey(mpks, kg.tweak).plain) !== hex(subsetPlain[i]))
        throw new KeyMeldError(`subset ${s.subset_id}: the key from the enclaves differs from the local computation`);
      kg.subsetKeys.set(s.subset_id, { plain: subsetPlain[i], xonly: subsetPlain[i].slice(1) });
    });
    return kg;
  }

  // ---- signing -------------------------------------------------------------

  /**
   * Creates a signing session. items: 32-byte messages, or
   * {message, itemId?, subsetId?, tweak?, adaptors?: [{type:'single'|'and'|'or', points:[hex33|bytes], adaptorId?}]}.
   * opts: {waitMs (0..30000, long-polls the creation), timeoutSecs (600), signingSessionId}.
   */
  async createSigning(kg, items, opts = {}) {
    const id = c.uuidText(opts.signingSessionId ?? c.uuidv7());
    const norm = items.map((it) => {
      const o = it instanceof Uint8Array || typeof it === 'string' ? { message: it } : { ...it };
      o.message = bytes(o.message, 'message', 32);
      o.itemId = c.uuidText(o.itemId ?? c.uuidv7());
      if (o.subsetId) o.subsetId = c.uuidText(o.subsetId);
      if (o.adaptors) o.adaptors = o.adaptors.map((a) => ({
        adaptor_id: c.uuidText(a.adaptorId ?? a.adaptor_id ?? c.uuidv7()),
        adaptor_type: a.type ?? a.adaptor_type,
        adaptor_points: (a.points ?? a.adaptor_points).map((p) => hex(bytes(p, 'adaptor point', 33))),
      }));
      return o;
    });
    const s = new Signing(kg, id, norm);
    const body = {
      signing_session_id: id,
      keygen_session_id: kg.id,
      timeout_secs: opts.timeoutSecs ?? 600,
      items: norm.map((o) => {
        const x = { item_id: o.itemId, encrypted_message: hex(c.seal(kg.sessionSecret, 'session_data', o.message)) };
        if (o.tweak !== undefined) x.encrypted_taproot_tweak = hex(c.sealJSON(kg.sessionSecret, 'taproot_tweak', c.tweakJSON(o.tweak)));
        if (o.subsetId) x.subset_id = o.subsetId;
        if (o.adaptors) x.encrypted_adaptor_configs = hex(c.sealJSON(kg.sessionSecret, 'adaptor_configs', o.adaptors));
        return x;
      }),
    };
    const waitMs = Math.min(MAX_WAIT_MS, opts.waitMs ?? 0);
    const st = await this.request('POST', `/api/v1/signing${waitMs ? `?wait_ms=${waitMs}` : ''}`, { body, signer: kg.sessionAuth.seckey });
    s.status = st;
    s.requiresApprovalFrom = st.requires_approval_from ?? [];
    if (st.status === 'completed' || st.status === 'failed') this.takeResults(s, st);
    return s;
  }

  /**
   * A participant's approval of s (signed with its participant auth key; the
   * approval signature covers every item, docs/CRYPTO.md "Signing approval").
   * userId must be a local participant of s.keygen.
   */
  async approve(s, userId, { timestamp } = {}) {
    const p = s.keygen.participants.get(c.uuidText(userId));
    if (!p?.auth) throw new KeyMeldError(`participant ${userId} is not local: its own client approves`);
    const ts = timestamp ?? Math.floor(Date.now() / 1000);
    const sig = c.signApproval(p.auth.seckey, s.id, s.keygen.id, ts, s.items);
    const r = await this.request('POST', `/api/v1/signing/${s.id}/approve/${p.userId}`, {
      body: { timestamp: ts, signature: hex(sig) }, signer: p.auth.seckey,
    });
    s.status = { ...s.status, status: r.status };
    return r;
  }

  /** GET signing status as userId (a local participant; default the first). */
  signingStatus(s, { userId, waitMs = 0 } = {}) {
    const p = this.reader(s, userId);
    return this.request('GET', `/api/v1/signing/${s.id}/status/${p.userId}${waitMs ? `?wait_ms=${waitMs}` : ''}`, { signer: p.auth.seckey });
  }

  reader(s, userId) {
    const p = userId ? s.keygen.participants.get(c.uuidText(userId)) : s.keygen.local[0];
    if (!p?.auth) throw new KeyMeldError('reading a signing status needs a local participant');
    return p;
  }

  /** Long-polls the signing session to its end and opens and checks the results. */
  async waitSigning(s, { userId, timeoutMs = 120000 } = {}) {
    if (s.results) return s.results;
    const p = this.reader(s, userId);
    const st = await this.pollFinal(`/api/v1/signing/${s.id}/status/${p.userId}`, p.auth.seckey, timeoutMs);
    return this.takeResults(s, st);
  }

  /**
   * Opens every result with the session secret and verifies it: a plain
   * signature with BIP-340 against the item's key, each adaptor
   * pre-signature with its equation (docs/CRYPTO.md "Adaptor completion").
   * Results: [{itemId, signature?, adaptorSignatures?, verified}] in item order.
   */
  takeResults(s, st) {
    s.status = st;
    if (st.status === 'failed') throw new KeyMeldError(`signing ${s.id} failed: ${st.error}`, { type: 'signing_failed', body: st });
    const byId = new Map(st.results.map((r) => [r.item_id, r]));
    s.results = s.items.map((it) => {
      const r = byId.get(it.itemId);
      if (!r) throw new KeyMeldError(`signing ${s.id}: no result for item ${it.itemId}`);
      const key = s.keygen.keyFor(it);
      if (r.encrypted_signature) {
        const signature = c.open(s.keygen.sessionSecret, 'signature', hexToBytes(r.encrypted_signature));
        const verified = key ? c.verifySignature(signature, it.message, key) : undefined;
        if (verified === false) throw new KeyMeldError(`item ${it.itemId}: the signature does not verify`);
        return { itemId: it.itemId, signature, verified };
      }
      const adaptorSignatures = c.openJSON(s.keygen.sessionSecret, 'adaptor_signatures', hexToBytes(r.encrypted_adaptor_signatures));
      let verified;
      if (key) {
        verified = adaptorSignatures.every((u) => c.verifyPresignature(u, it.message, key));
        if (!verified) throw new KeyMeldError(`item ${it.itemId}: an adaptor pre-signature does not verify`);
      }
      return { itemId: it.itemId, adaptorSignatures, verified };
    });
    return s.results;
  }

  /**
   * The whole signing flow: create (long-polling up to opts.waitMs), approve
   * for every local participant that must (opts.approve !== false), wait,
   * open and verify. Returns the results of takeResults.
   */
  async sign(kg, items, opts = {}) {
    const s = await this.createSigning(kg, items, { waitMs: MAX_WAIT_MS, ...opts });
    if (s.results) return s.results;
    if (opts.approve !== false)
      for (const u of s.requiresApprovalFrom) if (kg.participants.get(u)?.auth) await this.approve(s, u);
    return this.waitSigning(s, { timeoutMs: opts.timeoutMs });
  }

  /**
   * Signs, in one signing session, every Taproot spend of a PSBT this keygen
   * can sign, and returns the @scure/btc-signer Transaction with the
   * signatures set (then tx.finalize(), tx.extract()). Per input (the same
   * rules as `keymeld psbt sign`, docs/INTEGRATION.md "Signing PSBTs"):
   *
   *  - key path, when the spent output (witnessUtxo, or the nonWitnessUtxo
   *    output) is the P2TR output of the keygen's output key Q (the aggregate
   *    after the keygen tweak: make the keygen with
   *    {type:'unspendable_taproot'} for BIP-86), or when the input's
   *    tapInternalKey is the untweaked aggregate P and the output key is P
   *    under the BIP-341 tweak of its tapMerkleRoot (BIP-86 without one; that
   *    tweak is then the item's own) -> tapKeySig;
   *  - otherwise script path: every tapLeafScript (PSBT_IN_TAP_LEAF_SCRIPT,
   *    leaf version 0xc0) whose script has a 32-byte push (0x20 ‖ key) of Q
   *    or of P -> tapScriptSig [{pubKey, leafHash}, sig]. Its control block
   *    must commit to the spent output key, or nothing is signed. A P leaf
   *    is signed with the per-item tweak {type:'none'}, so the signature
   *    verifies under P.
   *
   * P is KeyAgg of the participants' keys without tweak: known only when
   * every participant's public key is (a joining party signs Q only).
   * Sighashes are BIP-341's (script path: ext_flag 1, the tapleaf hash,
   * key_version 0, no OP_CODESEPARATOR) with the input's sighashType
   * (SIGHASH_DEFAULT when absent); a signature is 64 bytes, 65 with the hash
   * type appended when not default, and is verified under its key before it
   * is written. Inputs already final are skipped, and so are inputs whose
   * spent output is unknown (unless another input's sighash needs it).
   * Metadata, where absent and where it describes the key: BIP-373
   * musig2ParticipantPubkeys (P -> the participants' keys, KeySort order) on
   * inputs signed under P, a BIP-341 tweak of P or the keygen's key, and on
   * outputs paying Q; BIP-371 tapInternalKey (and tapMerkleRoot) on key-path
   * inputs of a BIP-341-tweaked keygen. Keygens with a plain or x-only tweak
   * get none for Q (no BIP-341 tweak of P). Unknown and proprietary records
   * are kept.
   *
   * psbt: bytes, hex or a Transaction (updated in place). opts: as sign().
   */
  async signPsbt(kg, psbt, opts = {}) {
    const tx = psbt instanceof Transaction ? psbt : Transaction.fromPSBT(bytes(psbt, 'psbt'), PSBT_OPTS);
    const Q = kg.keyFor();
    const P = kg.keyFor({ tweak: { type: 'none' } });

    // Every input's spent output: BIP-341 sighashes commit to all of them
    // (except with SIGHASH_ANYONECANPAY).
    const spent = [];
    for (let i = 0; i < tx.inputsLength; i++) spent.push(spentOutput(tx.getInput(i)));

    // What to sign: {idx, hashType, key, tweak?, leaf?: {script, version, hash}}.
    const jobs = [];
    for (let i = 0; i < tx.inputsLength; i++) {
      const inp = tx.getInput(i);
      if (inp.finalScriptWitness || inp.finalScriptSig || !spent[i]) continue;
      const job = { idx: i, hashType: inp.sighashType ?? 0 };
      const kp = keyPath(i, inp, spent[i].script, P, Q);
      if (kp) jobs.push({ ...job, ...kp });
      else jobs.push(...leafJobs(i, inp, spent[i].script, P, Q).map((l) => ({ ...job, ...l })));
    }
    if (!jobs.length)
      throw new KeyMeldError(`no input of the PSBT left to sign spends this keygen's key (output key ${hex(Q)}`
        + `${P ? `, untweaked key ${hex(P)}` : ''}) by its key path or a leaf: nothing signed`);
    if (jobs.length > MAX_ITEMS)
      throw new KeyMeldError(`the PSBT has ${jobs.length} signatures to make; one signing session makes at most ${MAX_ITEMS}`);
    for (const j of jobs) j.message = sighash(tx, j, spent);

    // Metadata first: once signatures are in, @scure/btc-signer treats the
    // transaction as signed. None of these fields is part of a sighash.
    psbtMetadata(kg, tx, P, Q, jobs);

    const results = await this.sign(kg, jobs.map((j) => (j.tweak ? { message: j.message, tweak: j.tweak } : j.message)), opts);
    jobs.forEach((j, k) => {
      const sig = results[k].signature;
      if (!schnorr.verify(sig, j.message, j.key))
        throw new KeyMeldError(`input ${j.idx}: the ${j.leaf ? `signature for leaf ${hex(j.leaf.hash)}` : 'key path signature'} does not verify under ${hex(j.key)}`);
      const full = j.hashType ? Uint8Array.of(...sig, j.hashType) : sig;
      // The third argument: these fields change no transaction data, so
      // @scure/btc-signer's "already signed" guard does not apply (its own
      // signer writes them the same way).
      if (!j.leaf) {
        tx.updateInput(j.idx, { tapKeySig: full }, true);
        return;
      }
      // A fresh signature replaces an older one for the same (key, leaf).
      const others = (tx.getInput(j.idx).tapScriptSig ?? [])
        .filter(([x]) => !(same(x.pubKey, j.key) && same(x.leafHash, j.leaf.hash)));
      tx.updateInput(j.idx, { tapScriptSig: undefined }, true);
      tx.updateInput(j.idx, { tapScriptSig: [...others, [{ pubKey: j.key, leafHash: j.leaf.hash }, full]] }, true);
    });
    return tx;
  }
}
