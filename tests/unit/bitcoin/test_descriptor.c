/*
 * test_descriptor.c - src/bitcoin/descriptor and src/bitcoin/address:
 *
 *  - BIP-380: the checksum cases and the key expression cases
 *    (tests/data/bitcoin/descriptor-bip380.txt);
 *  - BIP-386 and BIP-390: every valid descriptor gives the BIP's
 *    scriptPubKeys at indexes 0, 1, 2, and every invalid one is refused
 *    (descriptor-bip386.txt, descriptor-bip390.txt);
 *  - BIP-328: the synthetic xpubs, and musig()/path equal to deriving from
 *    the synthetic xpub (musig-xpub-bip328.txt);
 *  - BIP-86 and BIP-341: tr() of xpubs, xprvs and pk() trees against the
 *    wallet vectors' keys, merkle roots, scriptPubKeys and bech32m addresses
 *    (descriptor-bip86.txt, descriptor-bip341.txt);
 *  - BIP-350: the bech32m strings and segwit addresses (bech32m-bip350.txt);
 *  - the group API KeyMeld's CLI uses, cross-checked against crypto/musig and
 *    crypto/taproot (what the enclaves sign under);
 *  - the canonical string form, malformed input with messages, every limit.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitcoin/address.h"
#include "bitcoin/descriptor.h"
#include "btc_test.h"
#include "common/buf.h"
#include "common/hex.h"
#include "crypto/musig.h"
#include "crypto/taproot.h"
#include "common/banned.h"

#define ALLOW DESCRIPTOR_F_ALLOW_PRIVATE

static const char *const xpub_a =
    "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMz"
    "QLcgJvLJuZZvRcEL";
static const char *const xpub_b =
    "xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPx"
    "Sb7gwQN3ih19Zm4Y";
static const char *const key_1 =
    "02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9";
static const char *const key_2 =
    "03dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659";
static const char *const key_3 =
    "023590a94e768f8e1815c2f24b4d80a8e3149316c3518ce7b7ad338368d038ca66";

static struct descriptor *parse_ok(const char *s, unsigned flags)
{
    struct descriptor *d = NULL;
    struct km_error e;
    km_error_clear(&e);
    if (descriptor_parse(&d, &e, s, strlen(s), flags) != KM_OK)
        fail_msg("descriptor_parse(%.200s): %s", s, e.msg);
    CHECK_NOT_NULL(d);
    return d;
}

/* Parses and expects code, with msg (if not NULL) in the message. */
static void parse_err(const char *s, unsigned flags, int code, const char *msg)
{
    struct descriptor *d = (struct descriptor *)1;
    struct km_error e;
    km_error_clear(&e);
    int r = descriptor_parse(&d, &e, s, strlen(s), flags);
    if (r != code)
        fail_msg("descriptor_parse(%.200s) = %d, want %d (%s)", s, r, code, e.msg);
    CHECK_NULL(d);
    CHECK_EQ(e.code, code);
    if (msg != NULL)
        CHECK_CONTAINS(e.msg, msg);
}

static void output_ok(struct descriptor_output *o, const struct descriptor *d, uint32_t i)
{
    struct km_error e;
    km_error_clear(&e);
    if (descriptor_output(o, &e, d, i) != KM_OK)
        fail_msg("descriptor_output(%u): %s", i, e.msg);
}

static void hexstr(char *out, size_t cap, const uint8_t *p, size_t n)
{
    hex_encode(out, cap, p, n);
}

/* The address of o on mainnet decodes back to its scriptPubKey. */
static void check_address(const struct descriptor_output *o)
{
    char addr[ADDRESS_STR_MAX];
    struct address_segwit w;
    enum address_network net;
    uint8_t spk[ADDRESS_SCRIPT_MAX], again[TAPROOT_SPK_LEN];

    CHECK_OK(address_taproot(addr, sizeof(addr), ADDRESS_MAINNET, o->output_key));
    CHECK_OK(address_decode(&w, &net, NULL, addr, strlen(addr)));
    CHECK_EQ(net, ADDRESS_MAINNET);
    CHECK_EQ(address_segwit_script(spk, &w), 34);
    CHECK_MEM_EQ(spk, o->script_pubkey, 34);
    /* The crypto module's P2TR scriptPubKey agrees. */
    taproot_script_pubkey(again, o->output_key);
    CHECK_MEM_EQ(spk, again, TAPROOT_SPK_LEN);
}

/* to_string, then parse again with the checksum required: the same
 * outputs at the first n indexes. */
static void check_round_trip(const struct descriptor *d, uint32_t n)
{
    struct descriptor_output a, b;
    struct buf s;
    buf_init(&s, 1u << 20);
    CHECK_OK(descriptor_to_string(&s, d));
    const char *text = buf_cstr(&s);
    struct descriptor *d2 = parse_ok(text, DESCRIPTOR_F_REQUIRE_CHECKSUM);
    CHECK_EQ(descriptor_is_ranged(d2), descriptor_is_ranged(d));
    for (uint32_t i = 0; i < n; i++) {
        output_ok(&a, d, i);
        output_ok(&b, d2, i);
        CHECK_MEM_EQ(&a, &b, sizeof(a));
    }
    /* Canonical: printing the reparsed descriptor gives the same text. */
    struct buf s2;
    buf_init(&s2, 1u << 20);
    CHECK_OK(descriptor_to_string(&s2, d2));
    CHECK_EQ(buf_len(&s2), buf_len(&s));
    CHECK_MEM_EQ(buf_peek(&s2), buf_peek(&s), buf_len(&s));
    buf_release(&s2);
    descriptor_free(d2);
    buf_release(&s);
}

/* Checks each comma-separated scriptPubKey at indexes 0, 1, ... Returns
 * how many. */
static size_t check_spks(const struct descriptor *d, const char *spks)
{
    char *copy = strdup(spks), *save = NULL;
    size_t n = 0;
    for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        struct descriptor_output o;
        char got[2 * 34 + 1];
        output_ok(&o, d, (uint32_t)n);
        hexstr(got, sizeof(got), o.script_pubkey, 34);
        if (strcmp(got, t) != 0)
            fail_msg("index %zu: scriptPubKey %s, want %s", n, got, t);
        check_address(&o);
        n++;
    }
    free(copy);
    /* A non-ranged descriptor lists one script; ranged ones three. */
    CHECK_EQ(descriptor_is_ranged(d), n > 1);
    return n;
}

/* ---- BIP-380 ----------------------------------------------------------- */

