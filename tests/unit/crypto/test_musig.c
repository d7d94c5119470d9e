/*
 * test_musig.c - MuSig2 beyond the official vectors: full signing rounds
 * with random keys (2, 3 and 40 signers, the last crossing the 32-point
 * aggregation chunks), tweaks, single-use secret nonces, culprit detection,
 * API misuse that must be refused, and bad encodings.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "common/secure.h"
#include "crypto/keypair.h"
#include "crypto/musig.h"
#include "crypto/schnorr.h"
#include "crypto/taproot.h"
#include "common/banned.h"

#define MAXN 40

struct party {
    size_t n;
    struct keypair kp[MAXN];
    uint8_t pks[MAXN][33];
    struct musig_keyagg *ka;
};

static void party_init(struct party *p, size_t n, int sort)
{
    p->n = n;
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(keypair_generate(&p->kp[i]));
        memcpy(p->pks[i], p->kp[i].pubkey, 33);
    }
    if (sort)
        musig_key_sort(p->pks, n);
    CHECK_OK(musig_keyagg_new(&p->ka, NULL, (const uint8_t(*)[33])p->pks, n));
}

static void party_clear(struct party *p)
{
    for (size_t i = 0; i < p->n; i++)
        keypair_clear(&p->kp[i]);
    musig_keyagg_free(p->ka);
}

/* One complete signing of msg by every party; returns the final signature
 * after checking every partial signature and the result. */
static void sign_all(uint8_t sig[64], const struct party *p, const uint8_t *msg, size_t msglen)
{
    struct musig_secnonce *sn[MAXN];
    uint8_t pn_bytes[MAXN][66], psig[MAXN][32], xonly[32];
    struct musig_pubnonce pn[MAXN];
    struct musig_aggnonce an;
    struct musig_session s;

    musig_keyagg_xonly(p->ka, xonly);
    for (size_t i = 0; i < p->n; i++) {
        CHECK_OK(musig_nonce_gen(&sn[i], pn_bytes[i], &p->kp[i], xonly, msg, msglen, NULL, 0));
        CHECK_OK(musig_pubnonce_parse(&pn[i], pn_bytes[i], 66));
    }
    CHECK_OK(musig_nonce_agg(&an, NULL, pn, p->n));
    CHECK_OK(musig_session_init(&s, p->ka, &an, msg, msglen, NULL, 0));
    for (size_t i = 0; i < p->n; i++) {
        size_t idx;
        CHECK_OK(musig_keyagg_find(p->ka, p->kp[i].pubkey, &idx));
        CHECK_OK(musig_partial_sign(psig[idx], NULL, sn[i], &p->kp[i], p->ka, &s));
        CHECK(musig_secnonce_is_used(sn[i]));
        musig_secnonce_free(sn[i]);
    }
    /* Verify in key order: the nonces must follow the same order. */
    for (size_t i = 0; i < p->n; i++) {
        size_t idx;
        CHECK_OK(musig_keyagg_find(p->ka, p->kp[i].pubkey, &idx));
        CHECK_OK(musig_partial_sig_verify(psig[idx], 32, &pn[i], p->ka, idx, &s));
    }
    CHECK_OK(musig_partial_sig_agg(sig, NULL, &s, (const uint8_t(*)[32])psig, p->n));
    CHECK_OK(schnorr_verify(sig, 64, msg, msglen, xonly, 32));
}

static void test_round_trip_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 40};
    for (size_t k = 0; k < KM_ARRAY_LEN(sizes); k++) {
        struct party p;
        uint8_t msg[32], sig[64];
        CHECK_OK(secure_random(msg, sizeof(msg)));
        party_init(&p, sizes[k], 1);
        CHECK_EQ(musig_keyagg_count(p.ka), sizes[k]);
        sign_all(sig, &p, msg, sizeof(msg));
        /* Empty and long messages too. */
        sign_all(sig, &p, (const uint8_t *)"", 0);
        sign_all(sig, &p, (const uint8_t *)"a longer message than thirty-two bytes, signed", 46);
        party_clear(&p);
    }
}

