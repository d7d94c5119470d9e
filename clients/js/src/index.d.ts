// Type declarations of @keymeld/client (hand-written; the package is plain ESM).

export type Bytes = Uint8Array;
/** Bytes given as a Uint8Array or a hex string. */
export type BytesLike = Uint8Array | string;

// ---- crypto (docs/CRYPTO.md "Client formulas") ----------------------------

export declare const N: bigint;
export declare function bytesToHex(b: Uint8Array): string;
export declare function hexToBytes(h: string): Uint8Array;
export declare function concatBytes(...b: Uint8Array[]): Uint8Array;
export declare function randomBytes(n?: number): Uint8Array;
export declare function bytes(x: BytesLike, name: string, len?: number): Uint8Array;
export declare function taggedHash(tag: string, ...msgs: Uint8Array[]): Bytes;
export declare function hkdf32(ikm: Uint8Array, salt: string | undefined, info: string): Bytes;

export declare function uuidBytes(id: string): Bytes;
export declare function uuidText(id: string): string;
export declare function uuidv7(): string;

export interface AuthKey {
  /** 32-byte BIP-340 secret key (HKDF output, used as is). */
  seckey: Bytes;
  /** 32-byte x-only public key (what the gateway verifies with). */
  pubkey: Bytes;
}
export declare function newSecret(): Bytes;
export declare function publicKey(seckey: BytesLike): Bytes;
export declare function deriveAuthKey(ikm: BytesLike, salt: string, info: string): AuthKey;
export declare function sessionAuthKey(sessionSecret: BytesLike): AuthKey;
export declare function participantAuthKey(privateKey: BytesLike, keygenSessionId: string): AuthKey;

export declare function requestDigest(method: string, path: string, timestamp: number | bigint,
  nonce: BytesLike, body?: string | Uint8Array): Bytes;
export interface SignedHeaders {
  'X-KeyMeld-Timestamp': string;
  'X-KeyMeld-Nonce': string;
  'X-KeyMeld-Signature': string;
}
export declare function signRequest(seckey: BytesLike, method: string, path: string,
  body?: string | Uint8Array,
  opts?: { timestamp?: number; nonce?: BytesLike; auxRand?: Uint8Array }): SignedHeaders;

export interface ApprovalItem { itemId: string; message: BytesLike }
export declare function approvalPreimage(signingSessionId: string, keygenSessionId: string,
  timestamp: number, items: ApprovalItem[]): Bytes;
export declare function approvalDigest(signingSessionId: string, keygenSessionId: string,
  timestamp: number, items: ApprovalItem[]): Bytes;
export declare function signApproval(authSeckey: BytesLike, signingSessionId: string,
  keygenSessionId: string, timestamp: number, items: ApprovalItem[], auxRand?: Uint8Array): Bytes;

export declare function eciesTo(enclavePublicKey: BytesLike, plaintext: BytesLike): Bytes;
export declare function eciesOpen(seckey: BytesLike, ciphertext: BytesLike): Bytes;
export type SealContext =
  | 'taproot_tweak' | 'session_data' | 'adaptor_configs' | 'nonce_data' | 'signature_data'
  | 'aggregate_public_key' | 'subset_aggregate_public_key' | 'signature' | 'adaptor_signatures';
export declare function seal(sessionSecret: BytesLike, context: SealContext | string,
  plaintext: BytesLike, nonce?: BytesLike): Bytes;
export declare function open(sessionSecret: BytesLike, context: SealContext | string, blob: BytesLike): Bytes;
export declare function sealJSON(sessionSecret: BytesLike, context: string, value: unknown): Bytes;
export declare function openJSON(sessionSecret: BytesLike, context: string, blob: BytesLike): any;

/** Tweak JSON of docs/PROTOCOL.md (camelCase merkleRoot accepted on input). */
export type Tweak =
  | { type: 'none' }
  | { type: 'unspendable_taproot' }
  | { type: 'taproot_with_merkle_root'; merkle_root?: BytesLike; merkleRoot?: BytesLike }
  | { type: 'plain_tweak' | 'x_only_tweak'; tweak: BytesLike };
export interface TweakJSON { type: Tweak['type']; merkle_root?: string; tweak?: string }
export declare function tweakJSON(t?: Tweak | null): TweakJSON;
export interface AggregateKey {
  /** 33-byte compressed key after the tweak. */
  plain: Bytes;
  /** 32-byte x-only key (what signatures verify against). */
  xonly: Bytes;
}
export declare function aggregateKey(publicKeys: BytesLike[], tweak?: Tweak | TweakJSON): AggregateKey;
export declare function aggregateCheck(sessionSecret: BytesLike, aggregate: BytesLike, subsetKeys?: BytesLike[]): Bytes;
export declare function verifySignature(signature: BytesLike, message: BytesLike, xonly: BytesLike): boolean;

