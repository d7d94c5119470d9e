// stack.js - shared by the tests that run against the stack
// tests/js/js_client.sh starts.

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
