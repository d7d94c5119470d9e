/*
 * bitcoin_psbt_fuzz.c - PSBT v0/v2 parsing (bitcoin/psbt.h) of arbitrary
 * bytes, then everything a signer does with the result.
 *
 * Contract: no crash, no leak; a parsed PSBT re-serializes to exactly the
 * input; every typed getter returns views inside the PSBT; sighashes either
 * succeed or fail cleanly (key path for all inputs, script path for every
 * leaf script whose control block checks out); adding a key path
 * signature to input 0 and removing it again gives back the input bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bitcoin/psbt.h"
#include "bitcoin/sighash.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Serializes p and aborts unless it is exactly want[0..len). */
static void expect_bytes(const struct psbt *p, const uint8_t *want, size_t len)
{
    struct buf b;
    buf_init(&b, PSBT_MAX_SIZE);
    if (psbt_serialize(&b, p) != KM_OK || buf_len(&b) != len ||
        memcmp(buf_peek(&b), want, len) != 0)
        abort();
    buf_release(&b);
}

static void walk_input(const struct psbt *p, size_t i)
{
    struct sighash_spent s;
    struct psbt_tap_script_sig ss;
    struct psbt_tap_bip32 d;
    struct psbt_musig2_participants mp;
    struct psbt_musig2_share sh;
    const struct tx *nwu;
    uint8_t k32[32];
    uint32_t ht;
    volatile uint8_t sink = 0;

    if (psbt_in_witness_utxo(p, i, &s) == KM_OK && s.script_len > 0)
        sink ^= s.script[s.script_len - 1];
    if (psbt_in_non_witness_utxo(p, i, &nwu) == KM_OK && nwu->n_out == 0)
        abort(); /* it has the spent output */
    if (psbt_in_sighash_type(p, i, &ht) == KM_OK)
        sink ^= (uint8_t)ht;
    if (psbt_in_tap_internal_key(p, i, k32) == KM_OK || psbt_in_tap_merkle_root(p, i, k32) == KM_OK)
        sink ^= k32[31];
    for (size_t k = 0; psbt_in_tap_script_sig(p, i, k, &ss) == KM_OK; k++)
        sink ^= ss.sig[ss.sig_len - 1] ^ ss.leaf_hash[31];
    for (size_t k = 0; psbt_in_tap_bip32(p, i, k, &d) == KM_OK; k++)
        sink ^= d.fingerprint[3] ^ (d.path_len ? d.path[4 * d.path_len - 1] : 0);
    for (size_t k = 0; psbt_in_musig2_participants(p, i, k, &mp) == KM_OK; k++)
        sink ^= mp.keys[33 * mp.n - 1];
    for (size_t k = 0; psbt_in_musig2_pub_nonce(p, i, k, &sh) == KM_OK; k++)
        sink ^= sh.value[65] ^ (sh.leaf_hash ? sh.leaf_hash[31] : 0);
    for (size_t k = 0; psbt_in_musig2_partial_sig(p, i, k, &sh) == KM_OK; k++)
        sink ^= sh.value[31];
    (void)sink;
}

static void sighashes(const struct psbt *p)
{
    size_t n = psbt_input_count(p);
    struct psbt_sighash *all = calloc(n ? n : 1, sizeof(*all));
    uint8_t out[32];

    if (all == NULL)
        abort();
    if (psbt_sighash_all(all, p, NULL) != KM_OK)
        memset(all, 0, n * sizeof(*all));
    for (size_t i = 0; i < n; i++) {
        struct sighash_spent s;
        struct psbt_tap_leaf_script ls;
        int r = psbt_sighash(out, p, i, NULL, NULL);
        if (all[i].taproot && (r != KM_OK || memcmp(out, all[i].hash, 32) != 0))
            abort();
        walk_input(p, i);
        if (psbt_in_spent_output(p, i, &s, NULL) != KM_OK || s.script_len != 34)
            continue;
        for (size_t k = 0; psbt_in_tap_leaf_script(p, i, k, &ls) == KM_OK; k++) {
            struct sighash_leaf leaf;
            if (sighash_leaf_from_control(&leaf, s.script + 2, ls.control, ls.control_len,
                                          ls.script, ls.script_len, NULL) == KM_OK &&
                psbt_sighash(out, p, i, &leaf, NULL) != KM_OK && r == KM_OK)
                abort(); /* the script path fails only where the key path does */
        }
    }
    free(all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[] = {PSBT_IN_TAP_KEY_SIG};
    struct psbt *p = NULL;
    const uint8_t *sig;
    size_t siglen;
    uint8_t k32[32];

    if (psbt_parse(&p, data, size, NULL) != KM_OK)
        return 0;
    expect_bytes(p, data, size);
    sighashes(p);
    for (size_t o = 0; o < psbt_output_count(p); o++) {
        struct psbt_musig2_participants mp;
        struct psbt_tap_bip32 d;
        if (psbt_out_tap_internal_key(p, o, k32) == KM_OK && k32[0] == 0xff)
            k32[1] = 0;
        for (size_t k = 0; psbt_out_tap_bip32(p, o, k, &d) == KM_OK; k++)
            (void)d;
        for (size_t k = 0; psbt_out_musig2_participants(p, o, k, &mp) == KM_OK; k++)
            (void)mp;
    }
    if (psbt_input_count(p) > 0 && psbt_in_tap_key_sig(p, 0, &sig, &siglen) == KM_ERR_NOT_FOUND &&
        psbt_record_count(p, PSBT_SCOPE_INPUT, 0) < PSBT_MAX_MAP_RECORDS) {
        uint8_t s64[64];
        memset(s64, 0x42, sizeof(s64));
        if (psbt_in_set_tap_key_sig(p, 0, s64, sizeof(s64), NULL) != KM_OK ||
            psbt_record_remove(p, PSBT_SCOPE_INPUT, 0, key, 1, NULL) != KM_OK)
            abort();
        expect_bytes(p, data, size);
    }
    psbt_free(p);
    return 0;
}
