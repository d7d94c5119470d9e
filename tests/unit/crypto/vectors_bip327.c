/*
 * vectors_bip327.c - every case of every file in tests/data/vectors/bip327
 * (the committed official copies). Error cases must fail with the reason
 * and the culprit (signer index or nonce aggregator) the vector names.
 * Prints the number of cases passed per file.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvec.h"
#include "crypto/keypair.h"
#include "crypto/musig.h"
#include "crypto/musig_testonly.h"
#include "crypto/schnorr.h"
#include "common/banned.h"

#define MAXK 16

/* What a run ended with: KM_OK, or the blame the API reported. */
struct outcome {
    int code;
    struct musig_blame blame;
};

static void report(const char *file, size_t n)
{
    printf("bip327/%s: %zu cases passed\n", file, n);
    fflush(stdout);
}

/* Compares an outcome with a vector's "error" object. */
static void expect_error(const struct outcome *o, const json_t *err, const char *what)
{
    const char *type = json_string_value(json_object_get(err, "type"));
    enum musig_reason want = MUSIG_R_NONE;
    long signer = -1;

    if (o->code == KM_OK)
        fail_msg("%s: expected an error, got success", what);
    if (strcmp(type, "invalid_contribution") == 0) {
        const char *c = json_string_value(json_object_get(err, "contrib"));
        const json_t *s = json_object_get(err, "signer");
        if (strcmp(c, "pubkey") == 0)
            want = MUSIG_R_PUBKEY;
        else if (strcmp(c, "pubnonce") == 0)
            want = MUSIG_R_PUBNONCE;
        else if (strcmp(c, "aggnonce") == 0)
            want = MUSIG_R_AGGNONCE;
        else if (strcmp(c, "aggothernonce") == 0)
            want = MUSIG_R_AGGOTHERNONCE;
        else if (strcmp(c, "psig") == 0)
            want = MUSIG_R_PSIG;
        else
            fail_msg("%s: unknown contrib %s", what, c);
        signer = json_is_integer(s) ? (long)json_integer_value(s) : -1;
    } else if (strcmp(type, "value") == 0) {
        const char *m = json_string_value(json_object_get(err, "message"));
        if (strcmp(m, "The tweak must be less than n.") == 0)
            want = MUSIG_R_TWEAK_RANGE;
        else if (strcmp(m, "The result of tweaking cannot be infinity.") == 0)
            want = MUSIG_R_TWEAK_INFINITY;
        else if (strcmp(m, "The signer's pubkey must be included in the list of pubkeys.") == 0)
            want = MUSIG_R_SIGNER_NOT_FOUND;
        else if (strcmp(m, "first secnonce value is out of range.") == 0)
            want = MUSIG_R_SECNONCE_RANGE;
        else
            fail_msg("%s: unknown value error '%s'", what, m);
    } else {
        fail_msg("%s: unknown error type %s", what, type);
    }
    if (o->blame.reason != want || o->blame.signer != signer)
        fail_msg("%s: expected reason '%s' signer %ld, got '%s' signer %ld (code %s)", what,
                 musig_reason_str(want), signer, musig_reason_str(o->blame.reason), o->blame.signer,
                 km_errname(o->code));
}

/* Loads the keys named by key_indices. Returns their count. */
static size_t pick_keys(uint8_t (*out)[33], const json_t *pubkeys, const json_t *idx)
{
    size_t n = json_array_size(idx);
    CHECK(n <= MAXK);
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(pubkeys, cvec_index(idx, i));
        /* Some invalid keys in the vectors are not 33 bytes of hex. */
        size_t len;
        uint8_t *b = cvec_hex_alloc(s, &len);
        memset(out[i], 0, 33);
        memcpy(out[i], b, len < 33 ? len : 33);
        if (len != 33)
            out[i][0] = 0xff; /* keeps it invalid after truncation/padding */
        free(b);
    }
    return n;
}

static void pick_nonces(uint8_t (*out)[66], const json_t *pnonces, const json_t *idx)
{
    for (size_t i = 0; i < json_array_size(idx); i++)
        cvec_hex(out[i], 66, json_array_get(pnonces, cvec_index(idx, i)));
}

