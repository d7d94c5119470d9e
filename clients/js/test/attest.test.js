// attest.test.js - client-side attestation verification against the REAL AWS
// Nitro documents of tests/data/nitro (copied in test/fixtures/nitro; the
// copy must equal the repository's when run inside it): each verifies at its
// documented time and window edges, fails outside it, now, tampered, with a
// wrong PCR policy, key or nonce. Imported by unit.test.js (js.unit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as km from '../src/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const dir = here + 'fixtures/nitro/';
const b64 = (n) => readFileSync(`${dir}${n}.b64`, 'utf8');
const meta = (n) => JSON.parse(readFileSync(`${dir}${n}.json`, 'utf8'));
const AWS = readFileSync(dir + 'aws_nitro_root_g1.pem', 'utf8');
const GOOD = ['cape-2022-prod', 'epsilon-2026-prod', 'eternis-2024-debug'];
const check = (name) => (e) => e instanceof km.AttestationCheckError && e.check === name;
const policyOf = (m, pcrs = [0, 1, 2]) => ({ pcr_sets: [Object.fromEntries(pcrs.map((i) => [`PCR${i}`, m.pcrs[i]]))] });
const cape = meta('cape-2022-prod');
const capeAt = cape.verify_at_unix;

test('fixtures equal tests/data/nitro', (t) => {
  const repo = here + '../../../tests/data/nitro/';
  if (!existsSync(repo)) return t.skip('tests/data/nitro not found (package outside the repository)');
  for (const f of readdirSync(dir)) assert.ok(readFileSync(dir + f).equals(readFileSync(repo + f)), f);
  assert.equal(readdirSync(dir).length, readdirSync(repo).filter((f) => f !== 'README.md').length);
});

test('the embedded AWS root is the published Root-G1', () => {
  const der = km.rootDer();
  assert.equal(createHash('sha256').update(der).digest('hex').toUpperCase(),
    '641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B');
  assert.deepEqual(der, km.rootDer(AWS));
  assert.throws(() => km.rootDer(AWS + AWS), /exactly one PEM certificate/);
});

test('real documents decode field by field', () => {
  for (const n of GOOD) {
    const m = meta(n);
    const d = km.parseAttestationDocument(b64(n));
    assert.equal(d.moduleId, m.module_id);
    assert.equal(d.timestampMs, m.timestamp_ms);
    assert.equal(d.digest, 'SHA384');
    assert.equal(d.pcrs.size, 16);
    for (const [i, v] of Object.entries(m.pcrs)) assert.equal(km.bytesToHex(d.pcrs.get(Number(i))), v);
    for (const [f, k] of [['publicKey', 'public_key'], ['userData', 'user_data'], ['nonce', 'nonce']])
      assert.equal(d[f] === null ? null : km.bytesToHex(d[f]), m[k] === 'absent' ? null : m[k], `${n} ${k}`);
    assert.equal(d.cabundle.length, m.cabundle_len);
    assert.equal(createHash('sha256').update(d.certificate).digest('hex'), m.certificate.sha256);
    assert.equal(createHash('sha384').update(km.sigStructure(d)).digest('hex'), m.cose.sig_structure_sha384);
    assert.equal(km.bytesToHex(d.signature), m.cose.signature_hex);
    assert.equal(createHash('sha256').update(d.raw).digest('hex'), m.doc_sha256);
  }
});

