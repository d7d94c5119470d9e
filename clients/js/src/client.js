// client.js - the KeyMeld gateway REST API (docs/API.md) and the flows on top
// of it: keygen as coordinator or joining party, batch signing (subsets,
// per-item tweaks, adaptors), approvals, long polling, PSBT signing.
import { schnorr } from '@noble/curves/secp256k1.js';
import { Address, NETWORK, Transaction } from '@scure/btc-signer';
import * as c from './crypto.js';
import { KeyMeldError } from './errors.js';

export { KeyMeldError };

const { bytesToHex: hex, hexToBytes, bytes } = c;
const MAX_WAIT_MS = 30000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
   * Signs every Taproot key-path input of a PSBT whose previous output pays
   * to the keygen's output key (the aggregate key after the keygen tweak:
   * make the keygen with tweak {type:'unspendable_taproot'} for BIP-86), in one
   * signing session, and returns the @scure/btc-signer Transaction with
   * tapKeySig set (call tx.finalize() then tx.extract()).
   * psbt: bytes, hex or a Transaction. Every input needs witnessUtxo.
   */
  async signPsbt(kg, psbt, opts = {}) {
    const tx = psbt instanceof Transaction ? psbt : Transaction.fromPSBT(bytes(psbt, 'psbt'));
    const key = hex(kg.keyFor());
    const scripts = [];
    const amounts = [];
    for (let i = 0; i < tx.inputsLength; i++) {
      const u = tx.getInput(i).witnessUtxo;
      if (!u) throw new KeyMeldError(`input ${i} has no witnessUtxo`);
      scripts.push(u.script);
      amounts.push(u.amount);
    }
    const mine = [];
    for (let i = 0; i < tx.inputsLength; i++) {
      const sc = scripts[i];
      if (sc.length === 34 && sc[0] === 0x51 && sc[1] === 0x20 && hex(sc.subarray(2)) === key) {
        const sighashType = tx.getInput(i).sighashType ?? 0;
        mine.push({ idx: i, sighashType, message: tx.preimageWitnessV1(i, scripts, sighashType, amounts) });
      }
    }
    if (!mine.length) throw new KeyMeldError('no input of the PSBT pays to this keygen\'s output key');
    const results = await this.sign(kg, mine.map((m) => m.message), opts);
    mine.forEach((m, k) => {
      const sig = results[k].signature;
      if (!schnorr.verify(sig, m.message, kg.keyFor())) throw new KeyMeldError(`input ${m.idx}: signature does not verify`);
      tx.updateInput(m.idx, { tapKeySig: m.sighashType ? Uint8Array.of(...sig, m.sighashType) : sig });
    });
    return tx;
  }
}
