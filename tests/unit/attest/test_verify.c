/*
 * test_verify.c - attest_verify() on the real Nitro documents of
 * tests/data/nitro/: each good document is accepted at its time with the
 * AWS root and its fields match the .json beside it; the window edges,
 * the negative variants and every policy check are refused by the check
 * the README names.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "nitro_fixture.h"

#include "attest/policy.h"
#include "attest/verify.h"
#include "common/hex.h"
#include "common/banned.h"

struct fixture {
    uint8_t *root;
    size_t root_len;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->root = nitro_root(&f->root_len);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    free(f->root);
    free(f);
    return 0;
}

static struct attest_verify_opts opts_at(const struct fixture *f, uint64_t at)
{
    struct attest_verify_opts o;
    memset(&o, 0, sizeof(o));
    o.root_der = f->root;
    o.root_der_len = f->root_len;
    o.at_unix = at;
    return o;
}

/* Verifies tests/data/nitro/<name>.b64 and returns the check that failed
 * (ATTEST_CHECK_NONE on success), checking the return code agrees. */
static enum attest_check verify_file(const char *name, const struct attest_verify_opts *o,
                                     struct km_error *err)
{
    size_t len;
    uint8_t *doc = nitro_doc(name, &len);
    enum attest_check failed = ATTEST_CHECK_NONE;
    struct attest_doc d;

    int r = attest_verify(&d, &failed, doc, len, o, err);
    if (failed == ATTEST_CHECK_NONE) {
        CHECK_OK(r);
        CHECK(d.timestamp_ms > 0);
    } else {
        CHECK_NE(r, KM_OK);
        CHECK(err->msg[0] != '\0');
        /* Messages begin with the check name. */
        CHECK(strncmp(err->msg, attest_check_name(failed), strlen(attest_check_name(failed))) == 0);
        /* *out is cleared on failure. */
        CHECK_EQ(d.timestamp_ms, 0);
        CHECK_NULL(d.certificate.data);
    }
    attest_doc_clear(&d);
    free(doc);
    return failed;
}

static void check_opt_field(const json_t *j, const char *key, const struct attest_bytes *b)
{
    const json_t *v = json_object_get(j, key);
    if (json_is_null(v) || (json_is_string(v) && strcmp(json_string_value(v), "absent") == 0)) {
        CHECK(!b->present);
        CHECK_EQ(b->len, 0);
        return;
    }
    const char *hex = json_string_value(v);
    CHECK_NOT_NULL(hex);
    size_t n = strlen(hex) / 2;
    uint8_t *want = malloc(n + 1);
    nitro_unhex(want, n, hex);
    CHECK(b->present);
    CHECK_EQ(b->len, n);
    if (n > 0)
        CHECK_MEM_EQ(b->data, want, n);
    free(want);
}

/* The decoded fields against the .json. */
static void check_fields(const char *name, const struct attest_doc *d)
{
    json_t *j = nitro_json(name);
    json_t *pcrs = json_object_get(j, "pcrs");
    const json_t *cert = json_object_get(j, "certificate");
    const json_t *bundle = json_object_get(j, "cabundle");
    const char *key;
    json_t *val;
    char sha[65];
    size_t npcrs = 0;

    CHECK_STR_EQ(d->module_id, nitro_str(j, "module_id"));
    CHECK_EQ(d->timestamp_ms, nitro_uint(j, "timestamp_ms"));
    CHECK_STR_EQ(d->digest, nitro_str(j, "digest"));
    json_object_foreach(pcrs, key, val)
    {
        long idx = strtol(key, NULL, 10);
        uint8_t want[ATTEST_PCR_LEN];
        CHECK(idx >= 0 && idx < ATTEST_MAX_PCRS);
        nitro_unhex(want, ATTEST_PCR_LEN, json_string_value(val));
        CHECK(d->pcrs[idx].present);
        CHECK_EQ(d->pcrs[idx].len, ATTEST_PCR_LEN);
        CHECK_MEM_EQ(d->pcrs[idx].value, want, ATTEST_PCR_LEN);
        npcrs++;
    }
    CHECK_EQ(npcrs, nitro_uint(j, "pcr_count"));
    for (size_t i = 0; i < ATTEST_MAX_PCRS; i++)
        npcrs -= d->pcrs[i].present;
    CHECK_EQ(npcrs, 0);
    check_opt_field(j, "public_key", &d->public_key);
    check_opt_field(j, "user_data", &d->user_data);
    check_opt_field(j, "nonce", &d->nonce);
    CHECK_EQ(d->certificate.len, nitro_uint(cert, "der_len"));
    nitro_sha256_hex(sha, d->certificate.data, d->certificate.len);
    CHECK_STR_EQ(sha, nitro_str(cert, "sha256"));
    CHECK_EQ(d->cabundle_len, nitro_uint(j, "cabundle_len"));
    CHECK_EQ(d->cabundle_len, json_array_size(bundle));
    for (size_t i = 0; i < d->cabundle_len; i++) {
        nitro_sha256_hex(sha, d->cabundle[i].data, d->cabundle[i].len);
        CHECK_STR_EQ(sha, nitro_str(json_array_get(bundle, i), "sha256"));
    }
    json_decref(j);
}

