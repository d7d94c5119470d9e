/*
 * test_cbor.c - the strict CBOR decoder and the encoder (attest/cbor.h):
 * RFC 8949 Appendix A examples for everything supported (decoded, and
 * re-encoded to the same bytes), what is refused (non-shortest forms,
 * indefinite strings, floats, trailing and truncated input, limits,
 * duplicate keys, bad UTF-8), and encoder round trips.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "nitro_fixture.h"

#include "attest/cbor.h"
#include "common/buf.h"
#include "common/hex.h"
#include "common/banned.h"

static const struct cbor_limits big = {1u << 20, 64, 100000, 100000};

/* Hex (spaces allowed, for readability) to malloc'ed bytes. */
static uint8_t *unhex_alloc(const char *hex, size_t *n)
{
    size_t len = strlen(hex), k = 0;
    char *h = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        if (hex[i] != ' ')
            h[k++] = hex[i];
    }
    uint8_t *p = malloc(k / 2 + 1);
    CHECK_OK(hex_decode(p, k / 2, n, h, k));
    free(h);
    return p;
}

/* Re-encodes an item with the cbor_put_* functions (definite lengths). */
static void reencode(struct buf *b, const struct cbor_item *it)
{
    int r = KM_OK;
    switch (it->type) {
    case CBOR_UINT:
        r = cbor_put_uint(b, it->u);
        break;
    case CBOR_NEGINT:
        /* Values below INT64_MIN cannot go through cbor_put_int. */
        if (it->u <= (uint64_t)INT64_MAX)
            r = cbor_put_int(b, -1 - (int64_t)it->u);
        else
            r = buf_put_u8(b, 0x3b) == KM_OK ? buf_put_u64(b, it->u) : KM_ERR_INTERNAL;
        break;
    case CBOR_BYTES:
        r = cbor_put_bytes(b, it->ptr, it->len);
        break;
    case CBOR_TEXT:
        r = cbor_put_text_n(b, (const char *)it->ptr, it->len);
        break;
    case CBOR_ARRAY:
        r = cbor_put_array(b, it->count);
        for (size_t i = 0; i < it->count; i++)
            reencode(b, &it->items[i]);
        break;
    case CBOR_MAP:
        r = cbor_put_map(b, it->count);
        for (size_t i = 0; i < 2 * it->count; i++)
            reencode(b, &it->items[i]);
        break;
    case CBOR_TAG:
        CHECK_EQ(it->count, 1);
        r = cbor_put_tag(b, it->u);
        reencode(b, &it->items[0]);
        break;
    case CBOR_FALSE:
    case CBOR_TRUE:
        r = cbor_put_bool(b, it->type == CBOR_TRUE);
        break;
    case CBOR_NULL:
        r = cbor_put_null(b);
        break;
    case CBOR_UNDEFINED:
        r = buf_put_u8(b, 0xf7);
        break;
    }
    CHECK_OK(r);
}

/* Decodes hex with generous limits, re-encodes and compares with
 * want_hex (the input itself when NULL). */
static void roundtrip(const char *hex, const char *want_hex)
{
    size_t n, wn;
    uint8_t *p = unhex_alloc(hex, &n);
    uint8_t *w = unhex_alloc(want_hex ? want_hex : hex, &wn);
    struct cbor_tree *t = NULL;
    struct km_error err;
    struct buf b;

    if (cbor_decode(&t, p, n, &big, &err) != KM_OK)
        fail_msg("%s: %s", hex, err.msg);
    buf_init(&b, 4096);
    reencode(&b, cbor_root(t));
    if (buf_len(&b) != wn || memcmp(buf_peek(&b), w, wn) != 0)
        fail_msg("%s: re-encoded differently", hex);
    buf_release(&b);
    cbor_tree_free(t);
    free(p);
    free(w);
}

static int decode_hex(const char *hex, const struct cbor_limits *lim, struct km_error *err)
{
    size_t n;
    uint8_t *p = unhex_alloc(hex, &n);
    struct cbor_tree *t = (struct cbor_tree *)1;
    int r = cbor_decode(&t, p, n, lim ? lim : &big, err);
    if (r == KM_OK)
        CHECK_NOT_NULL(t);
    else
        CHECK_NULL(t);
    cbor_tree_free(t);
    free(p);
    return r;
}

