/*
 * test_sessenc.c - session encryption: a known answer computed independently
 * (Python cryptography: HKDF-SHA256 + AES-GCM), round trips, context
 * binding, tampering and truncation.
 */
#include "test.h"

#include <string.h>

#include "common/hex.h"
#include "common/secure.h"
#include "crypto/sessenc.h"
#include "common/banned.h"

/* secret = 00 01 .. 1f, context "session_data", nonce 0a * 12, plaintext
 * "6869206b65796d656c64" (the hex string form the original used). */
static const char kat_blob[] =
    "0c73657373696f6e5f646174610a0a0a0a0a0a0a0a0a0a0a0a66aa674a42a30e6417f5"
    "c2359c7ad50b937ff9066e6f25f57d60d7a1820774ba60396b64";

static void secret_init(uint8_t s[SESSENC_SECRET_LEN])
{
    for (int i = 0; i < SESSENC_SECRET_LEN; i++)
        s[i] = (uint8_t)i;
}

static void test_known_answer(void **state)
{
    (void)state;
    uint8_t secret[32], blob[128], pt[64];
    size_t bloblen, ptlen;
    const uint8_t *ctx;
    size_t ctxlen;

    secret_init(secret);
    CHECK_OK(hex_decode(blob, sizeof(blob), &bloblen, kat_blob, strlen(kat_blob)));
    CHECK_OK(sessenc_decrypt(pt, sizeof(pt), &ptlen, NULL, secret, "session_data", blob, bloblen));
    CHECK_EQ(ptlen, 20);
    CHECK_MEM_EQ(pt, "6869206b65796d656c64", 20);
    CHECK_OK(sessenc_peek_context(&ctx, &ctxlen, blob, bloblen));
    CHECK_EQ(ctxlen, 12);
    CHECK_MEM_EQ(ctx, "session_data", 12);
}

static void test_round_trip_and_context(void **state)
{
    (void)state;
    uint8_t secret[32], other[32], msg[100], blob[512], pt[128], zero[128] = {0};
    size_t bloblen, ptlen;
    struct km_error err;
    char ctx255[256];

    CHECK_OK(secure_random(secret, 32));
    CHECK_OK(secure_random(other, 32));
    CHECK_OK(secure_random(msg, sizeof(msg)));
    for (size_t n = 0; n <= sizeof(msg); n += 25) {
        CHECK_OK(sessenc_encrypt(blob, sizeof(blob), &bloblen, secret, "nonce_data", msg, n));
        CHECK_EQ(bloblen, sessenc_blob_len(10, n));
        CHECK_OK(
            sessenc_decrypt(pt, sizeof(pt), &ptlen, &err, secret, "nonce_data", blob, bloblen));
        CHECK_EQ(ptlen, n);
        CHECK(n == 0 || memcmp(pt, msg, n) == 0);
    }
    /* Context mismatch, even with a fixed-up context byte string. */
    CHECK_ERR(sessenc_decrypt(pt, sizeof(pt), &ptlen, &err, secret, "signature", blob, bloblen),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "context mismatch");
    CHECK_CONTAINS(err.msg, "nonce_data");
    memcpy(blob + 1, "nonce_dat4", 10);
    CHECK_ERR(sessenc_decrypt(pt, sizeof(pt), &ptlen, &err, secret, "nonce_dat4", blob, bloblen),
              KM_ERR_CRYPTO); /* the key depends on the context */
    memcpy(blob + 1, "nonce_data", 10);
    /* Wrong secret. */
    CHECK_ERR(sessenc_decrypt(pt, sizeof(pt), &ptlen, &err, other, "nonce_data", blob, bloblen),
              KM_ERR_CRYPTO);
    CHECK_MEM_EQ(pt, zero, sizeof(msg));
    /* Every bit flip and truncation is refused. */
    for (size_t i = 0; i < bloblen; i++) {
        blob[i] ^= 0x10;
        CHECK(sessenc_decrypt(pt, sizeof(pt), &ptlen, &err, secret, "nonce_data", blob, bloblen) !=
              KM_OK);
        blob[i] ^= 0x10;
    }
    for (size_t n = 0; n < bloblen; n++)
        CHECK(sessenc_decrypt(pt, sizeof(pt), &ptlen, &err, secret, "nonce_data", blob, n) !=
              KM_OK);
    CHECK_ERR(sessenc_decrypt(pt, sizeof(pt), &ptlen, &err, secret, "nonce_data", blob, 0),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "empty");
    CHECK_ERR(sessenc_decrypt(pt, 3, &ptlen, &err, secret, "nonce_data", blob, bloblen),
              KM_ERR_TOO_LARGE);

    /* Context limits: 1..255 bytes. */
    memset(ctx255, 'c', 255);
    ctx255[255] = '\0';
    CHECK_OK(sessenc_encrypt(blob, sizeof(blob), &bloblen, secret, ctx255, msg, 10));
    CHECK_OK(sessenc_decrypt(pt, sizeof(pt), &ptlen, &err, secret, ctx255, blob, bloblen));
    char ctx256[257];
    memset(ctx256, 'c', 256);
    ctx256[256] = '\0';
    CHECK_ERR(sessenc_encrypt(blob, sizeof(blob), &bloblen, secret, ctx256, msg, 10),
              KM_ERR_INVALID);
    CHECK_ERR(sessenc_encrypt(blob, sizeof(blob), &bloblen, secret, "", msg, 10), KM_ERR_INVALID);
    CHECK_ERR(sessenc_encrypt(blob, 20, &bloblen, secret, "x", msg, 10), KM_ERR_TOO_LARGE);
    const uint8_t *c;
    size_t cl;
    uint8_t zctx[30] = {0};
    CHECK_ERR(sessenc_peek_context(&c, &cl, zctx, sizeof(zctx)), KM_ERR_INVALID);
}

