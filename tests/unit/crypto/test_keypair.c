/*
 * test_keypair.c - key loading: range checks and known public keys.
 */
#include "test.h"

#include <string.h>

#include "common/hex.h"
#include "crypto/ctx.h"
#include "crypto/keypair.h"
#include "common/banned.h"

static void test_known_and_invalid_keys(void **state)
{
    (void)state;
    struct keypair kp;
    uint8_t sk[32] = {0}, want[33], zero[sizeof(kp)];

    /* sk = 1: the public key is G. */
    sk[31] = 1;
    CHECK_OK(keypair_init(&kp, sk));
    CHECK_OK(hex_decode_exact(
        want, 33, "0279BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798", 66));
    CHECK_MEM_EQ(kp.pubkey, want, 33);
    CHECK_MEM_EQ(kp.xonly, want + 1, 32);
    CHECK_MEM_EQ(kp.seckey, sk, 32);
    keypair_clear(&kp);
    memset(zero, 0, sizeof(zero));
    CHECK_MEM_EQ(&kp, zero, sizeof(kp));
    keypair_clear(NULL);

    /* 0, n and 2^256 - 1 are refused and leave nothing behind. */
    memset(sk, 0, 32);
    memset(&kp, 0xaa, sizeof(kp));
    CHECK_ERR(keypair_init(&kp, sk), KM_ERR_INVALID);
    CHECK_MEM_EQ(&kp, zero, sizeof(kp));
    CHECK_OK(hex_decode_exact(
        sk, 32, "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 64));
    CHECK_ERR(keypair_init(&kp, sk), KM_ERR_INVALID);
    sk[31] = 0x40; /* n - 1 is valid */
    CHECK_OK(keypair_init(&kp, sk));
    CHECK_EQ(kp.pubkey[0], 3); /* -G has odd Y */
    keypair_clear(&kp);
    memset(sk, 0xff, 32);
    CHECK_ERR(keypair_init(&kp, sk), KM_ERR_INVALID);
}

static void test_generate(void **state)
{
    (void)state;
    struct keypair a, b;
    CHECK_OK(keypair_generate(&a));
    CHECK_OK(keypair_generate(&b));
    CHECK(memcmp(a.seckey, b.seckey, 32) != 0);
    CHECK(a.pubkey[0] == 2 || a.pubkey[0] == 3);
    CHECK(crypto_ctx_blinded());
    keypair_clear(&a);
    keypair_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_known_and_invalid_keys),
        TEST(test_generate),
    };
    return RUN_TESTS("crypto.keypair", tests);
}