static void refused(const char *hex, int code, const char *msg)
{
    struct km_error err;
    km_error_clear(&err);
    int r = decode_hex(hex, NULL, &err);
    if (r != code)
        fail_msg("%s: want %d, got %d (%s)", hex, code, r, err.msg);
    if (msg != NULL)
        CHECK_CONTAINS(err.msg, msg);
}

static void test_rfc8949_integers(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        enum cbor_type type;
        uint64_t u;
    } v[] = {
        {"00", CBOR_UINT, 0},
        {"01", CBOR_UINT, 1},
        {"0a", CBOR_UINT, 10},
        {"17", CBOR_UINT, 23},
        {"1818", CBOR_UINT, 24},
        {"1819", CBOR_UINT, 25},
        {"1864", CBOR_UINT, 100},
        {"1903e8", CBOR_UINT, 1000},
        {"1a000f4240", CBOR_UINT, 1000000},
        {"1b000000e8d4a51000", CBOR_UINT, 1000000000000},
        {"1bffffffffffffffff", CBOR_UINT, UINT64_MAX},
        {"3bffffffffffffffff", CBOR_NEGINT, UINT64_MAX}, /* -18446744073709551616 */
        {"20", CBOR_NEGINT, 0},                          /* -1 */
        {"29", CBOR_NEGINT, 9},                          /* -10 */
        {"3863", CBOR_NEGINT, 99},                       /* -100 */
        {"3903e7", CBOR_NEGINT, 999},                    /* -1000 */
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(v); i++) {
        size_t n;
        uint8_t *p = unhex_alloc(v[i].hex, &n);
        struct cbor_tree *t;
        CHECK_OK(cbor_decode(&t, p, n, &cbor_doc_limits, NULL));
        CHECK_EQ(cbor_root(t)->type, v[i].type);
        CHECK(cbor_root(t)->u == v[i].u);
        cbor_tree_free(t);
        free(p);
        roundtrip(v[i].hex, NULL);
    }
}

static void test_rfc8949_strings_simple_tags(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "40",
        "4401020304",
        "60",
        "6161",
        "6449455446",
        "62225c",
        "62c3bc",
        "63e6b0b4",
        "64f0908591",
        "f4",
        "f5",
        "f6",
        "f7",
        /* Tags: 0 (date text), 1 (epoch), 2 (bignum), 23, 24, 32 (URI). */
        "c074323031332d30332d32315432303a30343a30305a",
        "c11a514b67b0",
        "c249010000000000000000",
        "c349010000000000000000",
        "d74401020304",
        "d818456449455446",
        "d82076687474703a2f2f7777772e6578616d706c652e636f6d",
    };
    struct cbor_tree *t;
    size_t n;
    uint8_t *p;

    for (size_t i = 0; i < KM_ARRAY_LEN(ok); i++)
        roundtrip(ok[i], NULL);

    p = unhex_alloc("6449455446", &n);
    CHECK_OK(cbor_decode(&t, p, n, &cbor_doc_limits, NULL));
    CHECK(cbor_text_eq(cbor_root(t), "IETF"));
    CHECK(!cbor_text_eq(cbor_root(t), "IETG"));
    CHECK(!cbor_text_eq(cbor_root(t), "IET"));
    cbor_tree_free(t);
    free(p);

    p = unhex_alloc("c249010000000000000000", &n);
    CHECK_OK(cbor_decode(&t, p, n, &cbor_doc_limits, NULL));
    CHECK_EQ(cbor_root(t)->type, CBOR_TAG);
    CHECK_EQ(cbor_root(t)->u, 2);
    CHECK_EQ(cbor_root(t)->count, 1);
    CHECK_EQ(cbor_root(t)->items[0].type, CBOR_BYTES);
    CHECK_EQ(cbor_root(t)->items[0].len, 9);
    cbor_tree_free(t);
    free(p);

    /* Not supported: floats and other simple values. */
    refused("f90000", KM_ERR_INVALID, "float");
    refused("f93c00", KM_ERR_INVALID, NULL);
    refused("fa47c35000", KM_ERR_INVALID, NULL);
    refused("fb3ff199999999999a", KM_ERR_INVALID, NULL);
    refused("f97c00", KM_ERR_INVALID, NULL);
    refused("f0", KM_ERR_INVALID, "simple value");
    refused("f8ff", KM_ERR_INVALID, NULL);
    refused("f818", KM_ERR_INVALID, NULL);
    /* Reserved additional information. */
    refused("1c", KM_ERR_INVALID, "reserved");
    refused("3d", KM_ERR_INVALID, "reserved");
    refused("5e", KM_ERR_INVALID, "reserved");
    refused("fc", KM_ERR_INVALID, NULL);
}