static void test_tweaks(void **state)
{
    (void)state;
    struct party p;
    uint8_t msg[32] = {1}, sig[64], t[32], plain[33], x0[32], x1[32], out[32];

    party_init(&p, 3, 1);
    musig_keyagg_xonly(p.ka, x0);
    /* A plain (BIP-32 style) tweak, then an x-only one, then Taproot. */
    CHECK_OK(secure_random(t, sizeof(t)));
    t[0] &= 0x7f;
    CHECK_OK(musig_keyagg_apply_tweak(p.ka, NULL, t, 0));
    musig_keyagg_plain(p.ka, plain);
    CHECK(plain[0] == 2 || plain[0] == 3);
    sign_all(sig, &p, msg, sizeof(msg));
    CHECK_OK(musig_keyagg_apply_tweak(p.ka, NULL, t, 1));
    sign_all(sig, &p, msg, sizeof(msg));
    musig_keyagg_xonly(p.ka, x1);
    CHECK_OK(taproot_musig_tweak(p.ka, NULL));
    CHECK_OK(taproot_output_key(out, NULL, x1, 32, NULL));
    musig_keyagg_xonly(p.ka, x1);
    CHECK_MEM_EQ(x1, out, 32);
    sign_all(sig, &p, msg, sizeof(msg));
    CHECK(memcmp(x0, x1, 32) != 0);

    /* Out-of-range tweak: refused, context unchanged. */
    struct musig_blame b;
    memset(t, 0xff, sizeof(t));
    CHECK_ERR(musig_keyagg_apply_tweak(p.ka, &b, t, 1), KM_ERR_RANGE);
    CHECK_EQ(b.reason, MUSIG_R_TWEAK_RANGE);
    musig_keyagg_xonly(p.ka, x0);
    CHECK_MEM_EQ(x0, x1, 32);
    party_clear(&p);
}

static void test_dup_keeps_original(void **state)
{
    (void)state;
    struct party p;
    struct musig_keyagg *copy;
    uint8_t t[32] = {0}, a[32], b[32], pk[33];

    party_init(&p, 2, 0);
    CHECK_OK(musig_keyagg_dup(&copy, p.ka));
    t[31] = 7;
    CHECK_OK(musig_keyagg_apply_tweak(copy, NULL, t, 1));
    musig_keyagg_xonly(p.ka, a);
    musig_keyagg_xonly(copy, b);
    CHECK(memcmp(a, b, 32) != 0);
    musig_keyagg_pubkey(copy, 1, pk);
    CHECK_MEM_EQ(pk, p.pks[1], 33);
    musig_keyagg_free(copy);
    musig_keyagg_free(NULL);
    party_clear(&p);
}

static void test_duplicate_and_identical_keys(void **state)
{
    (void)state;
    struct keypair kp;
    uint8_t pks[3][33], msg[32] = {9}, sig[64];
    struct party p;

    /* All keys equal: no second key, every coefficient hashed. */
    CHECK_OK(keypair_generate(&kp));
    for (int i = 0; i < 3; i++)
        memcpy(pks[i], kp.pubkey, 33);
    struct musig_keyagg *ka;
    CHECK_OK(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])pks, 3));
    musig_keyagg_free(ka);
    keypair_clear(&kp);

    /* Keys [A, B, A]: A holds two signer slots and signs twice. */
    party_init(&p, 2, 0);
    musig_keyagg_free(p.ka);
    memcpy(pks[0], p.pks[0], 33);
    memcpy(pks[1], p.pks[1], 33);
    memcpy(pks[2], p.pks[0], 33);
    CHECK_OK(musig_keyagg_new(&p.ka, NULL, (const uint8_t(*)[33])pks, 3));
    {
        static const int who[3] = {0, 1, 0};
        struct musig_secnonce *sn[3];
        uint8_t pnb[3][66], psig[3][32], xonly[32];
        struct musig_pubnonce pn[3];
        struct musig_aggnonce an;
        struct musig_session s;
        size_t idx;

        CHECK_OK(musig_keyagg_find(p.ka, pks[2], &idx));
        CHECK_EQ(idx, 0);
        for (int i = 0; i < 3; i++) {
            CHECK_OK(musig_nonce_gen(&sn[i], pnb[i], &p.kp[who[i]], NULL, NULL, 0, NULL, 0));
            CHECK_OK(musig_pubnonce_parse(&pn[i], pnb[i], 66));
        }
        CHECK_OK(musig_nonce_agg(&an, NULL, pn, 3));
        CHECK_OK(musig_session_init(&s, p.ka, &an, msg, 32, NULL, 0));
        for (int i = 0; i < 3; i++) {
            CHECK_OK(musig_partial_sign(psig[i], NULL, sn[i], &p.kp[who[i]], p.ka, &s));
            CHECK_OK(musig_partial_sig_verify(psig[i], 32, &pn[i], p.ka, (size_t)i, &s));
            musig_secnonce_free(sn[i]);
        }
        CHECK_OK(musig_partial_sig_agg(sig, NULL, &s, (const uint8_t(*)[32])psig, 3));
        musig_keyagg_xonly(p.ka, xonly);
        CHECK_OK(schnorr_verify(sig, 64, msg, 32, xonly, 32));
    }
    party_clear(&p);
}