/* KeyAgg + tweaks; returns the outcome, *ka on success. Tweaks are given
 * either by index into `tweaks` (tweak_indices) or inline (hex list). */
static struct outcome keyagg_tweaked(struct musig_keyagg **ka, uint8_t (*keys)[33], size_t nk,
                                     const json_t *tweaks, const json_t *tweak_idx,
                                     const json_t *is_xonly)
{
    struct outcome o = {KM_OK, {MUSIG_R_NONE, -1}};

    *ka = NULL;
    o.code = musig_keyagg_new(ka, &o.blame, (const uint8_t(*)[33])keys, nk);
    if (o.code != KM_OK)
        return o;
    size_t nt = tweak_idx ? json_array_size(tweak_idx) : json_array_size(tweaks);
    CHECK_EQ(nt, json_array_size(is_xonly));
    for (size_t i = 0; i < nt; i++) {
        uint8_t t[32];
        const json_t *tj = tweak_idx ? json_array_get(tweaks, cvec_index(tweak_idx, i))
                                     : json_array_get(tweaks, i);
        cvec_hex(t, 32, tj);
        o.code =
            musig_keyagg_apply_tweak(*ka, &o.blame, t, json_is_true(json_array_get(is_xonly, i)));
        if (o.code != KM_OK) {
            musig_keyagg_free(*ka);
            *ka = NULL;
            return o;
        }
    }
    return o;
}

/* ---- key_sort -------------------------------------------------------- */

static void test_key_sort(void **state)
{
    (void)state;
    json_t *v = cvec_load_json("bip327/key_sort_vectors.json");
    const json_t *pk = json_object_get(v, "pubkeys"),
                 *sorted = json_object_get(v, "sorted_pubkeys");
    size_t n = json_array_size(pk);
    uint8_t keys[MAXK][33], want[MAXK][33];

    CHECK(n <= MAXK);
    for (size_t i = 0; i < n; i++) {
        cvec_hex(keys[i], 33, json_array_get(pk, i));
        cvec_hex(want[i], 33, json_array_get(sorted, i));
    }
    musig_key_sort(keys, n);
    CHECK_MEM_EQ(keys, want, n * 33);
    report("key_sort_vectors.json", 1);
    json_decref(v);
}

/* ---- key_agg --------------------------------------------------------- */

static void test_key_agg(void **state)
{
    (void)state;
    json_t *v = cvec_load_json("bip327/key_agg_vectors.json");
    const json_t *pks = json_object_get(v, "pubkeys"), *tweaks = json_object_get(v, "tweaks");
    size_t count = 0, i;
    json_t *c;

    json_array_foreach(json_object_get(v, "valid_test_cases"), i, c)
    {
        uint8_t keys[MAXK][33], want[32], got[32];
        struct musig_keyagg *ka;
        size_t nk = pick_keys(keys, pks, json_object_get(c, "key_indices"));
        CHECK_OK(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])keys, nk));
        cvec_hex(want, 32, json_object_get(c, "expected"));
        musig_keyagg_xonly(ka, got);
        CHECK_MEM_EQ(got, want, 32);
        musig_keyagg_free(ka);
        count++;
    }
    json_array_foreach(json_object_get(v, "error_test_cases"), i, c)
    {
        uint8_t keys[MAXK][33];
        struct musig_keyagg *ka;
        size_t nk = pick_keys(keys, pks, json_object_get(c, "key_indices"));
        struct outcome o =
            keyagg_tweaked(&ka, keys, nk, tweaks, json_object_get(c, "tweak_indices"),
                           json_object_get(c, "is_xonly"));
        expect_error(&o, json_object_get(c, "error"),
                     json_string_value(json_object_get(c, "comment")));
        CHECK_NULL(ka);
        count++;
    }
    report("key_agg_vectors.json", count);
    json_decref(v);
}

/* ---- nonce_gen ------------------------------------------------------- */