static void test_bip380_checksum(void **state)
{
    (void)state;
    struct btc_line *l;
    size_t n = btc_read_lines("bitcoin/descriptor-bip380.txt", 4, &l), cases = 0;
    char sum[DESCRIPTOR_CHECKSUM_LEN + 1];

    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].f[0], "checksum") != 0)
            continue;
        const char *s = l[i].f[2];
        size_t plen = 0;
        struct km_error e;
        km_error_clear(&e);
        int r = descriptor_checksum_check(&plen, &e, s, strlen(s), 0);
        if (strcmp(l[i].f[1], "valid") == 0) {
            if (r != KM_OK)
                fail_msg("%s: %s", l[i].f[3], e.msg);
            CHECK_EQ(plen, strlen("raw(deadbeef)"));
        } else {
            CHECK_ERR(r, KM_ERR_INVALID);
            CHECK(e.msg[0] != '\0');
        }
        cases++;
    }
    CHECK_EQ(cases, 8);
    CHECK_OK(descriptor_checksum(sum, "raw(deadbeef)", 13));
    CHECK_STR_EQ(sum, "89f8spxm");
    /* Required checksum. */
    size_t plen;
    CHECK_ERR(descriptor_checksum_check(&plen, NULL, "raw(deadbeef)", 13, 1), KM_ERR_INVALID);
    CHECK_OK(descriptor_checksum_check(&plen, NULL, "raw(deadbeef)#89f8spxm", 22, 1));
    CHECK_EQ(plen, 13);
    /* Case matters in the checksum. */
    CHECK_ERR(descriptor_checksum_check(&plen, NULL, "raw(deadbeef)#89F8SPXM", 22, 0),
              KM_ERR_INVALID);
    /* A NUL is outside the set (no NUL-terminated assumptions). */
    CHECK_ERR(descriptor_checksum(sum, "raw(\0)", 6), KM_ERR_INVALID);
    CHECK_STR_EQ(sum, "");
    btc_free_lines(l, n);
}

static void test_bip380_keys(void **state)
{
    (void)state;
    struct btc_line *l;
    size_t n = btc_read_lines("bitcoin/descriptor-bip380.txt", 4, &l), valid = 0, invalid = 0;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].f[0], "key") != 0)
            continue;
        const char *s = l[i].f[2];
        int priv = strstr(s, "xprv") != NULL || s[0] == '5' || s[0] == 'L';
        struct km_error e;
        km_error_clear(&e);
        int r = descriptor_key_check(&e, s, strlen(s), ALLOW);
        if (strcmp(l[i].f[1], "valid") == 0) {
            if (r != KM_OK)
                fail_msg("%s: %s", l[i].f[3], e.msg);
            /* Private keys are refused unless allowed. */
            CHECK_ERR(descriptor_key_check(NULL, s, strlen(s), 0),
                      priv ? KM_ERR_UNSUPPORTED : KM_OK);
            valid++;
        } else {
            if (r != KM_ERR_INVALID)
                fail_msg("%s: %d (%s)", l[i].f[3], r, e.msg);
            CHECK_CONTAINS(e.msg, "descriptor: character ");
            invalid++;
        }
    }
    CHECK_EQ(valid, 21);
    CHECK_EQ(invalid, 16);

    /* A few messages. */
    struct km_error e;
    const char *k = "[deadbeef/0h/0h/0h/*]0260b2003c386519fc9eadf2b5cf124dd8eea4c4e68d5e154050a9346"
                    "ea98ce600";
    CHECK_ERR(descriptor_key_check(&e, k, strlen(k), 0), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "'*' is not allowed in a key origin");
    k = "[deadbef/0h]0260b2003c386519fc9eadf2b5cf124dd8eea4c4e68d5e154050a9346ea98ce600";
    CHECK_ERR(descriptor_key_check(&e, k, strlen(k), 0), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "fingerprint is not 4 bytes (7 characters instead of 8)");
    /* x-only keys and musig() belong to tr(). */
    k = "a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd";
    CHECK_ERR(descriptor_key_check(&e, k, strlen(k), 0), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "x-only keys are only allowed in tr()");
    char mus[300];
    snprintf(mus, sizeof(mus), "musig(%s,%s)", key_1, key_2);
    CHECK_ERR(descriptor_key_check(&e, mus, strlen(mus), 0), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "musig() is only allowed in tr() and rawtr()");
    btc_free_lines(l, n);
}

/* ---- BIP-386, BIP-390 ---------------------------------------------------- */

/* Runs a descriptor-bip38x.txt file; returns valid + invalid counts. */
static void run_descriptor_file(const char *rel, size_t *valid, size_t *invalid, size_t *scripts)
{
    struct btc_line *l;
    size_t n = btc_read_lines(rel, 3, &l);

    *valid = *invalid = *scripts = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = l[i].f[1];
        if (strcmp(l[i].f[0], "valid") == 0 && strcmp(l[i].f[2], "-") == 0) {
            /* BIP-386's pkh() leaf (Miniscript, BIP-379) lists no script:
             * refused as a construct this module does not build. */
            parse_err(s, ALLOW, KM_ERR_UNSUPPORTED, "only pk() leaves are supported, not pkh()");
            (*valid)++;
        } else if (strcmp(l[i].f[0], "valid") == 0) {
            struct descriptor *d = parse_ok(s, ALLOW);
            *scripts += check_spks(d, l[i].f[2]);
            if (!descriptor_has_private(d))
                check_round_trip(d, 3);
            descriptor_free(d);
            (*valid)++;
        } else {
            struct descriptor *d = (struct descriptor *)1;
            struct km_error e;
            km_error_clear(&e);
            int r = descriptor_parse(&d, &e, s, strlen(s), ALLOW);
            /* Multipath (BIP-389) is not built: refused as unsupported. */
            int want = strstr(l[i].f[2], "multipath") ? KM_ERR_UNSUPPORTED : KM_ERR_INVALID;
            if (r != want)
                fail_msg("%s: %d, want %d (%s)", l[i].f[2], r, want, e.msg);
            CHECK_NULL(d);
            (*invalid)++;
        }
    }
    btc_free_lines(l, n);
}

static void test_bip386(void **state)
{
    (void)state;
    size_t valid, invalid, scripts;
    run_descriptor_file("bitcoin/descriptor-bip386.txt", &valid, &invalid, &scripts);
    CHECK_EQ(valid, 6);
    CHECK_EQ(invalid, 4);
    CHECK_EQ(scripts, 7);
    parse_err("tr(04a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd5b8dec5235a0f"
              "a8722476c7709c02559e3aa73aa03918ba2d492eea75abea235)",
              0, KM_ERR_INVALID, "uncompressed keys are not allowed in tr()");
    parse_err("tr(5KYZdUEo39z3FPrtuX2QbbwGnNP5zTd7yyr2SC1j299sBCnWjss)", ALLOW, KM_ERR_INVALID,
              "uncompressed keys are not allowed in tr()");
    parse_err("sh(tr(a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd))", 0,
              KM_ERR_INVALID, "tr() is only allowed at the top level");
}

