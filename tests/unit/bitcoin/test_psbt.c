/*
 * test_psbt.c - src/bitcoin/psbt:
 *  - the BIP-174, BIP-371 and BIP-373 test vectors (tests/data/bitcoin):
 *    every valid PSBT parses and re-serializes byte for byte, and every
 *    invalid one is refused with the error this table expects;
 *  - the signatures inside them: BIP-371's key path and script path
 *    signatures and BIP-373's final signatures verify against our sighash,
 *    and BIP-373's partial signatures verify with src/crypto/musig under
 *    that sighash (untweaked, Taproot-tweaked and script path cases);
 *  - v0 and v2 PSBTs built here with every Taproot and MuSig2 setter plus
 *    unknown and proprietary records: round trips, typed getters, the same
 *    sighash from both versions and from sighash.h directly, a real key
 *    path signature; BIP-370 lock time selection;
 *  - malformed PSBTs, refused setters and sighash refusals, each with its
 *    message; every limit.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitcoin/psbt.h"
#include "bitcoin/ser.h"
#include "bitcoin/sighash.h"
#include "btc_test.h"
#include "crypto/keypair.h"
#include "crypto/musig.h"
#include "crypto/schnorr.h"
#include "crypto/taproot.h"
#include "common/banned.h"

/* ---- helpers ---------------------------------------------------------- */

static void parse_err(const uint8_t *p, size_t len, int code, const char *msg)
{
    struct psbt *ps = (struct psbt *)1;
    struct km_error e;

    km_error_clear(&e);
    int r = psbt_parse(&ps, p, len, &e);
    if (r != code)
        fail_msg("want %s, got %s: %s", km_errname(code), km_errname(r), e.msg);
    CHECK_NULL(ps);
    if (msg != NULL)
        CHECK_CONTAINS(e.msg, msg);
}

static void check_round_trip(const struct psbt *p)
{
    size_t len, len2;
    uint8_t *a = btc_psbt_bytes(p, &len);
    struct psbt *q = btc_psbt_ok(a, len);
    uint8_t *b = btc_psbt_bytes(q, &len2);
    CHECK_EQ(len, len2);
    CHECK_MEM_EQ(a, b, len);
    free(a);
    free(b);
    psbt_free(q);
}

/* Raw PSBT bytes, for inputs the API would not build. */
struct raw {
    struct buf b;
};

static void raw_init(struct raw *r)
{
    static const uint8_t magic[] = {0x70, 0x73, 0x62, 0x74, 0xff};
    buf_init(&r->b, PSBT_MAX_SIZE + 65536);
    CHECK_OK(buf_put(&r->b, magic, sizeof(magic)));
}

static void raw_kv(struct raw *r, const uint8_t *key, size_t klen, const uint8_t *v, size_t vlen)
{
    CHECK_OK(ser_put_bytes(&r->b, key, klen));
    CHECK_OK(ser_put_bytes(&r->b, v, vlen));
}

/* A key-only record of a one-byte type. */
static void raw_kv1(struct raw *r, uint8_t type, const uint8_t *v, size_t vlen)
{
    raw_kv(r, &type, 1, v, vlen);
}

static void raw_u32(struct raw *r, uint8_t type, uint32_t v)
{
    uint8_t p[4];
    ser_store_le32(p, v);
    raw_kv1(r, type, p, 4);
}

static void raw_sep(struct raw *r)
{
    CHECK_OK(buf_put_u8(&r->b, 0x00));
}

static void raw_err(struct raw *r, int code, const char *msg)
{
    parse_err(buf_peek(&r->b), buf_len(&r->b), code, msg);
    buf_release(&r->b);
}

static struct psbt *raw_ok(struct raw *r)
{
    struct psbt *p = btc_psbt_ok(buf_peek(&r->b), buf_len(&r->b));
    buf_release(&r->b);
    return p;
}

/* ---- BIP vectors ------------------------------------------------------- */

struct expect {
    const char *file;
    size_t line;
    int code;
    const char *msg;
};

/* Every invalid vector, with the refusal it must get. */
static const struct expect invalid[] = {
    {"bip174", 0, KM_ERR_INVALID, "bad magic"},
    {"bip174", 1, KM_ERR_INCOMPLETE, "output 0: ends early"},
    {"bip174", 2, KM_ERR_INVALID, "PSBT_GLOBAL_UNSIGNED_TX: input 0 has a scriptSig"},
    {"bip174", 3, KM_ERR_INVALID, "PSBT_GLOBAL_UNSIGNED_TX is required in a version 0 PSBT"},
    {"bip174", 4, KM_ERR_INVALID, "input 0: duplicate key (PSBT_IN_NON_WITNESS_UTXO"},
    {"bip174", 5, KM_ERR_INVALID, "global: PSBT_GLOBAL_UNSIGNED_TX: key has 1 bytes of key data"},
    {"bip174", 6, KM_ERR_INVALID, "input 0: PSBT_IN_WITNESS_UTXO: key has 1 bytes"},
    {"bip174", 7, KM_ERR_INVALID, "PSBT_IN_PARTIAL_SIG: public key is 32 bytes"},
    {"bip174", 8, KM_ERR_INVALID, "PSBT_IN_REDEEM_SCRIPT: key has 1 bytes"},
    {"bip174", 9, KM_ERR_INVALID, "PSBT_IN_WITNESS_SCRIPT: key has 1 bytes"},
    {"bip174", 10, KM_ERR_INVALID, "PSBT_IN_BIP32_DERIVATION: public key is 32 bytes"},
    {"bip174", 11, KM_ERR_INVALID, "PSBT_IN_NON_WITNESS_UTXO: key has 1 bytes"},
    {"bip174", 12, KM_ERR_INVALID, "PSBT_IN_FINAL_SCRIPTSIG: key has 1 bytes"},
    {"bip174", 13, KM_ERR_INVALID, "input 1: PSBT_IN_FINAL_SCRIPTWITNESS: key has 1 bytes"},
    {"bip174", 14, KM_ERR_INVALID, "output 0: PSBT_OUT_BIP32_DERIVATION: public key is 32"},
    {"bip174", 15, KM_ERR_INVALID, "PSBT_IN_SIGHASH_TYPE: key has 1 bytes"},
    {"bip174", 16, KM_ERR_INVALID, "output 0: PSBT_OUT_REDEEM_SCRIPT: key has 1 bytes"},
    {"bip174", 17, KM_ERR_INVALID, "output 1: PSBT_OUT_WITNESS_SCRIPT: key has 32 bytes"},
    {"bip174", 18, KM_ERR_INVALID, "PSBT_GLOBAL_UNSIGNED_TX: tx: ends early"},
    {"bip174", 19, KM_ERR_INVALID, "PSBT_GLOBAL_UNSIGNED_TX: tx: 22 bytes after"},
    {"bip371", 0, KM_ERR_INVALID, "PSBT_IN_TAP_INTERNAL_KEY: value is 33 bytes (want 32)"},
    {"bip371", 1, KM_ERR_INVALID, "PSBT_IN_TAP_KEY_SIG: signature is 63 bytes (want 64 or 65)"},
    {"bip371", 2, KM_ERR_INVALID, "PSBT_IN_TAP_KEY_SIG: signature is 66 bytes"},
    {"bip371", 3, KM_ERR_INVALID, "PSBT_IN_TAP_BIP32_DERIVATION: key data is 33 bytes (want 32)"},
    {"bip371", 4, KM_ERR_INVALID, "output 1: PSBT_OUT_TAP_INTERNAL_KEY: value is 33 bytes"},
    {"bip371", 5, KM_ERR_INVALID, "output 1: PSBT_OUT_TAP_BIP32_DERIVATION: key data is 33"},
    {"bip371", 6, KM_ERR_INVALID, "PSBT_IN_TAP_SCRIPT_SIG: key data is 65 bytes (want 64)"},
    {"bip371", 7, KM_ERR_INVALID, "PSBT_IN_TAP_SCRIPT_SIG: signature is 66 bytes"},
    {"bip371", 8, KM_ERR_INVALID, "PSBT_IN_TAP_SCRIPT_SIG: signature is 63 bytes"},
    {"bip371", 9, KM_ERR_INVALID, "PSBT_IN_TAP_LEAF_SCRIPT: control block is 98 bytes"},
    {"bip371", 10, KM_ERR_INVALID, "PSBT_IN_TAP_LEAF_SCRIPT: control block is 96 bytes"},
    {"bip373", 14, KM_ERR_INVALID,
     "input 0: PSBT_IN_MUSIG2_PARTICIPANT_PUBKEYS: key data is not a compressed aggregate"},
    {"bip373", 15, KM_ERR_INVALID,
     "PSBT_IN_MUSIG2_PARTICIPANT_PUBKEYS: value is 98 bytes (want 33 per participant)"},
    /* 16 and 17 carry the same bytes in the BIP text (README.md). */
    {"bip373", 16, KM_ERR_INVALID,
     "output 0: PSBT_OUT_MUSIG2_PARTICIPANT_PUBKEYS: key data is not a compressed aggregate"},
    {"bip373", 17, KM_ERR_INVALID, "output 0: PSBT_OUT_MUSIG2_PARTICIPANT_PUBKEYS"},
    {"bip373", 18, KM_ERR_INVALID, "PSBT_IN_MUSIG2_PUB_NONCE: key data is 65 bytes"},
    {"bip373", 19, KM_ERR_INVALID, "PSBT_IN_MUSIG2_PUB_NONCE: key data is 65 bytes"},
    {"bip373", 20, KM_ERR_INVALID, "PSBT_IN_MUSIG2_PUB_NONCE: value is 65 bytes (want 66)"},
    {"bip373", 21, KM_ERR_INVALID, "PSBT_IN_MUSIG2_PARTIAL_SIG: key data is 97 bytes"},
    {"bip373", 22, KM_ERR_INVALID, "PSBT_IN_MUSIG2_PARTIAL_SIG: key data is 97 bytes"},
    {"bip373", 23, KM_ERR_INVALID, "PSBT_IN_MUSIG2_PARTIAL_SIG: value is 31 bytes (want 32)"},
};

