/*
 * psbt.h - Partially Signed Bitcoin Transactions, version 0 (BIP-174) and
 * version 2 (BIP-370), with the Taproot fields of BIP-371 and the MuSig2
 * fields of BIP-373; and the BIP-341 sighash of every input.
 *
 * Model. A PSBT is a global map, one map per input and one per output;
 * each map is an ordered list of key-value records. struct psbt keeps every
 * record as read, in order, including the ones it does not understand
 * (unknown and proprietary types), so psbt_serialize(psbt_parse(x)) == x
 * byte for byte. Typed getters decode the fields a Taproot MuSig2 signer
 * needs; setters add or replace records, validated exactly like parsed
 * ones.
 *
 * The transaction. Version 0 carries it in PSBT_GLOBAL_UNSIGNED_TX (legacy
 * serialization, empty scriptSigs). Version 2 spreads it over
 * PSBT_GLOBAL_TX_VERSION, PSBT_GLOBAL_FALLBACK_LOCKTIME, PSBT_IN_PREVIOUS_
 * TXID / OUTPUT_INDEX / SEQUENCE / REQUIRED_{TIME,HEIGHT}_LOCKTIME and
 * PSBT_OUT_AMOUNT / SCRIPT; the lock time is BIP-370's choice (the
 * greatest required lock of the one kind every locking input accepts,
 * height preferred, else the fallback, else 0). psbt_tx_direct gives the
 * unsigned transaction in both cases.
 *
 * Validation at parse (each refusal names the map, e.g. "input 3", and the
 * field, e.g. "PSBT_IN_TAP_KEY_SIG"):
 *  - magic, minimal CompactSizes, no duplicate key in a map, nothing after
 *    the last map, every limit below;
 *  - version: PSBT_GLOBAL_VERSION absent or 0 (v0) or 2; others are
 *    KM_ERR_UNSUPPORTED. Fields each version requires or excludes
 *    (BIP-174 "Versions Requiring Inclusion/Exclusion", BIP-370);
 *  - every known field's key data and value shape (lengths, pubkeys that
 *    libsecp256k1 accepts where BIP-174/373 want full pubkeys, control
 *    block sizes, a complete PSBT_OUT_TAP_TREE, ...);
 *  - a PSBT_IN_NON_WITNESS_UTXO must hash to the input's prevout txid and
 *    have an output at its index (Bitcoin Core does the same).
 * Not checked here (signer policy, see psbt_sighash): whether a witness
 * UTXO agrees with the non-witness UTXO, whether scripts match.
 *
 * Errors: KM_ERR_INCOMPLETE (ends early), KM_ERR_TRAILING_DATA,
 * KM_ERR_TOO_LARGE (a limit), KM_ERR_INVALID (malformed),
 * KM_ERR_UNSUPPORTED (a PSBT version other than 0 or 2), with a message in
 * the struct km_error. Nothing aborts on input; index arguments out of
 * range are programmer errors (KM_BUG).
 *
 * Ownership: struct psbt is opaque and heap-allocated (psbt_parse,
 * psbt_new_v0, psbt_new_v2; psbt_free). Pointers handed out by getters
 * (struct psbt_record, the typed views, psbt_tx_direct) are borrowed and
 * valid until the next call that modifies the PSBT, or psbt_free.
 */
#ifndef KM_BITCOIN_PSBT_H
#define KM_BITCOIN_PSBT_H

#include <stddef.h>
#include <stdint.h>

#include "bitcoin/sighash.h"
#include "bitcoin/tx.h"
#include "common/buf.h"
#include "common/err.h"

/* Limits (docs/BITCOIN.md). The value limit admits any transaction as a
 * non-witness UTXO; the largest standard key is a depth-128 control block
 * (4130 bytes); 10000 inputs or outputs exceed what a standard (400 kvB)
 * transaction can hold. */