test('good documents verify at their time and window edges, and fail outside it and now', () => {
  for (const n of GOOD) {
    const m = meta(n);
    const allowDebug = n.includes('debug');
    const [from, to] = m.valid_window_unix;
    for (const at of [m.verify_at_unix, from, to]) km.verifyAttestation(b64(n), { root: AWS, at, allowDebug });
    // the whole trust: PCR policy, key, nonce, freshness
    km.verifyAttestation(b64(n), {
      at: m.verify_at_unix, allowDebug, pcrs: policyOf(m), maxAgeSecs: 300,
      nonce: m.nonce ?? undefined, publicKey: m.public_key ?? undefined,
    });
    for (const at of [from - 1, to + 1, undefined]) assert.throws(() => km.verifyAttestation(b64(n), { at, allowDebug }), check('validity'), `${n} at ${at}`);
  }
  assert.throws(() => km.verifyAttestation(b64('cape-2022-prod')),
    { message: /^validity: certificate has expired \(depth 3, CN=1f4a33e4b48bb46d\.us-east-1\.aws\.nitro-enclaves, valid 2022-09-13T15:07:46Z \.\. 2022-10-03T16:07:45Z, verification time / });
});

test('negative variants fail exactly their check', () => {
  const cases = {
    'cape-2022-prod-bad-payload': 'signature', 'cape-2022-prod-bad-signature': 'signature',
    'cape-2022-prod-bad-root': 'root', 'cape-2022-prod-bad-chain': 'chain',
    'cape-2022-prod-bad-truncated': 'decode', 'eternis-upstream-invalid': 'signature',
  };
  for (const [n, c] of Object.entries(cases)) assert.throws(() => km.verifyAttestation(b64(n), { at: capeAt, allowDebug: true }), check(c), n);
  assert.throws(() => km.verifyAttestation(b64('cape-2022-prod-bad-root'), { at: capeAt }),
    { message: 'root: cabundle[0] is not the pinned root certificate (its SHA-256 is dd6d9027fdff69b1...)' });
  assert.throws(() => km.verifyAttestation(b64('cape-2022-prod-bad-chain'), { at: capeAt }),
    { message: 'chain: certificate signature failure (depth 1, CN=1f4a33e4b48bb46d.us-east-1.aws.nitro-enclaves)' });
  assert.throws(() => km.verifyAttestation(b64('cape-2022-prod-bad-truncated'), { at: capeAt }), { message: /^decode: COSE_Sign1: .*runs past the end/ });
  // The real document with a root it does not chain to (the development CA's place).
  const other = km.parseAttestationDocument(b64('cape-2022-prod-bad-root')).cabundle[0];
  assert.throws(() => km.verifyAttestation(b64('cape-2022-prod'), { at: capeAt, root: other }), check('root'));
});

test('tampering: every flipped payload byte region, the tagged form, trailing bytes, base64 forms', () => {
  const raw = km.readAttestationDocument(b64('cape-2022-prod'));
  assert.equal(raw.length, 4690);
  km.verifyAttestation(raw, { at: capeAt });
  km.verifyAttestation(Uint8Array.of(0xd2, ...raw), { at: capeAt });
  assert.throws(() => km.verifyAttestation(Uint8Array.of(0xd1, ...raw), { at: capeAt }), { message: /^decode: COSE_Sign1: tag 17/ });
  assert.throws(() => km.verifyAttestation(Uint8Array.of(...raw, 0), { at: capeAt }), { message: /trailing bytes/ });
  for (const off of [20, 200, 1000, 3000, 4500]) {
    const t = raw.slice(); t[off] ^= 1;
    assert.throws(() => km.verifyAttestation(t, { at: capeAt }), (e) => e instanceof km.AttestationCheckError && ['decode', 'signature'].includes(e.check), `offset ${off}`);
  }
  const text = b64('cape-2022-prod').trim();
  km.parseAttestationDocument(text.replace(/=+$/, '')); // padding optional
  km.parseAttestationDocument(text.replace(/(.{76})/g, '$1\n')); // whitespace ignored
  assert.throws(() => km.parseAttestationDocument(text + '='), check('decode'));
  assert.throws(() => km.parseAttestationDocument('hE!='), check('decode'));
});

test('freshness, debug, PCR policies, public_key and nonce', () => {
  const n = 'cape-2022-prod';
  assert.throws(() => km.verifyAttestation(b64(n), { at: capeAt + 1000, maxAgeSecs: 300 }),
    { message: 'freshness: the document is 1000 s old (timestamp 2022-09-15T17:43:28Z, verification time 2022-09-15T18:00:08Z, at most 300 s allowed)' });
  km.verifyAttestation(b64(n), { at: capeAt + 299, maxAgeSecs: 300 });
  km.verifyAttestation(b64(n), { at: capeAt - 2, maxAgeSecs: 300 }); // made 2 s "in the future": within the skew
  assert.throws(() => km.verifyAttestation(b64(n), { at: capeAt - 5, maxAgeSecs: 300 }), check('validity')); // leaf not yet valid
  const dbg = meta('eternis-2024-debug');
  assert.throws(() => km.verifyAttestation(b64('eternis-2024-debug'), { at: dbg.verify_at_unix }),
    { message: 'debug: PCR0, PCR1 and PCR2 are all zero (a debug-mode enclave, whose memory the parent instance can read)' });
  // PCRs: the right set, a wrong one, rolling sets (new first), PCR8, an absent PCR.
  const good = policyOf(cape, [0, 1, 2, 8]).pcr_sets[0];
  const wrong = { ...good, PCR0: '445a8e3cbe522db5476e8b2391b4dc9c402e229fcb8bd02750d5f68431bb69dcb21de50f3cdda7673c6b9ad733154251' };
  km.verifyAttestation(b64(n), { at: capeAt, pcrs: { pcr_sets: [good] } });
  km.verifyAttestation(b64(n), { at: capeAt, pcrs: JSON.stringify({ pcr_sets: [wrong, good] }) });
  assert.throws(() => km.verifyAttestation(b64(n), { at: capeAt, pcrs: { pcr_sets: [wrong] } }),
    { message: 'pcrs: the document matches none of the 1 allowed PCR sets; closest is set 0, where PCR0 differs: expected 445a8e3cbe522db5..., got ea4212ee889ba1b4...' });
  assert.throws(() => km.verifyAttestation(b64(n), { at: capeAt, pcrs: { pcr_sets: [wrong, { ...good, PCR20: good.PCR0 }] } }),
    { message: /closest is set 0, where PCR0 differs/ });
  assert.throws(() => km.verifyAttestation(b64(n), { at: capeAt, pcrs: { pcr_sets: [{ PCR20: good.PCR0 }] } }), { message: /PCR20 differs: expected ea4212ee889ba1b4\.\.\., got absent/ });
  // public_key and nonce bindings
  km.verifyAttestation(b64(n), { at: capeAt, publicKey: cape.public_key, nonce: km.hexToBytes(cape.nonce) });
  assert.throws(() => km.verifyAttestation(b64(n), { at: capeAt, publicKey: '02' + cape.public_key }), { message: /^public_key: the document's public_key \(32 bytes, 15db1c67adc9fce9\.\.\.\) differs from the expected one \(33 bytes, 0215db1c67adc9fc\.\.\.\)$/ });
  assert.throws(() => km.verifyAttestation(b64(n), { at: capeAt, nonce: '00112233' }),
    { message: "nonce: the document's nonce (12 bytes, 47b5fba6979cbf7e...) differs from the expected one (4 bytes, 00112233)" });
  const eps = meta('epsilon-2026-prod');
  assert.throws(() => km.verifyAttestation(b64('epsilon-2026-prod'), { at: eps.verify_at_unix, publicKey: '02' + '11'.repeat(32) }),
    { message: 'public_key: the document carries no public_key' });
});

test('PCR policy files', () => {
  const h = 'ab'.repeat(48);
  assert.equal(km.parsePcrPolicy(`{"pcr_sets":[{"PCR0":"${h}"},{"PCR31":"${h.toUpperCase()}"}]}`).length, 2);
  for (const [p, re] of [
    ['{"pcr_sets":[]}', /pcr_sets is empty/], [`{"pcr_sets":[{"pcr0":"${h}"}]}`, /pcr_sets\[0\]: unknown key "pcr0" \(expected PCR0..PCR31\)/],
    ['{"pcr_sets":[{"PCR0":"abcd"}]}', /pcr_sets\[0\]\.PCR0: not 48 bytes of hex \(96 hex digits\)/], [`{"pcr_sets":[{"PCR01":"${h}"}]}`, /unknown key/],
    [`{"pcr_sets":[{"PCR32":"${h}"}]}`, /unknown key/], [`{"sets":[]}`, /unknown key "sets"/], ['nope', /not JSON/],
  ]) assert.throws(() => km.parsePcrPolicy(p), re);
});

test('strict CBOR', () => {
  const d = (...b) => km.decodeCbor(Uint8Array.from(b));
  assert.equal(d(0x18, 0x64), 100);
  assert.equal(d(0x38, 0x63), -100);
  assert.deepEqual(d(0x9f, 0x01, 0x02, 0xff), [1, 2]);
  assert.equal(d(0xbf, 0x61, 0x61, 0x01, 0xff).size, 1);
  assert.equal(d(0xf6), null);
  for (const [b, re] of [
    [[0x18, 0x05], /shortest/], [[0x5f, 0x41, 0x00, 0xff], /indefinite-length string/], [[0xf9, 0x3c, 0x00], /float/],
    [[0xa2, 0x01, 0x01, 0x01, 0x02], /duplicate map key/], [[0xff], /break outside/], [[0x1c], /reserved/],
    [[0x62, 0xc3, 0x28], /UTF-8/], [[0x01, 0x02], /trailing/], [[0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x01], /deeper than 8/],
    [[0x98, 65, ...Array(65).fill(0)], /more than 64/], [[0xf8, 0x20], /simple value/], [[0x82, 0x01], /runs past the end/],
  ]) assert.throws(() => d(...b), re, b.join(','));
});

// A gateway that serves the real (expired) document: the hook must refuse
// before anything is encrypted, with the enclave and the failed check named.
function fakeGateway(doc) {
  const calls = [];
  const f = async (url, init) => {
    const path = new URL(url).pathname;
    calls.push(`${init.method} ${path}`);
    const ok = (o) => new Response(JSON.stringify(o), { status: 200 });
    if (path === '/api/v1/keygen/reserve') {
      const body = JSON.parse(init.body);
      return ok({
        keygen_session_id: body.keygen_session_id, coordinator_enclave_id: 1, coordinator_public_key: '02' + '11'.repeat(32),
        enclaves: [{ enclave_id: 1, public_key: '02' + '11'.repeat(32) }],
        assignments: body.expected_participants.map((u) => ({ user_id: u, enclave_id: 1, enclave_public_key: '02' + '11'.repeat(32) })),
      });
    }
    if (path.startsWith('/api/v1/enclaves/1/attestation')) return ok({ enclave_id: 1, attestation: 'nsm', public_key: '02' + '11'.repeat(32), key_epoch: 1, document: doc, fresh: true });
    return new Response('{"error":{"type":"not_found","message":"no"}}', { status: 404 });
  };
  return { f, calls };
}

test('attestationVerifier: refuses before createKeygen encrypts anything', async () => {
  assert.throws(() => km.attestationVerifier({}), /needs a PCR policy/);
  const { f, calls } = fakeGateway(b64('cape-2022-prod').trim());
  const client = new km.KeyMeldClient({ gateway: 'http://gw.invalid', fetch: f });
  const verifyEnclave = km.attestationVerifier({ root: AWS, pcrs: policyOf(cape) });
  await assert.rejects(client.createKeygen({ participants: 2, verifyEnclave }), (e) => {
    assert.ok(e instanceof km.AttestationError && e instanceof km.KeyMeldError);
    assert.equal(e.enclaveId, 1);
    assert.equal(e.type, 'attestation_failed');
    assert.equal(e.check, 'validity');
    assert.match(e.message, /^enclave 1's key is not attested; nothing was encrypted to it: validity: certificate has expired/);
    return true;
  });
  assert.equal(calls.length, 2);
  assert.equal(calls[0], 'POST /api/v1/keygen/reserve');
  assert.match(calls[1], /^GET \/api\/v1\/enclaves\/1\/attestation$/);
  // The client's default hook is used the same way; transport errors keep their status.
  const bad = new km.KeyMeldClient({ gateway: 'http://gw.invalid', fetch: async () => new Response('{"error":{"type":"service_unavailable","message":"enclave 1 gave no attestation"}}', { status: 503 }), retries: 0 });
  await assert.rejects(km.attestationVerifier({ pcrs: policyOf(cape) })([{ enclave_id: 1, public_key: '02' + '11'.repeat(32) }], bad),
    (e) => e instanceof km.AttestationError && e.status === 503 && /^enclave 1's key is not attested; nothing was encrypted to it: GET/.test(e.message));
});