static const struct expect *find_expect(const char *file, size_t line)
{
    for (size_t k = 0; k < KM_ARRAY_LEN(invalid); k++)
        if (strcmp(invalid[k].file, file) == 0 && invalid[k].line == line)
            return &invalid[k];
    return NULL;
}

/* Reads every typed field of every map (views must stay in bounds). */
static size_t walk_fields(const struct psbt *p)
{
    size_t n = 0;
    for (size_t i = 0; i < psbt_input_count(p); i++) {
        struct sighash_spent s;
        struct psbt_tap_script_sig ss;
        struct psbt_tap_leaf_script ls;
        struct psbt_tap_bip32 d;
        struct psbt_musig2_participants mp;
        struct psbt_musig2_share sh;
        const struct tx *tx;
        const uint8_t *sig;
        size_t siglen;
        uint8_t k32[32];
        uint32_t ht;

        n += psbt_in_witness_utxo(p, i, &s) == KM_OK;
        n += psbt_in_non_witness_utxo(p, i, &tx) == KM_OK;
        n += psbt_in_sighash_type(p, i, &ht) == KM_OK;
        n += psbt_in_tap_key_sig(p, i, &sig, &siglen) == KM_OK;
        n += psbt_in_tap_internal_key(p, i, k32) == KM_OK;
        n += psbt_in_tap_merkle_root(p, i, k32) == KM_OK;
        for (size_t k = 0; psbt_in_tap_script_sig(p, i, k, &ss) == KM_OK; k++, n++)
            CHECK(ss.sig_len == 64 || ss.sig_len == 65);
        for (size_t k = 0; psbt_in_tap_leaf_script(p, i, k, &ls) == KM_OK; k++, n++)
            CHECK_EQ((ls.control_len - 33) % 32, 0);
        for (size_t k = 0; psbt_in_tap_bip32(p, i, k, &d) == KM_OK; k++, n++)
            CHECK(d.fingerprint != NULL);
        for (size_t k = 0; psbt_in_musig2_participants(p, i, k, &mp) == KM_OK; k++, n++)
            CHECK(mp.n > 0);
        for (size_t k = 0; psbt_in_musig2_pub_nonce(p, i, k, &sh) == KM_OK; k++, n++)
            CHECK_EQ(sh.value_len, 66);
        for (size_t k = 0; psbt_in_musig2_partial_sig(p, i, k, &sh) == KM_OK; k++, n++)
            CHECK_EQ(sh.value_len, 32);
    }
    for (size_t o = 0; o < psbt_output_count(p); o++) {
        struct psbt_tap_bip32 d;
        struct psbt_musig2_participants mp;
        uint8_t k32[32];
        n += psbt_out_tap_internal_key(p, o, k32) == KM_OK;
        for (size_t k = 0; psbt_out_tap_bip32(p, o, k, &d) == KM_OK; k++, n++)
            CHECK(d.xonly != NULL);
        for (size_t k = 0; psbt_out_musig2_participants(p, o, k, &mp) == KM_OK; k++, n++)
            CHECK(mp.n > 0);
    }
    return n;
}

static void test_bip_vectors(void **state)
{
    (void)state;
    static const char *const files[] = {"bip174", "bip371", "bip373"};
    size_t valid = 0, refused = 0, fields = 0;

    for (size_t f = 0; f < KM_ARRAY_LEN(files); f++) {
        char rel[64];
        struct btc_line *l;
        snprintf(rel, sizeof(rel), "bitcoin/psbt-%s.txt", files[f]);
        size_t n = btc_read_lines(rel, 3, &l);
        for (size_t i = 0; i < n; i++) {
            size_t len;
            uint8_t *raw = btc_unhex(l[i].f[1], &len);
            const struct expect *x = find_expect(files[f], i);
            if (strcmp(l[i].f[0], "valid") == 0) {
                CHECK_NULL(x);
                struct psbt *p = btc_psbt_ok(raw, len);
                size_t blen;
                uint8_t *back = btc_psbt_bytes(p, &blen);
                CHECK_EQ(blen, len);
                CHECK_MEM_EQ(back, raw, len);
                struct psbt_sighash *sh = calloc(psbt_input_count(p) + 1, sizeof(*sh));
                CHECK_OK(psbt_sighash_all(sh, p, NULL));
                fields += walk_fields(p);
                free(sh);
                free(back);
                psbt_free(p);
                valid++;
            } else {
                if (x == NULL)
                    fail_msg("%s line %zu: no expected refusal", files[f], i);
                else
                    parse_err(raw, len, x->code, x->msg);
                refused++;
            }
            free(raw);
        }
        btc_free_lines(l, n);
    }
    CHECK_EQ(refused, KM_ARRAY_LEN(invalid));
    CHECK_EQ(valid + refused, 44 + 17 + 24);
    print_message("psbt vectors: %zu valid (round trip), %zu refused; %zu typed fields read\n",
                  valid, refused, fields);
}

static struct psbt *vector(const char *file, size_t line)
{
    char rel[64];
    struct btc_line *l;
    size_t len;

    snprintf(rel, sizeof(rel), "bitcoin/psbt-%s.txt", file);
    size_t n = btc_read_lines(rel, 3, &l);
    CHECK(line < n);
    uint8_t *raw = btc_unhex(l[line].f[1], &len);
    struct psbt *p = btc_psbt_ok(raw, len);
    free(raw);
    btc_free_lines(l, n);
    return p;
}

/* The x-only output key of the P2TR output input i spends. */
static void output_key(uint8_t out[32], const struct psbt *p, size_t i)
{
    struct sighash_spent s;
    CHECK_OK(psbt_in_spent_output(p, i, &s, NULL));
    CHECK_EQ(s.script_len, 34);
    memcpy(out, s.script + 2, 32);
}

/* Verifies every TAP_KEY_SIG and TAP_SCRIPT_SIG of p against our
 * sighashes. Returns how many. */
static size_t verify_signatures(const struct psbt *p)
{
    size_t n = 0;

    for (size_t i = 0; i < psbt_input_count(p); i++) {
        uint8_t q[32], sh[32];
        const uint8_t *sig;
        size_t siglen;
        struct psbt_tap_script_sig ss;
        struct km_error e;

        output_key(q, p, i);
        if (psbt_in_tap_key_sig(p, i, &sig, &siglen) == KM_OK) {
            CHECK_EQ(siglen, 64);
            CHECK_OK(psbt_sighash(sh, p, i, NULL, &e));
            CHECK_OK(schnorr_verify(sig, 64, sh, 32, q, 32));
            n++;
        }
        for (size_t k = 0; psbt_in_tap_script_sig(p, i, k, &ss) == KM_OK; k++) {
            struct psbt_tap_leaf_script ls;
            struct sighash_leaf leaf;
            int found = 0;
            /* The leaf this signature is for, proven against the key. */
            for (size_t j = 0; !found && psbt_in_tap_leaf_script(p, i, j, &ls) == KM_OK; j++)
                found = sighash_leaf_from_control(&leaf, q, ls.control, ls.control_len, ls.script,
                                                  ls.script_len, NULL) == KM_OK &&
                        memcmp(leaf.leaf_hash, ss.leaf_hash, 32) == 0;
            CHECK(found);
            CHECK_EQ(ss.sig_len, 64);
            CHECK_OK(psbt_sighash(sh, p, i, &leaf, &e));
            CHECK_OK(schnorr_verify(ss.sig, 64, sh, 32, ss.xonly, 32));
            n++;
        }
    }
    return n;
}

static void test_vector_signatures(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        size_t line, sigs;
    } cases[] = {
        {"bip371", 12, 1}, /* key path signature */
        {"bip371", 16, 3}, /* script path signatures, three leaves */
        {"bip373", 2, 0},  /* MuSig2 output key: partial signatures only */
        {"bip373", 5, 1},  /* MuSig2 internal key: final key path signature */
        {"bip373", 8, 1},  /* MuSig2 key in a script: final script signature */
        {"bip373", 11, 1}, /* key derived from the aggregate: final signature */
    };
    size_t total = 0;

    for (size_t c = 0; c < KM_ARRAY_LEN(cases); c++) {
        struct psbt *p = vector(cases[c].file, cases[c].line);
        size_t n = verify_signatures(p);
        CHECK_EQ(n, cases[c].sigs);
        total += n;
        psbt_free(p);
    }
    CHECK_EQ(total, 7);
    print_message("vector signatures verified with our sighash: %zu\n", total);
}