static void test_nonce_gen(void **state)
{
    (void)state;
    json_t *v = cvec_load_json("bip327/nonce_gen_vectors.json");
    size_t count = 0, i;
    json_t *c;

    json_array_foreach(json_object_get(v, "test_cases"), i, c)
    {
        uint8_t rand_[32], sk[32], pk[33], aggpk[32], want_sn[97], want_pn[66];
        uint8_t got_sn[97], got_pn[66];
        uint8_t *msg = NULL, *extra = NULL;
        size_t msglen = 0, extralen = 0;
        const json_t *j;
        struct musig_secnonce *sn;

        cvec_hex(rand_, 32, json_object_get(c, "rand_"));
        cvec_hex(pk, 33, json_object_get(c, "pk"));
        int has_sk = json_is_string(j = json_object_get(c, "sk"));
        if (has_sk)
            cvec_hex(sk, 32, j);
        int has_aggpk = json_is_string(j = json_object_get(c, "aggpk"));
        if (has_aggpk)
            cvec_hex(aggpk, 32, j);
        if (json_is_string(j = json_object_get(c, "msg")))
            msg = cvec_hex_alloc(j, &msglen);
        if (json_is_string(j = json_object_get(c, "extra_in")))
            extra = cvec_hex_alloc(j, &extralen);
        cvec_hex(want_sn, 97, json_object_get(c, "expected_secnonce"));
        cvec_hex(want_pn, 66, json_object_get(c, "expected_pubnonce"));

        CHECK_OK(musig_testonly_nonce_gen(&sn, got_pn, rand_, has_sk ? sk : NULL, pk,
                                          has_aggpk ? aggpk : NULL, msg, msglen, extra, extralen));
        musig_testonly_secnonce_store(got_sn, sn);
        CHECK_MEM_EQ(got_sn, want_sn, 97);
        CHECK_MEM_EQ(got_pn, want_pn, 66);
        musig_secnonce_free(sn);
        free(msg);
        free(extra);
        count++;
    }
    report("nonce_gen_vectors.json", count);
    json_decref(v);
}

/* ---- nonce_agg ------------------------------------------------------- */

static void test_nonce_agg(void **state)
{
    (void)state;
    json_t *v = cvec_load_json("bip327/nonce_agg_vectors.json");
    const json_t *pn = json_object_get(v, "pnonces");
    size_t count = 0, i;
    json_t *c;

    json_array_foreach(json_object_get(v, "valid_test_cases"), i, c)
    {
        uint8_t nonces[MAXK][66], want[66];
        struct musig_aggnonce agg, parsed;
        const json_t *idx = json_object_get(c, "pnonce_indices");
        pick_nonces(nonces, pn, idx);
        CHECK_OK(
            musig_nonce_agg_bytes(&agg, NULL, (const uint8_t(*)[66])nonces, json_array_size(idx)));
        cvec_hex(want, 66, json_object_get(c, "expected"));
        CHECK_MEM_EQ(agg.bytes, want, 66);
        /* The encoding parses back to the same value. */
        CHECK_OK(musig_aggnonce_parse(&parsed, want, 66));
        CHECK_MEM_EQ(parsed.bytes, want, 66);
        count++;
    }
    json_array_foreach(json_object_get(v, "error_test_cases"), i, c)
    {
        uint8_t nonces[MAXK][66];
        struct musig_aggnonce agg;
        struct outcome o;
        const json_t *idx = json_object_get(c, "pnonce_indices");
        pick_nonces(nonces, pn, idx);
        o.code = musig_nonce_agg_bytes(&agg, &o.blame, (const uint8_t(*)[66])nonces,
                                       json_array_size(idx));
        expect_error(&o, json_object_get(c, "error"),
                     json_string_value(json_object_get(c, "comment")));
        count++;
    }
    report("nonce_agg_vectors.json", count);
    json_decref(v);
}

/* ---- sign_verify ----------------------------------------------------- */

/*
 * Runs Sign as the BIP does (KeyAgg, aggnonce decoding, session values,
 * Sign) and returns the outcome. An undecodable aggnonce is the nonce
 * aggregator's fault: musig_aggnonce_parse is the step that checks it.
 */
