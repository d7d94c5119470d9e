/*
 * bitcoin_tx_fuzz.c - transaction parsing (bitcoin/tx.h) and BIP-341
 * sighashes (bitcoin/sighash.h) of arbitrary bytes.
 *
 * The first byte's low bit picks TX_F_NO_WITNESS; the rest is the
 * transaction. Contract: no crash; a parsed transaction re-serializes to
 * exactly the input, with the size tx_serialized_size predicts; txid and
 * wtxid succeed (and agree without witnesses); with every input spending a
 * P2TR output, every valid hash type hashes on the key and script paths
 * for the first inputs, failing only for SIGHASH_SINGLE without an output,
 * and invalid hash types always fail.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bitcoin/sighash.h"
#include "bitcoin/tx.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned types[] = {0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83, 0x04, 0x80};

static void check_sighashes(const struct tx *tx)
{
    static const uint8_t p2tr[34] = {0x51, 0x20, 7};
    struct sighash_spent *spent = calloc(tx->n_in ? tx->n_in : 1, sizeof(*spent));
    struct sighash_leaf leaf = {{1}, SIGHASH_NO_CODESEP};
    struct sighash_precomp pc;
    uint8_t out[32];

    if (spent == NULL)
        abort();
    for (size_t i = 0; i < tx->n_in; i++) {
        spent[i].amount = i;
        spent[i].script = p2tr;
        spent[i].script_len = sizeof(p2tr);
    }
    if (sighash_precompute(&pc, tx, spent) != KM_OK || !pc.have_spent)
        abort();
    for (size_t i = 0; i < tx->n_in && i < 4; i++) {
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            for (int path = 0; path < 2; path++) {
                struct sighash_args a = {i, types[t], path ? &leaf : NULL, NULL, 0};
                int want_ok = sighash_type_valid(types[t]) &&
                              !((types[t] & 3) == SIGHASH_SINGLE && i >= tx->n_out);
                int r = sighash_taproot(out, &pc, tx, spent, &a, NULL);
                if ((r == KM_OK) != want_ok)
                    abort();
            }
        }
    }
    free(spent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tx *tx = NULL;
    struct buf b;
    uint8_t txid[32], wtxid[32];

    if (size == 0)
        return 0;
    unsigned flags = (data[0] & 1) ? TX_F_NO_WITNESS : 0;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    if (tx_parse(&tx, p, len, flags, NULL) != KM_OK)
        return 0;
    buf_init(&b, 2u * TX_MAX_SIZE);
    if (tx_serialize(&b, tx, flags) != KM_OK || buf_len(&b) != len ||
        (len > 0 && memcmp(buf_peek(&b), p, len) != 0) || tx_serialized_size(tx, flags) != len)
        abort();
    buf_release(&b);
    if (tx_txid(txid, tx) != KM_OK || tx_wtxid(wtxid, tx) != KM_OK)
        abort();
    if (!tx_has_witness(tx) && memcmp(txid, wtxid, 32) != 0)
        abort();
    check_sighashes(tx);
    tx_free(tx);
    return 0;
}