static bool is_debug_doc(const char *name)
{
    return strstr(name, "debug") != NULL;
}

static void test_good_documents(void **state)
{
    struct fixture *f = *state;
    struct km_error err;

    for (size_t i = 0; i < nitro_ngood; i++) {
        const char *name = nitro_good_docs[i];
        json_t *j = nitro_json(name);
        struct attest_verify_opts o = opts_at(f, nitro_uint(j, "verify_at_unix"));
        struct attest_doc d;
        enum attest_check failed;
        size_t len;
        uint8_t *doc = nitro_doc(name, &len);

        o.allow_debug = is_debug_doc(name);
        int r = attest_verify(&d, &failed, doc, len, &o, &err);
        if (r != KM_OK)
            fail_msg("%s: %s", name, err.msg);
        CHECK_EQ(failed, ATTEST_CHECK_NONE);
        check_fields(name, &d);
        attest_doc_clear(&d);
        /* out may be NULL. */
        CHECK_OK(attest_verify(NULL, &failed, doc, len, &o, &err));
        CHECK_EQ(failed, ATTEST_CHECK_NONE);
        free(doc);
        json_decref(j);
    }
}

static void test_debug_document(void **state)
{
    struct fixture *f = *state;
    struct km_error err;
    json_t *j = nitro_json("eternis-2024-debug");
    struct attest_verify_opts o = opts_at(f, nitro_uint(j, "verify_at_unix"));

    CHECK(json_is_true(json_object_get(j, "debug_mode_pcrs_0_1_2_zero")));
    o.allow_debug = true;
    CHECK_EQ(verify_file("eternis-2024-debug", &o, &err), ATTEST_CHECK_NONE);
    o.allow_debug = false;
    CHECK_EQ(verify_file("eternis-2024-debug", &o, &err), ATTEST_CHECK_DEBUG);
    CHECK_CONTAINS(err.msg, "debug: PCR0, PCR1 and PCR2 are all zero");
    CHECK_EQ(err.code, KM_ERR_CRYPTO);
    /* The production documents are not debug-mode ones. */
    json_decref(j);
    j = nitro_json("cape-2022-prod");
    o = opts_at(f, nitro_uint(j, "verify_at_unix"));
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_NONE);
    json_decref(j);
}

static void test_validity_window(void **state)
{
    struct fixture *f = *state;
    struct km_error err;

    for (size_t i = 0; i < nitro_ngood; i++) {
        const char *name = nitro_good_docs[i];
        json_t *j = nitro_json(name);
        const json_t *w = json_object_get(j, "valid_window_unix");
        uint64_t from = (uint64_t)json_integer_value(json_array_get(w, 0));
        uint64_t to = (uint64_t)json_integer_value(json_array_get(w, 1));
        struct attest_verify_opts o;

        CHECK(from > 0 && to > from);
        o = opts_at(f, from);
        o.allow_debug = is_debug_doc(name);
        CHECK_EQ(verify_file(name, &o, &err), ATTEST_CHECK_NONE);
        o.at_unix = to;
        CHECK_EQ(verify_file(name, &o, &err), ATTEST_CHECK_NONE);
        o.at_unix = from - 1;
        CHECK_EQ(verify_file(name, &o, &err), ATTEST_CHECK_VALIDITY);
        CHECK_CONTAINS(err.msg, "validity: certificate is not yet valid");
        CHECK_CONTAINS(err.msg, "depth ");
        CHECK_EQ(err.code, KM_ERR_CRYPTO);
        o.at_unix = to + 1;
        CHECK_EQ(verify_file(name, &o, &err), ATTEST_CHECK_VALIDITY);
        CHECK_CONTAINS(err.msg, "validity: certificate has expired");
        /* at_unix == 0 is "now": every document here has expired. */
        o.at_unix = 0;
        CHECK_EQ(verify_file(name, &o, &err), ATTEST_CHECK_VALIDITY);
        CHECK_CONTAINS(err.msg, "expired");
        /* Past what X.509 can express. */
        o.at_unix = UINT64_MAX;
        CHECK_EQ(verify_file(name, &o, &err), ATTEST_CHECK_VALIDITY);
        json_decref(j);
    }
}

