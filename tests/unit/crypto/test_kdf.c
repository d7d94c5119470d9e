/*
 * test_kdf.c - HKDF-SHA256 against RFC 5869, the AES-256-GCM helper
 * (NIST GCM test case 14: 256-bit key, 96-bit IV) and the tagged hash.
 */
#include "test.h"

#include <string.h>

#include "common/hex.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/thash.h"
#include "common/banned.h"

static void unhex(uint8_t *out, size_t n, const char *h)
{
    CHECK_OK(hex_decode_exact(out, n, h, strlen(h)));
}

static void test_hkdf_rfc5869(void **state)
{
    (void)state;
    uint8_t ikm[22], salt[13], info[10], okm[42], want[42];

    /* Test case 1. */
    memset(ikm, 0x0b, sizeof(ikm));
    unhex(salt, 13, "000102030405060708090a0b0c");
    unhex(info, 10, "f0f1f2f3f4f5f6f7f8f9");
    unhex(want, 42,
          "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887"
          "185865");
    CHECK_OK(kdf_hkdf_sha256(okm, 42, salt, 13, ikm, 22, info, 10));
    CHECK_MEM_EQ(okm, want, 42);
    /* Test case 3: no salt, no info. */
    unhex(want, 42,
          "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b6"
          "1a96c8");
    CHECK_OK(kdf_hkdf_sha256(okm, 42, NULL, 0, ikm, 22, NULL, 0));
    CHECK_MEM_EQ(okm, want, 42);
    /* Limits. */
    CHECK_ERR(kdf_hkdf_sha256(okm, 0, NULL, 0, ikm, 22, NULL, 0), KM_ERR_RANGE);
    CHECK_ERR(kdf_hkdf_sha256(okm, 42, NULL, 0, ikm, 0, NULL, 0), KM_ERR_RANGE);
    CHECK_ERR(kdf_hkdf_sha256(okm, KDF_HKDF_MAX_OUT + 1, NULL, 0, ikm, 22, NULL, 0), KM_ERR_RANGE);
}

static void test_gcm(void **state)
{
    (void)state;
    uint8_t key[32] = {0}, iv[12] = {0}, pt[16] = {0}, ct[16], tag[16], want_ct[16], want_tag[16];
    uint8_t back[16];

    /* NIST GCM test case 14. */
    unhex(want_ct, 16, "cea7403d4d606b6e074ec5d3baf39d18");
    unhex(want_tag, 16, "d0d1c8a799996bf0265b98b5d48ab919");
    CHECK_OK(aead_encrypt(ct, tag, key, iv, 12, pt, 16));
    CHECK_MEM_EQ(ct, want_ct, 16);
    CHECK_MEM_EQ(tag, want_tag, 16);
    CHECK_OK(aead_decrypt(back, key, iv, 12, ct, 16, tag));
    CHECK_MEM_EQ(back, pt, 16);
    tag[0] ^= 1;
    CHECK_ERR(aead_decrypt(back, key, iv, 12, ct, 16, tag), KM_ERR_CRYPTO);
    /* Empty plaintext still authenticates. */
    CHECK_OK(aead_encrypt(ct, tag, key, iv, 12, pt, 0));
    CHECK_OK(aead_decrypt(back, key, iv, 12, ct, 0, tag));
    tag[3] ^= 1;
    CHECK_ERR(aead_decrypt(back, key, iv, 12, ct, 0, tag), KM_ERR_CRYPTO);
    CHECK_ERR(aead_encrypt(ct, tag, key, iv, 0, pt, 16), KM_ERR_TOO_LARGE);
}

static void test_tagged_hash(void **state)
{
    (void)state;
    uint8_t a[32], b[32], msg[100];
    struct thash h;

    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    thash_oneshot(a, "BIP0340/challenge", msg, sizeof(msg));
    thash_init(&h, "BIP0340/challenge");
    thash_update(&h, msg, 10);
    thash_update_u8(&h, msg[10]);
    thash_update(&h, msg + 11, sizeof(msg) - 11);
    CHECK_OK(thash_final(&h, b));
    CHECK_MEM_EQ(a, b, 32);
    thash_init(&h, "x");
    thash_update_be32(&h, 0x01020304u);
    thash_update_be64(&h, 0x0102030405060708u);
    CHECK_OK(thash_final(&h, a));
    thash_oneshot(b, "x", (const uint8_t *)"\x01\x02\x03\x04\x01\x02\x03\x04\x05\x06\x07\x08", 12);
    CHECK_MEM_EQ(a, b, 32);
    /* SHA-256("abc") */
    uint8_t want[32];
    unhex(want, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_OK(thash_sha256(a, "abc", 3));
    CHECK_MEM_EQ(a, want, 32);
    thash_init(&h, "x");
    thash_abort(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_hkdf_rfc5869),
        TEST(test_gcm),
        TEST(test_tagged_hash),
    };
    return RUN_TESTS("crypto.kdf", tests);
}