#define PSBT_MAX_SIZE        (16u << 20)
#define PSBT_MAX_KEY_LEN     8192u
#define PSBT_MAX_VALUE_LEN   TX_MAX_SIZE
#define PSBT_MAX_INPUTS      10000u
#define PSBT_MAX_OUTPUTS     10000u
#define PSBT_MAX_MAP_RECORDS 4096u   /* records in any one map */
#define PSBT_MAX_RECORDS     200000u /* records in all maps (parse) */

/* Global key types (BIP-174, BIP-370). */
#define PSBT_GLOBAL_UNSIGNED_TX       0x00u
#define PSBT_GLOBAL_XPUB              0x01u
#define PSBT_GLOBAL_TX_VERSION        0x02u
#define PSBT_GLOBAL_FALLBACK_LOCKTIME 0x03u
#define PSBT_GLOBAL_INPUT_COUNT       0x04u
#define PSBT_GLOBAL_OUTPUT_COUNT      0x05u
#define PSBT_GLOBAL_TX_MODIFIABLE     0x06u
#define PSBT_GLOBAL_VERSION           0xfbu
#define PSBT_GLOBAL_PROPRIETARY       0xfcu

/* Input key types (BIP-174, BIP-370, BIP-371, BIP-373). */
#define PSBT_IN_NON_WITNESS_UTXO           0x00u
#define PSBT_IN_WITNESS_UTXO               0x01u
#define PSBT_IN_PARTIAL_SIG                0x02u
#define PSBT_IN_SIGHASH_TYPE               0x03u
#define PSBT_IN_REDEEM_SCRIPT              0x04u
#define PSBT_IN_WITNESS_SCRIPT             0x05u
#define PSBT_IN_BIP32_DERIVATION           0x06u
#define PSBT_IN_FINAL_SCRIPTSIG            0x07u
#define PSBT_IN_FINAL_SCRIPTWITNESS        0x08u
#define PSBT_IN_RIPEMD160                  0x0au
#define PSBT_IN_SHA256                     0x0bu
#define PSBT_IN_HASH160                    0x0cu
#define PSBT_IN_HASH256                    0x0du
#define PSBT_IN_PREVIOUS_TXID              0x0eu
#define PSBT_IN_OUTPUT_INDEX               0x0fu
#define PSBT_IN_SEQUENCE                   0x10u
#define PSBT_IN_REQUIRED_TIME_LOCKTIME     0x11u
#define PSBT_IN_REQUIRED_HEIGHT_LOCKTIME   0x12u
#define PSBT_IN_TAP_KEY_SIG                0x13u
#define PSBT_IN_TAP_SCRIPT_SIG             0x14u
#define PSBT_IN_TAP_LEAF_SCRIPT            0x15u
#define PSBT_IN_TAP_BIP32_DERIVATION       0x16u
#define PSBT_IN_TAP_INTERNAL_KEY           0x17u
#define PSBT_IN_TAP_MERKLE_ROOT            0x18u
#define PSBT_IN_MUSIG2_PARTICIPANT_PUBKEYS 0x1au
#define PSBT_IN_MUSIG2_PUB_NONCE           0x1bu
#define PSBT_IN_MUSIG2_PARTIAL_SIG         0x1cu
#define PSBT_IN_PROPRIETARY                0xfcu

/* Output key types (BIP-174, BIP-370, BIP-371, BIP-373). */
#define PSBT_OUT_REDEEM_SCRIPT              0x00u
#define PSBT_OUT_WITNESS_SCRIPT             0x01u
#define PSBT_OUT_BIP32_DERIVATION           0x02u
#define PSBT_OUT_AMOUNT                     0x03u
#define PSBT_OUT_SCRIPT                     0x04u
#define PSBT_OUT_TAP_INTERNAL_KEY           0x05u
#define PSBT_OUT_TAP_TREE                   0x06u
#define PSBT_OUT_TAP_BIP32_DERIVATION       0x07u
#define PSBT_OUT_MUSIG2_PARTICIPANT_PUBKEYS 0x08u
#define PSBT_OUT_PROPRIETARY                0xfcu