static void test_negative_variants(void **state)
{
    struct fixture *f = *state;
    struct km_error err;
    static const struct {
        const char *name;
        enum attest_check want;
        const char *msg;
    } cases[] = {
        {"cape-2022-prod-bad-payload", ATTEST_CHECK_SIGNATURE,
         "signature: the ES384 signature over the COSE Sig_structure does not verify with the "
         "leaf certificate's key"},
        {"cape-2022-prod-bad-signature", ATTEST_CHECK_SIGNATURE, "signature: the ES384"},
        {"cape-2022-prod-bad-root", ATTEST_CHECK_ROOT, "root: cabundle[0] is not the pinned root"},
        {"cape-2022-prod-bad-chain", ATTEST_CHECK_CHAIN, "chain: "},
        {"cape-2022-prod-bad-truncated", ATTEST_CHECK_DECODE, "decode: "},
        {"eternis-upstream-invalid", ATTEST_CHECK_SIGNATURE, "signature: the ES384"},
    };
    json_t *j = nitro_json("cape-2022-prod");
    uint64_t at = nitro_uint(j, "verify_at_unix");

    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        /* eternis-upstream-invalid is another document: its own time. */
        struct attest_verify_opts o = opts_at(f, at);
        if (strncmp(cases[i].name, "eternis", 7) == 0) {
            size_t len;
            uint8_t *doc = nitro_doc(cases[i].name, &len);
            struct attest_doc d;
            CHECK_OK(attest_doc_parse(&d, doc, len, &err));
            o.at_unix = d.timestamp_ms / 1000;
            o.allow_debug = true;
            attest_doc_clear(&d);
            free(doc);
        }
        enum attest_check got = verify_file(cases[i].name, &o, &err);
        if (got != cases[i].want)
            fail_msg("%s: want %s, got %s (%s)", cases[i].name, attest_check_name(cases[i].want),
                     attest_check_name(got), err.msg);
        CHECK_CONTAINS(err.msg, cases[i].msg);
    }
    /* The truncated document fails with the decoder's code. */
    {
        size_t len;
        uint8_t *doc = nitro_doc("cape-2022-prod-bad-truncated", &len);
        enum attest_check failed;
        struct attest_verify_opts o = opts_at(f, at);
        CHECK_ERR(attest_verify(NULL, &failed, doc, len, &o, &err), KM_ERR_INCOMPLETE);
        CHECK_EQ(failed, ATTEST_CHECK_DECODE);
        free(doc);
    }
    json_decref(j);
}

/* A one-set policy with every PCR of the .json. */
static void policy_from_json(struct attest_pcr_set *s, const char *name)
{
    json_t *j = nitro_json(name);
    const char *key;
    json_t *val;

    memset(s, 0, sizeof(*s));
    json_object_foreach(json_object_get(j, "pcrs"), key, val)
    {
        long idx = strtol(key, NULL, 10);
        nitro_unhex(s->value[idx], ATTEST_PCR_LEN, json_string_value(val));
        s->want[idx] = true;
    }
    json_decref(j);
}

