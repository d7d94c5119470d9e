/*
 * test_auth.c - request signatures: a digest known answer (computed
 * independently in Python), sign/verify, every bound field matters, the
 * timestamp window and key derivation.
 */
#include "test.h"

#include <string.h>

#include "common/hex.h"
#include "crypto/auth.h"
#include "crypto/keypair.h"
#include "common/banned.h"

static void req_init(struct auth_request *r, const char *body)
{
    memset(r, 0, sizeof(*r));
    r->method = "POST";
    r->method_len = 4;
    r->path = "/api/v1/signing";
    r->path_len = 15;
    r->timestamp = 1700000000;
    for (int i = 0; i < AUTH_NONCE_LEN; i++)
        r->nonce[i] = (uint8_t)i;
    CHECK_OK(auth_body_hash(r->body_hash, (const uint8_t *)body, strlen(body)));
}

static void test_digest_known_answer(void **state)
{
    (void)state;
    struct auth_request r;
    uint8_t d[32], want[32];

    req_init(&r, "{\"a\":1}");
    CHECK_OK(auth_request_digest(d, &r));
    CHECK_OK(hex_decode_exact(
        want, 32, "e9ded936226b9b9357f90da1d62bc9891371f67881670623eb1b0f56fcd5a4e6", 64));
    CHECK_MEM_EQ(d, want, 32);
}

static void test_sign_verify_binds_fields(void **state)
{
    (void)state;
    struct keypair kp, other;
    struct auth_request r, t;
    uint8_t sig[64];

    CHECK_OK(keypair_generate(&kp));
    CHECK_OK(keypair_generate(&other));
    req_init(&r, "{}");
    CHECK_OK(auth_sign(sig, &kp, &r));
    CHECK_OK(auth_verify(sig, 64, kp.xonly, 32, &r));
    CHECK_ERR(auth_verify(sig, 64, other.xonly, 32, &r), KM_ERR_CRYPTO);
    CHECK_ERR(auth_verify(sig, 63, kp.xonly, 32, &r), KM_ERR_INVALID);
    CHECK_ERR(auth_verify(sig, 64, kp.xonly, 33, &r), KM_ERR_INVALID);

    t = r;
    t.method = "GET";
    t.method_len = 3;
    CHECK_ERR(auth_verify(sig, 64, kp.xonly, 32, &t), KM_ERR_CRYPTO);
    t = r;
    t.path_len = 14; /* "/api/v1/signin" */
    CHECK_ERR(auth_verify(sig, 64, kp.xonly, 32, &t), KM_ERR_CRYPTO);
    t = r;
    t.timestamp++;
    CHECK_ERR(auth_verify(sig, 64, kp.xonly, 32, &t), KM_ERR_CRYPTO);
    t = r;
    t.nonce[15] ^= 1;
    CHECK_ERR(auth_verify(sig, 64, kp.xonly, 32, &t), KM_ERR_CRYPTO);
    t = r;
    t.body_hash[0] ^= 1;
    CHECK_ERR(auth_verify(sig, 64, kp.xonly, 32, &t), KM_ERR_CRYPTO);
    /* Moving bytes between method and path changes the digest. */
    t = r;
    t.method = "POST/";
    t.method_len = 5;
    t.path = "api/v1/signing";
    t.path_len = 14;
    CHECK_ERR(auth_verify(sig, 64, kp.xonly, 32, &t), KM_ERR_CRYPTO);
    t = r;
    t.path_len = AUTH_FIELD_MAX + 1;
    CHECK_ERR(auth_verify(sig, 64, kp.xonly, 32, &t), KM_ERR_INVALID);
    CHECK_ERR(auth_sign(sig, &kp, &t), KM_ERR_TOO_LARGE);
    keypair_clear(&kp);
    keypair_clear(&other);
}

static void test_timestamp_and_derive(void **state)
{
    (void)state;
    struct keypair a, b, c;
    uint8_t ikm[32] = {1};

    CHECK(auth_timestamp_fresh(1000, 1000, 0));
    CHECK(auth_timestamp_fresh(1000, 700, 300));
    CHECK(auth_timestamp_fresh(700, 1000, 300));
    CHECK(!auth_timestamp_fresh(1000, 699, 300));
    CHECK(!auth_timestamp_fresh(0, UINT64_MAX, 300));

    CHECK_OK(auth_derive_keypair(&a, ikm, 32, "keymeld-session-auth-v1", "session-auth-key"));
    CHECK_OK(auth_derive_keypair(&b, ikm, 32, "keymeld-session-auth-v1", "session-auth-key"));
    CHECK_OK(auth_derive_keypair(&c, ikm, 32, NULL, "keymeld-session-auth-v1:abc"));
    CHECK_MEM_EQ(a.seckey, b.seckey, 32);
    CHECK(memcmp(a.seckey, c.seckey, 32) != 0);
    CHECK_ERR(auth_derive_keypair(&c, ikm, 0, NULL, NULL), KM_ERR_RANGE);
    keypair_clear(&a);
    keypair_clear(&b);
    keypair_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_digest_known_answer),
        TEST(test_sign_verify_binds_fields),
        TEST(test_timestamp_and_derive),
    };
    return RUN_TESTS("crypto.auth", tests);
}