static struct outcome run_sign(uint8_t psig[32], uint8_t (*keys)[33], size_t nk,
                               const uint8_t aggnonce[66], const uint8_t *msg, size_t msglen,
                               const uint8_t secnonce[97], const struct keypair *kp,
                               const json_t *tweaks, const json_t *tweak_idx,
                               const json_t *is_xonly)
{
    struct musig_keyagg *ka;
    struct musig_aggnonce an;
    struct musig_session s;
    struct musig_secnonce *sn;
    json_t *empty = json_array();
    struct outcome o = keyagg_tweaked(&ka, keys, nk, tweaks ? tweaks : empty,
                                      tweaks ? tweak_idx : NULL, is_xonly ? is_xonly : empty);
    json_decref(empty);
    if (o.code != KM_OK)
        return o;
    if (musig_aggnonce_parse(&an, aggnonce, 66) != KM_OK) {
        o.code = KM_ERR_INVALID;
        o.blame.reason = MUSIG_R_AGGNONCE;
        o.blame.signer = -1;
        musig_keyagg_free(ka);
        return o;
    }
    CHECK_OK(musig_session_init(&s, ka, &an, msg, msglen, NULL, 0));
    CHECK_OK(musig_testonly_secnonce_load(&sn, secnonce));
    o.code = musig_partial_sign(psig, &o.blame, sn, kp, ka, &s);
    /* Whatever happened, the nonce is spent: a second attempt is refused. */
    CHECK(musig_secnonce_is_used(sn));
    {
        uint8_t again[32];
        struct musig_blame b;
        CHECK_ERR(musig_partial_sign(again, &b, sn, kp, ka, &s), KM_ERR_STATE);
        CHECK_EQ(b.reason, MUSIG_R_SECNONCE_USED);
    }
    musig_secnonce_free(sn);
    musig_keyagg_free(ka);
    return o;
}

/* Runs PartialSigVerify as the BIP states it. */
static struct outcome run_verify(const uint8_t psig[32], uint8_t (*keys)[33], size_t nk,
                                 uint8_t (*nonces)[66], const uint8_t *msg, size_t msglen,
                                 size_t signer, const json_t *tweaks, const json_t *tweak_idx,
                                 const json_t *is_xonly)
{
    struct musig_keyagg *ka;
    struct musig_aggnonce an;
    struct musig_session s;
    struct musig_pubnonce pn;
    json_t *empty = json_array();
    struct outcome o = {KM_OK, {MUSIG_R_NONE, -1}};

    o.code = musig_nonce_agg_bytes(&an, &o.blame, (const uint8_t(*)[66])nonces, nk);
    if (o.code != KM_OK) {
        json_decref(empty);
        return o;
    }
    o = keyagg_tweaked(&ka, keys, nk, tweaks ? tweaks : empty, tweaks ? tweak_idx : NULL,
                       is_xonly ? is_xonly : empty);
    json_decref(empty);
    if (o.code != KM_OK)
        return o;
    CHECK_OK(musig_session_init(&s, ka, &an, msg, msglen, NULL, 0));
    CHECK_OK(musig_pubnonce_parse(&pn, nonces[signer], 66));
    o.code = musig_partial_sig_verify(psig, 32, &pn, ka, signer, &s);
    musig_keyagg_free(ka);
    return o;
}

