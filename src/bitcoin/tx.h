/*
 * tx.h - Bitcoin transactions: parse, serialize, txid and wtxid.
 *
 * tx_parse reads the network serialization (BIP-144 when witness data is
 * present) from untrusted bytes into a struct tx that owns copies of every
 * script and witness item; tx_serialize writes it back. A successful parse
 * round-trips byte for byte: non-minimal CompactSizes, trailing bytes, an
 * unknown segwit flag and a witness marker with only empty witnesses
 * ("superfluous witness record") are all refused, as Bitcoin Core refuses
 * them.
 *
 * Limits (explicit, checked before anything is copied; docs/BITCOIN.md):
 * the whole input, input and output counts, scriptSig / scriptPubKey
 * lengths, and witness items per input. Counts read from the input never
 * size an allocation: arrays grow as elements are actually read, so memory
 * is bounded by the input length.
 *
 * Byte order: txids and prevout hashes are stored as hashed and serialized
 * ("internal" order). Block explorers and RPCs display them reversed;
 * tx_id_hex converts.
 *
 * Ownership: struct tx is a heap object (tx_new / tx_parse, tx_free). Its
 * arrays and byte strings are owned by it; pointers read from the struct
 * are borrowed and valid until the next mutation or tx_free. Callers may
 * read every field; they change a tx only through the functions below.
 *
 * Pure: no I/O. Allocation aborts on out-of-memory (xmalloc); hashing uses
 * OpenSSL's SHA-256 (crypto/ctx.h).
 */
#ifndef KM_BITCOIN_TX_H
#define KM_BITCOIN_TX_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* Limits. TX_MAX_SIZE is the consensus block weight limit read as bytes,
 * an upper bound for any transaction; the counts are what 4 MB could hold
 * of the smallest input (41 bytes) rounded up; scripts above 10000 bytes
 * cannot be executed (MAX_SCRIPT_SIZE); tapscript caps its stack at 1000
 * elements, so 10000 witness items leaves room for future versions. */
#define TX_MAX_SIZE          4000000u
#define TX_MAX_INPUTS        100000u
#define TX_MAX_OUTPUTS       100000u
#define TX_MAX_SCRIPT_LEN    10000u
#define TX_MAX_WITNESS_ITEMS 10000u

#define TX_HASH_LEN 32
/* The sequence value that disables relative lock time and RBF signalling. */
#define TX_SEQUENCE_FINAL 0xffffffffu

enum tx_flags {
    /* Parse or write the legacy serialization only (no marker, no flag, no
     * witnesses): PSBT_GLOBAL_UNSIGNED_TX, txid computation. When parsing,
     * a leading 0x00 input count is read as "no inputs". */
    TX_F_NO_WITNESS = 1 << 0,
    /* Parse only: read and check witness data but keep none of it (n_witness
     * stays 0, so the result serializes in the legacy form). For
     * transactions kept only for their txid and outputs (a PSBT's
     * non-witness UTXOs): it saves the memory of every witness item. */
    TX_F_SKIP_WITNESS = 1 << 1,
};

/* An owned byte string (a script or a witness item). p is NULL when len
 * is 0. */
struct tx_bytes {
    uint8_t *p;
    size_t len;
};

struct tx_in {
    uint8_t prev_txid[TX_HASH_LEN]; /* internal byte order */
    uint32_t prev_vout;
    struct tx_bytes script_sig;
    uint32_t sequence;
    struct tx_bytes *witness; /* witness stack, bottom first */
    size_t n_witness;
};

struct tx_out {
    uint64_t amount; /* satoshis, as serialized (unsigned 64-bit) */
    struct tx_bytes script;
};

struct tx {
    uint32_t version; /* nVersion bits as serialized */
    uint32_t locktime;
    struct tx_in *in;
    size_t n_in;
    struct tx_out *out;
    size_t n_out;
    size_t cap_in, cap_out; /* private */
};

/* An empty transaction: version 2, locktime 0, no inputs, no outputs. */
struct tx *tx_new(void);

/* Frees tx and everything it owns. NULL is a no-op. */
void tx_free(struct tx *tx);

/* A deep copy. */
struct tx *tx_dup(const struct tx *tx);

/*
 * Parses exactly one transaction from p[0..len).
 * Returns KM_OK with *out set (caller frees with tx_free), or, with *out
 * NULL and a message in *err (may be NULL) naming the field, the input or
 * output index and the offset:
 *   KM_ERR_INCOMPLETE     the bytes end inside the transaction
 *   KM_ERR_TRAILING_DATA  bytes follow the transaction
 *   KM_ERR_TOO_LARGE      len > TX_MAX_SIZE, or a count or length above
 *                         its limit
 *   KM_ERR_INVALID        a non-minimal CompactSize, an unknown segwit
 *                         flag, or a witness marker with empty witnesses
 * In: flags  enum tx_flags
 */
int tx_parse(struct tx **out, const uint8_t *p, size_t len, unsigned flags,
             struct km_error *err) KM_WUR;

/* 1 if any input has a non-empty witness stack (the tx then serializes in
 * the BIP-144 format unless TX_F_NO_WITNESS), else 0. */
int tx_has_witness(const struct tx *tx);

/*
 * Appends the serialization of tx to out: BIP-144 with marker, flag and
 * witnesses when tx_has_witness and not TX_F_NO_WITNESS, else legacy.
 * Returns KM_OK or the buf error (KM_ERR_TOO_LARGE, KM_ERR_NOMEM).
 */
int tx_serialize(struct buf *out, const struct tx *tx, unsigned flags) KM_WUR;

/* Length tx_serialize would append. */
size_t tx_serialized_size(const struct tx *tx, unsigned flags);

/*
 * txid = SHA256d(legacy serialization); wtxid = SHA256d(full
 * serialization), equal to the txid when there is no witness. Internal
 * byte order. Returns KM_OK, KM_ERR_TOO_LARGE (the serialization exceeds
 * 2 * TX_MAX_SIZE: only a tx built in memory can) or KM_ERR_CRYPTO /
 * KM_ERR_NOMEM.
 */
int tx_txid(uint8_t out[TX_HASH_LEN], const struct tx *tx) KM_WUR;
int tx_wtxid(uint8_t out[TX_HASH_LEN], const struct tx *tx) KM_WUR;

/* Writes the display form (reversed byte order, lower-case hex, NUL) of an
 * internal-order hash. Returns out. */
char *tx_id_hex(char out[2 * TX_HASH_LEN + 1], const uint8_t id[TX_HASH_LEN]);

/*
 * Builders, for transactions made in memory (tests, PSBTv2). They copy
 * their arguments and return the new element's index. They do not enforce
 * the parse limits; tx_serialize's buffer maximum bounds the result.
 */
size_t tx_add_input(struct tx *tx, const uint8_t prev_txid[TX_HASH_LEN], uint32_t prev_vout,
                    uint32_t sequence);
size_t tx_add_output(struct tx *tx, uint64_t amount, const uint8_t *script, size_t script_len);
/* Replaces input i's scriptSig / appends one item to its witness stack. i
 * out of range is a BUG. */
void tx_set_script_sig(struct tx *tx, size_t i, const uint8_t *p, size_t len);
void tx_push_witness(struct tx *tx, size_t i, const uint8_t *p, size_t len);

/* SHA256(SHA256(p[0..n))). Returns KM_OK or KM_ERR_CRYPTO. */
int tx_sha256d(uint8_t out[32], const uint8_t *p, size_t n) KM_WUR;

#endif /* KM_BITCOIN_TX_H */
