/*
 * test_participant.c - the participant side (client/participant.h): what
 * it seals opens only under the right secret and context; keys encrypted
 * to an enclave decrypt with its key; the aggregate key matches KeyAgg;
 * approvals verify; adaptor completion and its refusals.
 */
#include "test.h"

#include <string.h>

#include "client/participant.h"
#include "crypto/adaptor.h"
#include "crypto/ctx.h"
#include "crypto/ecies.h"
#include "crypto/musig.h"
#include "crypto/schnorr.h"
#include "crypto/taproot.h"
#include "common/banned.h"

static void test_seal_open(void **state)
{
    (void)state;
    uint8_t secret[32], other[32], msg[32], out[64];
    struct proto_blob b;
    struct km_error err;
    size_t len = 0;
    CHECK_OK(participant_secret_new(secret));
    CHECK_OK(participant_secret_new(other));
    memset(msg, 0xab, sizeof(msg));
    CHECK_OK(participant_seal_message(&b, secret, msg));
    CHECK_OK(participant_open(out, sizeof(out), &len, &err, secret, PROTO_CTX_MESSAGE, &b));
    CHECK_EQ(len, 32);
    CHECK_MEM_EQ(out, msg, 32);
    CHECK_ERR(participant_open(out, sizeof(out), &len, &err, secret, PROTO_CTX_SIGNATURE, &b),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "context mismatch");
    CHECK_ERR(participant_open(out, sizeof(out), &len, &err, other, PROTO_CTX_MESSAGE, &b),
              KM_ERR_CRYPTO);
    /* A signature must be 64 bytes: a 32-byte one is refused. */
    proto_blob_clear(&b);
    CHECK_OK(participant_seal(&b, secret, PROTO_CTX_SIGNATURE, msg, 32));
    CHECK_ERR(participant_open_signature(out, &err, secret, &b), KM_ERR_INVALID);
    proto_blob_clear(&b);

    struct proto_tweak t = {.type = PROTO_TWEAK_PLAIN, .has_tweak = true};
    memset(t.tweak, 1, 32);
    CHECK_OK(participant_seal_tweak(&b, secret, &t));
    uint8_t pt[256];
    CHECK_OK(participant_open(pt, sizeof(pt), &len, &err, secret, PROTO_CTX_TWEAK, &b));
    struct proto_tweak back;
    CHECK_OK(proto_decode_bytes(&proto_tweak_schema, &back, pt, len, &err));
    CHECK_EQ(back.type, PROTO_TWEAK_PLAIN);
    CHECK_MEM_EQ(back.tweak, t.tweak, 32);
    proto_blob_clear(&b);
}

static void test_encrypt_to_enclave(void **state)
{
    (void)state;
    struct keypair enclave, user;
    uint8_t secret[32], out[64];
    size_t len = 0;
    struct proto_blob b;
    struct km_error err;
    CHECK_OK(keypair_generate(&enclave));
    CHECK_OK(keypair_generate(&user));
    CHECK_OK(participant_secret_new(secret));
    CHECK_OK(participant_encrypt_secret(&b, enclave.pubkey, secret));
    CHECK_OK(ecies_decrypt(out, sizeof(out), &len, &err, enclave.seckey, b.p, b.len));
    CHECK_EQ(len, 32);
    CHECK_MEM_EQ(out, secret, 32);
    proto_blob_clear(&b);
    CHECK_OK(participant_encrypt_private_key(&b, enclave.pubkey, &user));
    CHECK_OK(ecies_decrypt(out, sizeof(out), &len, &err, enclave.seckey, b.p, b.len));
    CHECK_MEM_EQ(out, user.seckey, 32);
    proto_blob_clear(&b);
    uint8_t bad[33] = {0x02};
    CHECK_ERR(participant_encrypt_secret(&b, bad, secret), KM_ERR_INVALID);
    CHECK_NULL(b.p);
    keypair_clear(&enclave);
    keypair_clear(&user);
}