/* BIP-370: lock times below this are block heights. */
#define PSBT_LOCKTIME_THRESHOLD 500000000u

enum psbt_scope {
    PSBT_SCOPE_GLOBAL,
    PSBT_SCOPE_INPUT,
    PSBT_SCOPE_OUTPUT,
};

struct psbt;

/* A borrowed view of one record. key = CompactSize(type) || keydata. */
struct psbt_record {
    uint64_t type;
    const uint8_t *key;
    size_t key_len;
    const uint8_t *keydata;
    size_t keydata_len;
    const uint8_t *value;
    size_t value_len;
};

/* PSBT_IN_TAP_SCRIPT_SIG: key (xonly || leaf_hash), value sig (64 or 65). */
struct psbt_tap_script_sig {
    const uint8_t *xonly;     /* 32 */
    const uint8_t *leaf_hash; /* 32 */
    const uint8_t *sig;
    size_t sig_len;
};

/* PSBT_IN_TAP_LEAF_SCRIPT: key control block (33 + 32m bytes, m <= 128),
 * value script || leaf_version. */
struct psbt_tap_leaf_script {
    const uint8_t *control;
    size_t control_len;
    const uint8_t *script;
    size_t script_len;
    uint8_t leaf_version;
};

/* PSBT_{IN,OUT}_TAP_BIP32_DERIVATION: key xonly, value
 * CompactSize(n) || n leaf hashes || fingerprint || path (u32 LE each). */
struct psbt_tap_bip32 {
    const uint8_t *xonly;       /* 32 */
    const uint8_t *leaf_hashes; /* 32 * n_leaf_hashes */
    size_t n_leaf_hashes;
    const uint8_t *fingerprint; /* 4 */
    const uint8_t *path;        /* 4 * path_len, little-endian u32s */
    size_t path_len;
};

/* PSBT_{IN,OUT}_MUSIG2_PARTICIPANT_PUBKEYS: key the compressed aggregate
 * key, value the compressed participant keys in KeyAgg order. */
struct psbt_musig2_participants {
    const uint8_t *agg;  /* 33 */
    const uint8_t *keys; /* 33 * n */
    size_t n;
};

/* PSBT_IN_MUSIG2_PUB_NONCE (value 66 bytes) and PSBT_IN_MUSIG2_PARTIAL_SIG
 * (value 32 bytes): key participant (33) || aggregate (33) || tapleaf hash
 * (32, omitted for key path spends). The "aggregate" is the key the share
 * signs for: in BIP-373's vectors (Bitcoin Core) it is the participants'
 * aggregate for an untweaked output key or a script key, but the tweaked
 * output key (compressed) when the aggregate is the Taproot internal key;
 * a signer matches both. */
struct psbt_musig2_share {
    const uint8_t *participant; /* 33 */
    const uint8_t *agg;         /* 33 */
    const uint8_t *leaf_hash;   /* 32, or NULL */
    const uint8_t *value;
    size_t value_len;
};

/* ---- parse, serialize, create --------------------------------------- */

/*
 * Parses exactly one binary PSBT from p[0..len) (the base64 form must be
 * decoded first). Returns KM_OK with *out set (psbt_free), or an error
 * (above) with *out NULL and a message in *err (may be NULL).
 */
int psbt_parse(struct psbt **out, const uint8_t *p, size_t len, struct km_error *err) KM_WUR;

/* Frees psbt and everything it owns. NULL is a no-op. */
void psbt_free(struct psbt *psbt);

/*
 * Appends the binary PSBT to out: magic, then every map's records in order,
 * each map closed by 0x00. Returns KM_OK or the buf error.
 */
int psbt_serialize(struct buf *out, const struct psbt *psbt) KM_WUR;

/*
 * A version 0 PSBT for unsigned_tx (copied): PSBT_GLOBAL_UNSIGNED_TX and
 * empty input and output maps. Returns KM_OK; KM_ERR_INVALID (a scriptSig
 * or witness is present); KM_ERR_LIMIT (more than PSBT_MAX_INPUTS inputs
 * or PSBT_MAX_OUTPUTS outputs).
 */
