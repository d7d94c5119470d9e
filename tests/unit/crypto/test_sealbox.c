/*
 * test_sealbox.c - crypto/sealbox.h: round trip, and every change (KEK,
 * associated data, nonce, ciphertext, tag) refused with the secret zeroed.
 */
#include "test.h"

#include <string.h>

#include "crypto/sealbox.h"
#include "common/banned.h"

static const uint8_t kek[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t secret[32] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3};
static const uint8_t ad[16] = {1, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0};

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t box[SEALBOX_LEN], box2[SEALBOX_LEN], out[32];
    CHECK_OK(sealbox_seal(box, kek, ad, sizeof(ad), secret));
    CHECK_OK(sealbox_open(out, kek, ad, sizeof(ad), box));
    CHECK_MEM_EQ(out, secret, 32);
    /* A fresh nonce each time: the same secret seals differently. */
    CHECK_OK(sealbox_seal(box2, kek, ad, sizeof(ad), secret));
    CHECK(memcmp(box, box2, SEALBOX_LEN) != 0);
}

static void test_every_change_is_refused(void **state)
{
    (void)state;
    uint8_t box[SEALBOX_LEN], out[32], k2[32], ad2[sizeof(ad)];
    static const uint8_t zero[32];
    CHECK_OK(sealbox_seal(box, kek, ad, sizeof(ad), secret));
    memcpy(k2, kek, 32);
    k2[31] ^= 1;
    CHECK_ERR(sealbox_open(out, k2, ad, sizeof(ad), box), KM_ERR_CRYPTO);
    CHECK_MEM_EQ(out, zero, 32);
    memcpy(ad2, ad, sizeof(ad));
    ad2[5] = 8; /* another enclave id */
    CHECK_ERR(sealbox_open(out, kek, ad2, sizeof(ad2), box), KM_ERR_CRYPTO);
    CHECK_ERR(sealbox_open(out, kek, ad, sizeof(ad) - 1, box), KM_ERR_CRYPTO);
    for (size_t i = 0; i < SEALBOX_LEN; i++) {
        box[i] ^= 0x40;
        CHECK_ERR(sealbox_open(out, kek, ad, sizeof(ad), box), KM_ERR_CRYPTO);
        box[i] ^= 0x40;
    }
    CHECK_OK(sealbox_open(out, kek, ad, sizeof(ad), box));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_round_trip),
        TEST(test_every_change_is_refused),
    };
    return RUN_TESTS("unit.crypto.sealbox", tests);
}