static void test_sign_verify(void **state)
{
    (void)state;
    json_t *v = cvec_load_json("bip327/sign_verify_vectors.json");
    const json_t *pks = json_object_get(v, "pubkeys"), *pns = json_object_get(v, "pnonces");
    const json_t *ans = json_object_get(v, "aggnonces"), *msgs = json_object_get(v, "msgs");
    const json_t *sns = json_object_get(v, "secnonces");
    uint8_t sk[32];
    struct keypair kp;
    size_t count = 0, i;
    json_t *c;

    cvec_hex(sk, 32, json_object_get(v, "sk"));
    CHECK_OK(keypair_init(&kp, sk));

    json_array_foreach(json_object_get(v, "valid_test_cases"), i, c)
    {
        uint8_t keys[MAXK][33], nonces[MAXK][66], aggnonce[66], secnonce[97], want[32], psig[32];
        size_t msglen;
        struct musig_aggnonce an;
        size_t nk = pick_keys(keys, pks, json_object_get(c, "key_indices"));
        const json_t *nidx = json_object_get(c, "nonce_indices");
        size_t signer = (size_t)json_integer_value(json_object_get(c, "signer_index"));
        uint8_t *msg = cvec_hex_alloc(
            json_array_get(msgs, (size_t)json_integer_value(json_object_get(c, "msg_index"))),
            &msglen);

        pick_nonces(nonces, pns, nidx);
        cvec_hex(
            aggnonce, 66,
            json_array_get(ans, (size_t)json_integer_value(json_object_get(c, "aggnonce_index"))));
        cvec_hex(secnonce, 97, json_array_get(sns, 0));
        cvec_hex(want, 32, json_object_get(c, "expected"));
        /* The listed aggnonce is NonceAgg of the listed pubnonces. */
        CHECK_OK(
            musig_nonce_agg_bytes(&an, NULL, (const uint8_t(*)[66])nonces, json_array_size(nidx)));
        CHECK_MEM_EQ(an.bytes, aggnonce, 66);

        struct outcome o =
            run_sign(psig, keys, nk, aggnonce, msg, msglen, secnonce, &kp, NULL, NULL, NULL);
        CHECK_OK(o.code);
        CHECK_MEM_EQ(psig, want, 32);
        o = run_verify(psig, keys, nk, nonces, msg, msglen, signer, NULL, NULL, NULL);
        CHECK_OK(o.code);
        free(msg);
        count++;
    }
    json_array_foreach(json_object_get(v, "sign_error_test_cases"), i, c)
    {
        uint8_t keys[MAXK][33], aggnonce[66], secnonce[97], psig[32];
        size_t msglen;
        size_t nk = pick_keys(keys, pks, json_object_get(c, "key_indices"));
        uint8_t *msg = cvec_hex_alloc(
            json_array_get(msgs, (size_t)json_integer_value(json_object_get(c, "msg_index"))),
            &msglen);
        cvec_hex(
            aggnonce, 66,
            json_array_get(ans, (size_t)json_integer_value(json_object_get(c, "aggnonce_index"))));
        cvec_hex(
            secnonce, 97,
            json_array_get(sns, (size_t)json_integer_value(json_object_get(c, "secnonce_index"))));
        struct outcome o =
            run_sign(psig, keys, nk, aggnonce, msg, msglen, secnonce, &kp, NULL, NULL, NULL);
        expect_error(&o, json_object_get(c, "error"),
                     json_string_value(json_object_get(c, "comment")));
        free(msg);
        count++;
    }
    json_array_foreach(json_object_get(v, "verify_fail_test_cases"), i, c)
    {
        uint8_t keys[MAXK][33], nonces[MAXK][66], psig[32];
        size_t msglen;
        size_t nk = pick_keys(keys, pks, json_object_get(c, "key_indices"));
        uint8_t *msg = cvec_hex_alloc(
            json_array_get(msgs, (size_t)json_integer_value(json_object_get(c, "msg_index"))),
            &msglen);
        pick_nonces(nonces, pns, json_object_get(c, "nonce_indices"));
        cvec_hex(psig, 32, json_object_get(c, "sig"));
        struct outcome o = run_verify(
            psig, keys, nk, nonces, msg, msglen,
            (size_t)json_integer_value(json_object_get(c, "signer_index")), NULL, NULL, NULL);
        CHECK(o.code == KM_ERR_CRYPTO || o.code == KM_ERR_INVALID);
        free(msg);
        count++;
    }
    json_array_foreach(json_object_get(v, "verify_error_test_cases"), i, c)
    {
        uint8_t keys[MAXK][33], nonces[MAXK][66], psig[32];
        size_t msglen;
        size_t nk = pick_keys(keys, pks, json_object_get(c, "key_indices"));
        uint8_t *msg = cvec_hex_alloc(
            json_array_get(msgs, (size_t)json_integer_value(json_object_get(c, "msg_index"))),
            &msglen);
        pick_nonces(nonces, pns, json_object_get(c, "nonce_indices"));
        cvec_hex(psig, 32, json_object_get(c, "sig"));
        struct outcome o = run_verify(
            psig, keys, nk, nonces, msg, msglen,
            (size_t)json_integer_value(json_object_get(c, "signer_index")), NULL, NULL, NULL);
        expect_error(&o, json_object_get(c, "error"),
                     json_string_value(json_object_get(c, "comment")));
        free(msg);
        count++;
    }
    keypair_clear(&kp);
    report("sign_verify_vectors.json", count);
    json_decref(v);
}

