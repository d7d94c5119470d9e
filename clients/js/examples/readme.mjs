// The example of README.md, verbatim (tests/js/js_client.sh runs it against a
// fresh stack). Against `make start`: node examples/readme.mjs
import { readFileSync } from 'node:fs';
import { KeyMeldClient, attestationVerifier, bytesToHex, taggedHash, verifySignature } from '@keymeld/client';

// Attestation: every enclave key is verified before anything is encrypted to it.
// The development stack's trust is the development CA and the PCR policy that
// scripts/keymeld-dev writes (run/client.env names them); in production leave
// out `root` (the AWS Nitro root is the default) and pin your EIF's PCRs.
const dev = process.env.KEYMELD_DEV_DIR ?? '../..';
const verifyEnclave = attestationVerifier({
  root: readFileSync(process.env.KEYMELD_TRUST_ROOT ?? `${dev}/dev-ca/root.pem`, 'utf8'),
  pcrs: readFileSync(process.env.KEYMELD_PCR_POLICY ?? `${dev}/pcrs.json`, 'utf8'),
});

const client = new KeyMeldClient({
  gateway: process.env.KEYMELD_GATEWAY ?? 'http://127.0.0.1:8090',
  apiKey: process.env.KEYMELD_API_KEY, // not needed with open reserve (development)
  verifyEnclave,
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