static void test_bip390(void **state)
{
    (void)state;
    size_t valid, invalid, scripts;
    char s[1024];

    run_descriptor_file("bitcoin/descriptor-bip390.txt", &valid, &invalid, &scripts);
    CHECK_EQ(valid, 6);
    CHECK_EQ(invalid, 14);
    CHECK_EQ(scripts, 12);

    /* The reasons, as BIP-390 names them. */
    snprintf(s, sizeof(s), "pk(musig(%s,%s))", key_1, key_2);
    parse_err(s, 0, KM_ERR_INVALID, "musig() is only allowed in tr() and rawtr()");
    snprintf(s, sizeof(s), "sh(wsh(pk(musig(%s,%s))))", key_1, key_2);
    parse_err(s, 0, KM_ERR_INVALID, "musig() is only allowed in tr() and rawtr()");
    snprintf(s, sizeof(s), "tr(musig(%s,%s)/0/0)", key_1, key_2);
    parse_err(s, 0, KM_ERR_INVALID,
              "musig() derivation requires every participant to be an extended key");
    snprintf(s, sizeof(s), "tr(musig(%s/*,%s)/0/*)", xpub_a, xpub_b);
    parse_err(s, 0, KM_ERR_INVALID,
              "musig() cannot have ranged participants when it has derivation steps");
    snprintf(s, sizeof(s), "tr(musig(%s,%s)/0h/*)", xpub_a, xpub_b);
    parse_err(s, 0, KM_ERR_INVALID, "musig() cannot have hardened derivation steps");
    snprintf(s, sizeof(s), "tr(musig(%s,%s)/0/*h)", xpub_a, xpub_b);
    parse_err(s, 0, KM_ERR_INVALID, "musig() cannot have hardened child derivation");
    snprintf(s, sizeof(s), "tr(musig(%s/<0;1>,%s)/<2;3>)", xpub_a, xpub_b);
    parse_err(s, 0, KM_ERR_UNSUPPORTED, "multipath");

    /* More of the specification's rules. */
    snprintf(s, sizeof(s), "tr(musig(%s,musig(%s,%s)))", key_1, key_2, key_3);
    parse_err(s, 0, KM_ERR_INVALID, "musig() cannot be nested in musig()");
    parse_err("tr(musig())", 0, KM_ERR_INVALID, "musig() must contain key expressions");
    snprintf(s, sizeof(s), "tr([deadbeef/1]musig(%s,%s))", key_1, key_2);
    parse_err(s, 0, KM_ERR_INVALID, "musig() cannot have key origin information");
    snprintf(s, sizeof(s), "tr(musig(%.64s,%s))", key_1 + 2, key_2);
    parse_err(s, 0, KM_ERR_INVALID, "x-only keys are not allowed in musig()");
    snprintf(s, sizeof(s), "tr(%s,musig(%s,%s))", key_1, key_2, key_3);
    parse_err(s, 0, KM_ERR_INVALID, "musig() is a key, not a script");

    /* Key order does not matter (KeySort); repeated keys are allowed. */
    struct descriptor_output a, b;
    snprintf(s, sizeof(s), "tr(musig(%s,%s,%s))", key_3, key_1, key_2);
    struct descriptor *d = parse_ok(s, 0);
    output_ok(&a, d, 0);
    descriptor_free(d);
    snprintf(s, sizeof(s), "tr(musig(%s,%s,%s))", key_1, key_2, key_3);
    d = parse_ok(s, 0);
    output_ok(&b, d, 0);
    descriptor_free(d);
    CHECK_MEM_EQ(&a, &b, sizeof(a));
    snprintf(s, sizeof(s), "tr(musig(%s,%s,%s))", key_1, key_1, key_2);
    d = parse_ok(s, 0);
    output_ok(&b, d, 0);
    CHECK(memcmp(a.output_key, b.output_key, 32) != 0);
    descriptor_free(d);
    /* A single participant is KeyAgg of one key. */
    snprintf(s, sizeof(s), "tr(musig(%s))", key_1);
    d = parse_ok(s, 0);
    output_ok(&b, d, 0);
    descriptor_free(d);
}

/* ---- BIP-328 ----------------------------------------------------------- */

static void xpub_key(uint8_t out[33], const char *xpub)
{
    uint8_t raw[78];
    size_t n;
    CHECK_OK(address_base58check_decode(raw, sizeof(raw), &n, xpub, strlen(xpub)));
    CHECK_EQ(n, 78);
    memcpy(out, raw + 45, 33);
}

static void test_bip328(void **state)
{
    (void)state;
    struct btc_line *l;
    size_t n = btc_read_lines("bitcoin/musig-xpub-bip328.txt", 3, &l);
    char xpub[DESCRIPTOR_XPUB_STR_MAX];

    CHECK_EQ(n, 3);
    for (size_t i = 0; i < n; i++) {
        uint8_t agg[33], keys[4][33], plain[33];
        size_t nk = 0;
        struct musig_keyagg *ka = NULL;
        char *copy = strdup(l[i].f[2]), *save = NULL;

        btc_unhex_n(agg, 33, l[i].f[0]);
        CHECK_OK(descriptor_musig_xpub(xpub, sizeof(xpub), agg));
        CHECK_STR_EQ(xpub, l[i].f[1]);
        for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
            btc_unhex_n(keys[nk++], 33, t);
        free(copy);
        /* BIP-328's vectors aggregate the keys in the order listed
         * (KeyAgg without KeySort); BIP-390's musig() sorts first. */
        CHECK_OK(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])keys, nk));
        musig_keyagg_plain(ka, plain);
        CHECK_MEM_EQ(plain, agg, 33);
        musig_keyagg_free(ka);
    }
    btc_free_lines(l, n);

    /* musig(A,B)/0/STAR derives from the synthetic xpub of KeyAgg(A, B). */
    uint8_t keys[2][33], plain[33];
    struct musig_keyagg *ka = NULL;
    char s[1024];
    xpub_key(keys[0], xpub_a);
    xpub_key(keys[1], xpub_b);
    musig_key_sort(keys, 2);
    CHECK_OK(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])keys, 2));
    musig_keyagg_plain(ka, plain);
    musig_keyagg_free(ka);
    CHECK_OK(descriptor_musig_xpub(xpub, sizeof(xpub), plain));
    snprintf(s, sizeof(s), "rawtr(musig(%s,%s)/0/*)", xpub_b, xpub_a);
    struct descriptor *d1 = parse_ok(s, 0);
    snprintf(s, sizeof(s), "rawtr(%s/0/*)", xpub);
    struct descriptor *d2 = parse_ok(s, 0);
    for (uint32_t i = 0; i < 4; i++) {
        struct descriptor_output a, b;
        output_ok(&a, d1, i);
        output_ok(&b, d2, i);
        CHECK_MEM_EQ(&a, &b, sizeof(a));
    }
    descriptor_free(d1);
    descriptor_free(d2);

    uint8_t bad[33] = {5};
    CHECK_ERR(descriptor_musig_xpub(xpub, sizeof(xpub), bad), KM_ERR_INVALID);
    CHECK_ERR(descriptor_musig_xpub(xpub, 50, plain), KM_ERR_TOO_LARGE);
}

