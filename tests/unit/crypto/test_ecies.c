/*
 * test_ecies.c - ECIES in the eciesjs default format: a known answer
 * produced by eciesjs 0.5.0 (so the format is checked even where node is
 * unavailable; the live interop test is unit.crypto.ecies_interop), round
 * trips, and clean refusal of tampered, truncated and wrongly keyed input.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "common/secure.h"
#include "crypto/ecies.h"
#include "crypto/keypair.h"
#include "common/banned.h"

/* Generated with eciesjs 0.5.0: encrypt(pk(sk), "keymeld ecies known answer")
 * where sk = 01 02 .. 20. */
static const char kat_sk[] = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
static const char kat_pk[] = "0284bf7562262bbd6940085748f3be6afa52ae317155181ece31b66351ccffa4b0";
static const char kat_ct[] =
    "046ec640e3b0e0c243e5172f6442be281aa32364fad290c18e0f66020035bfc3491064cf8408efd1f942bf65b77a"
    "66818b0329a9ad3d90fd48331ec0c880d82a759ba19279bf483cf9d763781938c1f3477808733c87547adcdc1fb7"
    "9d09b7442eaf44eed20455aeebb140aee15ec34dbb4c9cd6a9826e255bbd4c";
static const char kat_pt[] = "keymeld ecies known answer";

static size_t unhex(uint8_t *out, size_t cap, const char *h)
{
    size_t n;
    CHECK_OK(hex_decode(out, cap, &n, h, strlen(h)));
    return n;
}

static void test_eciesjs_known_answer(void **state)
{
    (void)state;
    uint8_t sk[32], pk[33], ct[256], pt[256];
    struct keypair kp;
    struct km_error err;
    size_t ctlen = unhex(ct, sizeof(ct), kat_ct), ptlen;

    unhex(sk, sizeof(sk), kat_sk);
    unhex(pk, sizeof(pk), kat_pk);
    CHECK_OK(keypair_init(&kp, sk));
    CHECK_MEM_EQ(kp.pubkey, pk, 33);
    CHECK_EQ(ctlen, strlen(kat_pt) + ECIES_OVERHEAD);
    CHECK_OK(ecies_decrypt(pt, sizeof(pt), &ptlen, &err, sk, ct, ctlen));
    CHECK_EQ(ptlen, strlen(kat_pt));
    CHECK_MEM_EQ(pt, kat_pt, ptlen);
    keypair_clear(&kp);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 16, 17, 1000, 70000};
    struct keypair kp;
    uint8_t full[65];
    secp256k1_pubkey pub;
    size_t flen = sizeof(full);

    CHECK_OK(keypair_generate(&kp));
    CHECK(secp256k1_ec_pubkey_parse(secp256k1_context_static, &pub, kp.pubkey, 33));
    CHECK(secp256k1_ec_pubkey_serialize(secp256k1_context_static, full, &flen, &pub,
                                        SECP256K1_EC_UNCOMPRESSED));
    for (size_t k = 0; k < KM_ARRAY_LEN(sizes); k++) {
        size_t n = sizes[k], ctlen, ptlen;
        uint8_t *msg = malloc(n + 1), *ct = malloc(n + ECIES_OVERHEAD), *pt = malloc(n + 1);
        CHECK_OK(secure_random(msg, n + 1));
        for (int enc = 0; enc < 2; enc++) {
            CHECK_OK(ecies_encrypt(ct, n + ECIES_OVERHEAD, &ctlen, enc ? full : kp.pubkey,
                                   enc ? 65 : 33, msg, n));
            CHECK_EQ(ctlen, n + ECIES_OVERHEAD);
            CHECK_EQ(ct[0], 4);
            CHECK_OK(ecies_decrypt(pt, n + 1, &ptlen, NULL, kp.seckey, ct, ctlen));
            CHECK_EQ(ptlen, n);
            CHECK(n == 0 || memcmp(pt, msg, n) == 0);
        }
        free(msg);
        free(ct);
        free(pt);
    }
    keypair_clear(&kp);
}

