// The example of README.md, verbatim (tests/js/js_client.sh runs it against a
// fresh stack). Against `make start`: node examples/readme.mjs
import { KeyMeldClient, bytesToHex, taggedHash, verifySignature } from '@keymeld/client';

const client = new KeyMeldClient({
  gateway: process.env.KEYMELD_GATEWAY ?? 'http://127.0.0.1:8090',
  apiKey: process.env.KEYMELD_API_KEY, // not needed with open reserve (development)
});

// Keygen as coordinator of three local participants (fresh keys), with the
// BIP-86 Taproot tweak: the aggregate key is a P2TR output key.
const keygen = await client.createKeygen({ participants: 3, tweak: { type: 'unspendable_taproot' } });
console.log('keygen', keygen.id, 'output key', bytesToHex(keygen.aggregate.xonly));

// Sign a batch of 32-byte messages; every signature comes back verified.
const messages = ['pay alice', 'pay bob'].map((m) => taggedHash('example', new TextEncoder().encode(m)));
const results = await client.sign(keygen, messages);
results.forEach((r, i) => {
  if (!verifySignature(r.signature, messages[i], keygen.aggregate.xonly)) throw new Error('bad signature');
  console.log(`signature ${i} verifies: ${bytesToHex(r.signature)}`);
});

await client.deleteKeygen(keygen);