/* A key derived ahead (sessenc_derive_key) seals and opens the same blobs
 * as the secret it came from, and only for its own context. */
static void test_derived_key(void **state)
{
    (void)state;
    uint8_t secret[SESSENC_SECRET_LEN], key[SESSENC_KEY_LEN], other[SESSENC_KEY_LEN];
    uint8_t blob[128], pt[64];
    size_t bloblen, ptlen;
    struct km_error err;
    const uint8_t msg[] = "derived";
    secret_init(secret);
    CHECK_OK(sessenc_derive_key(key, secret, "nonce_data"));
    CHECK_OK(sessenc_derive_key(other, secret, "signature"));
    CHECK(memcmp(key, other, sizeof(key)) != 0);
    CHECK_ERR(sessenc_derive_key(other, secret, ""), KM_ERR_INVALID);

    CHECK_OK(sessenc_encrypt_with_key(blob, sizeof(blob), &bloblen, key, "nonce_data", msg,
                                      sizeof(msg)));
    CHECK_OK(sessenc_decrypt(pt, sizeof(pt), &ptlen, &err, secret, "nonce_data", blob, bloblen));
    CHECK_EQ(ptlen, sizeof(msg));
    CHECK_MEM_EQ(pt, msg, sizeof(msg));

    CHECK_OK(sessenc_encrypt(blob, sizeof(blob), &bloblen, secret, "nonce_data", msg, sizeof(msg)));
    CHECK_OK(
        sessenc_decrypt_with_key(pt, sizeof(pt), &ptlen, &err, key, "nonce_data", blob, bloblen));
    CHECK_MEM_EQ(pt, msg, sizeof(msg));
    /* The context is still checked, and a wrong key does not open it. */
    CHECK_ERR(
        sessenc_decrypt_with_key(pt, sizeof(pt), &ptlen, &err, key, "signature", blob, bloblen),
        KM_ERR_INVALID);
    CHECK_ERR(
        sessenc_decrypt_with_key(pt, sizeof(pt), &ptlen, &err, other, "nonce_data", blob, bloblen),
        KM_ERR_CRYPTO);
    secure_wipe(key, sizeof(key));
    secure_wipe(other, sizeof(other));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_known_answer),
        TEST(test_round_trip_and_context),
        TEST(test_derived_key),
    };
    return RUN_TESTS("crypto.sessenc", tests);
}