static void test_pcr_policy(void **state)
{
    struct fixture *f = *state;
    struct km_error err;
    json_t *j = nitro_json("cape-2022-prod");
    struct attest_verify_opts o = opts_at(f, nitro_uint(j, "verify_at_unix"));
    struct attest_pcr_policy *pol = calloc(1, sizeof(*pol));

    o.pcrs = pol;
    /* nsets == 0: not checked. */
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_NONE);
    /* The right policy. */
    pol->nsets = 1;
    policy_from_json(&pol->sets[0], "cape-2022-prod");
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_NONE);
    /* Only PCR0/1/2/8 named. */
    for (size_t i = 0; i < ATTEST_MAX_PCRS; i++)
        pol->sets[0].want[i] = i <= 2 || i == 8;
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_NONE);
    /* A wrong PCR8. */
    pol->sets[0].value[8][47] ^= 1;
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_PCRS);
    CHECK_CONTAINS(err.msg, "pcrs: ");
    CHECK_CONTAINS(err.msg, "PCR8 differs");
    CHECK_CONTAINS(err.msg, "expected 6f1ff0f2a7a0b1c4...");
    CHECK_CONTAINS(err.msg, "got 6f1ff0f2a7a0b1c4...");
    CHECK_EQ(err.code, KM_ERR_CRYPTO);
    /* Two sets, the second matches (a rolling upgrade). */
    pol->nsets = 2;
    policy_from_json(&pol->sets[1], "cape-2022-prod");
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_NONE);
    /* Two sets, neither matches: the closest set is named. */
    policy_from_json(&pol->sets[0], "epsilon-2026-prod");
    pol->sets[1].value[3][0] ^= 0x80;
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_PCRS);
    CHECK_CONTAINS(err.msg, "none of the 2 allowed PCR sets");
    CHECK_CONTAINS(err.msg, "closest is set 1, where PCR3 differs");
    /* A PCR the document does not have. */
    pol->nsets = 1;
    memset(&pol->sets[0], 0, sizeof(pol->sets[0]));
    pol->sets[0].want[20] = true;
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_PCRS);
    CHECK_CONTAINS(err.msg, "PCR20 differs");
    CHECK_CONTAINS(err.msg, "got absent");
    /* Another document's policy. */
    policy_from_json(&pol->sets[0], "epsilon-2026-prod");
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_PCRS);
    CHECK_CONTAINS(err.msg, "PCR0 differs");
    free(pol);
    json_decref(j);
}

static void test_public_key_and_nonce(void **state)
{
    struct fixture *f = *state;
    struct km_error err;
    json_t *j = nitro_json("cape-2022-prod");
    struct attest_verify_opts o = opts_at(f, nitro_uint(j, "verify_at_unix"));
    uint8_t pk[32], nonce[12];

    nitro_unhex(pk, sizeof(pk), nitro_str(j, "public_key"));
    nitro_unhex(nonce, sizeof(nonce), nitro_str(j, "nonce"));
    o.public_key = pk;
    o.public_key_len = sizeof(pk);
    o.nonce = nonce;
    o.nonce_len = sizeof(nonce);
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_NONE);
    /* Wrong key. */
    pk[31] ^= 1;
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_PUBLIC_KEY);
    CHECK_CONTAINS(err.msg,
                   "public_key: the document's public_key (32 bytes, 15db1c67adc9fce9...)");
    pk[31] ^= 1;
    /* Right prefix, wrong length. */
    o.public_key_len = 31;
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_PUBLIC_KEY);
    o.public_key_len = sizeof(pk);
    /* Wrong nonce (checked after the key). */
    nonce[0] ^= 1;
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_NONCE);
    CHECK_CONTAINS(err.msg, "nonce: the document's nonce");
    nonce[0] ^= 1;
    o.nonce_len = 0;
    CHECK_EQ(verify_file("cape-2022-prod", &o, &err), ATTEST_CHECK_NONCE);
    json_decref(j);

    /* epsilon-2026-prod carries public_key = null: an expected key is
     * refused as absent. */
    j = nitro_json("epsilon-2026-prod");
    o = opts_at(f, nitro_uint(j, "verify_at_unix"));
    CHECK(json_is_null(json_object_get(j, "public_key")));
    o.public_key = pk;
    o.public_key_len = sizeof(pk);
    CHECK_EQ(verify_file("epsilon-2026-prod", &o, &err), ATTEST_CHECK_PUBLIC_KEY);
    CHECK_CONTAINS(err.msg, "public_key: the document carries no public_key");
    o.public_key = NULL;
    uint8_t n2[32];
    nitro_unhex(n2, sizeof(n2), nitro_str(j, "nonce"));
    o.nonce = n2;
    o.nonce_len = sizeof(n2);
    CHECK_EQ(verify_file("epsilon-2026-prod", &o, &err), ATTEST_CHECK_NONE);
    n2[5] ^= 4;
    CHECK_EQ(verify_file("epsilon-2026-prod", &o, &err), ATTEST_CHECK_NONCE);
    json_decref(j);
}

