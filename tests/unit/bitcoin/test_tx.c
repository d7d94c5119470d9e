/*
 * test_tx.c - src/bitcoin/tx: the transactions of tests/data/bitcoin/tx.txt
 * (BIP-174's examples, txids computed independently) parse, round-trip
 * byte for byte and hash to their txid and wtxid; every truncation is
 * KM_ERR_INCOMPLETE; malformed encodings (non-minimal CompactSize, unknown
 * segwit flag, superfluous witness marker, trailing bytes) and every limit
 * are refused with a message naming the field; the builders agree with the
 * parser.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "bitcoin/tx.h"
#include "btc_test.h"
#include "common/banned.h"

static struct tx *parse_ok(const uint8_t *p, size_t len, unsigned flags)
{
    struct km_error e;
    struct tx *tx = NULL;
    km_error_clear(&e);
    int r = tx_parse(&tx, p, len, flags, &e);
    if (r != KM_OK)
        fail_msg("tx_parse: %s", e.msg);
    return tx;
}

/* Parses and expects code, with msg in the message. */
static void parse_err(const uint8_t *p, size_t len, unsigned flags, int code, const char *msg)
{
    struct km_error e;
    struct tx *tx = (struct tx *)1;
    km_error_clear(&e);
    CHECK_ERR(tx_parse(&tx, p, len, flags, &e), code);
    CHECK_NULL(tx);
    CHECK_EQ(e.code, code);
    if (msg != NULL)
        CHECK_CONTAINS(e.msg, msg);
}

static void check_round_trip(const uint8_t *p, size_t len, unsigned flags)
{
    struct tx *tx = parse_ok(p, len, flags);
    size_t n;
    uint8_t *back = btc_tx_bytes(tx, flags, &n);
    CHECK_EQ(n, len);
    CHECK_MEM_EQ(back, p, len);
    CHECK_EQ(tx_serialized_size(tx, flags), len);
    free(back);
    tx_free(tx);
}

static void test_vectors(void **state)
{
    (void)state;
    struct btc_line *l;
    size_t n = btc_read_lines("bitcoin/tx.txt", 5, &l), witness = 0;

    CHECK_EQ(n, 4);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *raw = btc_unhex(l[i].f[3], &len), txid[32], wtxid[32], id[32];
        char hex[65];
        int is_witness = strcmp(l[i].f[0], "witness") == 0;
        struct tx *tx = parse_ok(raw, len, 0);

        check_round_trip(raw, len, 0);
        CHECK_EQ(tx_has_witness(tx), is_witness);
        witness += (size_t)is_witness;
        CHECK_OK(tx_txid(id, tx));
        btc_unhex_id(txid, l[i].f[1]);
        CHECK_MEM_EQ(id, txid, 32);
        CHECK_STR_EQ(tx_id_hex(hex, id), l[i].f[1]);
        CHECK_OK(tx_wtxid(id, tx));
        btc_unhex_id(wtxid, l[i].f[2]);
        CHECK_MEM_EQ(id, wtxid, 32);

        /* The legacy form parses in both modes and re-hashes to the txid. */
        size_t llen;
        uint8_t *legacy = btc_tx_bytes(tx, TX_F_NO_WITNESS, &llen);
        check_round_trip(legacy, llen, TX_F_NO_WITNESS);
        if (is_witness) {
            CHECK(llen < len);
            /* A witness serialization is not a legacy one. */
            struct tx *bad = NULL;
            CHECK(tx_parse(&bad, raw, len, TX_F_NO_WITNESS, NULL) != KM_OK);
            CHECK_NULL(bad);
        }
        /* Skipping witnesses keeps the txid and outputs, drops the items. */
        struct tx *skip = parse_ok(raw, len, TX_F_SKIP_WITNESS);
        CHECK(!tx_has_witness(skip));
        CHECK_EQ(skip->n_out, tx->n_out);
        CHECK_OK(tx_txid(wtxid, skip));
        CHECK_MEM_EQ(wtxid, txid, 32);
        size_t slen;
        uint8_t *sb = btc_tx_bytes(skip, 0, &slen);
        CHECK_EQ(slen, llen);
        CHECK_MEM_EQ(sb, legacy, llen);
        free(sb);
        tx_free(skip);

        /* tx_dup is deep and equal. */
        struct tx *copy = tx_dup(tx);
        size_t clen;
        uint8_t *cb = btc_tx_bytes(copy, 0, &clen);
        CHECK_EQ(clen, len);
        CHECK_MEM_EQ(cb, raw, len);

        /* Every strict prefix ends early; one byte more is trailing data. */
        for (size_t k = 0; k < len; k++)
            parse_err(raw, k, 0, KM_ERR_INCOMPLETE, NULL);
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, raw, len);
        longer[len] = 0;
        parse_err(longer, len + 1, 0, KM_ERR_TRAILING_DATA, "1 bytes after the transaction");

        free(longer);
        free(cb);
        tx_free(copy);
        free(legacy);
        tx_free(tx);
        free(raw);
    }
    CHECK_EQ(witness, 2);
    btc_free_lines(l, n);
    print_message("tx vectors: %zu transactions (%zu with witnesses)\n", n, witness);
}

