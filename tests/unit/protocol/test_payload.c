/*
 * test_payload.c - the plaintexts inside encrypted fields
 * (protocol/payload.h): tweak, adaptor, nonce, partial-signature and
 * adaptor-result JSON; the bound binary values; the approval preimage.
 */
#include "test.h"

#include <string.h>

#include "protocol/payload.h"
#include "common/banned.h"

#define U1  "01900000-0000-7000-8000-000000000001"
#define U2  "01900000-0000-7000-8000-000000000002"
#define PK  "02aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define H32 "1111111111111111111111111111111111111111111111111111111111111111"

static int decode(const struct proto_schema *s, void *out, const char *text, struct km_error *err)
{
    return proto_decode_bytes(s, out, (const uint8_t *)text, strlen(text), err);
}

static void test_tweak(void **state)
{
    (void)state;
    struct proto_tweak t;
    struct km_error err;
    CHECK_OK(decode(&proto_tweak_schema, &t, "{\"type\":\"none\"}", &err));
    CHECK_EQ(t.type, PROTO_TWEAK_NONE);
    CHECK_OK(decode(&proto_tweak_schema, &t, "{\"type\":\"unspendable_taproot\"}", &err));
    CHECK_EQ(t.type, PROTO_TWEAK_UNSPENDABLE_TAPROOT);
    CHECK_OK(decode(&proto_tweak_schema, &t,
                    "{\"type\":\"taproot_with_merkle_root\",\"merkle_root\":\"" H32 "\"}", &err));
    CHECK(t.has_merkle_root && t.merkle_root[31] == 0x11);
    CHECK_OK(
        decode(&proto_tweak_schema, &t, "{\"type\":\"plain_tweak\",\"tweak\":\"" H32 "\"}", &err));
    CHECK(t.type == PROTO_TWEAK_PLAIN && t.has_tweak);
    CHECK_OK(
        decode(&proto_tweak_schema, &t, "{\"type\":\"x_only_tweak\",\"tweak\":\"" H32 "\"}", &err));
    CHECK_EQ(t.type, PROTO_TWEAK_XONLY);

    CHECK_ERR(decode(&proto_tweak_schema, &t, "{\"type\":\"plain_tweak\"}", &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "\"tweak\" is required for type \"plain_tweak\"");
    CHECK_ERR(
        decode(&proto_tweak_schema, &t, "{\"type\":\"none\",\"merkle_root\":\"" H32 "\"}", &err),
        KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "\"merkle_root\" is not allowed");
    CHECK_ERR(decode(&proto_tweak_schema, &t, "{\"type\":\"bip32\"}", &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "must be one of \"none\", \"unspendable_taproot\"");
    CHECK_ERR(decode(&proto_tweak_schema, &t, "", &err), KM_ERR_INVALID);

    /* Encoding omits absent values. */
    struct buf b;
    buf_init(&b, 256);
    struct proto_tweak none = {.type = PROTO_TWEAK_NONE};
    CHECK_OK(proto_encode_bytes(&b, &proto_tweak_schema, &none));
    CHECK_EQ(buf_len(&b), strlen("{\"type\":\"none\"}"));
    buf_release(&b);
}

static void test_adaptor_configs(void **state)
{
    (void)state;
    struct proto_adaptor_configs c;
    struct km_error err;
    CHECK_OK(decode(&proto_adaptor_configs_schema, &c,
                    "[{\"adaptor_id\":\"" U1 "\",\"adaptor_type\":\"single\",\"adaptor_points\":"
                    "[\"" PK "\"]},{\"adaptor_id\":\"" U2 "\",\"adaptor_type\":\"or\","
                    "\"adaptor_points\":[\"" PK "\",\"" PK "\"]}]",
                    &err));
    CHECK_EQ(c.n_configs, 2);
    CHECK_EQ(c.configs[1].adaptor_type, PROTO_ADAPTOR_OR);
    CHECK_EQ(c.configs[1].n_points, 2);
    CHECK_EQ(c.configs[1].adaptor_points[1][0], 0x02);
    struct buf b;
    buf_init(&b, 4096);
    CHECK_OK(proto_encode_bytes(&b, &proto_adaptor_configs_schema, &c));
    CHECK(buf_peek(&b)[0] == '[');
    proto_adaptor_configs_clear(&c);
    buf_release(&b);

    CHECK_ERR(decode(&proto_adaptor_configs_schema, &c, "[]", &err), KM_ERR_INVALID);
    CHECK_ERR(decode(&proto_adaptor_configs_schema, &c,
                     "[{\"adaptor_id\":\"" U1 "\",\"adaptor_type\":\"single\",\"adaptor_points\":"
                     "[\"" PK "\",\"" PK "\"]}]",
                     &err),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "exactly one point");
    CHECK_ERR(decode(&proto_adaptor_configs_schema, &c,
                     "[{\"adaptor_id\":\"" U1 "\",\"adaptor_type\":\"and\",\"adaptor_points\":"
                     "[\"" PK "\"]}]",
                     &err),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "two or more points");
    CHECK_ERR(decode(&proto_adaptor_configs_schema, &c,
                     "[{\"adaptor_id\":\"" U1 "\",\"adaptor_type\":\"single\",\"adaptor_points\":"
                     "[\"" PK "\"]},{\"adaptor_id\":\"" U1 "\",\"adaptor_type\":\"single\","
                     "\"adaptor_points\":[\"" PK "\"]}]",
                     &err),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "appears more than once");
    CHECK_ERR(decode(&proto_adaptor_configs_schema, &c, "{}", &err), KM_ERR_INVALID);
}

static void test_nonce_and_psig_data(void **state)
{
    (void)state;
    struct proto_nonce_data n;
    struct proto_psig_data p;
    struct km_error err;
    CHECK_OK(decode(&proto_nonce_data_schema, &n,
                    "{\"signing_session_id\":\"" U1 "\",\"user_id\":\"" U2 "\",\"nonces\":["
                    "{\"item_id\":\"" U1 "\",\"unit\":0,\"pubnonce\":\"" PK PK "\"}]}",
                    &err));
    CHECK_EQ(n.n_nonces, 1);
    CHECK_EQ(n.nonces[0].pubnonce[33], 0x02);
    proto_nonce_data_clear(&n);
    CHECK_ERR(decode(&proto_nonce_data_schema, &n,
                     "{\"signing_session_id\":\"" U1 "\",\"user_id\":\"" U2 "\",\"nonces\":["
                     "{\"item_id\":\"" U1 "\",\"unit\":1000,\"pubnonce\":\"" PK PK "\"}]}",
                     &err),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "nonces[0].unit");
    CHECK_OK(decode(&proto_psig_data_schema, &p,
                    "{\"signing_session_id\":\"" U1 "\",\"user_id\":\"" U2 "\","
                    "\"partial_signatures\":[{\"item_id\":\"" U1 "\",\"unit\":3,\"psig\":\"" H32
                    "\"}]}",
                    &err));
    CHECK_EQ(p.partial_signatures[0].unit, 3);
    proto_psig_data_clear(&p);
}

static void test_adaptor_results(void **state)
{
    (void)state;
    struct proto_adaptor_results r;
    struct km_error err;
    CHECK_OK(decode(&proto_adaptor_results_schema, &r,
                    "[{\"adaptor_id\":\"" U1 "\",\"adaptor_type\":\"or\",\"branch\":1,"
                    "\"adaptor_point\":\"" PK "\",\"presignature\":\"" H32 H32 "\","
                    "\"nonce_parity\":1}]",
                    &err));
    CHECK_EQ(r.results[0].branch, 1);
    CHECK_EQ(r.results[0].nonce_parity, 1);
    proto_adaptor_results_clear(&r);
    CHECK_ERR(decode(&proto_adaptor_results_schema, &r,
                     "[{\"adaptor_id\":\"" U1 "\",\"adaptor_type\":\"or\",\"branch\":1,"
                     "\"adaptor_point\":\"" PK "\",\"presignature\":\"" H32 H32 "\","
                     "\"nonce_parity\":2}]",
                     &err),
              KM_ERR_INVALID);
}

static void test_bound_values(void **state)
{
    (void)state;
    struct uuid kg, user, other;
    uint8_t secret[PROTO_SECRET_LEN], back[PROTO_SECRET_LEN];
    uint8_t packed[PROTO_BOUND_SECRET_LEN];
    CHECK_OK(uuid_v7_new(&kg));
    CHECK_OK(uuid_v7_new(&user));
    CHECK_OK(uuid_v7_new(&other));
    memset(secret, 0x5a, sizeof(secret));
    proto_bound_secret_pack(packed, &kg, secret);
    CHECK_MEM_EQ(packed, kg.b, 16);
    CHECK_OK(proto_bound_secret_unpack(back, packed, sizeof(packed), &kg));
    CHECK_MEM_EQ(back, secret, sizeof(secret));
    CHECK_ERR(proto_bound_secret_unpack(back, packed, sizeof(packed), &other), KM_ERR_INVALID);
    static const uint8_t zero[PROTO_SECRET_LEN];
    CHECK_MEM_EQ(back, zero, sizeof(zero));
    CHECK_ERR(proto_bound_secret_unpack(back, packed, sizeof(packed) - 1, &kg), KM_ERR_INVALID);
    /* A bare 32-byte secret (the client's format) is not a bound one. */
    CHECK_ERR(proto_bound_secret_unpack(back, secret, sizeof(secret), &kg), KM_ERR_INVALID);

    uint8_t pk[PROTO_PUBKEY_LEN], pk2[PROTO_PUBKEY_LEN];
    uint8_t bp[PROTO_BOUND_PUBKEY_LEN];
    memset(pk, 0x03, sizeof(pk));
    proto_bound_pubkey_pack(bp, &kg, &user, pk);
    CHECK_OK(proto_bound_pubkey_unpack(pk2, bp, sizeof(bp), &kg, &user));
    CHECK_MEM_EQ(pk, pk2, sizeof(pk));
    CHECK_ERR(proto_bound_pubkey_unpack(pk2, bp, sizeof(bp), &kg, &other), KM_ERR_INVALID);
    CHECK_ERR(proto_bound_pubkey_unpack(pk2, bp, sizeof(bp), &other, &user), KM_ERR_INVALID);
    CHECK_ERR(proto_bound_pubkey_unpack(pk2, bp, 10, &kg, &user), KM_ERR_INVALID);
}

static void test_approval_preimage(void **state)
{
    (void)state;
    struct uuid sid, kid, items[2];
    uint8_t msgs[2][PROTO_MSG_LEN];
    uint8_t out[PROTO_APPROVAL_PREIMAGE_LEN(2)];
    CHECK_OK(uuid_v7_new(&sid));
    CHECK_OK(uuid_v7_new(&kid));
    CHECK_OK(uuid_v7_new(&items[0]));
    CHECK_OK(uuid_v7_new(&items[1]));
    memset(msgs[0], 0xa0, PROTO_MSG_LEN);
    memset(msgs[1], 0xb0, PROTO_MSG_LEN);
    size_t n = proto_approval_preimage(out, sizeof(out), &sid, &kid, 0x0102030405060708ull, items,
                                       (const uint8_t(*)[PROTO_MSG_LEN])msgs, 2);
    CHECK_EQ(n, 16 + 16 + 8 + 4 + 2 * 48);
    CHECK_MEM_EQ(out, sid.b, 16);
    CHECK_MEM_EQ(out + 16, kid.b, 16);
    static const uint8_t ts[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK_MEM_EQ(out + 32, ts, 8);
    static const uint8_t cnt[4] = {0, 0, 0, 2};
    CHECK_MEM_EQ(out + 40, cnt, 4);
    CHECK_MEM_EQ(out + 44, items[0].b, 16);
    CHECK_MEM_EQ(out + 60, msgs[0], 32);
    CHECK_MEM_EQ(out + 92, items[1].b, 16);
    CHECK_MEM_EQ(out + 108, msgs[1], 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_tweak),           TEST(test_adaptor_configs), TEST(test_nonce_and_psig_data),
        TEST(test_adaptor_results), TEST(test_bound_values),    TEST(test_approval_preimage),
    };
    return RUN_TESTS("protocol.payload", tests);
}