static void test_refusals(void **state)
{
    (void)state;
    struct keypair kp, other;
    uint8_t msg[40], ct[40 + ECIES_OVERHEAD], bad[sizeof(ct) + 1], pt[64], zero[64] = {0};
    size_t ctlen, ptlen;
    struct km_error err;

    CHECK_OK(keypair_generate(&kp));
    CHECK_OK(keypair_generate(&other));
    CHECK_OK(secure_random(msg, sizeof(msg)));
    CHECK_OK(ecies_encrypt(ct, sizeof(ct), &ctlen, kp.pubkey, 33, msg, sizeof(msg)));

    /* Every bit of every byte. */
    for (size_t i = 0; i < ctlen; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, ct, ctlen);
            bad[i] ^= (uint8_t)(1u << bit);
            memset(pt, 0x5a, sizeof(pt));
            int r = ecies_decrypt(pt, sizeof(pt), &ptlen, &err, kp.seckey, bad, ctlen);
            CHECK(r == KM_ERR_INVALID || r == KM_ERR_CRYPTO);
            CHECK_EQ(ptlen, 0);
            /* Nothing of an unauthenticated plaintext is left behind. */
            if (r == KM_ERR_CRYPTO)
                CHECK_MEM_EQ(pt, zero, sizeof(msg));
        }
    }
    /* Every truncation, and one byte too many. */
    for (size_t n = 0; n < ctlen; n++) {
        int r = ecies_decrypt(pt, sizeof(pt), &ptlen, &err, kp.seckey, ct, n);
        CHECK(r == KM_ERR_INVALID || r == KM_ERR_CRYPTO);
        if (n < ECIES_OVERHEAD)
            CHECK_CONTAINS(err.msg, "too short");
    }
    memcpy(bad, ct, ctlen);
    bad[ctlen] = 0;
    CHECK_ERR(ecies_decrypt(pt, sizeof(pt), &ptlen, &err, kp.seckey, bad, ctlen + 1),
              KM_ERR_CRYPTO);
    /* Wrong key. */
    CHECK_ERR(ecies_decrypt(pt, sizeof(pt), &ptlen, &err, other.seckey, ct, ctlen), KM_ERR_CRYPTO);
    CHECK_CONTAINS(err.msg, "decryption failed");
    /* Invalid recipient secret key. */
    CHECK_ERR(ecies_decrypt(pt, sizeof(pt), &ptlen, &err, zero, ct, ctlen), KM_ERR_INVALID);
    /* Compressed or hybrid ephemeral keys are not the eciesjs default. */
    memcpy(bad, ct, ctlen);
    bad[0] = 6;
    CHECK_ERR(ecies_decrypt(pt, sizeof(pt), &ptlen, &err, kp.seckey, bad, ctlen), KM_ERR_INVALID);
    /* Output buffer too small. */
    CHECK_ERR(ecies_decrypt(pt, sizeof(msg) - 1, &ptlen, &err, kp.seckey, ct, ctlen),
              KM_ERR_TOO_LARGE);
    /* Encryption-side refusals. */
    CHECK_ERR(ecies_encrypt(bad, sizeof(bad), &ctlen, kp.pubkey, 32, msg, sizeof(msg)),
              KM_ERR_INVALID);
    CHECK_ERR(ecies_encrypt(bad, sizeof(bad), &ctlen, zero, 33, msg, sizeof(msg)), KM_ERR_INVALID);
    CHECK_ERR(ecies_encrypt(bad, 10, &ctlen, kp.pubkey, 33, msg, sizeof(msg)), KM_ERR_TOO_LARGE);
    keypair_clear(&kp);
    keypair_clear(&other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_eciesjs_known_answer),
        TEST(test_round_trip),
        TEST(test_refusals),
    };
    return RUN_TESTS("crypto.ecies", tests);
}