static void test_secnonce_single_use(void **state)
{
    (void)state;
    struct party p;
    struct musig_secnonce *sn[2];
    uint8_t pnb[2][66], psig[32], again[32], msg[32] = {3}, zero[32] = {0};
    struct musig_aggnonce an;
    struct musig_session s;
    struct musig_blame b;

    party_init(&p, 2, 0);
    for (int i = 0; i < 2; i++)
        CHECK_OK(musig_nonce_gen(&sn[i], pnb[i], &p.kp[i], NULL, NULL, 0, NULL, 0));
    CHECK_OK(musig_nonce_agg_bytes(&an, NULL, (const uint8_t(*)[66])pnb, 2));
    CHECK_OK(musig_session_init(&s, p.ka, &an, msg, 32, NULL, 0));
    CHECK(!musig_secnonce_is_used(sn[0]));
    CHECK_OK(musig_partial_sign(psig, NULL, sn[0], &p.kp[0], p.ka, &s));
    CHECK_ERR(musig_partial_sign(again, &b, sn[0], &p.kp[0], p.ka, &s), KM_ERR_STATE);
    CHECK_EQ(b.reason, MUSIG_R_SECNONCE_USED);
    CHECK_MEM_EQ(again, zero, 32);

    /* A nonce is consumed even by a failing attempt (wrong key here). */
    CHECK_ERR(musig_partial_sign(again, &b, sn[1], &p.kp[0], p.ka, &s), KM_ERR_INVALID);
    CHECK_EQ(b.reason, MUSIG_R_SECNONCE_KEY);
    CHECK_ERR(musig_partial_sign(again, &b, sn[1], &p.kp[1], p.ka, &s), KM_ERR_STATE);
    musig_secnonce_free(sn[0]);
    musig_secnonce_free(sn[1]);
    musig_secnonce_free(NULL);
    party_clear(&p);
}

static void test_session_mismatch(void **state)
{
    (void)state;
    struct party p, q;
    struct musig_secnonce *sn;
    uint8_t pnb[66], psig[32], msg[32] = {4};
    struct musig_aggnonce an;
    struct musig_pubnonce pn;
    struct musig_session s;
    struct musig_blame b;

    party_init(&p, 2, 0);
    party_init(&q, 2, 0);
    CHECK_OK(musig_nonce_gen(&sn, pnb, &p.kp[0], NULL, NULL, 0, NULL, 0));
    CHECK_OK(musig_pubnonce_parse(&pn, pnb, 66));
    CHECK_OK(musig_nonce_agg(&an, NULL, &pn, 1));
    CHECK_OK(musig_session_init(&s, q.ka, &an, msg, 32, NULL, 0));
    CHECK_ERR(musig_partial_sign(psig, &b, sn, &p.kp[0], p.ka, &s), KM_ERR_STATE);
    CHECK_EQ(b.reason, MUSIG_R_SESSION_KEYAGG);
    CHECK_ERR(musig_partial_sig_verify(psig, 32, &pn, p.ka, 0, &s), KM_ERR_STATE);
    CHECK_ERR(musig_partial_sig_verify(psig, 32, &pn, q.ka, 5, &s), KM_ERR_RANGE);
    musig_secnonce_free(sn);
    party_clear(&p);
    party_clear(&q);
}

