// browser.test.js - the package runs unchanged in a browser (README
// "Browsers"): (a) no file of src/ imports a Node builtin or uses a
// Node-only global; (b) src/index.js bundles for the browser with esbuild
// (--platform=browser --format=esm) into one file that imports nothing and
// needs no Node builtin or global; (c) that bundle, loaded in a node:vm
// context holding only what a page has (crypto.getRandomValues, TextEncoder,
// TextDecoder, fetch, URL, timers), verifies a real Nitro attestation
// document, seals and opens with a session secret, encrypts to an enclave
// key, and runs attestationVerifier through KeyMeldClient and fetch.
// Imported by unit.test.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { webcrypto } from 'node:crypto';
import vm from 'node:vm';

const here = fileURLToPath(new URL('.', import.meta.url));
const src = here + '../src/';

// esbuild is a devDependency (npm ci installs it; tests/js/js_client.sh runs npm ci).
let esbuild, missing;
try { esbuild = await import('esbuild'); } catch (e) { missing = `esbuild is not installed (a devDependency: run npm ci): ${e.message}`; }
const needEsbuild = () => { if (missing) assert.fail(missing); };

// Globals Node has and browsers do not. esbuild's `define` rewrites only free
// references to them (not properties such as this.process, not locals, not
// strings or comments), so a marker in the output is a real use.
const NODE_GLOBALS = ['Buffer', 'process', 'global', '__dirname', '__filename', 'setImmediate', 'require', 'module', 'exports'];
const MARK = '__km_node_global_';
const defineMarks = (names) => Object.fromEntries(names.map((n) => [n, MARK + n]));
const marks = (code) => [...code.matchAll(new RegExp(`.{0,60}${MARK}(\\w+).{0,30}`, 'g'))].map((m) => `${m[1]} in: ${m[0].trim()}`);
const isBuiltin = (p) => p.startsWith('node:') || builtinModules.includes(p) || builtinModules.includes(p.split('/')[0]);

const files = (dir, rel = '') => readdirSync(dir + rel, { withFileTypes: true })
  .flatMap((d) => (d.isDirectory() ? files(dir, `${rel}${d.name}/`) : [`${rel}${d.name}`]));