/* ---- BIP-86, BIP-341 ------------------------------------------------------- */

static void test_bip86(void **state)
{
    (void)state;
    struct btc_line *l;
    size_t n = btc_read_lines("bitcoin/descriptor-bip86.txt", 5, &l);

    CHECK_EQ(n, 11);
    for (size_t i = 0; i < n; i++) {
        struct descriptor *d = parse_ok(l[i].f[0], ALLOW);
        struct descriptor_output o;
        char h[65], addr[ADDRESS_STR_MAX];
        uint32_t index = (uint32_t)strtoul(l[i].f[1], NULL, 10);

        output_ok(&o, d, index);
        hexstr(h, sizeof(h), o.internal_key, 32);
        CHECK_STR_EQ(h, l[i].f[2]);
        hexstr(h, sizeof(h), o.output_key, 32);
        CHECK_STR_EQ(h, l[i].f[3]);
        CHECK_OK(address_taproot(addr, sizeof(addr), ADDRESS_MAINNET, o.output_key));
        CHECK_STR_EQ(addr, l[i].f[4]);
        CHECK(!o.has_tree);
        if (descriptor_has_private(d)) {
            struct buf b;
            buf_init(&b, 4096);
            CHECK_ERR(descriptor_to_string(&b, d), KM_ERR_UNSUPPORTED);
            buf_release(&b);
        } else {
            check_round_trip(d, 2);
        }
        descriptor_free(d);
    }
    btc_free_lines(l, n);

    /* Hardened steps from an xpub parse (BIP-380) but cannot be derived. */
    struct descriptor *d = parse_ok(
        "tr(xpub661MyMwAqRbcFkPHucMnrGNzDwb6teAX1RbKQmqtEF8kK3Z7LZ59qafCjB9eCRLiTVG3uxBxgKvRgbu"
        "bRhqSKXnGGb1aoaqLrpMBDrVxga8/86h/0h/0h/0/*)",
        0);
    struct descriptor_output o;
    struct km_error e;
    CHECK_ERR(descriptor_output(&o, &e, d, 0), KM_ERR_UNSUPPORTED);
    CHECK_CONTAINS(e.msg, "hardened derivation from an extended public key");
    descriptor_free(d);
}

static void test_bip341(void **state)
{
    (void)state;
    struct btc_line *l;
    size_t n = btc_read_lines("bitcoin/descriptor-bip341.txt", 5, &l);

    /* 5 of the 7 scriptPubKey cases: the other two have leaves that are not
     * pk() (leaf version 0xfa, a bare push). */
    CHECK_EQ(n, 5);
    for (size_t i = 0; i < n; i++) {
        struct descriptor *d = parse_ok(l[i].f[0], 0);
        struct descriptor_output o;
        char h[2 * 34 + 1], addr[ADDRESS_STR_MAX];

        output_ok(&o, d, 0);
        CHECK_EQ(o.has_tree, strcmp(l[i].f[1], "-") != 0);
        if (o.has_tree) {
            hexstr(h, sizeof(h), o.merkle_root, 32);
            CHECK_STR_EQ(h, l[i].f[1]);
        }
        hexstr(h, sizeof(h), o.output_key, 32);
        CHECK_STR_EQ(h, l[i].f[2]);
        hexstr(h, sizeof(h), o.script_pubkey, 34);
        CHECK_STR_EQ(h, l[i].f[3]);
        CHECK_OK(address_taproot(addr, sizeof(addr), ADDRESS_MAINNET, o.output_key));
        CHECK_STR_EQ(addr, l[i].f[4]);
        check_address(&o);
        check_round_trip(d, 1);
        descriptor_free(d);
    }
    btc_free_lines(l, n);
}

/* ---- BIP-350 ----------------------------------------------------------- */

/* "hex:..." names bytes outside printable ASCII. */
static char *vector_string(const char *f, size_t *len)
{
    if (strncmp(f, "hex:", 4) == 0) {
        char *s = (char *)btc_unhex(f + 4, len);
        return s;
    }
    *len = strlen(f);
    return strdup(f);
}

static void lower(char *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    out[n] = '\0';
}