static void test_culprit_detection(void **state)
{
    (void)state;
    struct party p;
    struct musig_secnonce *sn[3];
    uint8_t pnb[3][66], psig[3][32], sig[64], xonly[32], msg[32] = {5};
    struct musig_pubnonce pn[3];
    struct musig_aggnonce an;
    struct musig_session s;
    struct musig_blame b;

    party_init(&p, 3, 0);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(musig_nonce_gen(&sn[i], pnb[i], &p.kp[i], NULL, msg, 32, NULL, 0));
        CHECK_OK(musig_pubnonce_parse(&pn[i], pnb[i], 66));
    }
    CHECK_OK(musig_nonce_agg(&an, NULL, pn, 3));
    CHECK_OK(musig_session_init(&s, p.ka, &an, msg, 32, NULL, 0));
    for (int i = 0; i < 3; i++)
        CHECK_OK(musig_partial_sign(psig[i], NULL, sn[i], &p.kp[i], p.ka, &s));
    /* Signer 1 sends garbage; only its partial signature fails. */
    psig[1][31] ^= 1;
    CHECK_OK(musig_partial_sig_verify(psig[0], 32, &pn[0], p.ka, 0, &s));
    CHECK_ERR(musig_partial_sig_verify(psig[1], 32, &pn[1], p.ka, 1, &s), KM_ERR_CRYPTO);
    CHECK_OK(musig_partial_sig_verify(psig[2], 32, &pn[2], p.ka, 2, &s));
    /* Wrong signer index or wrong nonce also fail. */
    psig[1][31] ^= 1;
    CHECK_ERR(musig_partial_sig_verify(psig[1], 32, &pn[1], p.ka, 2, &s), KM_ERR_CRYPTO);
    CHECK_ERR(musig_partial_sig_verify(psig[1], 32, &pn[2], p.ka, 1, &s), KM_ERR_CRYPTO);
    CHECK_ERR(musig_partial_sig_verify(psig[1], 31, &pn[1], p.ka, 1, &s), KM_ERR_INVALID);
    CHECK_OK(musig_partial_sig_agg(sig, NULL, &s, (const uint8_t(*)[32])psig, 3));
    musig_keyagg_xonly(p.ka, xonly);
    CHECK_OK(schnorr_verify(sig, 64, msg, 32, xonly, 32));
    /* An out-of-range partial signature is blamed on its signer. */
    memset(psig[2], 0xff, 32);
    CHECK_ERR(musig_partial_sig_agg(sig, &b, &s, (const uint8_t(*)[32])psig, 3), KM_ERR_INVALID);
    CHECK_EQ(b.reason, MUSIG_R_PSIG);
    CHECK_EQ(b.signer, 2);
    CHECK_ERR(musig_partial_sig_verify(psig[2], 32, &pn[2], p.ka, 2, &s), KM_ERR_INVALID);
    CHECK_ERR(musig_partial_sig_agg(sig, &b, &s, (const uint8_t(*)[32])psig, 0), KM_ERR_INVALID);
    CHECK_EQ(b.reason, MUSIG_R_COUNT);
    for (int i = 0; i < 3; i++)
        musig_secnonce_free(sn[i]);
    party_clear(&p);
}

static void test_signer_not_in_keys(void **state)
{
    (void)state;
    struct party p;
    struct keypair outsider;
    struct musig_secnonce *sn;
    uint8_t pnb[66], psig[32], msg[32] = {6};
    struct musig_aggnonce an;
    struct musig_session s;
    struct musig_blame b;

    party_init(&p, 2, 0);
    CHECK_OK(keypair_generate(&outsider));
    CHECK_OK(musig_nonce_gen(&sn, pnb, &outsider, NULL, NULL, 0, NULL, 0));
    CHECK_OK(musig_nonce_agg_bytes(&an, NULL, (const uint8_t(*)[66]) & pnb, 1));
    CHECK_OK(musig_session_init(&s, p.ka, &an, msg, 32, NULL, 0));
    CHECK_ERR(musig_partial_sign(psig, &b, sn, &outsider, p.ka, &s), KM_ERR_INVALID);
    CHECK_EQ(b.reason, MUSIG_R_SIGNER_NOT_FOUND);
    musig_secnonce_free(sn);
    keypair_clear(&outsider);
    party_clear(&p);
}

