/*
 * test_adaptor.c - MuSig2 adaptor signatures: pre-sign with T, verify the
 * pre-signature, adapt with t, extract t; both nonce parities; tampering.
 */
#include "test.h"

#include <string.h>

#include "common/secure.h"
#include "crypto/adaptor.h"
#include "crypto/keypair.h"
#include "crypto/musig.h"
#include "crypto/schnorr.h"
#include "common/banned.h"

struct presig_run {
    uint8_t t[32], T[33], presig[64], xonly[32], msg[32];
    int parity;
};

/* A 3-party MuSig2 pre-signing under a fresh adaptor point. */
static void presign(struct presig_run *run)
{
    struct keypair kp[3];
    uint8_t pks[3][33], pnb[3][66], psig[3][32];
    struct musig_secnonce *sn[3];
    struct musig_pubnonce pn[3];
    struct musig_keyagg *ka;
    struct musig_aggnonce an;
    struct musig_session s;

    CHECK_OK(secure_random(run->msg, 32));
    do {
        CHECK_OK(secure_random(run->t, 32));
    } while (adaptor_point(run->T, run->t) != KM_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(keypair_generate(&kp[i]));
        memcpy(pks[i], kp[i].pubkey, 33);
    }
    CHECK_OK(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])pks, 3));
    musig_keyagg_xonly(ka, run->xonly);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(musig_nonce_gen(&sn[i], pnb[i], &kp[i], run->xonly, run->msg, 32, NULL, 0));
        CHECK_OK(musig_pubnonce_parse(&pn[i], pnb[i], 66));
    }
    CHECK_OK(musig_nonce_agg(&an, NULL, pn, 3));
    CHECK_OK(musig_session_init(&s, ka, &an, run->msg, 32, run->T, 33));
    run->parity = musig_session_nonce_parity(&s);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(musig_partial_sign(psig[i], NULL, sn[i], &kp[i], ka, &s));
        /* Partial signatures verify as usual under the adaptor session. */
        CHECK_OK(musig_partial_sig_verify(psig[i], 32, &pn[i], ka, (size_t)i, &s));
        musig_secnonce_free(sn[i]);
        keypair_clear(&kp[i]);
    }
    CHECK_OK(musig_partial_sig_agg(run->presig, NULL, &s, (const uint8_t(*)[32])psig, 3));
    {
        /* The coordinator's checked aggregation gives the same pre-signature
         * and still names a bad partial signature (no final-signature
         * shortcut for pre-signatures). */
        uint8_t again[64];
        struct musig_blame b;
        CHECK_OK(musig_partial_sig_agg_verify(again, &b, ka, &s, pn, (const uint8_t(*)[32])psig, 3,
                                              run->msg, 32));
        CHECK_MEM_EQ(again, run->presig, 64);
        psig[2][5] ^= 1;
        CHECK_ERR(musig_partial_sig_agg_verify(again, &b, ka, &s, pn, (const uint8_t(*)[32])psig, 3,
                                               run->msg, 32),
                  KM_ERR_CRYPTO);
        CHECK_EQ(b.signer, 2);
        psig[2][5] ^= 1;
    }
    musig_keyagg_free(ka);
}

static void test_round_trip_both_parities(void **state)
{
    (void)state;
    int seen[2] = {0, 0};

    for (int round = 0; round < 64 && !(seen[0] >= 2 && seen[1] >= 2); round++) {
        struct presig_run run;
        uint8_t sig[64], t2[32];

        presign(&run);
        seen[run.parity]++;
        CHECK_OK(adaptor_presig_verify(run.presig, 64, run.parity, run.T, 33, run.xonly, 32,
                                       run.msg, 32));
        /* A pre-signature is not a signature. */
        CHECK_ERR(schnorr_verify(run.presig, 64, run.msg, 32, run.xonly, 32), KM_ERR_CRYPTO);
        CHECK_OK(adaptor_adapt(sig, run.presig, run.t, run.parity));
        CHECK_OK(schnorr_verify(sig, 64, run.msg, 32, run.xonly, 32));
        CHECK_OK(adaptor_extract(t2, sig, 64, run.presig, 64, run.parity, run.T, 33));
        CHECK_MEM_EQ(t2, run.t, 32);
        CHECK_OK(adaptor_extract(t2, sig, 64, run.presig, 64, run.parity, NULL, 0));
        CHECK_MEM_EQ(t2, run.t, 32);
    }
    CHECK(seen[0] >= 1 && seen[1] >= 1);
}