static void test_rfc8949_containers(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "80",
        "83010203",
        "8301820203820405",
        "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
        "a0",
        "a201020304",
        "a26161016162820203",
        "826161a161626163",
        "a56161614161626142616361436164614461656145",
    };
    /* Indefinite containers and their definite equivalents. */
    static const struct {
        const char *in, *def;
    } indef[] = {
        {"9fff", "80"},
        {"9f018202039f0405ffff", "8301820203820405"},
        {"9f01820203820405ff", "8301820203820405"},
        {"83018202039f0405ff", "8301820203820405"},
        {"83019f0203ff820405", "8301820203820405"},
        {"9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff",
         "98190102030405060708090a0b0c0d0e0f101112131415161718181819"},
        {"bf61610161629f0203ffff", "a26161016162820203"},
        {"826161bf61626163ff", "826161a161626163"},
        {"bf6346756ef563416d7421ff", "a26346756ef563416d7421"},
    };
    struct cbor_tree *t;
    size_t n;
    uint8_t *p;

    for (size_t i = 0; i < KM_ARRAY_LEN(ok); i++)
        roundtrip(ok[i], NULL);
    for (size_t i = 0; i < KM_ARRAY_LEN(indef); i++)
        roundtrip(indef[i].in, indef[i].def);

    p = unhex_alloc("bf61610161629f0203ffff", &n);
    CHECK_OK(cbor_decode(&t, p, n, &cbor_doc_limits, NULL));
    const struct cbor_item *m = cbor_root(t);
    CHECK_EQ(m->type, CBOR_MAP);
    CHECK(m->indefinite);
    CHECK_EQ(m->count, 2);
    CHECK_EQ(cbor_map_get_text(m, "a")->u, 1);
    CHECK_EQ(cbor_map_get_text(m, "b")->type, CBOR_ARRAY);
    CHECK(cbor_map_get_text(m, "b")->indefinite);
    CHECK_EQ(cbor_map_get_text(m, "b")->count, 2);
    CHECK_NULL(cbor_map_get_text(m, "c"));
    CHECK_NULL(cbor_map_get_int(m, 1));
    CHECK_NULL(cbor_map_get_text(&m->items[1], "a")); /* not a map */
    CHECK_NULL(cbor_map_get_text(NULL, "a"));
    cbor_tree_free(t);
    free(p);

    /* Integer keys, negative ones included (COSE headers). */
    p = unhex_alloc("a3 01 3822 20 01 3b7ffffffffffffffe 02", &n);
    CHECK_OK(cbor_decode(&t, p, n, &cbor_doc_limits, NULL));
    m = cbor_root(t);
    CHECK_EQ(cbor_map_get_int(m, 1)->type, CBOR_NEGINT);
    CHECK_EQ(cbor_map_get_int(m, 1)->u, 34); /* -35 */
    CHECK_EQ(cbor_map_get_int(m, -1)->u, 1);
    CHECK_EQ(cbor_map_get_int(m, INT64_MIN + 1)->u, 2);
    CHECK_NULL(cbor_map_get_int(m, -35));
    CHECK_NULL(cbor_map_get_int(m, 0));
    CHECK_NULL(cbor_map_get_text(m, "a"));
    cbor_tree_free(t);
    free(p);
}