/* BIP-373: every partial signature of an input verifies under our sighash
 * with the participants' KeyAgg, tweaked as the output requires. Returns
 * the number verified, or 0 when the key is derived (BIP-328: out of scope
 * here). */
static size_t verify_partial_sigs(const struct psbt *p, size_t i)
{
    struct psbt_musig2_participants mp;
    struct psbt_musig2_share sh;
    struct musig_keyagg *ka = NULL;
    struct musig_pubnonce nonces[8];
    struct musig_aggnonce agg;
    struct musig_session s;
    uint8_t q[32], x[32], plain[33], root[32], msg[32];
    size_t n = 0;

    CHECK_OK(psbt_in_musig2_participants(p, i, 0, &mp));
    uint8_t keys[8][33];
    CHECK(mp.n <= 8);
    memcpy(keys, mp.keys, 33 * mp.n);
    CHECK_OK(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])keys, mp.n));
    musig_keyagg_plain(ka, plain);
    CHECK_MEM_EQ(plain, mp.agg, 33);
    for (size_t k = 0; k < mp.n; k++) {
        size_t signer = mp.n;
        CHECK_OK(psbt_in_musig2_pub_nonce(p, i, k, &sh));
        CHECK_OK(musig_keyagg_find(ka, sh.participant, &signer));
        CHECK_OK(musig_pubnonce_parse(&nonces[signer], sh.value, sh.value_len));
    }
    CHECK_OK(musig_nonce_agg(&agg, NULL, nonces, mp.n));
    CHECK_OK(psbt_in_musig2_partial_sig(p, i, 0, &sh));
    struct sighash_leaf leaf = {{0}, SIGHASH_NO_CODESEP}, *lp = NULL;
    output_key(q, p, i);
    if (sh.leaf_hash != NULL) { /* the aggregate key signs in a script */
        memcpy(leaf.leaf_hash, sh.leaf_hash, 32);
        lp = &leaf;
    } else {
        musig_keyagg_xonly(ka, x);
        if (memcmp(x, q, 32) != 0) { /* internal key: Taproot tweak */
            int have_root = psbt_in_tap_merkle_root(p, i, root) == KM_OK;
            CHECK_OK(taproot_musig_tweak(ka, have_root ? root : NULL));
            musig_keyagg_xonly(ka, x);
            if (memcmp(x, q, 32) != 0) {
                musig_keyagg_free(ka);
                return 0; /* derived from the aggregate (BIP-328) */
            }
        }
    }
    CHECK_OK(psbt_sighash(msg, p, i, lp, NULL));
    CHECK_OK(musig_session_init(&s, ka, &agg, msg, 32, NULL, 0));
    for (size_t k = 0; psbt_in_musig2_partial_sig(p, i, k, &sh) == KM_OK; k++, n++) {
        size_t signer = mp.n;
        CHECK_OK(musig_keyagg_find(ka, sh.participant, &signer));
        /* The aggregate field names the key signed for: the participants'
         * aggregate, or (internal key case) the tweaked output key. */
        CHECK(memcmp(sh.agg, mp.agg, 33) == 0 || memcmp(sh.agg + 1, q, 32) == 0);
        CHECK_OK(musig_partial_sig_verify(sh.value, 32, &nonces[signer], ka, signer, &s));
    }
    musig_keyagg_free(ka);
    return n;
}

static void test_bip373_musig(void **state)
{
    (void)state;
    static const uint8_t agg[33] = {0x03, 0x0b, 0x58, 0xe3, 0x37, 0xaa, 0x4d, 0x38, 0x52,
                                    0xa8, 0xc2, 0x93, 0x87, 0xc4, 0x24, 0x08, 0xd8, 0xcf,
                                    0xbe, 0x3a, 0x61, 0x3a, 0x5e, 0x39, 0x7e, 0x0a, 0x9f,
                                    0x01, 0xa5, 0xfb, 0x71, 0x07, 0xd4};
    size_t verified = 0;

    /* "With participant pubkeys only": the BIP's three keys, in order. */
    struct psbt *p = vector("bip373", 0);
    struct psbt_musig2_participants mp;
    struct psbt_musig2_share sh;
    CHECK_OK(psbt_in_musig2_participants(p, 0, 0, &mp));
    CHECK_MEM_EQ(mp.agg, agg, 33);
    CHECK_EQ(mp.n, 3);
    CHECK_EQ(mp.keys[0], 0x02);
    CHECK_EQ(mp.keys[33 + 1], 0x4f);
    CHECK_EQ(psbt_in_musig2_pub_nonce(p, 0, 0, &sh), KM_ERR_NOT_FOUND);
    psbt_free(p);

    /* "With all partial signatures" of the three key cases and the
     * derived one (which has nonces and partial sigs but a BIP-328 key). */
    static const size_t lines[] = {2, 5, 8};
    for (size_t c = 0; c < KM_ARRAY_LEN(lines); c++) {
        p = vector("bip373", lines[c]);
        size_t n = verify_partial_sigs(p, 0);
        CHECK_EQ(n, 3);
        verified += n;
        psbt_free(p);
    }
    p = vector("bip373", 11);
    CHECK_EQ(verify_partial_sigs(p, 0), 0);
    psbt_free(p);

    /* Receiving: output participants. */
    p = vector("bip373", 12);
    CHECK_OK(psbt_out_musig2_participants(p, 0, 0, &mp));
    CHECK_EQ(mp.n, 3);
    CHECK_MEM_EQ(mp.agg, agg, 33);
    psbt_free(p);
    print_message("bip373 partial signatures verified: %zu\n", verified);
}

/* ---- built PSBTs ------------------------------------------------------ */

struct fixture {
    struct keypair key[3];  /* internal keys of the three spent outputs */
    struct keypair tweaked; /* key 0's BIP-86 key path key */
    uint8_t spk[3][34];
    uint64_t amount[3];
    uint8_t prev[3][32];
    struct tx *tx;
};

static void make_fixture(struct fixture *f)
{
    uint8_t sk[32], q[32], out_spk[22] = {0x00, 0x14};

    memset(f, 0, sizeof(*f));
    f->tx = tx_new();
    f->tx->locktime = 850000;
    for (int i = 0; i < 3; i++) {
        memset(sk, 0x41 + i, sizeof(sk));
        CHECK_OK(keypair_init(&f->key[i], sk));
        CHECK_OK(taproot_output_key(q, NULL, f->key[i].xonly, 32, NULL));
        taproot_script_pubkey(f->spk[i], q);
        f->amount[i] = 50000u + 1000u * (uint64_t)i;
        memset(f->prev[i], 0xc0 + i, 32);
        (void)tx_add_input(f->tx, f->prev[i], (uint32_t)i, 0xfffffffd);
    }
    CHECK_OK(taproot_tweak_keypair(&f->tweaked, &f->key[0], NULL));
    memset(out_spk + 2, 0x5a, 20);
    (void)tx_add_output(f->tx, 100000, out_spk, sizeof(out_spk));
    (void)tx_add_output(f->tx, 50000, f->spk[1], 34);
}

static void free_fixture(struct fixture *f)
{
    for (int i = 0; i < 3; i++)
        keypair_clear(&f->key[i]);
    keypair_clear(&f->tweaked);
    tx_free(f->tx);
}

static void set_utxos(struct psbt *p, const struct fixture *f)
{
    for (size_t i = 0; i < 3; i++)
        CHECK_OK(psbt_in_set_witness_utxo(p, i, f->amount[i], f->spk[i], 34, NULL));
}

/* The same sighash straight from sighash.h, as a cross-check. */
static void direct_sighash(uint8_t out[32], const struct fixture *f, size_t i, unsigned ht,
                           const struct sighash_leaf *leaf)
{
    struct sighash_spent spent[3];
    struct sighash_precomp pc;
    struct sighash_args a = {i, ht, leaf, NULL, 0};
    for (size_t k = 0; k < 3; k++) {
        spent[k].amount = f->amount[k];
        spent[k].script = f->spk[k];
        spent[k].script_len = 34;
    }
    CHECK_OK(sighash_precompute(&pc, f->tx, spent));
    CHECK_OK(sighash_taproot(out, &pc, f->tx, spent, &a, NULL));
}

static const uint8_t leaf_script[] = {0x20, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                      0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11,
                                      0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
                                      0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0xac};