test('browser (a): no file of src/ imports a Node builtin or uses Buffer, process, require', async () => {
  needEsbuild();
  const js = files(src).filter((f) => f.endsWith('.js'));
  assert.ok(js.includes('attest.js') && js.includes('der.js') && js.includes('x509.js'), js.join(' '));
  const problems = [];
  for (const f of js) {
    const code = readFileSync(src + f, 'utf8');
    // Every import of the file, as esbuild reads it (static, dynamic, re-exports).
    const r = await esbuild.build({
      stdin: { contents: code, resolveDir: src, sourcefile: f, loader: 'js' },
      bundle: true, external: ['*'], write: false, metafile: true, format: 'esm', logLevel: 'silent',
    });
    for (const imp of Object.values(r.metafile.inputs)[0].imports) {
      if (isBuiltin(imp.path)) problems.push(`${f} imports ${imp.path}`);
    }
    const out = (await esbuild.transform(code, { loader: 'js', format: 'esm', define: defineMarks(NODE_GLOBALS) })).code;
    for (const m of marks(out)) problems.push(`${f} uses the Node global ${m}`);
  }
  // The type declarations must not pull in @types/node either.
  for (const f of files(src).filter((x) => x.endsWith('.d.ts'))) {
    const text = readFileSync(src + f, 'utf8');
    for (const m of text.matchAll(/.{0,40}(['"]node:[\w/]+['"]|\bNodeJS\.|\bBuffer\b).{0,20}/g)) problems.push(`${f}: ${m[0].trim()}`);
  }
  assert.deepEqual(problems, []);
});

let bundle;
async function browserBundle() {
  needEsbuild();
  if (bundle) return bundle;
  let r;
  try {
    r = await esbuild.build({
      entryPoints: [src + 'index.js'], bundle: true, platform: 'browser', format: 'esm', write: false, metafile: true,
      logLevel: 'silent', define: defineMarks(NODE_GLOBALS.filter((n) => !['require', 'module', 'exports'].includes(n))),
    });
  } catch (e) {
    // A Node builtin imported anywhere (src/ or a dependency) cannot be
    // resolved for the browser platform: "Could not resolve "node:crypto"".
    assert.fail(`esbuild cannot bundle src/index.js for the browser:\n${(e.errors ?? [e]).map((x) => `  ${x.text ?? x.message}${x.location ? ` (${x.location.file}:${x.location.line})` : ''}`).join('\n')}`);
  }
  bundle = { text: r.outputFiles[0].text, metafile: r.metafile };
  return bundle;
}

test('browser (b): src/index.js bundles for the browser, self-contained, without Node builtins or globals', async () => {
  const { text, metafile } = await browserBundle();
  const inputs = Object.keys(metafile.inputs);
  assert.deepEqual(inputs.filter(isBuiltin), []);
  // eciesjs's ciphers come in a Node build (node:crypto) and a browser build (@noble/ciphers): the browser one.
  assert.ok(inputs.some((p) => p.includes('@ecies/ciphers/dist/aes/noble.js')), 'the browser build of @ecies/ciphers');
  assert.ok(!inputs.some((p) => p.includes('@ecies/ciphers/dist/aes/node.js')), 'not the Node build of @ecies/ciphers');
  for (const f of ['src/attest.js', 'src/der.js', 'src/x509.js', 'src/base64.js']) assert.ok(inputs.includes(f), f);
  const [out] = Object.values(metafile.outputs);
  assert.deepEqual(out.imports, [], 'the bundle imports nothing');
  assert.deepEqual(marks(text), [], 'free references to Node globals');
  // esbuild's shim for a require() it could not resolve statically
  assert.doesNotMatch(text, /Dynamic require of/);
});

// A realm with the globals a page has and nothing of Node's.
function browserRealm() {
  const host = {
    encode: (s) => new TextEncoder().encode(s),
    replies: [],
    fetch(url, method) {
      this.replies.push(`${method} ${new URL(url).pathname}`);
      const reply = this.reply(url, method);
      return { status: reply.status, body: JSON.stringify(reply.body) };
    },
  };
  const ctx = vm.createContext({
    crypto: { getRandomValues: (a) => webcrypto.getRandomValues(a) },
    TextDecoder, URL, setTimeout, clearTimeout,
    __host: host,
  });
  // TextEncoder and fetch are made inside the realm, so that what they
  // return is the realm's own Uint8Array and Promise, as in a page.
  vm.runInContext(`
    globalThis.TextEncoder = class TextEncoder {
      get encoding() { return 'utf-8'; }
      encode(s = '') { return new Uint8Array(__host.encode(String(s))); }
    };
    globalThis.fetch = async (url, init = {}) => {
      const r = __host.fetch(String(url), init.method ?? 'GET');
      return { ok: r.status >= 200 && r.status < 300, status: r.status, headers: { get: () => null }, text: async () => r.body };
    };
  `, ctx);
  return { ctx, host };
}

test('browser (c): the bundle verifies a real Nitro document and seals, in a realm without Node', async () => {
  const { text } = await browserBundle();
  // The ESM bundle as a classic script (node:vm runs ES modules only behind
  // --experimental-vm-modules): esbuild turns its exports into a global.
  const script = (await esbuild.transform(text, { format: 'iife', globalName: 'KeyMeld', loader: 'js' })).code;
  const { ctx, host } = browserRealm();
  assert.equal(vm.runInContext('[typeof process, typeof Buffer, typeof require, typeof module, typeof global].join()', ctx),
    'undefined,undefined,undefined,undefined,undefined');
  vm.runInContext(script, ctx, { filename: 'keymeld.browser.js' });

  const fx = (n) => readFileSync(`${here}fixtures/nitro/${n}`, 'utf8');
  const meta = JSON.parse(fx('cape-2022-prod.json'));
  ctx.__fx = {
    doc: fx('cape-2022-prod.b64'), tampered: fx('cape-2022-prod-bad-chain.b64'), at: meta.verify_at_unix,
    policy: JSON.stringify({ pcr_sets: [{ PCR0: meta.pcrs[0], PCR1: meta.pcrs[1], PCR2: meta.pcrs[2] }] }),
    nonce: meta.nonce, publicKey: meta.public_key,
  };
  host.reply = (url) => (new URL(url).pathname === '/api/v1/enclaves/1/attestation'
    ? { status: 200, body: { enclave_id: 1, attestation: 'nsm', public_key: '02' + '11'.repeat(32), key_epoch: 1, document: ctx.__fx.doc, fresh: true } }
    : { status: 404, body: { error: { type: 'not_found', message: 'no' } } });

  const out = JSON.parse(await vm.runInContext(`(async () => {
    const km = KeyMeld, out = {};
    // the whole trust of a real document at its time: root, chain, PCRs, key, nonce, freshness
    const doc = km.verifyAttestation(__fx.doc, { at: __fx.at, pcrs: __fx.policy, nonce: __fx.nonce, publicKey: __fx.publicKey, maxAgeSecs: 300 });
    out.moduleId = doc.moduleId;
    out.pcr0 = km.documentPcrs(doc).PCR0;
    out.rootLen = km.rootDer().length;
    const refused = (f) => { try { f(); return 'accepted'; } catch (e) { return (e instanceof km.AttestationCheckError ? '' : e.name + ' ') + e.message; } };
    out.now = refused(() => km.verifyAttestation(__fx.doc, {}));
    out.tampered = refused(() => km.verifyAttestation(__fx.tampered, { at: __fx.at }));
    // seal / open with a session secret (AES-256-GCM, HKDF), fresh randomness from crypto.getRandomValues
    const secret = km.newSecret();
    const blob = km.seal(secret, 'session_data', new TextEncoder().encode('hello from a browser'));
    out.opened = new TextDecoder().decode(km.open(secret, 'session_data', blob));
    out.json = km.openJSON(secret, 'taproot_tweak', km.sealJSON(secret, 'taproot_tweak', { type: 'none' }));
    out.wrongSecret = refused(() => km.open(km.newSecret(), 'session_data', blob));
    // ECIES to an enclave key (eciesjs with its browser ciphers)
    const sk = km.newSecret();
    out.ecies = new TextDecoder().decode(km.eciesOpen(sk, km.eciesTo(km.publicKey(sk), new TextEncoder().encode('to the enclave'))));
    // the verifyEnclave hook: fetch through KeyMeldClient, a fresh nonce, the (expired) real document refused
    const client = new km.KeyMeldClient({ gateway: 'https://gateway.example', retries: 0 });
    try {
      await km.attestationVerifier({ pcrs: __fx.policy })([{ enclave_id: 1, public_key: '02' + '11'.repeat(32) }], client);
      out.hook = 'accepted';
    } catch (e) {
      out.hook = { name: e.name, keymeld: e instanceof km.KeyMeldError, check: e.check, enclaveId: e.enclaveId };
    }
    return JSON.stringify(out);
  })()`, ctx));

  assert.equal(out.moduleId, meta.module_id);
  assert.equal(out.pcr0, meta.pcrs[0]);
  assert.equal(out.rootLen, 533);
  assert.match(out.now, /^validity: certificate has expired \(depth 3, /);
  assert.equal(out.tampered, 'chain: certificate signature failure (depth 1, CN=1f4a33e4b48bb46d.us-east-1.aws.nitro-enclaves)');
  assert.equal(out.opened, 'hello from a browser');
  assert.deepEqual(out.json, { type: 'none' });
  assert.match(out.wrongSecret, /does not authenticate/);
  assert.equal(out.ecies, 'to the enclave');
  assert.deepEqual(out.hook, { name: 'AttestationError', keymeld: true, check: 'validity', enclaveId: 1 });
  assert.equal(host.replies.length, 1);
  assert.match(host.replies[0], /^GET \/api\/v1\/enclaves\/1\/attestation$/);
});