int psbt_new_v0(struct psbt **out, const struct tx *unsigned_tx, struct km_error *err) KM_WUR;

/* A version 2 PSBT with no inputs or outputs: PSBT_GLOBAL_TX_VERSION,
 * INPUT_COUNT 0, OUTPUT_COUNT 0, PSBT_GLOBAL_VERSION 2. */
struct psbt *psbt_new_v2(uint32_t tx_version);

/*
 * Version 2 constructor steps: append an input (PSBT_IN_PREVIOUS_TXID,
 * OUTPUT_INDEX and, unless sequence is TX_SEQUENCE_FINAL, SEQUENCE) or an
 * output (PSBT_OUT_AMOUNT, SCRIPT), and update the global count. *index
 * gets the new map's index. Returns KM_OK; KM_ERR_STATE (a version 0
 * PSBT); KM_ERR_LIMIT (count limit); KM_ERR_INVALID (amount above
 * INT64_MAX, script above TX_MAX_SCRIPT_LEN).
 */
int psbt_v2_add_input(struct psbt *psbt, size_t *index, const uint8_t prev_txid[TX_HASH_LEN],
                      uint32_t prev_vout, uint32_t sequence, struct km_error *err) KM_WUR;
int psbt_v2_add_output(struct psbt *psbt, size_t *index, uint64_t amount, const uint8_t *script,
                       size_t script_len, struct km_error *err) KM_WUR;

/* ---- shape and raw records ------------------------------------------ */

/* 0 or 2. */
uint32_t psbt_version(const struct psbt *psbt);
size_t psbt_input_count(const struct psbt *psbt);
size_t psbt_output_count(const struct psbt *psbt);

/* The unsigned transaction (v0: PSBT_GLOBAL_UNSIGNED_TX; v2: assembled
 * from the fields). Borrowed. */
const struct tx *psbt_tx_direct(const struct psbt *psbt);

/* Records of one map (index is ignored for the global map). */
size_t psbt_record_count(const struct psbt *psbt, enum psbt_scope scope, size_t index);
/* The k-th record (k < psbt_record_count; otherwise a BUG). Borrowed. */
void psbt_record_get(const struct psbt *psbt, enum psbt_scope scope, size_t index, size_t k,
                     struct psbt_record *out);

/*
 * Adds a record, or replaces the value of the record with the same key
 * (keeping its position). The record is validated as a parsed one would
 * be (including the version rules), so any record may be set this way,
 * unknown and proprietary ones too, except the structural ones
 * (PSBT_GLOBAL_UNSIGNED_TX, VERSION, INPUT_COUNT, OUTPUT_COUNT): those
 * are KM_ERR_STATE. Version 2 transaction fields rebuild the transaction;
 * a change BIP-370 cannot turn into a lock time is refused and undone.
 * Returns KM_OK, KM_ERR_INVALID, KM_ERR_TOO_LARGE (key or value limit),
 * KM_ERR_LIMIT (PSBT_MAX_MAP_RECORDS), KM_ERR_STATE.
 */
int psbt_record_set(struct psbt *psbt, enum psbt_scope scope, size_t index, const uint8_t *key,
                    size_t key_len, const uint8_t *value, size_t value_len,
                    struct km_error *err) KM_WUR;

/* Removes the record with this key. Returns KM_OK, KM_ERR_NOT_FOUND,
 * KM_ERR_STATE (a structural record or one the version requires) or
 * KM_ERR_INVALID (v2: no lock time would then suit every input; the
 * record stays). */
int psbt_record_remove(struct psbt *psbt, enum psbt_scope scope, size_t index, const uint8_t *key,
                       size_t key_len, struct km_error *err) KM_WUR;