static void test_tamper(void **state)
{
    (void)state;
    struct presig_run run;
    uint8_t sig[64], bad[64], t2[32], wrong_t[32], wrong_T[33], zero[32] = {0};

    presign(&run);
    /* Every single-bit change of the pre-signature is caught. */
    for (size_t i = 0; i < 64; i++) {
        memcpy(bad, run.presig, 64);
        bad[i] ^= (uint8_t)(1u << (i % 8));
        CHECK(adaptor_presig_verify(bad, 64, run.parity, run.T, 33, run.xonly, 32, run.msg, 32) !=
              KM_OK);
    }
    /* Wrong parity, message, key or adaptor point. */
    CHECK(adaptor_presig_verify(run.presig, 64, !run.parity, run.T, 33, run.xonly, 32, run.msg,
                                32) != KM_OK);
    CHECK(adaptor_presig_verify(run.presig, 64, run.parity, run.T, 33, run.xonly, 32, run.msg,
                                31) != KM_OK);
    do {
        CHECK_OK(secure_random(wrong_t, 32));
    } while (adaptor_point(wrong_T, wrong_t) != KM_OK);
    CHECK_ERR(
        adaptor_presig_verify(run.presig, 64, run.parity, wrong_T, 33, run.xonly, 32, run.msg, 32),
        KM_ERR_CRYPTO);
    /* Lengths. */
    CHECK_ERR(
        adaptor_presig_verify(run.presig, 63, run.parity, run.T, 33, run.xonly, 32, run.msg, 32),
        KM_ERR_INVALID);
    CHECK_ERR(
        adaptor_presig_verify(run.presig, 64, run.parity, run.T, 32, run.xonly, 32, run.msg, 32),
        KM_ERR_INVALID);
    /* Adapting with the wrong secret gives an invalid signature. */
    CHECK_OK(adaptor_adapt(sig, run.presig, wrong_t, run.parity));
    CHECK_ERR(schnorr_verify(sig, 64, run.msg, 32, run.xonly, 32), KM_ERR_CRYPTO);
    /* Extracting against the wrong T, or from an unrelated signature. */
    CHECK_OK(adaptor_adapt(sig, run.presig, run.t, run.parity));
    CHECK_ERR(adaptor_extract(t2, sig, 64, run.presig, 64, run.parity, wrong_T, 33), KM_ERR_CRYPTO);
    CHECK_MEM_EQ(t2, zero, 32);
    memcpy(bad, sig, 64);
    bad[0] ^= 1;
    CHECK_ERR(adaptor_extract(t2, bad, 64, run.presig, 64, run.parity, NULL, 0), KM_ERR_INVALID);
    CHECK_ERR(adaptor_extract(t2, run.presig, 64, run.presig, 64, run.parity, NULL, 0),
              KM_ERR_INVALID); /* t = 0 */
    CHECK_ERR(adaptor_extract(t2, sig, 63, run.presig, 64, run.parity, NULL, 0), KM_ERR_INVALID);
    /* Invalid secrets and out-of-range s'. */
    memset(wrong_t, 0, 32);
    CHECK_ERR(adaptor_adapt(sig, run.presig, wrong_t, run.parity), KM_ERR_INVALID);
    CHECK_ERR(adaptor_point(wrong_T, wrong_t), KM_ERR_INVALID);
    memset(bad, 0xff, 64);
    CHECK_ERR(adaptor_adapt(sig, bad, run.t, run.parity), KM_ERR_INVALID);
    CHECK_ERR(adaptor_presig_verify(bad, 64, run.parity, run.T, 33, run.xonly, 32, run.msg, 32),
              KM_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_round_trip_both_parities),
        TEST(test_tamper),
    };
    return RUN_TESTS("crypto.adaptor", tests);
}