static void test_nonce_infinity(void **state)
{
    (void)state;
    /* Nonces that cancel out give 33 zero bytes per half; signing proceeds
     * with R = G and the result still verifies as a partial signature. */
    struct party p;
    struct musig_secnonce *sn;
    uint8_t pnb[2][66], psig[32], msg[32] = {7};
    struct musig_aggnonce an;
    struct musig_pubnonce pn;
    struct musig_session s;
    static const uint8_t zero[66];

    party_init(&p, 2, 0);
    CHECK_OK(musig_nonce_gen(&sn, pnb[0], &p.kp[0], NULL, NULL, 0, NULL, 0));
    memcpy(pnb[1], pnb[0], 66);
    pnb[1][0] ^= 1; /* 02 <-> 03: the negation */
    pnb[1][33] ^= 1;
    CHECK_OK(musig_nonce_agg_bytes(&an, NULL, (const uint8_t(*)[66])pnb, 2));
    CHECK_MEM_EQ(an.bytes, zero, 66);
    CHECK(an.inf[0] && an.inf[1]);
    CHECK_OK(musig_session_init(&s, p.ka, &an, msg, 32, NULL, 0));
    CHECK_OK(musig_partial_sign(psig, NULL, sn, &p.kp[0], p.ka, &s));
    CHECK_OK(musig_pubnonce_parse(&pn, pnb[0], 66));
    CHECK_OK(musig_partial_sig_verify(psig, 32, &pn, p.ka, 0, &s));
    musig_secnonce_free(sn);
    party_clear(&p);
}

static void test_bad_encodings(void **state)
{
    (void)state;
    struct musig_pubnonce pn;
    struct musig_aggnonce an;
    struct musig_keyagg *ka;
    struct musig_blame b;
    uint8_t buf[67] = {0}, pks[2][33] = {{0}};
    struct keypair kp;

    CHECK_ERR(musig_pubnonce_parse(&pn, buf, 65), KM_ERR_INVALID);
    CHECK_ERR(musig_pubnonce_parse(&pn, buf, 67), KM_ERR_INVALID);
    CHECK_ERR(musig_pubnonce_parse(&pn, buf, 66), KM_ERR_INVALID); /* infinity not allowed */
    CHECK_OK(musig_aggnonce_parse(&an, buf, 66));                  /* ... but here it is */
    CHECK_ERR(musig_aggnonce_parse(&an, buf, 0), KM_ERR_INVALID);
    buf[0] = 4;
    CHECK_ERR(musig_aggnonce_parse(&an, buf, 66), KM_ERR_INVALID);

    CHECK_ERR(musig_keyagg_new(&ka, &b, (const uint8_t(*)[33])pks, 0), KM_ERR_INVALID);
    CHECK_EQ(b.reason, MUSIG_R_COUNT);
    CHECK_NULL(ka);
    CHECK_OK(keypair_generate(&kp));
    memcpy(pks[0], kp.pubkey, 33);
    pks[1][0] = 2; /* x = 0 is not on the curve */
    CHECK_ERR(musig_keyagg_new(&ka, &b, (const uint8_t(*)[33])pks, 2), KM_ERR_INVALID);
    CHECK_EQ(b.reason, MUSIG_R_PUBKEY);
    CHECK_EQ(b.signer, 1);
    /* A key and its negation aggregate... not to infinity (coefficients
     * differ), so this is a valid context. */
    memcpy(pks[1], kp.pubkey, 33);
    pks[1][0] ^= 1;
    CHECK_OK(musig_keyagg_new(&ka, &b, (const uint8_t(*)[33])pks, 2));
    musig_keyagg_free(ka);
    keypair_clear(&kp);
    CHECK(strlen(musig_reason_str(MUSIG_R_PSIG)) > 0);
    CHECK(strlen(musig_reason_str((enum musig_reason)999)) > 0);
}

static void test_session_adaptor_point_checked(void **state)
{
    (void)state;
    struct party p;
    struct musig_aggnonce an;
    struct musig_session s;
    uint8_t zero66[66] = {0}, bad[33] = {2};

    party_init(&p, 2, 0);
    CHECK_OK(musig_aggnonce_parse(&an, zero66, 66));
    CHECK_ERR(musig_session_init(&s, p.ka, &an, NULL, 0, bad, 33), KM_ERR_INVALID);
    CHECK_ERR(musig_session_init(&s, p.ka, &an, NULL, 0, p.pks[0], 32), KM_ERR_INVALID);
    CHECK_OK(musig_session_init(&s, p.ka, &an, NULL, 0, p.pks[0], 33));
    CHECK(s.has_adaptor);
    party_clear(&p);
}