static void test_bip350(void **state)
{
    (void)state;
    struct btc_line *l;
    size_t n = btc_read_lines("bitcoin/bech32m-bip350.txt", 2, &l);
    size_t counts[4] = {0};

    for (size_t i = 0; i < n; i++) {
        char *rest = l[i].f[1], *sp = strchr(rest, ' ');
        if (sp != NULL)
            *sp = '\0';
        size_t len;
        char *s = vector_string(rest, &len);
        char hrp[ADDRESS_HRP_MAX_LEN + 1], low[ADDRESS_STR_MAX + 1], again[ADDRESS_STR_MAX];
        uint8_t data[ADDRESS_BECH32_MAX_LEN];
        size_t nd;
        enum address_encoding enc;
        struct address_segwit w;
        enum address_network net;
        struct km_error e;
        km_error_clear(&e);

        if (strcmp(l[i].f[0], "bech32m-valid") == 0) {
            if (address_bech32_decode(&enc, hrp, data, sizeof(data), &nd, &e, s, len) != KM_OK)
                fail_msg("%s: %s", s, e.msg);
            CHECK_EQ(enc, ADDRESS_BECH32M);
            CHECK_OK(address_bech32_encode(again, sizeof(again), enc, hrp, data, nd));
            lower(low, s, len);
            CHECK_STR_EQ(again, low);
            counts[0]++;
        } else if (strcmp(l[i].f[0], "bech32m-invalid") == 0) {
            int r = address_bech32_decode(&enc, hrp, data, sizeof(data), &nd, &e, s, len);
            if (r == KM_OK)
                fail_msg("%s decodes (%s)", sp ? sp + 1 : "",
                         enc == ADDRESS_BECH32 ? "bech32" : "bech32m");
            counts[1]++;
        } else if (strcmp(l[i].f[0], "address-valid") == 0) {
            uint8_t spk[ADDRESS_SCRIPT_MAX];
            char h[2 * ADDRESS_SCRIPT_MAX + 1];
            if (address_decode(&w, &net, &e, s, len) != KM_OK)
                fail_msg("%s: %s", s, e.msg);
            size_t sl = address_segwit_script(spk, &w);
            hexstr(h, sizeof(h), spk, sl);
            CHECK_STR_EQ(h, sp + 1);
            lower(low, s, len);
            CHECK_OK(address_segwit_encode(again, sizeof(again), address_network_hrp(net), &w));
            CHECK_STR_EQ(again, low);
            CHECK_OK(address_segwit_decode(&w, NULL, address_network_hrp(net), s, len));
            CHECK_ERR(address_segwit_decode(&w, &e, "bcrt", s, len), KM_ERR_INVALID);
            CHECK_CONTAINS(e.msg, "expected \"bcrt\"");
            counts[2]++;
        } else {
            CHECK_STR_EQ(l[i].f[0], "address-invalid");
            CHECK_ERR(address_decode(&w, &net, &e, s, len), KM_ERR_INVALID);
            CHECK(e.msg[0] != '\0');
            CHECK_EQ(w.program_len, 0);
            counts[3]++;
        }
        free(s);
    }
    CHECK_EQ(counts[0], 7);
    CHECK_EQ(counts[1], 14);
    CHECK_EQ(counts[2], 8);
    CHECK_EQ(counts[3], 15);
    btc_free_lines(l, n);

    /* Reasons. */
    struct address_segwit w;
    enum address_network net;
    struct km_error e;
    const char *a = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd";
    CHECK_ERR(address_decode(&w, &net, &e, a, strlen(a)), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "witness version 1 requires bech32m, not bech32");
    a = "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq";
    CHECK_ERR(address_decode(&w, &net, &e, a, strlen(a)), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "mixed case");

    /* Networks. */
    enum address_network nets[] = {ADDRESS_MAINNET, ADDRESS_TESTNET, ADDRESS_SIGNET,
                                   ADDRESS_REGTEST};
    const char *prefix[] = {"bc1p", "tb1p", "tb1p", "bcrt1p"};
    uint8_t key[32] = {0x79, 0xbe};
    for (size_t i = 0; i < 4; i++) {
        char addr[ADDRESS_STR_MAX];
        CHECK_OK(address_taproot(addr, sizeof(addr), nets[i], key));
        CHECK(strncmp(addr, prefix[i], strlen(prefix[i])) == 0);
        CHECK_OK(address_decode(&w, &net, NULL, addr, strlen(addr)));
        CHECK_EQ(net, nets[i] == ADDRESS_SIGNET ? ADDRESS_TESTNET : nets[i]);
        CHECK_MEM_EQ(w.program, key, 32);
        CHECK_ERR(address_taproot(addr, 40, nets[i], key), KM_ERR_TOO_LARGE);
        enum address_network parsed;
        const char *name = address_network_name(nets[i]);
        CHECK_OK(address_network_parse(&parsed, name, strlen(name)));
        CHECK_EQ(parsed, nets[i]);
    }
    enum address_network parsed;
    CHECK_ERR(address_network_parse(&parsed, "main2", 5), KM_ERR_INVALID);
    CHECK_OK(address_network_parse(&parsed, "testnet4", 8));
    CHECK_EQ(parsed, ADDRESS_TESTNET);

    /* Base58Check round trip, leading zeros, a bad checksum. */
    uint8_t raw[5] = {0, 0, 1, 2, 3}, back[8];
    char b58[32];
    size_t bn;
    CHECK_OK(address_base58check_encode(b58, sizeof(b58), raw, 5));
    CHECK(strncmp(b58, "11", 2) == 0);
    CHECK_OK(address_base58check_decode(back, sizeof(back), &bn, b58, strlen(b58)));
    CHECK_EQ(bn, 5);
    CHECK_MEM_EQ(back, raw, 5);
    b58[strlen(b58) - 1] = b58[strlen(b58) - 1] == 'z' ? 'y' : 'z';
    CHECK_ERR(address_base58check_decode(back, sizeof(back), &bn, b58, strlen(b58)),
              KM_ERR_INVALID);
    CHECK_ERR(address_base58check_decode(back, sizeof(back), &bn, "0OIl", 4), KM_ERR_INVALID);
    CHECK_ERR(address_base58check_decode(back, sizeof(back), &bn, "", 0), KM_ERR_INVALID);
    CHECK_ERR(address_base58check_decode(back, 2, &bn, xpub_a, strlen(xpub_a)), KM_ERR_TOO_LARGE);
}

/* ---- the group API ------------------------------------------------------------ */

static void group_keys(uint8_t keys[3][33])
{
    btc_unhex_n(keys[0], 33, key_1);
    btc_unhex_n(keys[1], 33, key_2);
    btc_unhex_n(keys[2], 33, key_3);
}

/* What the enclaves sign under: KeySort, KeyAgg, then the keygen tweak. */
static void keymeld_key(uint8_t out[32], uint8_t keys[3][33], int tweak, const uint8_t *root)
{
    uint8_t sorted[3][33];
    struct musig_keyagg *ka = NULL;
    memcpy(sorted, keys, sizeof(sorted));
    musig_key_sort(sorted, 3);
    CHECK_OK(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])sorted, 3));
    if (tweak)
        CHECK_OK(taproot_musig_tweak(ka, root));
    musig_keyagg_xonly(ka, out);
    musig_keyagg_free(ka);
}

static void group_ok(struct descriptor_group_result *res, const struct descriptor_group *g,
                     enum address_network net)
{
    struct km_error e;
    km_error_clear(&e);
    if (descriptor_for_group(res, &e, g, net) != KM_OK)
        fail_msg("descriptor_for_group: %s", e.msg);
    /* The result parses with its checksum and gives its address. */
    struct descriptor *d = parse_ok(res->descriptor, DESCRIPTOR_F_REQUIRE_CHECKSUM);
    struct descriptor_output o;
    char addr[ADDRESS_STR_MAX];
    output_ok(&o, d, 0);
    CHECK_MEM_EQ(o.output_key, res->output_key, 32);
    CHECK_OK(address_taproot(addr, sizeof(addr), net, o.output_key));
    CHECK_STR_EQ(addr, res->address);
    descriptor_free(d);
}