/* ---- tweak ----------------------------------------------------------- */

static void test_tweak(void **state)
{
    (void)state;
    json_t *v = cvec_load_json("bip327/tweak_vectors.json");
    const json_t *pks = json_object_get(v, "pubkeys"), *pns = json_object_get(v, "pnonces");
    const json_t *tweaks = json_object_get(v, "tweaks");
    uint8_t sk[32], aggnonce[66], secnonce[97], msg[32];
    struct keypair kp;
    size_t count = 0, i;
    json_t *c;

    cvec_hex(sk, 32, json_object_get(v, "sk"));
    CHECK_OK(keypair_init(&kp, sk));
    cvec_hex(aggnonce, 66, json_object_get(v, "aggnonce"));
    cvec_hex(secnonce, 97, json_object_get(v, "secnonce"));
    cvec_hex(msg, 32, json_object_get(v, "msg"));

    json_array_foreach(json_object_get(v, "valid_test_cases"), i, c)
    {
        uint8_t keys[MAXK][33], nonces[MAXK][66], want[32], psig[32];
        struct musig_aggnonce an;
        size_t nk = pick_keys(keys, pks, json_object_get(c, "key_indices"));
        const json_t *nidx = json_object_get(c, "nonce_indices");
        const json_t *tidx = json_object_get(c, "tweak_indices");
        const json_t *xo = json_object_get(c, "is_xonly");
        size_t signer = (size_t)json_integer_value(json_object_get(c, "signer_index"));

        pick_nonces(nonces, pns, nidx);
        CHECK_OK(
            musig_nonce_agg_bytes(&an, NULL, (const uint8_t(*)[66])nonces, json_array_size(nidx)));
        CHECK_MEM_EQ(an.bytes, aggnonce, 66);
        cvec_hex(want, 32, json_object_get(c, "expected"));
        struct outcome o =
            run_sign(psig, keys, nk, aggnonce, msg, 32, secnonce, &kp, tweaks, tidx, xo);
        CHECK_OK(o.code);
        CHECK_MEM_EQ(psig, want, 32);
        o = run_verify(psig, keys, nk, nonces, msg, 32, signer, tweaks, tidx, xo);
        CHECK_OK(o.code);
        count++;
    }
    json_array_foreach(json_object_get(v, "error_test_cases"), i, c)
    {
        uint8_t keys[MAXK][33], psig[32];
        size_t nk = pick_keys(keys, pks, json_object_get(c, "key_indices"));
        struct outcome o =
            run_sign(psig, keys, nk, aggnonce, msg, 32, secnonce, &kp, tweaks,
                     json_object_get(c, "tweak_indices"), json_object_get(c, "is_xonly"));
        expect_error(&o, json_object_get(c, "error"),
                     json_string_value(json_object_get(c, "comment")));
        count++;
    }
    keypair_clear(&kp);
    report("tweak_vectors.json", count);
    json_decref(v);
}

/* ---- det_sign -------------------------------------------------------- */

static struct outcome run_det_sign(uint8_t pubnonce[66], uint8_t psig[32], const json_t *c,
                                   const json_t *pks, const json_t *msgs, const struct keypair *kp,
                                   struct musig_keyagg **ka_out)
{
    uint8_t keys[MAXK][33], other[66], rand_[32];
    size_t msglen;
    struct musig_keyagg *ka;
    size_t nk = pick_keys(keys, pks, json_object_get(c, "key_indices"));
    const json_t *rj = json_object_get(c, "rand");
    uint8_t *msg = cvec_hex_alloc(
        json_array_get(msgs, (size_t)json_integer_value(json_object_get(c, "msg_index"))), &msglen);
    struct outcome o = keyagg_tweaked(&ka, keys, nk, json_object_get(c, "tweaks"), NULL,
                                      json_object_get(c, "is_xonly"));

