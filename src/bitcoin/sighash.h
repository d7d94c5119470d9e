/*
 * sighash.h - BIP-341 signature messages and TapSighash, for Taproot key
 * path spends (ext_flag 0) and BIP-342 script path spends (ext_flag 1).
 *
 *   TapSighash = hash_TapSighash(0x00 || SigMsg(hash_type, ext_flag) || ext)
 *   ext (script path only) = tapleaf_hash (32) || key_version 0x00 ||
 *                            codesep_pos (4, LE; 0xffffffff: none)
 *
 * Every BIP-341 hash type is supported: SIGHASH_DEFAULT (0x00), ALL (0x01),
 * NONE (0x02), SINGLE (0x03) and ALL/NONE/SINGLE | ANYONECANPAY (0x81,
 * 0x82, 0x83). Refused, as BIP-341 makes them fail: any other hash type,
 * SIGHASH_SINGLE for an input without an output at the same index, and an
 * annex that does not start with 0x50.
 *
 * The message commits to the outputs every input spends (amounts and
 * scriptPubKeys), so the caller supplies them: struct sighash_spent, one
 * per input of the transaction, borrowed. With ANYONECANPAY only the
 * signing input's entry is read; otherwise all must be known. The signing
 * input must spend a P2TR output (OP_1 <32 bytes>): BIP-341 signatures
 * exist only there, and its scriptPubKey is serialized as exactly 35 bytes.
 *
 * The per-transaction sub-hashes (sha_prevouts, sha_amounts,
 * sha_scriptpubkeys, sha_sequences, sha_outputs) are computed once by
 * sighash_precompute and reused for every input, so signing all n inputs
 * costs O(n) hashing, not O(n^2).
 *
 * Everything here is public data (transactions, amounts, scripts); nothing
 * is constant time and nothing needs to be.
 */
#ifndef KM_BITCOIN_SIGHASH_H
#define KM_BITCOIN_SIGHASH_H

#include <stddef.h>
#include <stdint.h>

#include "bitcoin/tx.h"
#include "common/err.h"

#define SIGHASH_DEFAULT      0x00u
#define SIGHASH_ALL          0x01u
#define SIGHASH_NONE         0x02u
#define SIGHASH_SINGLE       0x03u
#define SIGHASH_ANYONECANPAY 0x80u

/* codesep_pos when no OP_CODESEPARATOR was executed. */
#define SIGHASH_NO_CODESEP 0xffffffffu
/* Longest message: epoch 1 + SigMsg 206 (with annex) + script path 37. */
#define SIGHASH_MSG_MAX 244

/* The output an input spends. script NULL means unknown. Borrowed. */
struct sighash_spent {
    uint64_t amount;
    const uint8_t *script;
    size_t script_len;
};

/* BIP-341 "Common signature message" sub-hashes of one transaction.
 * sha_amounts and sha_scriptpubkeys are valid only when have_spent. */
struct sighash_precomp {
    uint8_t sha_prevouts[32];
    uint8_t sha_amounts[32];
    uint8_t sha_scriptpubkeys[32];
    uint8_t sha_sequences[32];
    uint8_t sha_outputs[32];
    int have_spent; /* every input's spent output was supplied */
};

/* Script path data (BIP-342 "Common signature message extension"); the
 * key_version is always 0x00. */
struct sighash_leaf {
    uint8_t leaf_hash[32]; /* taproot_leaf_hash() of the executed leaf */
    uint32_t codesep_pos;  /* SIGHASH_NO_CODESEP, or the opcode position */
};

/* What to sign. */
struct sighash_args {
    size_t input;                    /* index in tx->in; out of range is a BUG */
    unsigned hash_type;              /* one of the seven BIP-341 values */
    const struct sighash_leaf *leaf; /* NULL: key path (ext_flag 0) */
    const uint8_t *annex;            /* NULL: no annex; else starts with 0x50 */
    size_t annex_len;
};

/* 1 if hash_type is one BIP-341 accepts (0x00-0x03, 0x81-0x83), else 0. */
int sighash_type_valid(unsigned hash_type);

/*
 * Computes the sub-hashes of tx. spent: tx->n_in entries, or NULL when no
 * spent output is known (then have_spent is 0; so it is when any entry has
 * a NULL script).
 * Returns KM_OK, KM_ERR_CRYPTO (SHA-256 unavailable) or KM_ERR_NOMEM.
 */
int sighash_precompute(struct sighash_precomp *pc, const struct tx *tx,
                       const struct sighash_spent *spent) KM_WUR;

/*
 * Writes the bytes TapSighash hashes: 0x00 (the epoch) || SigMsg || the
 * script path extension. *msg_len gets the length (at most
 * SIGHASH_MSG_MAX). pc must come from sighash_precompute(tx, spent).
 * Returns: KM_OK; KM_ERR_INVALID with a message in *err (may be NULL)
 *          naming the input: invalid hash type, SIGHASH_SINGLE without a
 *          corresponding output, a spent output that is unknown but needed,
 *          a signing input that does not spend P2TR, a bad annex.
 * On error msg is zeroed and *msg_len is 0.
 */
int sighash_message(uint8_t msg[SIGHASH_MSG_MAX], size_t *msg_len, const struct sighash_precomp *pc,
                    const struct tx *tx, const struct sighash_spent *spent,
                    const struct sighash_args *a, struct km_error *err) KM_WUR;

/*
 * hash_TapSighash of sighash_message: the 32 bytes a BIP-340 signature
 * signs. Same arguments and errors (plus KM_ERR_CRYPTO); out is zeroed on
 * error.
 */
int sighash_taproot(uint8_t out[32], const struct sighash_precomp *pc, const struct tx *tx,
                    const struct sighash_spent *spent, const struct sighash_args *a,
                    struct km_error *err) KM_WUR;

/*
 * BIP-341 script path check of a control block, for a signer about to
 * sign leaf `script`: with leaf_version = control[0] & 0xfe, computes the
 * leaf hash, folds the control block's path into the merkle root, tweaks
 * the internal key (control[1..33)) with it and compares the result, and
 * its parity (control[0] & 1), with output_key (the x-only key of the
 * spent P2TR scriptPubKey). On success out->leaf_hash is the leaf hash and
 * out->codesep_pos SIGHASH_NO_CODESEP.
 * Returns: KM_OK; KM_ERR_INVALID (control block not 33 + 32m bytes with
 *          m <= 128, internal key not on the curve) or KM_ERR_CRYPTO (the
 *          leaf is not committed to by output_key), with a message in *err.
 */
int sighash_leaf_from_control(struct sighash_leaf *out, const uint8_t output_key[32],
                              const uint8_t *control, size_t control_len, const uint8_t *script,
                              size_t script_len, struct km_error *err) KM_WUR;

#endif /* KM_BITCOIN_SIGHASH_H */