// ---- Taproot script trees (BIP-341) ----------------------------------------

/** The tapscript leaf version, 0xc0. */
export declare const TAPSCRIPT_LEAF_VERSION: number;
/** hash_TapLeaf(leaf_version ‖ compact_size(len) ‖ script). */
export declare function tapLeafHash(script: BytesLike, leafVersion?: number): Bytes;
/** The merkle root a control block's path proves for a leaf hash. */
export declare function tapMerkleRoot(leafHash: BytesLike, path?: BytesLike[]): Bytes;
/** The BIP-341 output key of an x-only internal key and a merkle root (none: BIP-86); parity 1 = odd y. */
export declare function taprootTweakKey(internalKey: BytesLike, merkleRoot?: BytesLike): { xonly: Bytes; parity: 0 | 1 };

/** One unit of an opened adaptor result (docs/PROTOCOL.md "signing_finalize"). */
export interface AdaptorResult {
  adaptor_id: string;
  adaptor_type: 'single' | 'and' | 'or';
  branch: number;
  adaptor_point: string;
  presignature: string;
  nonce_parity: 0 | 1;
}
export declare function adaptorPoint(secret: BytesLike): Bytes;
/** secrets: the config's secrets in order (single: [t]; and: all; or: all, or just the branch's). */
export declare function adaptorSecret(result: AdaptorResult, secrets: BytesLike[]): Bytes;
export declare function verifyPresignature(result: AdaptorResult, message: BytesLike, xonly: BytesLike): boolean;
export declare function adaptorComplete(result: AdaptorResult, secrets: BytesLike[]): Bytes;
export declare function adaptorExtract(result: AdaptorResult, signature: BytesLike): Bytes;

// ---- client -----------------------------------------------------------------

export declare class KeyMeldError extends Error {
  /** HTTP status (0 for a client-side failure). */
  status: number;
  /** The gateway's error type (`unauthorized`, `conflict`, ...) or `keygen_failed`, `signing_failed`, `timeout`, `client_error`. */
  type: string;
  /** X-Request-Id of the reply (quote it when reporting a problem). */
  requestId?: string;
  body?: unknown;
}

export interface Participant {
  userId: string;
  requireSigningApproval: boolean;
  /** Local participants only. */
  privateKey?: Bytes;
  publicKey?: Bytes;
  /** The participant auth key for this keygen (local participants). */
  auth?: AuthKey;
}

export interface ParticipantSpec {
  userId?: string;
  privateKey?: BytesLike;
  publicKey?: BytesLike;
  requireSigningApproval?: boolean;
  /** true: a local participant with a fresh private key. */
  local?: boolean;
}

export interface SubsetSpec {
  subsetId?: string;
  /** user ids, or indexes into `participants` (createKeygen). */
  participants: Array<string | number>;
}

export declare class Keygen {
  constructor(o: { keygenSessionId: string; sessionSecret: BytesLike; participants?: ParticipantSpec[];
    coordinatorUserId?: string; tweak?: Tweak; subsets?: SubsetSpec[] });
  id: string;
  sessionSecret: Bytes;
  sessionAuth: AuthKey;
  participants: Map<string, Participant>;
  coordinatorUserId?: string;
  tweak: TweakJSON;
  subsets: { subsetId: string; participants: string[] }[];
  /** The reserve reply (coordinator). */
  reservation?: any;
  /** The last reply of a keygen route. */
  status?: any;
  /** Set by waitKeygen once the key is opened and checked. */
  aggregate?: AggregateKey;
  subsetKeys: Map<string, AggregateKey>;
  readonly local: Participant[];
  keyFor(item?: { subsetId?: string; tweak?: Tweak }): Bytes | undefined;
  /** P2TR address of the (tweaked) aggregate key; network: an @scure/btc-signer network (default mainnet). */
  address(network?: { bech32: string; pubKeyHash: number; scriptHash: number; wif: number }): string;
}

export type AdaptorSpec = {
  type: 'single' | 'and' | 'or';
  points: BytesLike[];
  adaptorId?: string;
};

export type SigningItem = BytesLike | {
  message: BytesLike;
  itemId?: string;
  subsetId?: string;
  tweak?: Tweak;
  adaptors?: AdaptorSpec[];
};

export interface SigningResult {
  itemId: string;
  /** 64-byte BIP-340 signature (plain items). */
  signature?: Bytes;
  /** One entry per unit (adaptor items), pre-signatures already checked. */
  adaptorSignatures?: AdaptorResult[];
  /** true: verified here; undefined: the key is not computable by this party (per-item tweak of a joiner). */
  verified?: boolean;
}