/* ---- typed input fields --------------------------------------------- */
/* Each returns KM_OK, or KM_ERR_NOT_FOUND when the field is absent (or, for
 * the k-th of a repeated field, when there are k or fewer). Views are
 * borrowed. */

/* PSBT_IN_WITNESS_UTXO: the spent output's amount and scriptPubKey. */
int psbt_in_witness_utxo(const struct psbt *psbt, size_t i, struct sighash_spent *out) KM_WUR;
/* PSBT_IN_NON_WITNESS_UTXO: the previous transaction (its txid matches
 * the input's prevout; checked at parse and set), parsed without its
 * witnesses (TX_F_SKIP_WITNESS): the record keeps the full bytes. */
int psbt_in_non_witness_utxo(const struct psbt *psbt, size_t i, const struct tx **out) KM_WUR;
/* PSBT_IN_SIGHASH_TYPE, as stored (any 32-bit value). */
int psbt_in_sighash_type(const struct psbt *psbt, size_t i, uint32_t *out) KM_WUR;
/* PSBT_IN_TAP_KEY_SIG: 64 or 65 bytes. */
int psbt_in_tap_key_sig(const struct psbt *psbt, size_t i, const uint8_t **sig,
                        size_t *sig_len) KM_WUR;
int psbt_in_tap_script_sig(const struct psbt *psbt, size_t i, size_t k,
                           struct psbt_tap_script_sig *out) KM_WUR;
int psbt_in_tap_leaf_script(const struct psbt *psbt, size_t i, size_t k,
                            struct psbt_tap_leaf_script *out) KM_WUR;
int psbt_in_tap_bip32(const struct psbt *psbt, size_t i, size_t k,
                      struct psbt_tap_bip32 *out) KM_WUR;
int psbt_in_tap_internal_key(const struct psbt *psbt, size_t i, uint8_t out[32]) KM_WUR;
int psbt_in_tap_merkle_root(const struct psbt *psbt, size_t i, uint8_t out[32]) KM_WUR;
int psbt_in_musig2_participants(const struct psbt *psbt, size_t i, size_t k,
                                struct psbt_musig2_participants *out) KM_WUR;
int psbt_in_musig2_pub_nonce(const struct psbt *psbt, size_t i, size_t k,
                             struct psbt_musig2_share *out) KM_WUR;
int psbt_in_musig2_partial_sig(const struct psbt *psbt, size_t i, size_t k,
                               struct psbt_musig2_share *out) KM_WUR;

/* ---- typed output fields -------------------------------------------- */

int psbt_out_tap_internal_key(const struct psbt *psbt, size_t o, uint8_t out[32]) KM_WUR;
int psbt_out_tap_bip32(const struct psbt *psbt, size_t o, size_t k,
                       struct psbt_tap_bip32 *out) KM_WUR;
int psbt_out_musig2_participants(const struct psbt *psbt, size_t o, size_t k,
                                 struct psbt_musig2_participants *out) KM_WUR;

/* ---- setters -------------------------------------------------------- */
/* Each builds the record and calls psbt_record_set (same errors). Keys are
 * copied. */

int psbt_in_set_witness_utxo(struct psbt *psbt, size_t i, uint64_t amount, const uint8_t *script,
                             size_t script_len, struct km_error *err) KM_WUR;
/* prev must be the transaction the input spends (txid and output index
 * checked); it is stored in its full (witness) serialization. */
int psbt_in_set_non_witness_utxo(struct psbt *psbt, size_t i, const struct tx *prev,
                                 struct km_error *err) KM_WUR;
int psbt_in_set_sighash_type(struct psbt *psbt, size_t i, uint32_t hash_type,
                             struct km_error *err) KM_WUR;
/* sig: 64 bytes (SIGHASH_DEFAULT) or 65 (64 || hash type, not 0x00). */
int psbt_in_set_tap_key_sig(struct psbt *psbt, size_t i, const uint8_t *sig, size_t sig_len,
                            struct km_error *err) KM_WUR;