/* Adds every Taproot and MuSig2 field, unknown and proprietary records. */
static void add_everything(struct psbt *p, const struct fixture *f)
{
    uint8_t keys[3 * 33], nonce[66], psig[32], leaf_hash[32], control[33 + 32], root[32];
    struct musig_keyagg *ka = NULL;
    uint8_t agg[33];

    for (int k = 0; k < 3; k++)
        memcpy(keys + 33 * k, f->key[k].pubkey, 33);
    CHECK_OK(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])keys, 3));
    musig_keyagg_plain(ka, agg);
    musig_keyagg_free(ka);
    memcpy(nonce, f->key[1].pubkey, 33);
    memcpy(nonce + 33, f->key[2].pubkey, 33);
    memset(psig, 0x07, sizeof(psig));
    taproot_leaf_hash(leaf_hash, TAPROOT_LEAF_TAPSCRIPT, leaf_script, sizeof(leaf_script));
    control[0] = TAPROOT_LEAF_TAPSCRIPT;
    memcpy(control + 1, f->key[1].xonly, 32);
    memset(control + 33, 0x3c, 32);
    memset(root, 0x99, sizeof(root));

    CHECK_OK(psbt_in_set_tap_internal_key(p, 0, f->key[0].xonly, NULL));
    CHECK_OK(psbt_in_set_sighash_type(p, 0, SIGHASH_DEFAULT, NULL));
    CHECK_OK(psbt_in_set_tap_internal_key(p, 1, f->key[1].xonly, NULL));
    CHECK_OK(psbt_in_set_tap_merkle_root(p, 1, root, NULL));
    CHECK_OK(psbt_in_set_tap_leaf_script(p, 1, control, sizeof(control), leaf_script,
                                         sizeof(leaf_script), TAPROOT_LEAF_TAPSCRIPT, NULL));
    CHECK_OK(psbt_in_set_musig2_participants(p, 1, agg, keys, 3, NULL));
    for (int k = 0; k < 3; k++) {
        CHECK_OK(psbt_in_set_musig2_pub_nonce(p, 1, f->key[k].pubkey, agg, NULL, nonce, NULL));
        CHECK_OK(
            psbt_in_set_musig2_partial_sig(p, 1, f->key[k].pubkey, agg, leaf_hash, psig, NULL));
    }
    uint8_t any_sig[64];
    memset(any_sig, 0x5e, sizeof(any_sig));
    CHECK_OK(psbt_in_set_tap_script_sig(p, 2, f->key[2].xonly, leaf_hash, any_sig, 64, NULL));
    CHECK_OK(psbt_out_set_musig2_participants(p, 1, agg, keys, 3, NULL));

    /* TAP_BIP32_DERIVATION (no typed setter): 1 leaf hash, fingerprint,
     * path m/86'/0'/0'. */
    uint8_t key[33] = {PSBT_IN_TAP_BIP32_DERIVATION}, v[1 + 32 + 4 + 12] = {1};
    memcpy(key + 1, f->key[2].xonly, 32);
    memcpy(v + 1, leaf_hash, 32);
    memcpy(v + 33, "\xde\xad\xbe\xef", 4);
    ser_store_le32(v + 37, 0x80000056);
    ser_store_le32(v + 41, 0x80000000);
    ser_store_le32(v + 45, 0x80000000);
    CHECK_OK(psbt_record_set(p, PSBT_SCOPE_INPUT, 2, key, sizeof(key), v, sizeof(v), NULL));

    /* Unknown and proprietary records, in every scope. */
    static const uint8_t unknown_key[] = {0x7e, 1, 2, 3}, unknown_val[] = {9, 9};
    static const uint8_t prop_key[] = {0xfc, 0x07, 'k', 'e', 'y', 'm', 'e', 'l', 'd', 0x01, 0xab};
    CHECK_OK(psbt_record_set(p, PSBT_SCOPE_GLOBAL, 0, unknown_key, sizeof(unknown_key), unknown_val,
                             sizeof(unknown_val), NULL));
    CHECK_OK(
        psbt_record_set(p, PSBT_SCOPE_GLOBAL, 0, prop_key, sizeof(prop_key), unknown_val, 1, NULL));
    CHECK_OK(psbt_record_set(p, PSBT_SCOPE_INPUT, 0, prop_key, sizeof(prop_key), NULL, 0, NULL));
    CHECK_OK(
        psbt_record_set(p, PSBT_SCOPE_OUTPUT, 0, unknown_key, sizeof(unknown_key), NULL, 0, NULL));
}

static void check_everything(const struct psbt *p, const struct fixture *f)
{
    struct sighash_spent s;
    struct psbt_tap_leaf_script ls;
    struct psbt_tap_script_sig ss;
    struct psbt_tap_bip32 d;
    struct psbt_musig2_participants mp;
    struct psbt_musig2_share sh;
    uint8_t k32[32];
    size_t k;

    for (size_t i = 0; i < 3; i++) {
        CHECK_OK(psbt_in_witness_utxo(p, i, &s));
        CHECK_EQ(s.amount, f->amount[i]);
        CHECK_MEM_EQ(s.script, f->spk[i], 34);
    }
    CHECK_OK(psbt_in_tap_internal_key(p, 0, k32));
    CHECK_MEM_EQ(k32, f->key[0].xonly, 32);
    CHECK_ERR(psbt_in_tap_merkle_root(p, 0, k32), KM_ERR_NOT_FOUND);
    CHECK_OK(psbt_in_tap_merkle_root(p, 1, k32));
    CHECK_EQ(k32[0], 0x99);
    CHECK_OK(psbt_in_tap_leaf_script(p, 1, 0, &ls));
    CHECK_EQ(ls.control_len, 65);
    CHECK_EQ(ls.script_len, sizeof(leaf_script));
    CHECK_MEM_EQ(ls.script, leaf_script, sizeof(leaf_script));
    CHECK_EQ(ls.leaf_version, TAPROOT_LEAF_TAPSCRIPT);
    CHECK_OK(psbt_in_musig2_participants(p, 1, 0, &mp));
    CHECK_EQ(mp.n, 3);
    CHECK_MEM_EQ(mp.keys + 66, f->key[2].pubkey, 33);
    for (k = 0; psbt_in_musig2_pub_nonce(p, 1, k, &sh) == KM_OK; k++) {
        CHECK_NULL(sh.leaf_hash);
        CHECK_MEM_EQ(sh.participant, f->key[k].pubkey, 33);
        CHECK_MEM_EQ(sh.agg, mp.agg, 33);
    }
    CHECK_EQ(k, 3);
    for (k = 0; psbt_in_musig2_partial_sig(p, 1, k, &sh) == KM_OK; k++)
        CHECK_NOT_NULL(sh.leaf_hash);
    CHECK_EQ(k, 3);
    CHECK_OK(psbt_in_tap_script_sig(p, 2, 0, &ss));
    CHECK_MEM_EQ(ss.xonly, f->key[2].xonly, 32);
    CHECK_ERR(psbt_in_tap_script_sig(p, 2, 1, &ss), KM_ERR_NOT_FOUND);
    CHECK_OK(psbt_in_tap_bip32(p, 2, 0, &d));
    CHECK_EQ(d.n_leaf_hashes, 1);
    CHECK_EQ(d.path_len, 3);
    CHECK_EQ(ser_load_le32(d.path), 0x80000056);
    CHECK_MEM_EQ(d.fingerprint, "\xde\xad\xbe\xef", 4);
    CHECK_OK(psbt_out_musig2_participants(p, 1, 0, &mp));
    CHECK_EQ(psbt_out_musig2_participants(p, 0, 0, &mp), KM_ERR_NOT_FOUND);
    CHECK_EQ(psbt_record_count(p, PSBT_SCOPE_OUTPUT, 0), psbt_version(p) == 2 ? 3 : 1);
}

/* Signs input 0's key path with the tweaked key and stores the signature;
 * checks it against the output key. */
static void sign_input0(struct psbt *p, const struct fixture *f)
{
    uint8_t sh[32], sig[64], want[32];
    const uint8_t *got;
    size_t len;

    CHECK_OK(psbt_sighash(sh, p, 0, NULL, NULL));
    direct_sighash(want, f, 0, SIGHASH_DEFAULT, NULL);
    CHECK_MEM_EQ(sh, want, 32);
    CHECK_OK(schnorr_sign(sig, &f->tweaked, sh, 32, NULL));
    CHECK_OK(psbt_in_set_tap_key_sig(p, 0, sig, 64, NULL));
    CHECK_OK(psbt_in_tap_key_sig(p, 0, &got, &len));
    CHECK_EQ(len, 64);
    CHECK_OK(schnorr_verify(got, 64, sh, 32, f->spk[0] + 2, 32));
}

static void test_v0_built(void **state)
{
    (void)state;
    struct fixture f;
    struct psbt *p = NULL;
    struct psbt_sighash all[3];
    uint8_t sh[32], want[32];

    make_fixture(&f);
    CHECK_OK(psbt_new_v0(&p, f.tx, NULL));
    CHECK_EQ(psbt_version(p), 0);
    CHECK_EQ(psbt_input_count(p), 3);
    CHECK_EQ(psbt_output_count(p), 2);
    check_round_trip(p);
    set_utxos(p, &f);
    add_everything(p, &f);
    check_everything(p, &f);
    check_round_trip(p);
    sign_input0(p, &f);

    /* Every input's sighash, and the script path one for input 1. */
    CHECK_OK(psbt_sighash_all(all, p, NULL));
    for (size_t i = 0; i < 3; i++) {
        CHECK(all[i].taproot);
        direct_sighash(want, &f, i, SIGHASH_DEFAULT, NULL);
        CHECK_MEM_EQ(all[i].hash, want, 32);
    }
    struct sighash_leaf leaf = {{0}, SIGHASH_NO_CODESEP};
    taproot_leaf_hash(leaf.leaf_hash, TAPROOT_LEAF_TAPSCRIPT, leaf_script, sizeof(leaf_script));
    CHECK_OK(psbt_sighash(sh, p, 1, &leaf, NULL));
    direct_sighash(want, &f, 1, SIGHASH_DEFAULT, &leaf);
    CHECK_MEM_EQ(sh, want, 32);
    CHECK_OK(psbt_in_set_sighash_type(p, 2, SIGHASH_SINGLE | SIGHASH_ANYONECANPAY, NULL));
    CHECK_ERR(psbt_sighash(sh, p, 2, NULL, NULL), KM_ERR_INVALID); /* 2 outputs */
    CHECK_OK(psbt_in_set_sighash_type(p, 2, SIGHASH_NONE, NULL));
    CHECK_OK(psbt_sighash(sh, p, 2, NULL, NULL));
    direct_sighash(want, &f, 2, SIGHASH_NONE, NULL);
    CHECK_MEM_EQ(sh, want, 32);
    check_round_trip(p);

    /* The serialization starts with the unsigned tx, legacy form. */
    size_t len, tlen;
    uint8_t *bytes = btc_psbt_bytes(p, &len), *txb = btc_tx_bytes(f.tx, TX_F_NO_WITNESS, &tlen);
    CHECK_EQ(bytes[5], 1);    /* key length */
    CHECK_EQ(bytes[6], 0x00); /* PSBT_GLOBAL_UNSIGNED_TX */
    CHECK_MEM_EQ(bytes + 8, txb, tlen);
    free(txb);
    free(bytes);
    psbt_free(p);
    free_fixture(&f);
}