export declare class Signing {
  keygen: Keygen;
  id: string;
  items: { itemId: string; message: Bytes; subsetId?: string; tweak?: Tweak; adaptors?: any[] }[];
  status?: any;
  requiresApprovalFrom: string[];
  results?: SigningResult[];
}

export interface CreateKeygenOptions {
  /** A number n = n fresh local participants (default 3). */
  participants?: number | ParticipantSpec[];
  coordinatorUserId?: string;
  tweak?: Tweak;
  subsets?: SubsetSpec[];
  timeoutSecs?: number;
  maxSigningSessions?: number;
  sessionSecret?: BytesLike;
  keygenSessionId?: string;
  /** Wait for completion (default: when every participant is local). */
  wait?: boolean;
  waitMs?: number;
  /**
   * Called with the enclaves a key is about to be encrypted to (and this client)
   * before anything is encrypted to them: attestationVerifier({root, pcrs}).
   * Default: the client's verifyEnclave. Throwing aborts before anything is sent.
   */
  verifyEnclave?: VerifyEnclave;
}

export interface JoinKeygenOptions {
  keygenSessionId: string;
  sessionSecret: BytesLike;
  userId: string;
  privateKey?: BytesLike;
  requireSigningApproval?: boolean;
  tweak?: Tweak;
  subsets?: SubsetSpec[];
  wait?: boolean;
  waitMs?: number;
  verifyEnclave?: CreateKeygenOptions['verifyEnclave'];
}

export interface SignOptions {
  signingSessionId?: string;
  timeoutSecs?: number;
  /** wait_ms of the create request (0..30000). */
  waitMs?: number;
  /** Approve for local participants that must (default true). */
  approve?: boolean;
  /** Overall wait for the result (120000). */
  timeoutMs?: number;
}

export declare class KeyMeldClient {
  constructor(o: { gateway: string; apiKey?: string; fetch?: typeof fetch; retries?: number;
    /** Default verifyEnclave hook of createKeygen / joinKeygen. */
    verifyEnclave?: VerifyEnclave });
  gateway: string;
  verifyEnclave?: VerifyEnclave;
  request(method: 'GET' | 'POST' | 'DELETE', path: string,
    o?: { body?: unknown; signer?: Uint8Array; apiKey?: string }): Promise<any>;

  health(): Promise<any>;
  ready(): Promise<any>;
  version(): Promise<any>;
  enclaves(): Promise<any>;
  enclavePublicKey(id: number): Promise<any>;
  attestation(id: number, nonce?: BytesLike): Promise<any>;

  reserve(body: object): Promise<any>;
  initialize(kg: Keygen, body: object): Promise<any>;
  slots(kg: Keygen): Promise<any>;
  registerBody(kg: Keygen, body: object): Promise<any>;
  register(kg: Keygen, p: Participant, enclavePublicKey?: string): Promise<any>;
  keygenStatus(kg: Keygen, waitMs?: number): Promise<any>;
  deleteKeygen(kg: Keygen): Promise<any>;

  createKeygen(opts?: CreateKeygenOptions): Promise<Keygen>;
  joinKeygen(opts: JoinKeygenOptions): Promise<Keygen>;
  pollFinal(pathBase: string, signer: Uint8Array, timeoutMs?: number): Promise<any>;
  waitKeygen(kg: Keygen, o?: { timeoutMs?: number }): Promise<Keygen>;

  createSigning(kg: Keygen, items: SigningItem[], opts?: SignOptions): Promise<Signing>;
  approve(s: Signing, userId: string, o?: { timestamp?: number }): Promise<any>;
  signingStatus(s: Signing, o?: { userId?: string; waitMs?: number }): Promise<any>;
  waitSigning(s: Signing, o?: { userId?: string; timeoutMs?: number }): Promise<SigningResult[]>;
  takeResults(s: Signing, status: any): SigningResult[];
  sign(kg: Keygen, items: SigningItem[], opts?: SignOptions): Promise<SigningResult[]>;
  /**
   * Signs, in one signing session, the PSBT's Taproot spends of this keygen:
   * key paths of its output key Q (or of the untweaked aggregate P under the
   * input's own tapInternalKey / tapMerkleRoot), otherwise every tapscript
   * leaf pushing Q or P (control block checked; P leaves signed with the item
   * tweak {type:'none'}). Writes tapKeySig / tapScriptSig and, where absent,
   * BIP-371/373 metadata; returns the @scure/btc-signer Transaction (a given
   * Transaction is updated in place).
   */
  signPsbt(kg: Keygen, psbt: BytesLike | import('@scure/btc-signer').Transaction, opts?: SignOptions): Promise<import('@scure/btc-signer').Transaction>;
}

// ---- attestation (docs/ATTESTATION.md) --------------------------------------