static void test_deterministic_sign_round(void **state)
{
    (void)state;
    /* Two ordinary signers and a stateless last signer. */
    struct party p;
    struct musig_secnonce *sn[2];
    uint8_t pnb[3][66], psig[3][32], other[66], sig[64], xonly[32], msg[32] = {8};
    struct musig_aggnonce others, an;
    struct musig_session s;
    struct musig_pubnonce pn[3];

    party_init(&p, 3, 0);
    for (int i = 0; i < 2; i++)
        CHECK_OK(musig_nonce_gen(&sn[i], pnb[i], &p.kp[i], NULL, NULL, 0, NULL, 0));
    CHECK_OK(musig_nonce_agg_bytes(&others, NULL, (const uint8_t(*)[66])pnb, 2));
    memcpy(other, others.bytes, 66);
    CHECK_OK(
        musig_deterministic_sign(pnb[2], psig[2], NULL, &p.kp[2], other, 66, p.ka, msg, 32, NULL));
    CHECK_OK(musig_nonce_agg_bytes(&an, NULL, (const uint8_t(*)[66])pnb, 3));
    CHECK_OK(musig_session_init(&s, p.ka, &an, msg, 32, NULL, 0));
    for (int i = 0; i < 2; i++) {
        CHECK_OK(musig_partial_sign(psig[i], NULL, sn[i], &p.kp[i], p.ka, &s));
        musig_secnonce_free(sn[i]);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_OK(musig_pubnonce_parse(&pn[i], pnb[i], 66));
        CHECK_OK(musig_partial_sig_verify(psig[i], 32, &pn[i], p.ka, (size_t)i, &s));
    }
    CHECK_OK(musig_partial_sig_agg(sig, NULL, &s, (const uint8_t(*)[32])psig, 3));
    musig_keyagg_xonly(p.ka, xonly);
    CHECK_OK(schnorr_verify(sig, 64, msg, 32, xonly, 32));
    CHECK_ERR(
        musig_deterministic_sign(pnb[2], psig[2], NULL, &p.kp[2], other, 65, p.ka, msg, 32, NULL),
        KM_ERR_INVALID);
    party_clear(&p);
}

/* Adds 1 to up and takes 1 from down (scalars mod n): both partial
 * signatures turn invalid, their sum does not change. */
static void shift_one(uint8_t up[32], uint8_t down[32])
{
    uint8_t one[32] = {0}, neg[32];
    one[31] = 1;
    CHECK(secp256k1_ec_seckey_tweak_add(secp256k1_context_static, up, one));
    memcpy(neg, one, 32);
    CHECK(secp256k1_ec_seckey_negate(secp256k1_context_static, neg));
    CHECK(secp256k1_ec_seckey_tweak_add(secp256k1_context_static, down, neg));
}