static void test_v2_built(void **state)
{
    (void)state;
    struct fixture f;
    struct psbt *v0 = NULL, *p = psbt_new_v2(2);
    uint8_t fb[4], a[32], b[32];
    size_t idx;
    static const uint8_t fallback_key[] = {PSBT_GLOBAL_FALLBACK_LOCKTIME};

    make_fixture(&f);
    CHECK_EQ(psbt_version(p), 2);
    check_round_trip(p);
    for (size_t i = 0; i < 3; i++) {
        CHECK_OK(psbt_v2_add_input(p, &idx, f.prev[i], (uint32_t)i, 0xfffffffd, NULL));
        CHECK_EQ(idx, i);
    }
    for (size_t o = 0; o < 2; o++) {
        const struct tx_out *out = &f.tx->out[o];
        CHECK_OK(psbt_v2_add_output(p, &idx, out->amount, out->script.p, out->script.len, NULL));
        CHECK_EQ(idx, o);
    }
    ser_store_le32(fb, 850000);
    CHECK_OK(psbt_record_set(p, PSBT_SCOPE_GLOBAL, 0, fallback_key, 1, fb, 4, NULL));

    /* The assembled transaction is the fixture's. */
    size_t l1, l2;
    uint8_t *t1 = btc_tx_bytes(psbt_tx_direct(p), 0, &l1), *t2 = btc_tx_bytes(f.tx, 0, &l2);
    CHECK_EQ(l1, l2);
    CHECK_MEM_EQ(t1, t2, l1);
    free(t1);
    free(t2);

    set_utxos(p, &f);
    add_everything(p, &f);
    check_everything(p, &f);
    check_round_trip(p);
    sign_input0(p, &f);

    /* Same transaction in v0: same sighashes. */
    CHECK_OK(psbt_new_v0(&v0, f.tx, NULL));
    set_utxos(v0, &f);
    for (size_t i = 0; i < 3; i++) {
        CHECK_OK(psbt_sighash(a, p, i, NULL, NULL));
        CHECK_OK(psbt_sighash(b, v0, i, NULL, NULL));
        CHECK_MEM_EQ(a, b, 32);
    }
    psbt_free(v0);

    /* v0-only fields are refused in v2, v2-only fields in v0. */
    struct km_error e;
    static const uint8_t utx_key[] = {PSBT_GLOBAL_UNSIGNED_TX},
                         txid_key[] = {PSBT_IN_PREVIOUS_TXID};
    CHECK_ERR(psbt_record_set(p, PSBT_SCOPE_GLOBAL, 0, utx_key, 1, fb, 4, &e), KM_ERR_STATE);
    CHECK_CONTAINS(e.msg, "PSBT_GLOBAL_UNSIGNED_TX is set by the constructor only");
    CHECK_OK(psbt_new_v0(&v0, f.tx, NULL));
    CHECK_ERR(psbt_record_set(v0, PSBT_SCOPE_INPUT, 0, txid_key, 1, f.prev[0], 32, &e),
              KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "input 0: PSBT_IN_PREVIOUS_TXID: not allowed in a version 0 PSBT");
    CHECK_ERR(psbt_v2_add_input(v0, &idx, f.prev[0], 0, 0, &e), KM_ERR_STATE);
    psbt_free(v0);

    /* Required v2 fields cannot be removed. */
    static const uint8_t txver_key[] = {PSBT_GLOBAL_TX_VERSION},
                         icount_key[] = {PSBT_GLOBAL_INPUT_COUNT}, amount_key[] = {PSBT_OUT_AMOUNT};
    CHECK_ERR(psbt_record_remove(p, PSBT_SCOPE_GLOBAL, 0, txver_key, 1, &e), KM_ERR_STATE);
    CHECK_ERR(psbt_record_remove(p, PSBT_SCOPE_GLOBAL, 0, icount_key, 1, &e), KM_ERR_STATE);
    CHECK_ERR(psbt_record_remove(p, PSBT_SCOPE_OUTPUT, 0, amount_key, 1, &e), KM_ERR_STATE);
    CHECK_CONTAINS(e.msg, "PSBT_OUT_AMOUNT cannot be removed");
    CHECK_OK(psbt_record_remove(p, PSBT_SCOPE_GLOBAL, 0, fallback_key, 1, &e));
    CHECK_EQ(psbt_tx_direct(p)->locktime, 0);
    CHECK_ERR(psbt_record_remove(p, PSBT_SCOPE_GLOBAL, 0, fallback_key, 1, &e), KM_ERR_NOT_FOUND);
    psbt_free(p);
    free_fixture(&f);
}

static void set_lock(struct psbt *p, size_t i, uint8_t type, uint32_t v, int code)
{
    uint8_t val[4];
    struct km_error e;
    ser_store_le32(val, v);
    km_error_clear(&e);
    CHECK_ERR(psbt_record_set(p, PSBT_SCOPE_INPUT, i, &type, 1, val, 4, &e), code);
    if (code == KM_ERR_INVALID)
        CHECK_CONTAINS(e.msg, "require both a time and a height lock time");
}