static void test_freshness(void **state)
{
    struct fixture *f = *state;
    struct km_error err;

    for (size_t i = 0; i < nitro_ngood; i++) {
        const char *name = nitro_good_docs[i];
        json_t *j = nitro_json(name);
        uint64_t at = nitro_uint(j, "verify_at_unix");
        uint64_t to = (uint64_t)json_integer_value(
            json_array_get(json_object_get(j, "valid_window_unix"), 1));
        struct attest_verify_opts o = opts_at(f, at + 120);

        CHECK(at + 120 < to); /* inside the validity window */
        o.allow_debug = is_debug_doc(name);
        o.max_age_secs = 60;
        CHECK_EQ(verify_file(name, &o, &err), ATTEST_CHECK_FRESHNESS);
        CHECK_CONTAINS(err.msg, "freshness: the document is 120 s old");
        o.max_age_secs = 121;
        CHECK_EQ(verify_file(name, &o, &err), ATTEST_CHECK_NONE);
        /* 0 = not checked. */
        o.max_age_secs = 0;
        CHECK_EQ(verify_file(name, &o, &err), ATTEST_CHECK_NONE);
        /* A timestamp up to 5 minutes in the future is tolerated, no more.
         * (The leaf became valid a few seconds before the timestamp.) */
        o.max_age_secs = 60;
        o.at_unix = at - 2;
        CHECK_EQ(verify_file(name, &o, &err), ATTEST_CHECK_NONE);
        json_decref(j);
    }
}

static void test_check_names(void **state)
{
    (void)state;
    CHECK_STR_EQ(attest_check_name(ATTEST_CHECK_NONE), "ok");
    CHECK_STR_EQ(attest_check_name(ATTEST_CHECK_DECODE), "decode");
    CHECK_STR_EQ(attest_check_name(ATTEST_CHECK_SIGNATURE), "signature");
    CHECK_STR_EQ(attest_check_name(ATTEST_CHECK_ROOT), "root");
    CHECK_STR_EQ(attest_check_name(ATTEST_CHECK_CHAIN), "chain");
    CHECK_STR_EQ(attest_check_name(ATTEST_CHECK_VALIDITY), "validity");
    CHECK_STR_EQ(attest_check_name(ATTEST_CHECK_FRESHNESS), "freshness");
    CHECK_STR_EQ(attest_check_name(ATTEST_CHECK_DEBUG), "debug");
    CHECK_STR_EQ(attest_check_name(ATTEST_CHECK_PCRS), "pcrs");
    CHECK_STR_EQ(attest_check_name(ATTEST_CHECK_PUBLIC_KEY), "public_key");
    CHECK_STR_EQ(attest_check_name(ATTEST_CHECK_NONCE), "nonce");
}

static void test_wrong_root_and_garbage(void **state)
{
    struct fixture *f = *state;
    struct km_error err;
    json_t *j = nitro_json("cape-2022-prod");
    struct attest_verify_opts o = opts_at(f, nitro_uint(j, "verify_at_unix"));
    enum attest_check failed;
    size_t len;
    uint8_t *doc = nitro_doc("cape-2022-prod", &len);
    uint8_t *root = malloc(f->root_len);

    /* A different pinned root (one byte of the signature changed). */
    memcpy(root, f->root, f->root_len);
    root[f->root_len - 1] ^= 1;
    o.root_der = root;
    CHECK_ERR(attest_verify(NULL, &failed, doc, len, &o, &err), KM_ERR_CRYPTO);
    CHECK_EQ(failed, ATTEST_CHECK_ROOT);
    CHECK_CONTAINS(err.msg, "641a0321a3e244ef...");
    /* The document's root pinned, but not parseable as a certificate. */
    o.root_der = (const uint8_t *)"x";
    o.root_der_len = 1;
    CHECK_ERR(attest_verify(NULL, &failed, doc, len, &o, &err), KM_ERR_CRYPTO);
    CHECK_EQ(failed, ATTEST_CHECK_ROOT);
    /* Garbage and empty input: decode errors, err filled, NULL err fine. */
    o = opts_at(f, 0);
    CHECK_ERR(attest_verify(NULL, &failed, doc, 0, &o, &err), KM_ERR_INCOMPLETE);
    CHECK_EQ(failed, ATTEST_CHECK_DECODE);
    CHECK_CONTAINS(err.msg, "decode: ");
    CHECK_ERR(attest_verify(NULL, &failed, (const uint8_t *)"\x84\x01", 2, &o, NULL),
              KM_ERR_INCOMPLETE);
    CHECK_EQ(failed, ATTEST_CHECK_DECODE);
    CHECK_ERR(attest_verify(NULL, &failed, doc, len - 1, &o, NULL), KM_ERR_INCOMPLETE);
    free(root);
    free(doc);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debug_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validity_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pcr_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_key_and_nonce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freshness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_root_and_garbage, setup, teardown),
        TEST(test_check_names),
    };
    return RUN_TESTS("unit.attest.verify", tests);
}