int psbt_in_set_tap_script_sig(struct psbt *psbt, size_t i, const uint8_t xonly[32],
                               const uint8_t leaf_hash[32], const uint8_t *sig, size_t sig_len,
                               struct km_error *err) KM_WUR;
int psbt_in_set_tap_leaf_script(struct psbt *psbt, size_t i, const uint8_t *control,
                                size_t control_len, const uint8_t *script, size_t script_len,
                                uint8_t leaf_version, struct km_error *err) KM_WUR;
int psbt_in_set_tap_internal_key(struct psbt *psbt, size_t i, const uint8_t xonly[32],
                                 struct km_error *err) KM_WUR;
int psbt_in_set_tap_merkle_root(struct psbt *psbt, size_t i, const uint8_t root[32],
                                struct km_error *err) KM_WUR;
/* keys: n compressed keys (33 bytes each, concatenated), in KeyAgg order. */
int psbt_in_set_musig2_participants(struct psbt *psbt, size_t i, const uint8_t agg[33],
                                    const uint8_t *keys, size_t n, struct km_error *err) KM_WUR;
int psbt_out_set_musig2_participants(struct psbt *psbt, size_t o, const uint8_t agg[33],
                                     const uint8_t *keys, size_t n, struct km_error *err) KM_WUR;
/* leaf_hash NULL for a key path spend. */
int psbt_in_set_musig2_pub_nonce(struct psbt *psbt, size_t i, const uint8_t participant[33],
                                 const uint8_t agg[33], const uint8_t *leaf_hash,
                                 const uint8_t nonce[66], struct km_error *err) KM_WUR;
int psbt_in_set_musig2_partial_sig(struct psbt *psbt, size_t i, const uint8_t participant[33],
                                   const uint8_t agg[33], const uint8_t *leaf_hash,
                                   const uint8_t psig[32], struct km_error *err) KM_WUR;

/* ---- signature hashes ----------------------------------------------- */

/*
 * The output input i spends: from PSBT_IN_WITNESS_UTXO, else from the
 * PSBT_IN_NON_WITNESS_UTXO's output at the prevout index. Borrowed.
 * Returns KM_OK; KM_ERR_NOT_FOUND (neither field); KM_ERR_INVALID (both
 * present and they disagree on amount or script).
 */
int psbt_in_spent_output(const struct psbt *psbt, size_t i, struct sighash_spent *out,
                         struct km_error *err) KM_WUR;

/*
 * The BIP-341 sighash of input i (TapSighash), for the key path (leaf
 * NULL) or a script path, with the input's PSBT_IN_SIGHASH_TYPE
 * (SIGHASH_DEFAULT when absent). Every input's spent output must be known
 * (only input i's with ANYONECANPAY). Returns KM_OK or KM_ERR_INVALID
 * with a message naming the input: unknown spent outputs (naming which),
 * UTXO fields that disagree, a hash type BIP-341 refuses, SIGHASH_SINGLE
 * without an output, input i not spending P2TR.
 */
int psbt_sighash(uint8_t out[32], const struct psbt *psbt, size_t i,
                 const struct sighash_leaf *leaf, struct km_error *err) KM_WUR;

/* One entry per input for psbt_sighash_all. */
struct psbt_sighash {
    int taproot;        /* 1: the input spends P2TR and hash is its key path sighash */
    uint32_t hash_type; /* Taproot inputs: PSBT_IN_SIGHASH_TYPE or SIGHASH_DEFAULT; else 0 */
    uint8_t hash[32];   /* zero when !taproot */
};

/*
 * Key path sighashes of every input (out: psbt_input_count entries),
 * sub-hashes computed once. Inputs that do not spend P2TR get taproot 0
 * (their UTXO may then be absent if every Taproot input uses
 * ANYONECANPAY). Errors as psbt_sighash, for the first input that fails.
 */
int psbt_sighash_all(struct psbt_sighash *out, const struct psbt *psbt,
                     struct km_error *err) KM_WUR;

#endif /* KM_BITCOIN_PSBT_H */
