// @keymeld/client - the KeyMeld gateway client (ESM).
export * from './crypto.js';
export { KeyMeldClient, KeyMeldError, Keygen, Signing } from './client.js';