static void test_non_shortest(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "1800",
        "1817",
        "190000",
        "1900ff",
        "1a0000ffff",
        "1a00000000",
        "1b00000000ffffffff",
        "1b0000000000000000",
        "3800",
        "3817",
        "390001",
        "580141",
        "59000141",
        "780161",
        "9800",
        "990000",
        "b800",
        "d80000",
        "d900ff00",
        "81 1800",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++)
        refused(bad[i], KM_ERR_INVALID, "non-shortest");
    /* The shortest forms at each boundary are fine. */
    roundtrip("1818", NULL);
    roundtrip("190100", NULL);
}

static void test_refused_forms(void **state)
{
    (void)state;
    /* Indefinite-length strings (RFC 8949 A: streamed strings). */
    refused("5f42010243030405ff", KM_ERR_INVALID, "indefinite-length string");
    refused("7f657374726561646d696e67ff", KM_ERR_INVALID, "indefinite-length string");
    refused("5fff", KM_ERR_INVALID, "indefinite-length string");
    /* Indefinite length on integers and tags. */
    refused("1f", KM_ERR_INVALID, "indefinite length");
    refused("3f", KM_ERR_INVALID, "indefinite length");
    refused("df01", KM_ERR_INVALID, "indefinite length");
    /* Break outside an indefinite container, or after a map key. */
    refused("ff", KM_ERR_INVALID, "break outside");
    refused("81ff", KM_ERR_INVALID, "break outside");
    refused("bf01ff", KM_ERR_INVALID, "break after a map key");
    /* Trailing bytes. */
    refused("0000", KM_ERR_TRAILING_DATA, "1 trailing bytes at offset 1");
    refused("80ff", KM_ERR_TRAILING_DATA, NULL);
    refused("9fff00", KM_ERR_TRAILING_DATA, NULL);
    /* Truncation. */
    refused("", KM_ERR_INCOMPLETE, "empty");
    refused("18", KM_ERR_INCOMPLETE, NULL);
    refused("1b00000000", KM_ERR_INCOMPLETE, NULL);
    refused("4401", KM_ERR_INCOMPLETE, "runs past the end");
    refused("5bffffffffffffffff", KM_ERR_INCOMPLETE, NULL);
    refused("8301", KM_ERR_INCOMPLETE, NULL);
    refused("9f01", KM_ERR_INCOMPLETE, NULL);
    refused("a1", KM_ERR_INCOMPLETE, NULL);
    refused("c1", KM_ERR_INCOMPLETE, NULL);
}

static void test_utf8(void **state)
{
    (void)state;
    /* Valid: ASCII, 2-, 3- and 4-byte forms, the extremes. */
    roundtrip("6161", NULL);
    roundtrip("62c280", NULL);
    roundtrip("63efbfbf", NULL);
    roundtrip("64f0908080", NULL);
    roundtrip("64f48fbfbf", NULL);
    roundtrip("6100", NULL);
    /* Invalid. */
    static const char *const bad[] = {
        "61ff",       /* never valid */
        "6180",       /* lone continuation */
        "61c3",       /* truncated sequence */
        "62c080",     /* overlong NUL */
        "62c1bf",     /* overlong */
        "63e08080",   /* overlong 3-byte */
        "63eda080",   /* surrogate U+D800 */
        "63edbfbf",   /* surrogate U+DFFF */
        "64f0808080", /* overlong 4-byte */
        "64f4908080", /* above U+10FFFF */
        "64f5808080", /* lead byte past f4 */
        "62e282",     /* 3-byte cut short */
        "6261c3",     /* cut at the end */
        "63c3a9c3",   /* valid then cut */
        "62c341",     /* bad continuation */
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++)
        refused(bad[i], KM_ERR_INVALID, "not valid UTF-8");
    /* Byte strings are not checked. */
    roundtrip("42c080", NULL);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    refused("a201020103", KM_ERR_INVALID, "duplicate map key at offset 3");
    refused("a2616101616102", KM_ERR_INVALID, "duplicate map key");
    refused("bf01020103ff", KM_ERR_INVALID, "duplicate map key");
    refused("a2 2000 2000", KM_ERR_INVALID, "duplicate map key");
    refused("a240004000", KM_ERR_INVALID, "duplicate map key");
    refused("a2f600f600", KM_ERR_INVALID, "duplicate map key");
    refused("a2c10100c10100", KM_ERR_INVALID, "duplicate map key");
    /* A definite and an indefinite array with the same elements. */
    refused("a28101009f01ff00", KM_ERR_INVALID, "duplicate map key");
    refused("a2a1010200a1010200", KM_ERR_INVALID, "duplicate map key");
    /* Different values or types are different keys. */
    roundtrip("a2 0100 613100", NULL);
    roundtrip("a2 0100 2000", NULL);
    roundtrip("a2 4100 00 6100 00", NULL);
    roundtrip("a2c10100c20100", NULL);
    roundtrip("a2f400f500", NULL);
    roundtrip("a2 810100 810200", NULL);
    /* The same key in two different maps is fine. */
    roundtrip("82a10100a10100", NULL);
}

