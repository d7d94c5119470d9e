// @keymeld/client - the KeyMeld gateway client (ESM).
export * from './crypto.js';
export { KeyMeldClient, KeyMeldError, Keygen, Signing } from './client.js';
export {
  attestationVerifier, verifyAttestation, parseAttestationDocument, readAttestationDocument, parsePcrPolicy,
  rootDer, sigStructure, decodeCbor, documentPcrs, CborMap, CborTag, AttestationError, AttestationCheckError,
  AWS_NITRO_ROOT_G1_PEM,
} from './attest.js';