/* BIP-370 "Determining Lock Time". */
static void test_v2_locktime(void **state)
{
    (void)state;
    struct psbt *p = psbt_new_v2(2);
    uint8_t txid[32] = {1}, val[4];
    static const uint8_t fallback_key[] = {PSBT_GLOBAL_FALLBACK_LOCKTIME};
    static const uint8_t time_key[] = {PSBT_IN_REQUIRED_TIME_LOCKTIME};
    size_t idx;
    struct km_error e;

    CHECK_OK(psbt_v2_add_input(p, &idx, txid, 0, 0xfffffffe, NULL));
    CHECK_OK(psbt_v2_add_input(p, &idx, txid, 1, 0xfffffffe, NULL));
    CHECK_EQ(psbt_tx_direct(p)->locktime, 0); /* no fallback: 0 */
    CHECK_EQ(psbt_tx_direct(p)->in[0].sequence, 0xfffffffe);
    ser_store_le32(val, 123);
    CHECK_OK(psbt_record_set(p, PSBT_SCOPE_GLOBAL, 0, fallback_key, 1, val, 4, NULL));
    CHECK_EQ(psbt_tx_direct(p)->locktime, 123);

    set_lock(p, 0, PSBT_IN_REQUIRED_HEIGHT_LOCKTIME, 800000, KM_OK);
    CHECK_EQ(psbt_tx_direct(p)->locktime, 800000);
    set_lock(p, 1, PSBT_IN_REQUIRED_HEIGHT_LOCKTIME, 800100, KM_OK);
    set_lock(p, 1, PSBT_IN_REQUIRED_TIME_LOCKTIME, 1700000000, KM_OK);
    CHECK_EQ(psbt_tx_direct(p)->locktime, 800100); /* height if every input allows it */
    static const uint8_t height_key[] = {PSBT_IN_REQUIRED_HEIGHT_LOCKTIME};
    set_lock(p, 0, PSBT_IN_REQUIRED_TIME_LOCKTIME, 1700000500, KM_OK);
    CHECK_OK(psbt_record_remove(p, PSBT_SCOPE_INPUT, 0, height_key, 1, NULL));
    CHECK_EQ(psbt_tx_direct(p)->locktime, 1700000500); /* input 0 only allows time */
    check_round_trip(p);

    /* Input 0 time only; input 1 to height only: no common kind. Both the
     * removal and a set are refused and undone. */
    size_t before_len, after_len;
    uint8_t *before = btc_psbt_bytes(p, &before_len);
    km_error_clear(&e);
    CHECK_ERR(psbt_record_remove(p, PSBT_SCOPE_INPUT, 1, time_key, 1, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "require both a time and a height lock time");
    uint8_t *after = btc_psbt_bytes(p, &after_len);
    CHECK_EQ(before_len, after_len);
    CHECK_MEM_EQ(before, after, before_len);
    free(after);
    CHECK_OK(psbt_record_remove(p, PSBT_SCOPE_INPUT, 0, time_key, 1, NULL));
    set_lock(p, 0, PSBT_IN_REQUIRED_HEIGHT_LOCKTIME, 5, KM_OK);
    CHECK_OK(psbt_record_remove(p, PSBT_SCOPE_INPUT, 1, time_key, 1, NULL));
    set_lock(p, 1, PSBT_IN_REQUIRED_TIME_LOCKTIME, 1700000001, KM_OK); /* 1 has both */
    CHECK_EQ(psbt_tx_direct(p)->locktime, 800100);
    CHECK_ERR(psbt_record_remove(p, PSBT_SCOPE_INPUT, 1, height_key, 1, &e), KM_ERR_INVALID);
    CHECK_EQ(psbt_tx_direct(p)->locktime, 800100);
    /* Out-of-range values. */
    ser_store_le32(val, PSBT_LOCKTIME_THRESHOLD);
    CHECK_ERR(psbt_record_set(p, PSBT_SCOPE_INPUT, 0, height_key, 1, val, 4, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "500000000 is not a block height in 1..499999999");
    CHECK_ERR(
        psbt_record_set(p, PSBT_SCOPE_INPUT, 0, height_key, 1, (const uint8_t *)"\0\0\0\0", 4, &e),
        KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "PSBT_IN_REQUIRED_HEIGHT_LOCKTIME: 0 is not a block height");
    ser_store_le32(val, 499999999);
    CHECK_ERR(psbt_record_set(p, PSBT_SCOPE_INPUT, 0, time_key, 1, val, 4, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "is a block height, not a time");
    free(before);
    psbt_free(p);
}

/* ---- refusals --------------------------------------------------------- */

/* A raw v0 PSBT's global map for tx (legacy serialization). */
static void raw_v0_global(struct raw *r, const struct tx *tx)
{
    size_t len;
    uint8_t *t = btc_tx_bytes(tx, TX_F_NO_WITNESS, &len);
    raw_kv1(r, PSBT_GLOBAL_UNSIGNED_TX, t, len);
    raw_sep(r);
    free(t);
}

/* A raw v2 PSBT, one input and one output, through the input map's
 * records (the caller adds more and the separators). */
static void raw_v2_start(struct raw *r, uint32_t version, uint8_t n_in)
{
    uint8_t one = 1;
    raw_init(r);
    raw_u32(r, PSBT_GLOBAL_TX_VERSION, 2);
    raw_kv1(r, PSBT_GLOBAL_INPUT_COUNT, &n_in, 1);
    raw_kv1(r, PSBT_GLOBAL_OUTPUT_COUNT, &one, 1);
    raw_u32(r, PSBT_GLOBAL_VERSION, version);
    raw_sep(r);
}

static void raw_v2_input(struct raw *r, uint8_t tag)
{
    uint8_t txid[32];
    memset(txid, tag, sizeof(txid));
    raw_kv1(r, PSBT_IN_PREVIOUS_TXID, txid, 32);
    raw_u32(r, PSBT_IN_OUTPUT_INDEX, 0);
}

static void raw_v2_output(struct raw *r)
{
    uint8_t amount[8] = {0x10, 0x27}, spk[34] = {0x51, 0x20};
    raw_kv1(r, PSBT_OUT_AMOUNT, amount, 8);
    raw_kv1(r, PSBT_OUT_SCRIPT, spk, 34);
    raw_sep(r);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    struct fixture f;
    struct raw r;
    uint8_t sig[66] = {0}, x32[32] = {0};

    make_fixture(&f);

    /* Sanity: the raw builder makes a valid v0 and v2 PSBT. */
    raw_init(&r);
    raw_v0_global(&r, f.tx);
    for (int k = 0; k < 5; k++)
        raw_sep(&r);
    psbt_free(raw_ok(&r));
    raw_v2_start(&r, 2, 1);
    raw_v2_input(&r, 7);
    raw_sep(&r);
    raw_v2_output(&r);
    struct psbt *p2 = raw_ok(&r);
    CHECK_EQ(psbt_tx_direct(p2)->n_in, 1);
    CHECK_EQ(psbt_tx_direct(p2)->out[0].amount, 10000);
    psbt_free(p2);

    /* A 63-byte key path signature. */
    raw_init(&r);
    raw_v0_global(&r, f.tx);
    raw_kv1(&r, PSBT_IN_TAP_KEY_SIG, sig, 63);
    raw_sep(&r);
    raw_err(&r, KM_ERR_INVALID,
            "psbt: input 0: PSBT_IN_TAP_KEY_SIG: signature is 63 bytes (want 64 or 65)");

    /* Duplicate key in input 1. */
    raw_init(&r);
    raw_v0_global(&r, f.tx);
    raw_sep(&r);
    raw_kv1(&r, PSBT_IN_TAP_INTERNAL_KEY, x32, 32);
    raw_kv1(&r, PSBT_IN_TAP_INTERNAL_KEY, x32, 32);
    raw_sep(&r);
    raw_err(&r, KM_ERR_INVALID, "psbt: input 1: duplicate key (PSBT_IN_TAP_INTERNAL_KEY");

    /* Versions 1 and 3. */
    raw_v2_start(&r, 1, 1);
    raw_err(&r, KM_ERR_UNSUPPORTED, "psbt: version 1 is not supported (0 and 2 are)");
    raw_v2_start(&r, 3, 1);
    raw_err(&r, KM_ERR_UNSUPPORTED, "version 3 is not supported");

    /* v2 without PSBT_GLOBAL_TX_VERSION; v2 with the v0 unsigned tx. */
    raw_init(&r);
    uint8_t zero = 0;
    raw_kv1(&r, PSBT_GLOBAL_INPUT_COUNT, &zero, 1);
    raw_kv1(&r, PSBT_GLOBAL_OUTPUT_COUNT, &zero, 1);
    raw_u32(&r, PSBT_GLOBAL_VERSION, 2);
    raw_sep(&r);
    raw_err(&r, KM_ERR_INVALID,
            "psbt: global: PSBT_GLOBAL_TX_VERSION is required in a version 2 PSBT");
    raw_init(&r);
    raw_u32(&r, PSBT_GLOBAL_VERSION, 2);
    raw_v0_global(&r, f.tx);
    raw_err(&r, KM_ERR_INVALID, "PSBT_GLOBAL_UNSIGNED_TX: not allowed in a version 2 PSBT");

    /* v2 input without PSBT_IN_OUTPUT_INDEX; v0 with a v2 field. */
    raw_v2_start(&r, 2, 1);
    raw_kv1(&r, PSBT_IN_PREVIOUS_TXID, x32, 32);
    raw_sep(&r);
    raw_v2_output(&r);
    raw_err(&r, KM_ERR_INVALID, "psbt: input 0: PSBT_IN_OUTPUT_INDEX is required");
    raw_init(&r);
    raw_v0_global(&r, f.tx);
    raw_u32(&r, PSBT_IN_SEQUENCE, 1);
    raw_sep(&r);
    raw_err(&r, KM_ERR_INVALID, "input 0: PSBT_IN_SEQUENCE: not allowed in a version 0 PSBT");

    /* v2: lock times no kind satisfies; a negative amount. */
    raw_v2_start(&r, 2, 2);
    raw_v2_input(&r, 1);
    raw_u32(&r, PSBT_IN_REQUIRED_TIME_LOCKTIME, 1700000000);
    raw_sep(&r);
    raw_v2_input(&r, 2);
    raw_u32(&r, PSBT_IN_REQUIRED_HEIGHT_LOCKTIME, 800000);
    raw_sep(&r);
    raw_v2_output(&r);
    raw_err(&r, KM_ERR_INVALID, "require both a time and a height lock time");
    raw_v2_start(&r, 2, 1);
    raw_v2_input(&r, 1);
    raw_sep(&r);
    uint8_t neg[8] = {0, 0, 0, 0, 0, 0, 0, 0x80};
    raw_kv1(&r, PSBT_OUT_AMOUNT, neg, 8);
    raw_kv1(&r, PSBT_OUT_SCRIPT, NULL, 0);
    raw_sep(&r);
    raw_err(&r, KM_ERR_INVALID, "output 0: PSBT_OUT_AMOUNT: amount is negative");

    /* A non-witness UTXO that is not the transaction the input spends,
     * then one with too few outputs. */
    raw_init(&r);
    raw_v0_global(&r, f.tx);
    size_t tl;
    uint8_t *tb = btc_tx_bytes(f.tx, 0, &tl);
    raw_kv1(&r, PSBT_IN_NON_WITNESS_UTXO, tb, tl);
    raw_sep(&r);
    raw_sep(&r);
    raw_sep(&r);
    raw_sep(&r);
    raw_sep(&r);
    raw_err(&r, KM_ERR_INVALID, "psbt: input 0: PSBT_IN_NON_WITNESS_UTXO is transaction");
    /* (A parent needs an input: a 0-input legacy serialization reads as a
     * segwit marker, in Bitcoin Core too.) */
    struct tx *parent = tx_new(), *child = tx_new();
    uint8_t ptxid[32];
    (void)tx_add_input(parent, f.prev[2], 0, 0);
    (void)tx_add_output(parent, 1000, f.spk[0], 34);
    CHECK_OK(tx_txid(ptxid, parent));
    (void)tx_add_input(child, ptxid, 1, 0);
    (void)tx_add_output(child, 900, f.spk[1], 34);
    free(tb);
    tb = btc_tx_bytes(parent, 0, &tl);
    raw_init(&r);
    raw_v0_global(&r, child);
    raw_kv1(&r, PSBT_IN_NON_WITNESS_UTXO, tb, tl);
    raw_sep(&r);
    raw_sep(&r);
    raw_err(&r, KM_ERR_INVALID,
            "psbt: input 0: spends output 1 but PSBT_IN_NON_WITNESS_UTXO has 1");
    free(tb);
    tx_free(parent);
    tx_free(child);

    /* A key type in a non-minimal CompactSize (0x13 as fd 13 00). */
    raw_init(&r);
    raw_v0_global(&r, f.tx);
    static const uint8_t nonmin_key[] = {0xfd, 0x13, 0x00};
    raw_kv(&r, nonmin_key, sizeof(nonmin_key), sig, 64);
    raw_sep(&r);
    raw_err(&r, KM_ERR_INVALID, "psbt: input 0: key type is not a minimal CompactSize");

    /* PSBT_OUT_TAP_TREE: one leaf at depth 1 is not a tree; odd leaf
     * version; two leaves at depth 1 are. */
    static const uint8_t half_tree[] = {1, 0xc0, 1, 0x51};
    static const uint8_t odd_tree[] = {0, 0xc1, 1, 0x51};
    static const uint8_t good_tree[] = {1, 0xc0, 1, 0x51, 1, 0xc0, 1, 0x52};
    raw_init(&r);
    raw_v0_global(&r, f.tx);
    raw_sep(&r);
    raw_sep(&r);
    raw_sep(&r);
    raw_kv1(&r, PSBT_OUT_TAP_TREE, half_tree, sizeof(half_tree));
    raw_sep(&r);
    raw_sep(&r);
    raw_err(&r, KM_ERR_INVALID, "output 0: PSBT_OUT_TAP_TREE: the leaf depths do not form");
    raw_init(&r);
    raw_v0_global(&r, f.tx);
    raw_sep(&r);
    raw_sep(&r);
    raw_sep(&r);
    raw_kv1(&r, PSBT_OUT_TAP_TREE, odd_tree, sizeof(odd_tree));
    raw_sep(&r);
    raw_sep(&r);
    raw_err(&r, KM_ERR_INVALID, "leaf 0 has odd leaf version 0xc1");
    raw_init(&r);
    raw_v0_global(&r, f.tx);
    raw_sep(&r);
    raw_sep(&r);
    raw_sep(&r);
    raw_kv1(&r, PSBT_OUT_TAP_TREE, good_tree, sizeof(good_tree));
    raw_sep(&r);
    raw_sep(&r);
    psbt_free(raw_ok(&r));

    /* Truncations and trailing bytes of a full PSBT. */
    struct psbt *p = NULL;
    CHECK_OK(psbt_new_v0(&p, f.tx, NULL));
    set_utxos(p, &f);
    add_everything(p, &f);
    size_t len;
    uint8_t *bytes = btc_psbt_bytes(p, &len);
    for (size_t k = 0; k < len; k++) {
        struct psbt *q = NULL;
        CHECK_ERR(psbt_parse(&q, bytes, k, NULL), KM_ERR_INCOMPLETE);
        CHECK_NULL(q);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, bytes, len);
    longer[len] = 0;
    parse_err(longer, len + 1, KM_ERR_TRAILING_DATA, "psbt: 1 bytes after the last map");
    parse_err(bytes, 3, KM_ERR_INCOMPLETE, "(not a PSBT)");
    free(longer);
    free(bytes);
    psbt_free(p);
    free_fixture(&f);
}

static void test_limits(void **state)
{
    (void)state;
    struct fixture f;
    struct raw r;

    make_fixture(&f);

    /* Whole input. */
    uint8_t *big = calloc(PSBT_MAX_SIZE + 1, 1);
    parse_err(big, PSBT_MAX_SIZE + 1, KM_ERR_TOO_LARGE, "limit 16777216");
    free(big);

    /* Key length. */
    uint8_t *key = calloc(PSBT_MAX_KEY_LEN + 1, 1);
    key[0] = 0x7f;
    raw_init(&r);
    raw_v0_global(&r, f.tx);
    raw_kv(&r, key, PSBT_MAX_KEY_LEN, NULL, 0); /* at the limit: fine */
    raw_kv(&r, key, PSBT_MAX_KEY_LEN + 1, NULL, 0);
    raw_sep(&r);
    raw_err(&r, KM_ERR_TOO_LARGE, "psbt: input 0: key of 8193 bytes (limit 8192");
    free(key);

    /* Records per map: 4096 fine, 4097 not. */
    for (size_t n = PSBT_MAX_MAP_RECORDS; n <= PSBT_MAX_MAP_RECORDS + 1; n++) {
        raw_init(&r);
        raw_v0_global(&r, f.tx);
        for (size_t k = 0; k < n; k++) {
            uint8_t kk[3] = {0x7f, (uint8_t)(k >> 8), (uint8_t)k};
            raw_kv(&r, kk, sizeof(kk), NULL, 0);
        }
        raw_sep(&r);
        raw_sep(&r);
        raw_sep(&r);
        raw_sep(&r);
        raw_sep(&r);
        if (n == PSBT_MAX_MAP_RECORDS) {
            psbt_free(raw_ok(&r));
            continue;
        }
        raw_err(&r, KM_ERR_TOO_LARGE, "psbt: input 0: more than 4096 records");
    }

    /* Records in the whole PSBT: 50 inputs of 4000 unknown records each
     * plus their two required ones. */
    raw_v2_start(&r, 2, 50);
    for (uint8_t i = 0; i < 50; i++) {
        raw_v2_input(&r, i);
        for (size_t k = 0; k < 4000; k++) {
            uint8_t kk[3] = {0x7f, (uint8_t)(k >> 8), (uint8_t)k};
            raw_kv(&r, kk, sizeof(kk), NULL, 0);
        }
        raw_sep(&r);
    }
    raw_v2_output(&r);
    raw_err(&r, KM_ERR_TOO_LARGE, "psbt: input 49: more than 200000 records in the PSBT");

    /* Input count of a v2 PSBT: 10001 (fd 11 27). */
    raw_init(&r);
    static const uint8_t count[] = {0xfd, 0x11, 0x27};
    uint8_t one = 1;
    raw_u32(&r, PSBT_GLOBAL_TX_VERSION, 2);
    raw_kv1(&r, PSBT_GLOBAL_INPUT_COUNT, count, sizeof(count));
    raw_kv1(&r, PSBT_GLOBAL_OUTPUT_COUNT, &one, 1);
    raw_u32(&r, PSBT_GLOBAL_VERSION, 2);
    raw_sep(&r);
    raw_err(&r, KM_ERR_TOO_LARGE, "PSBT_GLOBAL_INPUT_COUNT is 10001 (limit 10000)");

    /* Setter limits: a key above PSBT_MAX_KEY_LEN; a full map. */
    struct psbt *p = NULL;
    struct km_error e;
    CHECK_OK(psbt_new_v0(&p, f.tx, NULL));
    uint8_t *k2 = calloc(PSBT_MAX_KEY_LEN + 1, 1);
    k2[0] = 0x7f;
    CHECK_ERR(psbt_record_set(p, PSBT_SCOPE_INPUT, 0, k2, PSBT_MAX_KEY_LEN + 1, NULL, 0, &e),
              KM_ERR_TOO_LARGE);
    free(k2);
    for (size_t k = 0; k < PSBT_MAX_MAP_RECORDS; k++) {
        uint8_t kk[3] = {0x7f, (uint8_t)(k >> 8), (uint8_t)k};
        CHECK_OK(psbt_record_set(p, PSBT_SCOPE_OUTPUT, 1, kk, sizeof(kk), NULL, 0, NULL));
    }
    static const uint8_t extra[] = {0x7e};
    CHECK_ERR(psbt_record_set(p, PSBT_SCOPE_OUTPUT, 1, extra, 1, NULL, 0, &e), KM_ERR_LIMIT);
    CHECK_CONTAINS(e.msg, "already has 4096 records");
    check_round_trip(p);
    psbt_free(p);
    free_fixture(&f);
}

static void test_setter_refusals(void **state)
{
    (void)state;
    struct fixture f;
    struct psbt *p = NULL;
    struct km_error e;
    uint8_t sig[65], bad_key[33], keys[66];
    const struct tx *got;

    make_fixture(&f);
    CHECK_OK(psbt_new_v0(&p, f.tx, NULL));
    memset(sig, 0x11, sizeof(sig));

    /* Signatures: 63 bytes; 65 with hash type 0x00 or an invalid one. */
    CHECK_ERR(psbt_in_set_tap_key_sig(p, 0, sig, 63, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "input 0: a Taproot signature is 64 bytes, or 65");
    sig[64] = 0x00;
    CHECK_ERR(psbt_in_set_tap_key_sig(p, 0, sig, 65, &e), KM_ERR_INVALID);
    sig[64] = 0x04;
    CHECK_ERR(psbt_in_set_tap_script_sig(p, 0, f.key[0].xonly, f.prev[0], sig, 65, &e),
              KM_ERR_INVALID);
    sig[64] = SIGHASH_ALL;
    CHECK_OK(psbt_in_set_tap_key_sig(p, 0, sig, 65, &e));
    CHECK_OK(psbt_in_set_tap_key_sig(p, 0, sig, 64, &e)); /* replaces */
    CHECK_EQ(psbt_record_count(p, PSBT_SCOPE_INPUT, 0), 1);

    /* MuSig2 keys must be compressed points. */
    memset(bad_key, 0x05, sizeof(bad_key));
    memcpy(keys, f.key[0].pubkey, 33);
    memcpy(keys + 33, bad_key, 33);
    CHECK_ERR(psbt_in_set_musig2_participants(p, 0, f.key[1].pubkey, keys, 2, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "participant 1 is not a compressed public key");
    CHECK_ERR(psbt_in_set_musig2_participants(p, 0, bad_key, keys, 1, &e), KM_ERR_INVALID);
    CHECK_ERR(psbt_in_set_musig2_participants(p, 0, f.key[1].pubkey, keys, 0, &e), KM_ERR_INVALID);
    CHECK_ERR(psbt_in_set_musig2_pub_nonce(p, 0, bad_key, f.key[1].pubkey, NULL, keys, &e),
              KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "participant is not a compressed public key");

    /* Control block sizes. */
    CHECK_ERR(
        psbt_in_set_tap_leaf_script(p, 0, keys, 34, leaf_script, sizeof(leaf_script), 0xc0, &e),
        KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "control block is 34 bytes");

    /* A non-witness UTXO that is not the spent transaction is refused and
     * not stored; the right one is. */
    struct tx *parent = tx_new();
    (void)tx_add_input(parent, f.prev[2], 0, 0);
    (void)tx_add_output(parent, 7777, f.spk[0], 34);
    CHECK_ERR(psbt_in_set_non_witness_utxo(p, 0, parent, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "PSBT_IN_NON_WITNESS_UTXO is transaction");
    CHECK_ERR(psbt_in_non_witness_utxo(p, 0, &got), KM_ERR_NOT_FOUND);
    tx_free(parent);
    tx_free(f.tx);
    parent = tx_new();
    (void)tx_add_input(parent, f.prev[2], 0, 0);
    (void)tx_add_output(parent, f.amount[0], f.spk[0], 34);
    f.tx = tx_new();
    uint8_t ptxid[32];
    CHECK_OK(tx_txid(ptxid, parent));
    memcpy(f.prev[0], ptxid, 32);
    (void)tx_add_input(f.tx, ptxid, 0, 0);
    (void)tx_add_output(f.tx, 1000, f.spk[1], 34);
    psbt_free(p);
    CHECK_OK(psbt_new_v0(&p, f.tx, NULL));
    CHECK_OK(psbt_in_set_non_witness_utxo(p, 0, parent, &e));
    CHECK_OK(psbt_in_non_witness_utxo(p, 0, &got));
    CHECK_EQ(got->out[0].amount, f.amount[0]);
    uint8_t h1[32], h2[32];
    CHECK_OK(psbt_sighash(h1, p, 0, NULL, &e)); /* from the non-witness UTXO */
    CHECK_OK(psbt_in_set_witness_utxo(p, 0, f.amount[0], f.spk[0], 34, &e));
    CHECK_OK(psbt_sighash(h2, p, 0, NULL, &e));
    CHECK_MEM_EQ(h1, h2, 32);
    /* A witness UTXO that disagrees with it. */
    CHECK_OK(psbt_in_set_witness_utxo(p, 0, f.amount[0] + 1, f.spk[0], 34, &e));
    struct sighash_spent s;
    CHECK_ERR(psbt_in_spent_output(p, 0, &s, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "input 0: PSBT_IN_WITNESS_UTXO disagrees with output 0 of "
                          "PSBT_IN_NON_WITNESS_UTXO");
    CHECK_ERR(psbt_sighash(h1, p, 0, NULL, &e), KM_ERR_INVALID);
    /* Removing the non-witness UTXO leaves the witness one. */
    static const uint8_t nwu_key[] = {PSBT_IN_NON_WITNESS_UTXO};
    CHECK_OK(psbt_record_remove(p, PSBT_SCOPE_INPUT, 0, nwu_key, 1, &e));
    CHECK_ERR(psbt_in_non_witness_utxo(p, 0, &got), KM_ERR_NOT_FOUND);
    CHECK_OK(psbt_sighash(h1, p, 0, NULL, &e));
    CHECK(memcmp(h1, h2, 32) != 0); /* amount + 1 */
    tx_free(parent);
    psbt_free(p);

    /* A signed transaction cannot start a v0 PSBT. */
    tx_set_script_sig(f.tx, 0, sig, 3);
    CHECK_ERR(psbt_new_v0(&p, f.tx, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "input 0 of the unsigned transaction is signed");
    CHECK_NULL(p);
    free_fixture(&f);
}

static void test_sighash_refusals(void **state)
{
    (void)state;
    struct fixture f;
    struct psbt *p = NULL;
    struct km_error e;
    uint8_t h[32];
    struct psbt_sighash all[3];
    static const uint8_t p2wpkh[22] = {0x00, 0x14};

    make_fixture(&f);
    CHECK_OK(psbt_new_v0(&p, f.tx, NULL));

    /* No UTXO at all. */
    CHECK_ERR(psbt_sighash(h, p, 0, NULL, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "input 0: no PSBT_IN_WITNESS_UTXO or PSBT_IN_NON_WITNESS_UTXO");
    struct sighash_spent s;
    CHECK_ERR(psbt_in_spent_output(p, 1, &s, &e), KM_ERR_NOT_FOUND);
    CHECK_CONTAINS(e.msg, "input 1: no PSBT_IN_WITNESS_UTXO");

    /* Input 1's UTXO missing while signing input 0: needed unless
     * ANYONECANPAY. */
    CHECK_OK(psbt_in_set_witness_utxo(p, 0, f.amount[0], f.spk[0], 34, NULL));
    CHECK_OK(psbt_in_set_witness_utxo(p, 2, f.amount[2], f.spk[2], 34, NULL));
    CHECK_ERR(psbt_sighash(h, p, 0, NULL, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "input 0: its sighash commits to every spent output, but input 1 has "
                          "no PSBT_IN_WITNESS_UTXO");
    CHECK_ERR(psbt_sighash_all(all, p, &e), KM_ERR_INVALID);
    CHECK_OK(psbt_in_set_sighash_type(p, 0, SIGHASH_ALL | SIGHASH_ANYONECANPAY, NULL));
    CHECK_OK(psbt_sighash(h, p, 0, NULL, &e));
    CHECK_OK(psbt_in_set_sighash_type(p, 2, SIGHASH_ANYONECANPAY | SIGHASH_NONE, NULL));
    CHECK_OK(psbt_sighash_all(all, p, &e));
    CHECK(all[0].taproot && !all[1].taproot && all[2].taproot);
    CHECK_EQ(all[0].hash_type, 0x81);
    CHECK_EQ(all[2].hash_type, 0x82);

    /* An invalid PSBT_IN_SIGHASH_TYPE. */
    CHECK_OK(psbt_in_set_witness_utxo(p, 1, f.amount[1], f.spk[1], 34, NULL));
    CHECK_OK(psbt_in_set_sighash_type(p, 1, 0x04, NULL));
    CHECK_ERR(psbt_sighash(h, p, 1, NULL, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "input 1: PSBT_IN_SIGHASH_TYPE 0x00000004 is not a BIP-341 hash type");
    CHECK_OK(psbt_in_set_sighash_type(p, 1, 0x101, NULL));
    CHECK_ERR(psbt_sighash_all(all, p, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "0x00000101");

    /* SIGHASH_SINGLE for input 2 of 2 outputs. */
    CHECK_OK(psbt_in_set_sighash_type(p, 1, SIGHASH_DEFAULT, NULL));
    CHECK_OK(psbt_in_set_sighash_type(p, 2, SIGHASH_SINGLE, NULL));
    CHECK_ERR(psbt_sighash(h, p, 2, NULL, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "input 2: SIGHASH_SINGLE without a corresponding output");

    /* An input that does not spend P2TR: refused alone, skipped by all. */
    CHECK_OK(psbt_in_set_sighash_type(p, 2, SIGHASH_DEFAULT, NULL));
    CHECK_OK(psbt_in_set_witness_utxo(p, 1, f.amount[1], p2wpkh, sizeof(p2wpkh), NULL));
    CHECK_ERR(psbt_sighash(h, p, 1, NULL, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "input 1 does not spend a P2TR output");
    CHECK_OK(psbt_sighash_all(all, p, &e));
    CHECK(all[0].taproot && !all[1].taproot && all[2].taproot);
    uint8_t zero[32] = {0};
    CHECK_MEM_EQ(all[1].hash, zero, 32);
    psbt_free(p);
    free_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_bip_vectors),     TEST(test_vector_signatures),
        TEST(test_bip373_musig),    TEST(test_v0_built),
        TEST(test_v2_built),        TEST(test_v2_locktime),
        TEST(test_parse_refusals),  TEST(test_limits),
        TEST(test_setter_refusals), TEST(test_sighash_refusals),
    };
    return RUN_TESTS("bitcoin.psbt", tests);
}