/* version 2, one input (prevout 0x11.., vout 1), one output, locktime 0. */
static const char legacy_hex[] = "02000000"
                                 "01"
                                 "1111111111111111111111111111111111111111111111111111111111111111"
                                 "01000000"
                                 "00"
                                 "fdffffff"
                                 "01"
                                 "e803000000000000"
                                 "0151"
                                 "00000000";

static void test_malformed(void **state)
{
    (void)state;
    size_t len;
    uint8_t *raw = btc_unhex(legacy_hex, &len), *p = malloc(len + 8);

    check_round_trip(raw, len, 0);
    check_round_trip(raw, len, TX_F_NO_WITNESS);

    /* Input count 1 as fd 01 00: not the shortest CompactSize. */
    memcpy(p, raw, 4);
    p[4] = 0xfd;
    p[5] = 0x01;
    p[6] = 0x00;
    memcpy(p + 7, raw + 5, len - 5);
    parse_err(p, len + 2, 0, KM_ERR_INVALID, "non-minimal CompactSize in input count");

    /* Marker 0x00 with flag 0x02: unknown optional data. */
    memcpy(p, raw, 4);
    p[4] = 0x00;
    p[5] = 0x02;
    memcpy(p + 6, raw + 4, len - 4);
    parse_err(p, len + 2, 0, KM_ERR_INVALID, "unknown segwit flag 0x02");

    /* Marker and flag, but the only witness is empty ("superfluous"):
     * version, 00 01, the body, 00 (no items), locktime. */
    memcpy(p, raw, 4);
    p[4] = 0x00;
    p[5] = 0x01;
    memcpy(p + 6, raw + 4, len - 8);
    p[6 + len - 8] = 0x00;
    memcpy(p + 6 + len - 8 + 1, raw + len - 4, 4);
    parse_err(p, len + 3, 0, KM_ERR_INVALID, "segwit marker present but every witness is empty");

    /* The empty transaction: version, 00, 00, locktime (Core reads the
     * second 00 as the flag of an empty input list). */
    static const uint8_t empty[] = {2, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    struct tx *tx = parse_ok(empty, sizeof(empty), 0);
    CHECK_EQ(tx->n_in, 0);
    CHECK_EQ(tx->n_out, 0);
    tx_free(tx);
    check_round_trip(empty, sizeof(empty), 0);
    check_round_trip(empty, sizeof(empty), TX_F_NO_WITNESS);

    /* Outputs claimed beyond the bytes: incomplete, before any growth. */
    memcpy(p, raw, len);
    p[4 + 1 + 32 + 4 + 1 + 4] = 0xfc;
    parse_err(p, len, 0, KM_ERR_INCOMPLETE, "252 outputs claimed");
    parse_err(raw, 3, 0, KM_ERR_INCOMPLETE, "ends early in version");
    parse_err(raw, 30, 0, KM_ERR_INCOMPLETE, "1 inputs claimed but only 25 bytes left");
    parse_err(raw, 56, 0, KM_ERR_INCOMPLETE, "ends early in output 0 scriptPubKey (offset 56)");
    free(p);
    free(raw);
}

/* Builds a transaction with one input whose scriptSig has n bytes. */
static uint8_t *with_script_sig(size_t n, size_t *len)
{
    struct tx *tx = tx_new();
    uint8_t txid[32] = {0}, *s = calloc(n ? n : 1, 1);
    (void)tx_add_input(tx, txid, 0, TX_SEQUENCE_FINAL);
    tx_set_script_sig(tx, 0, s, n);
    (void)tx_add_output(tx, 1, s, 1);
    uint8_t *raw = btc_tx_bytes(tx, 0, len);
    free(s);
    tx_free(tx);
    return raw;
}

static void test_limits(void **state)
{
    (void)state;
    size_t len;
    uint8_t *raw;

    raw = with_script_sig(TX_MAX_SCRIPT_LEN, &len);
    check_round_trip(raw, len, 0);
    free(raw);
    raw = with_script_sig(TX_MAX_SCRIPT_LEN + 1, &len);
    parse_err(raw, len, 0, KM_ERR_TOO_LARGE, "input 0 scriptSig is 10001 bytes (limit 10000");
    free(raw);

    /* The whole input. */
    uint8_t *big = calloc(TX_MAX_SIZE + 1, 1);
    parse_err(big, TX_MAX_SIZE + 1, 0, KM_ERR_TOO_LARGE, "limit 4000000");
    free(big);

    /* Counts: 100001 inputs claimed (fe a1 86 01 00). */
    static const uint8_t many_in[] = {2, 0, 0, 0, 0xfe, 0xa1, 0x86, 0x01, 0x00};
    parse_err(many_in, sizeof(many_in), 0, KM_ERR_TOO_LARGE, "input count is 100001");
    static const uint8_t claims[] = {2, 0, 0, 0, 0xfd, 0xe8, 0x03, 0, 0, 0};
    parse_err(claims, sizeof(claims), 0, KM_ERR_INCOMPLETE, "1000 inputs claimed");

    /* Witness items per input: 10001 claimed. */
    struct tx *tx = tx_new();
    uint8_t txid[32] = {0}, item = 0x42;
    (void)tx_add_input(tx, txid, 0, 0);
    (void)tx_add_output(tx, 0, NULL, 0);
    tx_push_witness(tx, 0, &item, 1);
    raw = btc_tx_bytes(tx, 0, &len);
    check_round_trip(raw, len, 0);
    /* Replace "01 01 42" (1 item of 1 byte) by "fd 11 27": 10001 items. */
    uint8_t *p = malloc(len + 2);
    size_t wpos = len - 4 - 3;
    memcpy(p, raw, wpos);
    p[wpos] = 0xfd;
    p[wpos + 1] = 0x11;
    p[wpos + 2] = 0x27;
    memcpy(p + wpos + 3, raw + len - 4, 4);
    parse_err(p, wpos + 7, 0, KM_ERR_TOO_LARGE, "input 0 witness item count is 10001");
    free(p);
    free(raw);
    tx_free(tx);
}

static void test_builders(void **state)
{
    (void)state;
    struct tx *tx = tx_new();
    uint8_t txid[32], spk[34] = {0x51, 0x20}, item[80];
    size_t len;

    memset(txid, 0xab, sizeof(txid));
    memset(item, 0x07, sizeof(item));
    tx->version = 0xfffffffeu; /* any 32 bits round-trip */
    tx->locktime = 800000;
    CHECK_EQ(tx_add_input(tx, txid, 3, 0xfffffffd), 0);
    CHECK_EQ(tx_add_input(tx, txid, 4, 0), 1);
    for (size_t i = 0; i < 300; i++) /* CompactSize 0xfd form for the count */
        CHECK_EQ(tx_add_output(tx, i, spk, sizeof(spk)), i);
    tx_push_witness(tx, 1, item, sizeof(item));
    tx_push_witness(tx, 1, NULL, 0);
    tx_push_witness(tx, 1, item, 1);
    uint8_t *raw = btc_tx_bytes(tx, 0, &len);
    CHECK_EQ(len, tx_serialized_size(tx, 0));
    struct tx *back = parse_ok(raw, len, 0);
    CHECK_EQ(back->version, 0xfffffffeu);
    CHECK_EQ(back->locktime, 800000);
    CHECK_EQ(back->n_in, 2);
    CHECK_EQ(back->n_out, 300);
    CHECK_EQ(back->in[0].n_witness, 0);
    CHECK_EQ(back->in[1].n_witness, 3);
    CHECK_EQ(back->in[1].witness[0].len, 80);
    CHECK_EQ(back->in[1].witness[1].len, 0);
    CHECK_EQ(back->in[0].sequence, 0xfffffffd);
    CHECK_EQ(back->out[299].amount, 299);
    check_round_trip(raw, len, 0);

    /* txid ignores witnesses; wtxid does not. */
    uint8_t a[32], b[32];
    CHECK_OK(tx_txid(a, tx));
    CHECK_OK(tx_wtxid(b, tx));
    CHECK(memcmp(a, b, 32) != 0);
    tx_free(back);
    free(raw);
    tx_free(tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_vectors),
        TEST(test_malformed),
        TEST(test_limits),
        TEST(test_builders),
    };
    return RUN_TESTS("bitcoin.tx", tests);
}
