// stack.js - shared by the tests that run against the stack
// tests/js/js_client.sh starts.
import { readFileSync, existsSync } from 'node:fs';

/**
 * The attestation trust of the development stack: its CA (DEV_DIR/dev-ca/
 * root.pem) and PCR policy (DEV_DIR/pcrs.json), KEYMELD_TRUST_ROOT /
 * KEYMELD_PCR_POLICY of run/client.env winning; undefined without a gateway
 * or when they are missing.
 */
export function devStackTrust(gateway) {
  const devDir = process.env.KEYMELD_DEV_DIR ?? new URL('../../..', import.meta.url).pathname;
  const rootPath = process.env.KEYMELD_TRUST_ROOT ?? `${devDir}/dev-ca/root.pem`;
  const pcrsPath = process.env.KEYMELD_PCR_POLICY ?? `${devDir}/pcrs.json`;
  if (!gateway || !existsSync(rootPath) || !existsSync(pcrsPath)) return undefined;
  return { root: readFileSync(rootPath, 'utf8'), pcrs: readFileSync(pcrsPath, 'utf8') };
}

/** Waits (up to 30 s) until the gateway reports every enclave reachable. */
export async function waitReady(client, gateway) {
  for (let i = 0; i < 60; i++) {
    try {
      if ((await client.ready()).status === 'ready') return;
    } catch { /* 503 until ready */ }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${gateway} not ready`);
}