    *ka_out = NULL;
    if (o.code == KM_OK) {
        cvec_hex(other, 66, json_object_get(c, "aggothernonce"));
        if (json_is_string(rj))
            cvec_hex(rand_, 32, rj);
        o.code = musig_deterministic_sign(pubnonce, psig, &o.blame, kp, other, 66, ka, msg, msglen,
                                          json_is_string(rj) ? rand_ : NULL);
        *ka_out = ka;
    }
    free(msg);
    return o;
}

static void test_det_sign(void **state)
{
    (void)state;
    json_t *v = cvec_load_json("bip327/det_sign_vectors.json");
    const json_t *pks = json_object_get(v, "pubkeys"), *msgs = json_object_get(v, "msgs");
    uint8_t sk[32];
    struct keypair kp;
    size_t count = 0, i;
    json_t *c;

    cvec_hex(sk, 32, json_object_get(v, "sk"));
    CHECK_OK(keypair_init(&kp, sk));

    json_array_foreach(json_object_get(v, "valid_test_cases"), i, c)
    {
        uint8_t pubnonce[66], psig[32], want_pn[66], want_psig[32], other[66];
        struct musig_keyagg *ka;
        const json_t *exp = json_object_get(c, "expected");
        struct outcome o = run_det_sign(pubnonce, psig, c, pks, msgs, &kp, &ka);
        CHECK_OK(o.code);
        cvec_hex(want_pn, 66, json_array_get(exp, 0));
        cvec_hex(want_psig, 32, json_array_get(exp, 1));
        CHECK_MEM_EQ(pubnonce, want_pn, 66);
        CHECK_MEM_EQ(psig, want_psig, 32);

        /* The partial signature verifies against NonceAgg(pubnonce,
         * aggothernonce). */
        {
            uint8_t both[2][66];
            struct musig_aggnonce an;
            struct musig_session s;
            struct musig_pubnonce pn;
            size_t msglen, signer;
            uint8_t *msg = cvec_hex_alloc(
                json_array_get(msgs, (size_t)json_integer_value(json_object_get(c, "msg_index"))),
                &msglen);
            cvec_hex(other, 66, json_object_get(c, "aggothernonce"));
            memcpy(both[0], pubnonce, 66);
            memcpy(both[1], other, 66);
            CHECK_OK(musig_nonce_agg_bytes(&an, NULL, (const uint8_t(*)[66])both, 2));
            CHECK_OK(musig_session_init(&s, ka, &an, msg, msglen, NULL, 0));
            CHECK_OK(musig_pubnonce_parse(&pn, pubnonce, 66));
            CHECK_OK(musig_keyagg_find(ka, kp.pubkey, &signer));
            CHECK_EQ(signer, (size_t)json_integer_value(json_object_get(c, "signer_index")));
            CHECK_OK(musig_partial_sig_verify(psig, 32, &pn, ka, signer, &s));
            free(msg);
        }
        musig_keyagg_free(ka);
        count++;
    }
    json_array_foreach(json_object_get(v, "error_test_cases"), i, c)
    {
        uint8_t pubnonce[66], psig[32], zero[66] = {0};
        struct musig_keyagg *ka;
        struct outcome o = run_det_sign(pubnonce, psig, c, pks, msgs, &kp, &ka);
        expect_error(&o, json_object_get(c, "error"),
                     json_string_value(json_object_get(c, "comment")));
        if (ka != NULL) {
            CHECK_MEM_EQ(pubnonce, zero, 66);
            CHECK_MEM_EQ(psig, zero, 32);
        }
        musig_keyagg_free(ka);
        count++;
    }
    keypair_clear(&kp);
    report("det_sign_vectors.json", count);
    json_decref(v);
}

/* ---- sig_agg --------------------------------------------------------- */