static void test_group(void **state)
{
    (void)state;
    uint8_t keys[3][33], want[32], root[32], script[34];
    struct descriptor_group g;
    struct descriptor_group_result res;
    struct km_error e;
    char expect_desc[512], h[65], tree[80];

    group_keys(keys);
    memset(&g, 0, sizeof(g));
    g.pubkeys = (const uint8_t(*)[33])keys;
    g.n = 3;

    /* unspendable_taproot: BIP-390's second vector, KeyMeld's key. */
    g.tweak = DESCRIPTOR_GROUP_TAPROOT;
    group_ok(&res, &g, ADDRESS_MAINNET);
    snprintf(expect_desc, sizeof(expect_desc), "tr(musig(%s,%s,%s))#", key_1, key_2, key_3);
    CHECK(strncmp(res.descriptor, expect_desc, strlen(expect_desc)) == 0);
    CHECK_EQ(strlen(res.descriptor), strlen(expect_desc) + 8);
    hexstr(h, sizeof(h), res.output_key, 32);
    CHECK_STR_EQ(h, "79e6c3e628c9bfbce91de6b7fb28e2aec7713d377cf260ab599dcbc40e542312");
    keymeld_key(want, keys, 1, NULL);
    CHECK_MEM_EQ(res.output_key, want, 32);
    CHECK(strncmp(res.address, "bc1p", 4) == 0);
    CHECK_EQ(res.opaque, 0);
    g.expect_output_key = want;
    descriptor_group_result_clear(&res);
    group_ok(&res, &g, ADDRESS_SIGNET);
    CHECK(strncmp(res.address, "tb1p", 4) == 0);
    descriptor_group_result_clear(&res);
    group_ok(&res, &g, ADDRESS_REGTEST);
    CHECK(strncmp(res.address, "bcrt1p", 6) == 0);
    descriptor_group_result_clear(&res);

    /* The session's key must match. */
    uint8_t other[32];
    memcpy(other, want, 32);
    other[0] ^= 1;
    g.expect_output_key = other;
    CHECK_ERR(descriptor_for_group(&res, &e, &g, ADDRESS_MAINNET), KM_ERR_CRYPTO);
    CHECK_CONTAINS(e.msg, "differs from the group's key");
    CHECK_NULL(res.descriptor);
    g.expect_output_key = NULL;

    /* No tweak: rawtr(musig()), the untweaked aggregate. */
    g.tweak = DESCRIPTOR_GROUP_UNTWEAKED;
    group_ok(&res, &g, ADDRESS_MAINNET);
    CHECK(strncmp(res.descriptor, "rawtr(musig(", 12) == 0);
    keymeld_key(want, keys, 0, NULL);
    CHECK_MEM_EQ(res.output_key, want, 32);
    descriptor_group_result_clear(&res);

    /* A script tree: tr(musig(),pk(K)) with its merkle root. */
    script[0] = 0x20;
    btc_unhex_n(script + 1, 32, key_1 + 2);
    script[33] = 0xac;
    taproot_leaf_hash(root, TAPROOT_LEAF_TAPSCRIPT, script, 34);
    snprintf(tree, sizeof(tree), "pk(%.64s)", key_1 + 2);
    g.tweak = DESCRIPTOR_GROUP_MERKLE_ROOT;
    g.merkle_root = root;
    g.tree = tree;
    g.tree_len = strlen(tree);
    group_ok(&res, &g, ADDRESS_MAINNET);
    keymeld_key(want, keys, 1, root);
    CHECK_MEM_EQ(res.output_key, want, 32);
    CHECK(strstr(res.descriptor, ",pk(") != NULL);
    CHECK_EQ(res.opaque, 0);
    descriptor_group_result_clear(&res);
    /* Without the tree: rawtr(<output key>), marked opaque. */
    g.tree = NULL;
    g.tree_len = 0;
    group_ok(&res, &g, ADDRESS_MAINNET);
    CHECK_MEM_EQ(res.output_key, want, 32);
    CHECK_EQ(res.opaque, 1);
    hexstr(h, sizeof(h), want, 32);
    snprintf(expect_desc, sizeof(expect_desc), "rawtr(%s)#", h);
    CHECK(strncmp(res.descriptor, expect_desc, strlen(expect_desc)) == 0);
    descriptor_group_result_clear(&res);
    /* A tree whose root is not the group's. */
    root[0] ^= 1;
    g.tree = tree;
    g.tree_len = strlen(tree);
    CHECK_ERR(descriptor_for_group(&res, &e, &g, ADDRESS_MAINNET), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "merkle root differs");
    /* A bad tree is reported by the parser. */
    g.tree = "pkh(00)";
    g.tree_len = 7;
    CHECK_ERR(descriptor_for_group(&res, &e, &g, ADDRESS_MAINNET), KM_ERR_UNSUPPORTED);
    g.tree = "pk(00),pk(00";
    g.tree_len = strlen(g.tree);
    CHECK_ERR(descriptor_for_group(&res, &e, &g, ADDRESS_MAINNET), KM_ERR_INVALID);
    g.merkle_root = NULL;
    CHECK_ERR(descriptor_for_group(&res, &e, &g, ADDRESS_MAINNET), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "merkle root is required");
    g.tweak = DESCRIPTOR_GROUP_TAPROOT;
    CHECK_ERR(descriptor_for_group(&res, &e, &g, ADDRESS_MAINNET), KM_ERR_INVALID);
    g.tree = NULL;

    /* Bad keys and counts. */
    keys[1][0] = 4;
    CHECK_ERR(descriptor_for_group(&res, &e, &g, ADDRESS_MAINNET), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "invalid prefix");
    keys[1][0] = 3;
    g.n = 0;
    CHECK_ERR(descriptor_for_group(&res, &e, &g, ADDRESS_MAINNET), KM_ERR_INVALID);
    CHECK_NULL(res.descriptor);
    descriptor_group_result_clear(&res);

    /* The largest group: DESCRIPTOR_MAX_KEYS keys (repeats allowed). */
    uint8_t(*many)[33] = calloc(DESCRIPTOR_MAX_KEYS + 1, 33);
    for (size_t i = 0; i <= DESCRIPTOR_MAX_KEYS; i++)
        memcpy(many[i], keys[i % 3], 33);
    g.pubkeys = (const uint8_t(*)[33])many;
    g.n = DESCRIPTOR_MAX_KEYS;
    group_ok(&res, &g, ADDRESS_MAINNET);
    descriptor_group_result_clear(&res);
    g.n = DESCRIPTOR_MAX_KEYS + 1;
    CHECK_ERR(descriptor_for_group(&res, &e, &g, ADDRESS_MAINNET), KM_ERR_INVALID);
    free(many);
}

/* ---- syntax, canonical form, limits ------------------------------------------------ */