static void test_limits(void **state)
{
    (void)state;
    struct km_error err;
    struct cbor_limits lim;

    /* Depth: the root container is depth 1; scalars add none. */
    lim = big;
    lim.max_depth = 3;
    CHECK_OK(decode_hex("81818100", &lim, &err));
    CHECK_OK(decode_hex("8181c100", &lim, &err));
    CHECK_ERR(decode_hex("8181818100", &lim, &err), KM_ERR_TOO_LARGE);
    CHECK_CONTAINS(err.msg, "nesting deeper than 3");
    CHECK_ERR(decode_hex("c1c1c1c100", &lim, &err), KM_ERR_TOO_LARGE);
    CHECK_ERR(decode_hex("a101a101a10180", &lim, &err), KM_ERR_TOO_LARGE);
    lim.max_depth = 1;
    CHECK_OK(decode_hex("00", &lim, &err));
    CHECK_OK(decode_hex("83010203", &lim, &err));
    CHECK_ERR(decode_hex("8180", &lim, &err), KM_ERR_TOO_LARGE);

    /* Items in the whole tree. */
    lim = big;
    lim.max_items = 4;
    CHECK_OK(decode_hex("83010203", &lim, &err));
    CHECK_ERR(decode_hex("8401020304", &lim, &err), KM_ERR_TOO_LARGE);
    CHECK_CONTAINS(err.msg, "more than 4 items");
    CHECK_ERR(decode_hex("9f01020304ff", &lim, &err), KM_ERR_TOO_LARGE);
    CHECK_ERR(decode_hex("a201020304", &lim, &err), KM_ERR_TOO_LARGE);

    /* Elements of one container (pairs of a map). */
    lim = big;
    lim.max_container = 2;
    CHECK_OK(decode_hex("820102", &lim, &err));
    CHECK_OK(decode_hex("9f0102ff", &lim, &err));
    CHECK_OK(decode_hex("a201020304", &lim, &err));
    CHECK_OK(decode_hex("bf01020304ff", &lim, &err));
    CHECK_ERR(decode_hex("83010203", &lim, &err), KM_ERR_TOO_LARGE);
    CHECK_CONTAINS(err.msg, "array of 3 elements at offset 0 exceeds the limit of 2");
    CHECK_ERR(decode_hex("9f010203ff", &lim, &err), KM_ERR_TOO_LARGE);
    CHECK_ERR(decode_hex("a3010203040506", &lim, &err), KM_ERR_TOO_LARGE);
    CHECK_ERR(decode_hex("bf010203040506ff", &lim, &err), KM_ERR_TOO_LARGE);
    /* A huge claimed count is refused without allocating for it. */
    CHECK_ERR(decode_hex("9bffffffffffffffff", &lim, &err), KM_ERR_TOO_LARGE);
    CHECK_ERR(decode_hex("bbffffffffffffffff", &big, &err), KM_ERR_TOO_LARGE);
    CHECK_ERR(decode_hex("9b0000000100000000", &big, &err), KM_ERR_TOO_LARGE);
    /* Within the limit but not there: incomplete, not an allocation. */
    CHECK_ERR(decode_hex("9a000186a0", &big, &err), KM_ERR_INCOMPLETE);

    /* Input size. */
    lim = big;
    lim.max_input = 4;
    CHECK_OK(decode_hex("83010203", &lim, &err));
    CHECK_ERR(decode_hex("8401020304", &lim, &err), KM_ERR_TOO_LARGE);
    CHECK_CONTAINS(err.msg, "input of 5 bytes exceeds the limit of 4");

    /* The document limits. */
    CHECK_EQ(cbor_doc_limits.max_input, CBOR_DOC_MAX_INPUT);
    CHECK_EQ(cbor_doc_limits.max_depth, CBOR_DOC_MAX_DEPTH);
    CHECK_EQ(cbor_doc_limits.max_items, CBOR_DOC_MAX_ITEMS);
    CHECK_EQ(cbor_doc_limits.max_container, CBOR_DOC_MAX_CONTAINER);

    /* Deep nesting is capped whatever the limits say (recursion). */
    {
        size_t depth = 5000;
        uint8_t *p = malloc(depth + 1);
        struct cbor_tree *t;
        struct cbor_limits deep = {1u << 20, SIZE_MAX, SIZE_MAX, SIZE_MAX};
        memset(p, 0x81, depth);
        p[depth] = 0x00;
        CHECK_ERR(cbor_decode(&t, p, depth + 1, &deep, &err), KM_ERR_TOO_LARGE);
        memset(p, 0x9f, depth);
        CHECK_ERR(cbor_decode(&t, p, depth + 1, &deep, &err), KM_ERR_TOO_LARGE);
        memset(p, 0xc1, depth);
        CHECK_ERR(cbor_decode(&t, p, depth + 1, &deep, &err), KM_ERR_TOO_LARGE);
        /* 128 levels are allowed. */
        memset(p, 0x81, 128);
        p[128] = 0x00;
        CHECK_OK(cbor_decode(&t, p, 129, &deep, &err));
        cbor_tree_free(t);
        free(p);
    }
}