static void test_sig_agg(void **state)
{
    (void)state;
    json_t *v = cvec_load_json("bip327/sig_agg_vectors.json");
    const json_t *pks = json_object_get(v, "pubkeys"), *pns = json_object_get(v, "pnonces");
    const json_t *tweaks = json_object_get(v, "tweaks"), *psigs = json_object_get(v, "psigs");
    uint8_t msg[32];
    size_t count = 0, i;
    json_t *c;

    cvec_hex(msg, 32, json_object_get(v, "msg"));
    json_array_foreach(json_object_get(v, "valid_test_cases"), i, c)
    {
        uint8_t keys[MAXK][33], nonces[MAXK][66], aggnonce[66], ps[MAXK][32], want[64], sig[64];
        uint8_t xonly[32];
        struct musig_keyagg *ka;
        struct musig_aggnonce an, an2;
        struct musig_session s;
        const json_t *nidx = json_object_get(c, "nonce_indices");
        const json_t *pidx = json_object_get(c, "psig_indices");
        size_t nk = pick_keys(keys, pks, json_object_get(c, "key_indices"));
        struct outcome o =
            keyagg_tweaked(&ka, keys, nk, tweaks, json_object_get(c, "tweak_indices"),
                           json_object_get(c, "is_xonly"));
        CHECK_OK(o.code);
        pick_nonces(nonces, pns, nidx);
        cvec_hex(aggnonce, 66, json_object_get(c, "aggnonce"));
        CHECK_OK(musig_aggnonce_parse(&an, aggnonce, 66));
        CHECK_OK(
            musig_nonce_agg_bytes(&an2, NULL, (const uint8_t(*)[66])nonces, json_array_size(nidx)));
        CHECK_MEM_EQ(an2.bytes, aggnonce, 66);
        CHECK_OK(musig_session_init(&s, ka, &an, msg, 32, NULL, 0));
        for (size_t k = 0; k < json_array_size(pidx); k++) {
            struct musig_pubnonce pn;
            cvec_hex(ps[k], 32, json_array_get(psigs, cvec_index(pidx, k)));
            CHECK_OK(musig_pubnonce_parse(&pn, nonces[k], 66));
            CHECK_OK(musig_partial_sig_verify(ps[k], 32, &pn, ka, k, &s));
        }
        CHECK_OK(
            musig_partial_sig_agg(sig, NULL, &s, (const uint8_t(*)[32])ps, json_array_size(pidx)));
        cvec_hex(want, 64, json_object_get(c, "expected"));
        CHECK_MEM_EQ(sig, want, 64);
        musig_keyagg_xonly(ka, xonly);
        CHECK_OK(schnorr_verify(sig, 64, msg, 32, xonly, 32));
        musig_keyagg_free(ka);
        count++;
    }
    json_array_foreach(json_object_get(v, "error_test_cases"), i, c)
    {
        uint8_t keys[MAXK][33], aggnonce[66], ps[MAXK][32], sig[64];
        struct musig_keyagg *ka;
        struct musig_aggnonce an;
        struct musig_session s;
        const json_t *pidx = json_object_get(c, "psig_indices");
        size_t nk = pick_keys(keys, pks, json_object_get(c, "key_indices"));
        struct outcome o =
            keyagg_tweaked(&ka, keys, nk, tweaks, json_object_get(c, "tweak_indices"),
                           json_object_get(c, "is_xonly"));
        CHECK_OK(o.code);
        cvec_hex(aggnonce, 66, json_object_get(c, "aggnonce"));
        CHECK_OK(musig_aggnonce_parse(&an, aggnonce, 66));
        CHECK_OK(musig_session_init(&s, ka, &an, msg, 32, NULL, 0));
        for (size_t k = 0; k < json_array_size(pidx); k++)
            cvec_hex(ps[k], 32, json_array_get(psigs, cvec_index(pidx, k)));
        o.code = musig_partial_sig_agg(sig, &o.blame, &s, (const uint8_t(*)[32])ps,
                                       json_array_size(pidx));
        expect_error(&o, json_object_get(c, "error"),
                     json_string_value(json_object_get(c, "comment")));
        musig_keyagg_free(ka);
        count++;
    }
    report("sig_agg_vectors.json", count);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_key_sort),    TEST(test_key_agg), TEST(test_nonce_gen), TEST(test_nonce_agg),
        TEST(test_sign_verify), TEST(test_tweak),   TEST(test_det_sign),  TEST(test_sig_agg),
    };
    (void)test_vectors_dir(); /* fail early (exit 1) when absent */
    return RUN_TESTS("crypto.vectors_bip327", tests);
}