static void test_aggregate_key(void **state)
{
    (void)state;
    struct keypair k[3];
    uint8_t pks[3][33], sorted[3][33], out[33], xonly[32], want[33];
    struct musig_keyagg *ka;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(keypair_generate(&k[i]));
        memcpy(pks[i], k[i].pubkey, 33);
    }
    memcpy(sorted, pks, sizeof(pks));
    musig_key_sort(sorted, 3);
    CHECK_OK(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])sorted, 3));
    CHECK_OK(participant_aggregate_key(out, xonly, (const uint8_t(*)[33])pks, 3, NULL));
    musig_keyagg_plain(ka, want);
    CHECK_MEM_EQ(out, want, 33);
    struct proto_tweak t = {.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT};
    CHECK_OK(taproot_musig_tweak(ka, NULL));
    CHECK_OK(participant_aggregate_key(out, xonly, (const uint8_t(*)[33])pks, 3, &t));
    musig_keyagg_plain(ka, want);
    CHECK_MEM_EQ(out, want, 33);
    uint8_t wx[32];
    musig_keyagg_xonly(ka, wx);
    CHECK_MEM_EQ(xonly, wx, 32);
    musig_keyagg_free(ka);
    for (int i = 0; i < 3; i++)
        keypair_clear(&k[i]);
}

static void test_approval_and_auth_key(void **state)
{
    (void)state;
    struct keypair user, auth, again;
    struct uuid sid, kid, item;
    uint8_t msg[1][32] = {{7}}, sig[64], pre[PROTO_APPROVAL_PREIMAGE_LEN(1)], digest[32];
    CHECK_OK(keypair_generate(&user));
    CHECK_OK(uuid_v7_new(&sid));
    CHECK_OK(uuid_v7_new(&kid));
    CHECK_OK(uuid_v7_new(&item));
    CHECK_OK(participant_auth_keypair(&auth, &user, &kid));
    CHECK_OK(participant_auth_keypair(&again, &user, &kid));
    CHECK_MEM_EQ(auth.xonly, again.xonly, 32); /* deterministic */
    CHECK(memcmp(auth.seckey, user.seckey, 32) != 0);
    CHECK_OK(participant_approval_sign(sig, &auth, &sid, &kid, 1234, &item,
                                       (const uint8_t(*)[32])msg, 1));
    size_t n = proto_approval_preimage(pre, sizeof(pre), &sid, &kid, 1234, &item,
                                       (const uint8_t(*)[32])msg, 1);
    CHECK_EQ(secp256k1_tagged_sha256(crypto_ctx(), digest,
                                     (const unsigned char *)PROTO_TAG_APPROVAL,
                                     strlen(PROTO_TAG_APPROVAL), pre, n),
             1);
    CHECK_OK(schnorr_verify(sig, 64, digest, 32, auth.xonly, 32));
    keypair_clear(&user);
    keypair_clear(&auth);
    keypair_clear(&again);
}

static void test_adaptor_complete_refusals(void **state)
{
    (void)state;
    uint8_t t[2][32], sig[64];
    struct proto_adaptor_result res = {.adaptor_type = PROTO_ADAPTOR_SINGLE};
    memset(t, 0, sizeof(t));
    t[0][31] = 5;
    t[1][31] = 6;
    CHECK_OK(adaptor_point(res.adaptor_point, t[0]));
    /* "single" takes one secret; another secret does not match the point. */
    CHECK_ERR(participant_adaptor_complete(sig, &res, (const uint8_t(*)[32])t, 2), KM_ERR_INVALID);
    CHECK_ERR(participant_adaptor_complete(sig, &res, (const uint8_t(*)[32])t + 1, 1),
              KM_ERR_CRYPTO);
    /* "and": the sum of the secrets. */
    uint8_t sum[32] = {0};
    sum[31] = 11;
    res.adaptor_type = PROTO_ADAPTOR_AND;
    CHECK_OK(adaptor_point(res.adaptor_point, sum));
    memset(res.presignature, 0, 64);
    res.presignature[31] = 1; /* any x; s' = 0 */
    CHECK_OK(participant_adaptor_complete(sig, &res, (const uint8_t(*)[32])t, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_seal_open),
        TEST(test_encrypt_to_enclave),
        TEST(test_aggregate_key),
        TEST(test_approval_and_auth_key),
        TEST(test_adaptor_complete_refusals),
    };
    return RUN_TESTS("client.participant", tests);
}