static void test_canonical(void **state)
{
    (void)state;
    char in[1024], want[1024], sum[9];
    struct buf b;
    const char *xonly = "A34B99F22C790C4E36B2B3C2C35A36DB06226E41C692FC82B8B56AC1C540C5BD";

    snprintf(in, sizeof(in), "tr(%s,{pk([DEADBEEF/0'/1h]%s/2'/*),pk(musig(%s,%s)/7/*)})", xonly,
             xpub_a, xpub_b, xpub_a);
    struct descriptor *d = parse_ok(in, 0);
    CHECK(descriptor_is_ranged(d));
    CHECK(!descriptor_has_private(d));
    buf_init(&b, 4096);
    CHECK_OK(descriptor_to_string(&b, d));
    snprintf(want, sizeof(want),
             "tr(a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd,{pk([deadbeef/"
             "0h/1h]%s/2h/*),pk(musig(%s,%s)/7/*)})",
             xpub_a, xpub_b, xpub_a);
    CHECK_OK(descriptor_checksum(sum, want, strlen(want)));
    CHECK_EQ(buf_len(&b), strlen(want) + 9);
    CHECK_MEM_EQ(buf_peek(&b), want, strlen(want));
    CHECK_MEM_EQ(buf_peek(&b) + strlen(want) + 1, sum, 8);
    /* Hardened from an xpub: the output fails, the text is still fine. */
    struct descriptor_output o;
    CHECK_ERR(descriptor_output(&o, NULL, d, 0), KM_ERR_UNSUPPORTED);
    descriptor_free(d);
    buf_release(&b);

    /* Appending after existing bytes checksums only the descriptor. */
    snprintf(in, sizeof(in), "tr(%s/0/*)", xpub_a);
    d = parse_ok(in, 0);
    buf_init(&b, 4096);
    CHECK_OK(buf_put_str(&b, "prefix "));
    CHECK_OK(descriptor_to_string(&b, d));
    const char *text = buf_cstr(&b);
    CHECK(strncmp(text, "prefix tr(", 10) == 0);
    descriptor_free(d);
    d = parse_ok(text + 7, DESCRIPTOR_F_REQUIRE_CHECKSUM);
    descriptor_free(d);
    buf_release(&b);
    /* The buffer's maximum is honoured. */
    d = parse_ok(in, 0);
    buf_init(&b, 20);
    CHECK_ERR(descriptor_to_string(&b, d), KM_ERR_TOO_LARGE);
    buf_release(&b);
    /* Ranged: a hardened child index is refused. */
    CHECK_ERR(descriptor_output(&o, NULL, d, 0x80000000u), KM_ERR_RANGE);
    output_ok(&o, d, DESCRIPTOR_MAX_INDEX);
    descriptor_free(d);
    /* Non-ranged: the index is ignored. */
    snprintf(in, sizeof(in), "tr(%s)", key_1);
    d = parse_ok(in, 0);
    struct descriptor_output o2;
    output_ok(&o, d, 0);
    output_ok(&o2, d, 0xffffffffu);
    CHECK_MEM_EQ(&o, &o2, sizeof(o));
    descriptor_free(d);
}

static void test_malformed(void **state)
{
    (void)state;
    char s[1024];

    parse_err("", 0, KM_ERR_INVALID, "expected a script expression");
    parse_err("tr", 0, KM_ERR_INVALID, "expected a script expression");
    parse_err("tr(", 0, KM_ERR_INVALID, "no key provided");
    parse_err("foo(bar)", 0, KM_ERR_INVALID, "unknown script expression 'foo'");
    snprintf(s, sizeof(s), "wpkh(%s)", key_1);
    parse_err(s, 0, KM_ERR_UNSUPPORTED, "wpkh() descriptors are not supported");
    snprintf(s, sizeof(s), "sp(%s,%s)", key_1, key_2);
    parse_err(s, 0, KM_ERR_UNSUPPORTED, "sp() descriptors are not supported");
    snprintf(s, sizeof(s), "tr(%s", key_1);
    parse_err(s, 0, KM_ERR_INVALID, "expected ')', found the end");
    snprintf(s, sizeof(s), "tr(%s))", key_1);
    parse_err(s, 0, KM_ERR_INVALID, "unexpected ')' after the descriptor");
    snprintf(s, sizeof(s), "tr(%s) ", key_1);
    parse_err(s, 0, KM_ERR_INVALID, "unexpected ' '");
    snprintf(s, sizeof(s), "rawtr(%s,pk(%s))", key_1, key_2);
    parse_err(s, 0, KM_ERR_INVALID, "expected ')', found ','");
    snprintf(s, sizeof(s), "tr(%s,{pk(%s)})", key_1, key_2);
    parse_err(s, 0, KM_ERR_INVALID, "expected ','");
    snprintf(s, sizeof(s), "tr(%s,{pk(%s),pk(%s),pk(%s)})", key_1, key_2, key_3, key_1);
    parse_err(s, 0, KM_ERR_INVALID, "expected '}'");
    snprintf(s, sizeof(s), "tr(%s,tr(%s))", key_1, key_2);
    parse_err(s, 0, KM_ERR_INVALID, "tr() is only allowed at the top level");
    snprintf(s, sizeof(s), "tr(%s,multi_a(1,%s))", key_1, key_2);
    parse_err(s, 0, KM_ERR_UNSUPPORTED, "only pk() leaves are supported, not multi_a()");
    snprintf(s, sizeof(s), "tr(%s/0)", key_1);
    parse_err(s, 0, KM_ERR_INVALID, "derivation steps after a non-extended key");
    parse_err("tr(02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bc)", 0, KM_ERR_INVALID,
              "is not a public key");
    /* Not on the curve (x = 5 has no point). */
    parse_err("tr(0000000000000000000000000000000000000000000000000000000000000005)", 0,
              KM_ERR_INVALID, "not on the curve");
    parse_err("tr(020000000000000000000000000000000000000000000000000000000000000005)", 0,
              KM_ERR_INVALID, "not on the curve");
    snprintf(s, sizeof(s), "tr(%s/1/2147483648)", xpub_a);
    parse_err(s, 0, KM_ERR_INVALID, "out of range");
    snprintf(s, sizeof(s), "tr(%s/99999999999)", xpub_a);
    parse_err(s, 0, KM_ERR_INVALID, "out of range");
    snprintf(s, sizeof(s), "tr(%s/*/1)", xpub_a);
    parse_err(s, 0, KM_ERR_INVALID, "'*' must be the last derivation step");
    snprintf(s, sizeof(s), "tr(%s/*x)", xpub_a);
    parse_err(s, 0, KM_ERR_INVALID, "invalid child step");
    snprintf(s, sizeof(s), "tr(%s//1)", xpub_a);
    parse_err(s, 0, KM_ERR_INVALID, "empty derivation step");
    snprintf(s, sizeof(s), "tr(x%s)", xpub_a);
    parse_err(s, 0, KM_ERR_INVALID, "is not valid");
    /* A valid Base58Check string of the wrong kind (a P2PKH address). */
    parse_err("tr(1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2)", 0, KM_ERR_INVALID, "not valid");
    /* Private keys need the flag. */
    parse_err("tr(L4rK1yDtCWekvXuE6oXD9jCYfFNV2cWRpVuPLBcCU2z8TrisoyY1)", 0, KM_ERR_UNSUPPORTED,
              "private keys are refused");
    /* Checksums. */
    snprintf(s, sizeof(s), "tr(%s)#00000000", key_1);
    parse_err(s, 0, KM_ERR_INVALID, "checksum mismatch");
    snprintf(s, sizeof(s), "tr(%s)", key_1);
    parse_err(s, DESCRIPTOR_F_REQUIRE_CHECKSUM, KM_ERR_INVALID, "missing checksum");
    parse_err("tr(\x01)", 0, KM_ERR_INVALID, "character 4 is not allowed");
    /* Messages say where. */
    snprintf(s, sizeof(s), "tr(%s,pk(%s/1))", key_1, key_2);
    parse_err(s, 0, KM_ERR_INVALID, "character 140:");
    /* Embedded NUL: never read as an end of string. */
    struct descriptor *d = NULL;
    CHECK_ERR(descriptor_parse(&d, NULL, "tr(\0)", 5, 0), KM_ERR_INVALID);
    CHECK_ERR(descriptor_key_check(NULL, "0\0", 2, 0), KM_ERR_INVALID);
}