static void test_agg_verify(void **state)
{
    (void)state;
    struct party p;
    struct musig_secnonce *sn[3];
    uint8_t pnb[3][66], psig[3][32], sig[64], xonly[32], msg[32] = {10}, zero[64] = {0};
    struct musig_pubnonce pn[3];
    struct musig_aggnonce an;
    struct musig_session s;
    struct musig_blame b;

    party_init(&p, 3, 0);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(musig_nonce_gen(&sn[i], pnb[i], &p.kp[i], NULL, msg, 32, NULL, 0));
        CHECK_OK(musig_pubnonce_parse(&pn[i], pnb[i], 66));
    }
    CHECK_OK(musig_nonce_agg(&an, NULL, pn, 3));
    CHECK_OK(musig_session_init(&s, p.ka, &an, msg, 32, NULL, 0));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(musig_partial_sign(psig[i], NULL, sn[i], &p.kp[i], p.ka, &s));
        musig_secnonce_free(sn[i]);
    }
    CHECK_OK(musig_partial_sig_agg_verify(sig, &b, p.ka, &s, pn, (const uint8_t(*)[32])psig, 3, msg,
                                          32));
    musig_keyagg_xonly(p.ka, xonly);
    CHECK_OK(schnorr_verify(sig, 64, msg, 32, xonly, 32));

    /* A bad partial signature is blamed, wherever it is (the last one is
     * the implied one: found through the failing final signature). */
    for (int bad = 0; bad < 3; bad++) {
        psig[bad][0] ^= 0x01;
        CHECK_ERR(musig_partial_sig_agg_verify(sig, &b, p.ka, &s, pn, (const uint8_t(*)[32])psig, 3,
                                               msg, 32),
                  KM_ERR_CRYPTO);
        CHECK_EQ(b.reason, MUSIG_R_PSIG_INVALID);
        CHECK_EQ(b.signer, bad);
        CHECK_MEM_EQ(sig, zero, 64);
        psig[bad][0] ^= 0x01;
    }
    /* Two colluders shifting value between them: the final signature is
     * still valid, but the shifted partial signature is named. */
    {
        uint8_t saved0[32], saved1[32];
        memcpy(saved0, psig[0], 32);
        memcpy(saved1, psig[1], 32);
        shift_one(psig[0], psig[1]);
        CHECK_ERR(musig_partial_sig_agg_verify(sig, &b, p.ka, &s, pn, (const uint8_t(*)[32])psig, 3,
                                               msg, 32),
                  KM_ERR_CRYPTO);
        CHECK_EQ(b.signer, 0);
        memcpy(psig[0], saved0, 32);
        memcpy(psig[1], saved1, 32);
    }
    /* Signer 0's partial signature known valid (the caller made and
     * verified it): signer 1 is then checked, signer 2 implied, and a
     * shift between 1 and 2 is still named. */
    {
        const bool known[3] = {true, false, false};
        uint8_t saved1[32], saved2[32];
        CHECK_OK(musig_partial_sig_agg_verify_known(sig, &b, p.ka, &s, pn,
                                                    (const uint8_t(*)[32])psig, known, 3, msg, 32));
        CHECK_OK(schnorr_verify(sig, 64, msg, 32, xonly, 32));
        memcpy(saved1, psig[1], 32);
        memcpy(saved2, psig[2], 32);
        shift_one(psig[2], psig[1]);
        CHECK_ERR(musig_partial_sig_agg_verify_known(sig, &b, p.ka, &s, pn,
                                                     (const uint8_t(*)[32])psig, known, 3, msg, 32),
                  KM_ERR_CRYPTO);
        CHECK_EQ(b.reason, MUSIG_R_PSIG_INVALID);
        CHECK_EQ(b.signer, 1);
        memcpy(psig[1], saved1, 32);
        memcpy(psig[2], saved2, 32);
        /* A bad one that is not known is named too, the implied one through
         * the failing final signature. */
        psig[2][0] ^= 0x01;
        CHECK_ERR(musig_partial_sig_agg_verify_known(sig, &b, p.ka, &s, pn,
                                                     (const uint8_t(*)[32])psig, known, 3, msg, 32),
                  KM_ERR_CRYPTO);
        CHECK_EQ(b.signer, 2);
        psig[2][0] ^= 0x01;
    }
    /* Another message than the session's: nobody to blame. */
    msg[0] ^= 1;
    CHECK_ERR(
        musig_partial_sig_agg_verify(sig, &b, p.ka, &s, pn, (const uint8_t(*)[32])psig, 3, msg, 32),
        KM_ERR_CRYPTO);
    CHECK_EQ(b.reason, MUSIG_R_NONE);
    msg[0] ^= 1;
    /* Wrong count, out-of-range psig. */
    CHECK_ERR(
        musig_partial_sig_agg_verify(sig, &b, p.ka, &s, pn, (const uint8_t(*)[32])psig, 2, msg, 32),
        KM_ERR_INVALID);
    CHECK_EQ(b.reason, MUSIG_R_COUNT);
    memset(psig[1], 0xff, 32);
    CHECK_ERR(
        musig_partial_sig_agg_verify(sig, &b, p.ka, &s, pn, (const uint8_t(*)[32])psig, 3, msg, 32),
        KM_ERR_INVALID);
    CHECK_EQ(b.reason, MUSIG_R_PSIG);
    CHECK_EQ(b.signer, 1);
    party_clear(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_round_trip_sizes),
        TEST(test_tweaks),
        TEST(test_dup_keeps_original),
        TEST(test_duplicate_and_identical_keys),
        TEST(test_secnonce_single_use),
        TEST(test_session_mismatch),
        TEST(test_culprit_detection),
        TEST(test_signer_not_in_keys),
        TEST(test_nonce_infinity),
        TEST(test_bad_encodings),
        TEST(test_session_adaptor_point_checked),
        TEST(test_deterministic_sign_round),
        TEST(test_agg_verify),
    };
    return RUN_TESTS("crypto.musig", tests);
}