export interface EnclaveKey { enclave_id: number; public_key: string }
export type VerifyEnclave = (enclaves: EnclaveKey[], client: KeyMeldClient) => Promise<void> | void;

/** The AWS Nitro Enclaves Root-G1 (the default pinned root). */
export declare const AWS_NITRO_ROOT_G1_PEM: string;
/**
 * A root: PEM text holding exactly one certificate, its DER bytes (or PEM
 * text as bytes), or an object carrying the DER in `raw`, such as Node's
 * crypto.X509Certificate (read through `raw`: the package imports nothing
 * from Node and runs in browsers).
 */
export type RootLike = string | Uint8Array | { readonly raw: Uint8Array };
/** A PCR policy: the JSON text of a policy file, its parsed object, or parsePcrPolicy's result. */
export type PcrPolicyLike = string | Uint8Array | { pcr_sets: Record<string, string>[] } | Map<number, Uint8Array>[];

/** One failed check of verifyAttestation. */
export declare class AttestationCheckError extends Error {
  check: 'decode' | 'signature' | 'root' | 'chain' | 'validity' | 'freshness' | 'debug' | 'pcrs' | 'public_key' | 'nonce';
}
/** An enclave refused by attestationVerifier (type 'attestation_failed' unless the fetch failed); nothing was encrypted to it. */
export declare class AttestationError extends KeyMeldError {
  enclaveId: number;
  /** The failed check, or 'fetch' when the document could not be fetched (status/type are then the HTTP error's). */
  check: AttestationCheckError['check'] | 'fetch';
}

export interface AttestationDocument {
  moduleId: string;
  digest: 'SHA384';
  timestampMs: number;
  pcrs: Map<number, Bytes>;
  certificate: Bytes;
  /** [root, intermediate_1, ..., intermediate_n] (DER). */
  cabundle: Bytes[];
  /** null when absent or CBOR null. */
  publicKey: Bytes | null;
  userData: Bytes | null;
  nonce: Bytes | null;
  protectedHeader: Bytes;
  payload: Bytes;
  signature: Bytes;
  raw: Bytes;
}

export interface VerifyAttestationOptions {
  /** The pinned root (default the AWS Nitro root). */
  root?: RootLike;
  /** The PCR policy; absent = PCRs not checked. */
  pcrs?: PcrPolicyLike;
  /** Verification time: Unix seconds or a Date (default now). */
  at?: number | Date;
  /** Maximum age of the document in seconds (0/absent = not checked). */
  maxAgeSecs?: number;
  allowDebug?: boolean;
  /** Expected public_key / nonce (bytes or hex; absent = not checked). */
  publicKey?: BytesLike;
  nonce?: BytesLike;
}

export interface AttestationVerifierOptions {
  /** The pinned root (default the AWS Nitro root; the development stack: DEV_DIR/dev-ca/root.pem). */
  root?: RootLike;
  /** Required: the PCR policy (DEV_DIR/pcrs.json on the development stack; deploy/nitro writes /etc/keymeld/pcrs.json). */
  pcrs: PcrPolicyLike;
  /** Default 300. */
  maxAgeSecs?: number;
  /** Default false. */
  allowDebug?: boolean;
  /** The client to fetch documents with (default: the client calling the hook). */
  client?: KeyMeldClient;
}

/** A verifyEnclave hook; `documents` holds the last verified document of each enclave id. */
export declare function attestationVerifier(o: AttestationVerifierOptions): VerifyEnclave & { documents: Map<number, AttestationDocument> };
export declare function verifyAttestation(document: string | Uint8Array | AttestationDocument, o?: VerifyAttestationOptions): AttestationDocument;
export declare function parseAttestationDocument(document: string | Uint8Array): AttestationDocument;
/** The raw bytes of a document given as CBOR or standard base64. */
export declare function readAttestationDocument(document: string | Uint8Array): Bytes;
export declare function parsePcrPolicy(policy: PcrPolicyLike): Map<number, Bytes>[];
/** The DER of a root (default the AWS Nitro root), parsed as an X.509 certificate; TypeError when it is not one. */
export declare function rootDer(root?: RootLike): Bytes;
/** The CBOR of the COSE Sig_structure the document's signature covers. */
export declare function sigStructure(doc: AttestationDocument): Bytes;
/** PCRs of a document as {PCR0: hex, ...} (default PCR0-2: what a policy set pins). */
export declare function documentPcrs(doc: AttestationDocument, which?: number[]): Record<string, string>;
export declare class CborMap { entries: [unknown, unknown][]; readonly size: number }
export declare class CborTag { tag: number; value: unknown }
/** Strict CBOR decoding of exactly one item (docs/ATTESTATION.md "Strict CBOR"). */
export declare function decodeCbor(bytes: Uint8Array, what?: string): unknown;