static char *repeat_musig(size_t nkeys)
{
    size_t cap = 32 + nkeys * 67;
    char *s = malloc(cap), *p = s;
    p += snprintf(p, cap, "tr(musig(");
    for (size_t i = 0; i < nkeys; i++)
        p += snprintf(p, cap - (size_t)(p - s), "%s%s", i ? "," : "", key_1);
    snprintf(p, cap - (size_t)(p - s), "))");
    return s;
}

static void test_limits(void **state)
{
    (void)state;
    struct descriptor *d;
    char *s;

    /* Keys. */
    s = repeat_musig(DESCRIPTOR_MAX_KEYS);
    d = parse_ok(s, 0);
    descriptor_free(d);
    free(s);
    s = repeat_musig(DESCRIPTOR_MAX_KEYS + 1);
    parse_err(s, 0, KM_ERR_TOO_LARGE, "more than 1000 keys");
    free(s);

    /* Tree depth: 128 levels of {pk(K),...}, then 129. */
    for (unsigned depth = DESCRIPTOR_MAX_DEPTH; depth <= DESCRIPTOR_MAX_DEPTH + 1; depth++) {
        size_t cap = 200 + depth * 75;
        char *p;
        s = malloc(cap);
        p = s + snprintf(s, cap, "tr(%s,", key_1);
        for (unsigned i = 0; i < depth; i++)
            p += snprintf(p, cap - (size_t)(p - s), "{pk(%s),", key_2);
        p += snprintf(p, cap - (size_t)(p - s), "pk(%s)", key_3);
        for (unsigned i = 0; i < depth; i++)
            *p++ = '}';
        snprintf(p, cap - (size_t)(p - s), ")");
        if (depth == DESCRIPTOR_MAX_DEPTH) {
            struct descriptor_output o;
            d = parse_ok(s, 0);
            output_ok(&o, d, 0);
            CHECK(o.has_tree);
            descriptor_free(d);
        } else {
            parse_err(s, 0, KM_ERR_TOO_LARGE, "tr() supports at most 128 nesting levels");
        }
        free(s);
    }

    /* Path length: 255 steps, then 256. */
    for (unsigned n = DESCRIPTOR_MAX_PATH; n <= DESCRIPTOR_MAX_PATH + 1; n++) {
        size_t cap = 200 + n * 2;
        char *p;
        s = malloc(cap);
        p = s + snprintf(s, cap, "tr(%s", xpub_a);
        for (unsigned i = 0; i < n; i++)
            p += snprintf(p, cap - (size_t)(p - s), "/1");
        snprintf(p, cap - (size_t)(p - s), ")");
        if (n == DESCRIPTOR_MAX_PATH) {
            struct descriptor_output o;
            d = parse_ok(s, 0);
            output_ok(&o, d, 0);
            descriptor_free(d);
        } else {
            parse_err(s, 0, KM_ERR_TOO_LARGE, "more than 255 steps in one path");
        }
        free(s);
    }
    /* Origin paths have the same limit. */
    {
        size_t cap = 1000;
        char *p;
        s = malloc(cap);
        p = s + snprintf(s, cap, "tr([00000000");
        for (unsigned i = 0; i < DESCRIPTOR_MAX_PATH + 1; i++)
            p += snprintf(p, cap - (size_t)(p - s), "/1");
        snprintf(p, cap - (size_t)(p - s), "]%s)", key_1);
        parse_err(s, 0, KM_ERR_TOO_LARGE, "more than 255 steps in one path");
        free(s);
    }

    /* Total derivation steps: 17 participants of 255 steps is 4335 > 4096. */
    {
        size_t cap = 17 * (120 + 2 * DESCRIPTOR_MAX_PATH) + 100;
        char *p;
        s = malloc(cap);
        p = s + snprintf(s, cap, "tr(musig(");
        for (unsigned k = 0; k < 17; k++) {
            p += snprintf(p, cap - (size_t)(p - s), "%s%s", k > 0 ? "," : "", xpub_a);
            for (unsigned i = 0; i < DESCRIPTOR_MAX_PATH; i++)
                p += snprintf(p, cap - (size_t)(p - s), "/1");
        }
        snprintf(p, cap - (size_t)(p - s), "))");
        parse_err(s, 0, KM_ERR_TOO_LARGE, "more than 4096 derivation steps");
        free(s);
    }

    /* Length. */
    size_t big = DESCRIPTOR_MAX_LEN + 1;
    s = malloc(big + 1);
    memset(s, 'a', big);
    s[big] = '\0';
    parse_err(s, 0, KM_ERR_TOO_LARGE, "longer than 131072 characters");
    CHECK_ERR(descriptor_key_check(NULL, s, big, 0), KM_ERR_TOO_LARGE);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_bip380_checksum), TEST(test_bip380_keys), TEST(test_bip386),    TEST(test_bip390),
        TEST(test_bip328),          TEST(test_bip86),       TEST(test_bip341),    TEST(test_bip350),
        TEST(test_group),           TEST(test_canonical),   TEST(test_malformed), TEST(test_limits),
    };
    return RUN_TESTS("bitcoin.descriptor", tests);
}