/* Every prefix of a real document is refused, never crashing. */
static void test_truncated_document(void **state)
{
    (void)state;
    size_t len;
    uint8_t *doc = nitro_doc("epsilon-2026-prod", &len);
    struct cbor_tree *t;
    struct km_error err;

    CHECK_OK(cbor_decode(&t, doc, len, &cbor_doc_limits, &err));
    CHECK_EQ(cbor_root(t)->type, CBOR_ARRAY);
    CHECK_EQ(cbor_root(t)->count, 4);
    cbor_tree_free(t);
    for (size_t n = 0; n < len; n++) {
        /* A fresh copy of exactly n bytes so ASan sees any over-read. */
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, doc, n);
        t = (struct cbor_tree *)1;
        int r = cbor_decode(&t, p, n, &cbor_doc_limits, &err);
        CHECK_ERR(r, KM_ERR_INCOMPLETE);
        CHECK_NULL(t);
        free(p);
    }
    /* One byte more is trailing data. */
    uint8_t *p = malloc(len + 1);
    memcpy(p, doc, len);
    p[len] = 0;
    CHECK_ERR(cbor_decode(&t, p, len + 1, &cbor_doc_limits, &err), KM_ERR_TRAILING_DATA);
    free(p);
    free(doc);
}

static void test_encoder(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        const char *hex;
    } u[] = {
        {0, "00"},
        {23, "17"},
        {24, "1818"},
        {255, "18ff"},
        {256, "190100"},
        {65535, "19ffff"},
        {65536, "1a00010000"},
        {0xffffffffu, "1affffffff"},
        {0x100000000u, "1b0000000100000000"},
        {UINT64_MAX, "1bffffffffffffffff"},
    };
    struct buf b;
    char hex[64];

    buf_init(&b, 1024);
    for (size_t i = 0; i < KM_ARRAY_LEN(u); i++) {
        buf_reset(&b);
        CHECK_OK(cbor_put_uint(&b, u[i].v));
        CHECK_STR_EQ(hex_encode(hex, sizeof(hex), buf_peek(&b), buf_len(&b)), u[i].hex);
    }
    buf_reset(&b);
    CHECK_OK(cbor_put_int(&b, INT64_MIN));
    CHECK_STR_EQ(hex_encode(hex, sizeof(hex), buf_peek(&b), buf_len(&b)), "3b7fffffffffffffff");
    buf_reset(&b);
    CHECK_OK(cbor_put_int(&b, INT64_MAX));
    CHECK_STR_EQ(hex_encode(hex, sizeof(hex), buf_peek(&b), buf_len(&b)), "1b7fffffffffffffff");
    buf_reset(&b);
    CHECK_OK(cbor_put_int(&b, -35));
    CHECK_OK(cbor_put_int(&b, -24));
    CHECK_OK(cbor_put_int(&b, -25));
    CHECK_OK(cbor_put_int(&b, 7));
    CHECK_STR_EQ(hex_encode(hex, sizeof(hex), buf_peek(&b), buf_len(&b)), "382237381807");

    /* A nested structure decodes back to the same values. */
    static const uint8_t blob[300] = {1, 2, 3};
    struct cbor_tree *t;
    buf_reset(&b);
    CHECK_OK(cbor_put_tag(&b, 18));
    CHECK_OK(cbor_put_map(&b, 5));
    CHECK_OK(cbor_put_text(&b, "blob"));
    CHECK_OK(cbor_put_bytes(&b, blob, sizeof(blob)));
    CHECK_OK(cbor_put_text(&b, "empty"));
    CHECK_OK(cbor_put_bytes(&b, NULL, 0));
    CHECK_OK(cbor_put_int(&b, -1));
    CHECK_OK(cbor_put_array(&b, 3));
    CHECK_OK(cbor_put_null(&b));
    CHECK_OK(cbor_put_bool(&b, true));
    CHECK_OK(cbor_put_bool(&b, false));
    CHECK_OK(cbor_put_uint(&b, 1000));
    CHECK_OK(cbor_put_text_n(&b, "hello world", 5));
    CHECK_OK(cbor_put_text(&b, ""));
    CHECK_OK(cbor_put_uint(&b, 0));
    CHECK_OK(cbor_decode(&t, buf_peek(&b), buf_len(&b), &cbor_doc_limits, NULL));
    const struct cbor_item *r = cbor_root(t), *m;
    CHECK_EQ(r->type, CBOR_TAG);
    CHECK_EQ(r->u, 18);
    m = &r->items[0];
    CHECK_EQ(m->type, CBOR_MAP);
    CHECK(!m->indefinite);
    CHECK_EQ(m->count, 5);
    CHECK_EQ(cbor_map_get_text(m, "blob")->len, sizeof(blob));
    CHECK_MEM_EQ(cbor_map_get_text(m, "blob")->ptr, blob, sizeof(blob));
    CHECK_EQ(cbor_map_get_text(m, "empty")->type, CBOR_BYTES);
    CHECK_EQ(cbor_map_get_text(m, "empty")->len, 0);
    const struct cbor_item *a = cbor_map_get_int(m, -1);
    CHECK_EQ(a->type, CBOR_ARRAY);
    CHECK_EQ(a->count, 3);
    CHECK_EQ(a->items[0].type, CBOR_NULL);
    CHECK_EQ(a->items[1].type, CBOR_TRUE);
    CHECK_EQ(a->items[2].type, CBOR_FALSE);
    CHECK(cbor_text_eq(cbor_map_get_int(m, 1000), "hello"));
    CHECK_EQ(cbor_map_get_text(m, "")->u, 0);
    cbor_tree_free(t);

    /* A failed append poisons the buffer: later puts fail too. */
    buf_release(&b);
    buf_init(&b, 4);
    CHECK_OK(cbor_put_uint(&b, 1));
    CHECK_ERR(cbor_put_bytes(&b, blob, 10), KM_ERR_TOO_LARGE);
    CHECK_ERR(cbor_put_null(&b), KM_ERR_TOO_LARGE);
    CHECK_ERR(cbor_put_text(&b, "a"), KM_ERR_TOO_LARGE);
    buf_release(&b);
    cbor_tree_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_rfc8949_integers),   TEST(test_rfc8949_strings_simple_tags),
        TEST(test_rfc8949_containers), TEST(test_non_shortest),
        TEST(test_refused_forms),      TEST(test_utf8),
        TEST(test_duplicate_keys),     TEST(test_limits),
        TEST(test_truncated_document), TEST(test_encoder),
    };
    return RUN_TESTS("unit.attest.cbor", tests);
}
