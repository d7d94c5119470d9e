/*
 * test_schnorr.c - BIP-340 signing and verification beyond the vectors:
 * fresh auxiliary randomness, message lengths, malformed inputs.
 */
#include "test.h"

#include <string.h>

#include "common/secure.h"
#include "crypto/keypair.h"
#include "crypto/schnorr.h"
#include "common/banned.h"

static void test_round_trip(void **state)
{
    (void)state;
    struct keypair kp;
    uint8_t msg[100], s1[64], s2[64];

    CHECK_OK(keypair_generate(&kp));
    CHECK_OK(secure_random(msg, sizeof(msg)));
    for (size_t n = 0; n <= sizeof(msg); n += 20) {
        CHECK_OK(schnorr_sign(s1, &kp, msg, n, NULL));
        CHECK_OK(schnorr_sign(s2, &kp, msg, n, NULL));
        /* Fresh aux randomness: different signatures, both valid. */
        CHECK(memcmp(s1, s2, 64) != 0);
        CHECK_OK(schnorr_verify(s1, 64, msg, n, kp.xonly, 32));
        CHECK_OK(schnorr_verify(s2, 64, msg, n, kp.xonly, 32));
        if (n > 0) {
            msg[0] ^= 1;
            CHECK_ERR(schnorr_verify(s1, 64, msg, n, kp.xonly, 32), KM_ERR_CRYPTO);
            msg[0] ^= 1;
        }
    }
    keypair_clear(&kp);
}

static void test_malformed(void **state)
{
    (void)state;
    struct keypair kp;
    uint8_t msg[32] = {1}, sig[64], pk[32];

    CHECK_OK(keypair_generate(&kp));
    CHECK_OK(schnorr_sign(sig, &kp, msg, 32, NULL));
    CHECK_ERR(schnorr_verify(sig, 63, msg, 32, kp.xonly, 32), KM_ERR_INVALID);
    CHECK_ERR(schnorr_verify(sig, 65, msg, 32, kp.xonly, 32), KM_ERR_INVALID);
    CHECK_ERR(schnorr_verify(sig, 64, msg, 32, kp.xonly, 33), KM_ERR_INVALID);
    memset(pk, 0xff, 32); /* x >= p */
    CHECK_ERR(schnorr_verify(sig, 64, msg, 32, pk, 32), KM_ERR_INVALID);
    for (size_t i = 0; i < 64; i++) {
        sig[i] ^= 0x40;
        CHECK(schnorr_verify(sig, 64, msg, 32, kp.xonly, 32) != KM_OK);
        sig[i] ^= 0x40;
    }
    keypair_clear(&kp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_round_trip),
        TEST(test_malformed),
    };
    return RUN_TESTS("crypto.schnorr", tests);
}
