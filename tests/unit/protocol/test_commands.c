/*
 * test_commands.c - the command codecs (protocol/commands.h) and the schema
 * engine behind them (protocol/schema.h): round trips of every command's
 * args and result, strictness (unknown and missing keys, types, ranges,
 * limits, distinctness), error paths, the error-code and command tables.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/commands.h"
#include "protocol/payload.h"
#include "common/banned.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        fail_msg("bad test JSON: %s: %s", jerr.text, text);
    return j;
}

/* Decodes text with schema s, re-encodes, and checks the JSON is equal. */
static void roundtrip(const struct proto_schema *s, const char *text)
{
    json_t *in = parse(text);
    void *obj = calloc(1, s->size);
    struct km_error err;
    int r = proto_decode(s, obj, in, &err);
    if (r != KM_OK)
        fail_msg("%s: %s", text, err.msg);
    json_t *out = proto_encode(s, obj);
    if (!json_equal(in, out)) {
        char *dump = json_dumps(out, JSON_COMPACT);
        fail_msg("round trip differs:\n in  %s\n out %s", text, dump);
    }
    proto_clear(s, obj);
    json_decref(in);
    json_decref(out);
    free(obj);
}

/* Expects decoding text to fail with code and a message containing want. */
static void rejects(const struct proto_schema *s, const char *text, int code, const char *want)
{
    json_t *in = parse(text);
    void *obj = calloc(1, s->size);
    struct km_error err;
    km_error_clear(&err);
    int r = proto_decode(s, obj, in, &err);
    if (r != code)
        fail_msg("%s: got %d (%s), want %d", text, r, err.msg, code);
    CHECK_CONTAINS(err.msg, want);
    /* A failed decode leaves a zeroed struct. */
    uint8_t *zero = calloc(1, s->size);
    CHECK_MEM_EQ(obj, zero, s->size);
    free(zero);
    json_decref(in);
    free(obj);
}

#define U1  "01900000-0000-7000-8000-000000000001"
#define U2  "01900000-0000-7000-8000-000000000002"
#define U3  "01900000-0000-7000-8000-000000000003"
#define PK  "02aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define H32 "1111111111111111111111111111111111111111111111111111111111111111"
#define H64 H32 H32

static void test_roundtrips(void **state)
{
    (void)state;
    roundtrip(&proto_empty_schema, "{}");
    roundtrip(&proto_ping_result_schema, "{\"pong\":true}");
    roundtrip(&proto_public_info_schema,
              "{\"enclave_id\":2,\"public_key\":\"" PK "\",\"key_epoch\":1,\"uptime_secs\":12,"
              "\"active_sessions\":{\"keygen\":1,\"signing\":2},\"version\":\"0.1.0\"}");
    roundtrip(&proto_public_info_schema,
              "{\"public_key\":\"" PK "\",\"key_epoch\":1,\"uptime_secs\":0,"
              "\"active_sessions\":{\"keygen\":0,\"signing\":0},\"version\":\"0.1.0\"}");
    roundtrip(&proto_configure_args_schema, "{\"enclave_id\":0}");
    roundtrip(&proto_clear_session_args_schema, "{\"keygen_session_id\":\"" U1 "\"}");
    roundtrip(&proto_clear_session_args_schema, "{\"signing_session_id\":\"" U1 "\"}");
    roundtrip(&proto_clear_session_result_schema, "{\"cleared\":false}");
    roundtrip(&proto_keygen_init_args_schema,
              "{\"keygen_session_id\":\"" U1 "\",\"coordinator\":true,"
              "\"encrypted_session_secret\":\"00ff\","
              "\"enclaves\":[{\"enclave_id\":0,\"public_key\":\"" PK "\"},"
              "{\"enclave_id\":1,\"public_key\":\"" PK "\"}],"
              "\"participants\":[\"" U1 "\",\"" U2 "\",\"" U3 "\"],"
              "\"encrypted_taproot_tweak\":\"abcd\","
              "\"subsets\":[{\"subset_id\":\"" U3 "\",\"participants\":[\"" U1 "\",\"" U2 "\"]}],"
              "\"timeout_secs\":3600}");
    /* Optional fields absent. */
    roundtrip(&proto_keygen_init_args_schema,
              "{\"keygen_session_id\":\"" U1 "\",\"coordinator\":false,"
              "\"encrypted_session_secret\":\"00\","
              "\"enclaves\":[{\"enclave_id\":0,\"public_key\":\"" PK "\"},"
              "{\"enclave_id\":1,\"public_key\":\"" PK "\"}],"
              "\"participants\":[\"" U1 "\",\"" U2 "\"],\"timeout_secs\":1}");
    roundtrip(&proto_keygen_init_result_schema, "{}");
    roundtrip(&proto_keygen_init_result_schema,
              "{\"encrypted_session_secrets\":[{\"enclave_id\":1,\"ciphertext\":\"01\"}]}");
    roundtrip(&proto_keygen_add_participants_args_schema,
              "{\"keygen_session_id\":\"" U1 "\",\"participants\":[{\"user_id\":\"" U2 "\","
              "\"encrypted_private_key\":\"0102\",\"auth_pubkey\":\"" H32 "\","
              "\"require_signing_approval\":true}]}");
    roundtrip(&proto_keygen_add_participants_result_schema,
              "{\"participants\":[{\"user_id\":\"" U2 "\",\"encrypted_public_keys\":"
              "[{\"enclave_id\":1,\"ciphertext\":\"aa\"}]}],\"complete\":true,\"known\":3,"
              "\"expected\":3,\"aggregate_check\":\"" H32 "\"}");
    roundtrip(&proto_keygen_distribute_public_keys_args_schema,
              "{\"keygen_session_id\":\"" U1 "\",\"public_keys\":[{\"user_id\":\"" U2 "\","
              "\"ciphertext\":\"aa\"}]}");
    roundtrip(&proto_keygen_progress_schema, "{\"complete\":false,\"known\":1,\"expected\":3}");
    roundtrip(&proto_keygen_ref_args_schema, "{\"keygen_session_id\":\"" U1 "\"}");
    roundtrip(&proto_keygen_get_aggregate_result_schema,
              "{\"encrypted_aggregate_public_key\":\"aa\",\"participant_count\":3,"
              "\"subsets\":[{\"subset_id\":\"" U2 "\",\"encrypted_aggregate_public_key\":\"bb\"}],"
              "\"aggregate_check\":\"" H32 "\"}");
    roundtrip(&proto_signing_init_args_schema,
              "{\"signing_session_id\":\"" U1 "\",\"keygen_session_id\":\"" U2 "\","
              "\"timeout_secs\":600,\"items\":[{\"item_id\":\"" U3
              "\",\"encrypted_message\":\"aa\","
              "\"encrypted_taproot_tweak\":\"bb\",\"subset_id\":\"" U1 "\","
              "\"encrypted_adaptor_configs\":\"cc\"},{\"item_id\":\"" U2 "\","
              "\"encrypted_message\":\"dd\"}],\"approvals\":[{\"user_id\":\"" U1 "\","
              "\"timestamp\":1795000000,\"signature\":\"" H64 "\"}]}");
    roundtrip(&proto_signing_init_result_schema,
              "{\"nonces\":[{\"user_id\":\"" U1 "\",\"encrypted_nonces\":\"aa\"}],\"units\":3}");
    roundtrip(&proto_signing_distribute_nonces_args_schema,
              "{\"signing_session_id\":\"" U1 "\",\"nonces\":[{\"user_id\":\"" U1 "\","
              "\"encrypted_nonces\":\"aa\"}]}");
    roundtrip(&proto_signing_distribute_nonces_result_schema,
              "{\"partial_signatures\":[{\"user_id\":\"" U1 "\","
              "\"encrypted_partial_signatures\":\"aa\"}]}");
    roundtrip(&proto_signing_finalize_args_schema,
              "{\"signing_session_id\":\"" U1 "\",\"partial_signatures\":[{\"user_id\":\"" U1 "\","
              "\"encrypted_partial_signatures\":\"aa\"}]}");
    roundtrip(&proto_signing_finalize_result_schema,
              "{\"results\":[{\"item_id\":\"" U1 "\",\"encrypted_signature\":\"aa\"},"
              "{\"item_id\":\"" U2 "\",\"encrypted_adaptor_signatures\":\"bb\"}]}");
}

#define EID "bd3bb50c922f257a3ba06724158d01c7"

/* nonce_pool_fill, signing_sign and the pool-nonce payload. */
static void test_pool_codecs(void **state)
{
    (void)state;
    roundtrip(&proto_nonce_pool_fill_args_schema,
              "{\"keygen_session_id\":\"" U1 "\",\"count\":64}");
    rejects(&proto_nonce_pool_fill_args_schema, "{\"keygen_session_id\":\"" U1 "\",\"count\":0}",
            KM_ERR_INVALID, "count");
    rejects(&proto_nonce_pool_fill_args_schema, "{\"keygen_session_id\":\"" U1 "\",\"count\":65}",
            KM_ERR_INVALID, "count");
    roundtrip(&proto_nonce_pool_fill_result_schema,
              "{\"entries\":[{\"entry_id\":\"" EID "\",\"nonces\":[{\"user_id\":\"" U1
              "\",\"encrypted_nonce\":\"aa\"},{\"user_id\":\"" U2
              "\",\"encrypted_nonce\":\"bb\"}]}],\"ttl_secs\":3600}");
    /* One user twice in an entry. */
    rejects(&proto_nonce_pool_fill_result_schema,
            "{\"entries\":[{\"entry_id\":\"" EID "\",\"nonces\":[{\"user_id\":\"" U1
            "\",\"encrypted_nonce\":\"aa\"},{\"user_id\":\"" U1
            "\",\"encrypted_nonce\":\"bb\"}]}],\"ttl_secs\":3600}",
            KM_ERR_INVALID, "");
    /* An entry id is exactly 16 bytes. */
    rejects(&proto_nonce_pool_fill_result_schema,
            "{\"entries\":[{\"entry_id\":\"" H32 "\",\"nonces\":[{\"user_id\":\"" U1
            "\",\"encrypted_nonce\":\"aa\"}]}],\"ttl_secs\":3600}",
            KM_ERR_INVALID, "entry_id");
    roundtrip(&proto_signing_sign_args_schema,
              "{\"signing_session_id\":\"" U1 "\",\"keygen_session_id\":\"" U2 "\","
              "\"timeout_secs\":600,\"items\":[{\"item_id\":\"" U3
              "\",\"encrypted_message\":\"aa\",\"subset_id\":\"" U1 "\"}],"
              "\"approvals\":[{\"user_id\":\"" U1 "\",\"timestamp\":1795000000,"
              "\"signature\":\"" H64 "\"}],\"nonces\":[{\"user_id\":\"" U1 "\",\"item_id\":\"" U3
              "\",\"unit\":0,\"entry_id\":\"" EID "\",\"encrypted_nonce\":\"cc\"}]}");
    /* Without nonces it is not a signing_sign. */
    rejects(&proto_signing_sign_args_schema,
            "{\"signing_session_id\":\"" U1 "\",\"keygen_session_id\":\"" U2 "\","
            "\"timeout_secs\":600,\"items\":[{\"item_id\":\"" U3
            "\",\"encrypted_message\":\"aa\"}]}",
            KM_ERR_INVALID, "nonces");
    roundtrip(&proto_pool_nonce_schema, "{\"keygen_session_id\":\"" U1 "\",\"user_id\":\"" U2
                                        "\",\"entry_id\":\"" EID "\",\"pubnonce\":\"" PK PK "\"}");
    CHECK_STR_EQ(proto_code_name(PROTO_E_NONCE_UNAVAILABLE), "nonce_unavailable");
    CHECK(!proto_code_retryable(PROTO_E_NONCE_UNAVAILABLE));
    CHECK_STR_EQ(proto_command_get(PROTO_CMD_SIGNING_SIGN)->name, "signing_sign");
    CHECK_STR_EQ(proto_command_get(PROTO_CMD_NONCE_POOL_FILL)->name, "nonce_pool_fill");
}

static void test_typed_wrappers_and_blobs(void **state)
{
    (void)state;
    struct proto_keygen_init_result res = {0};
    struct km_error err;
    res.n_encrypted_session_secrets = 1;
    res.encrypted_session_secrets = calloc(1, sizeof(*res.encrypted_session_secrets));
    res.encrypted_session_secrets[0].enclave_id = 7;
    static const uint8_t ct[] = {0xde, 0xad, 0xbe, 0xef};
    proto_blob_set(&res.encrypted_session_secrets[0].ciphertext, ct, sizeof(ct));
    json_t *j = proto_keygen_init_result_encode(&res);
    proto_keygen_init_result_clear(&res);
    CHECK_EQ(res.n_encrypted_session_secrets, 0);
    CHECK_NULL(res.encrypted_session_secrets);

    CHECK_STR_EQ(
        json_string_value(json_object_get(
            json_array_get(json_object_get(j, "encrypted_session_secrets"), 0), "ciphertext")),
        "deadbeef");
    CHECK_OK(proto_keygen_init_result_decode(&res, j, &err));
    CHECK_EQ(res.encrypted_session_secrets[0].enclave_id, 7);
    CHECK_EQ(res.encrypted_session_secrets[0].ciphertext.len, 4);
    CHECK_MEM_EQ(res.encrypted_session_secrets[0].ciphertext.p, ct, 4);
    proto_keygen_init_result_clear(&res);
    json_decref(j);

    /* Upper-case hex is accepted; the encoder writes lower case. */
    j = parse("{\"enclave_id\":1,\"public_key\":\"02AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
              "AAAAAAAAAAAAAAAAAAA\",\"key_epoch\":1,\"uptime_secs\":0,\"active_sessions\":"
              "{\"keygen\":0,\"signing\":0},\"version\":\"x\"}");
    struct proto_public_info info;
    CHECK_OK(proto_public_info_decode(&info, j, &err));
    CHECK(info.has_enclave_id);
    CHECK_EQ(info.public_key[1], 0xaa);
    json_decref(j);
    j = proto_public_info_encode(&info);
    CHECK_CONTAINS(json_string_value(json_object_get(j, "public_key")), "02aaaa");
    json_decref(j);
}

static void test_strictness(void **state)
{
    (void)state;
    const struct proto_schema *kr = &proto_keygen_ref_args_schema;
    rejects(kr, "[]", KM_ERR_INVALID, "must be an object");
    rejects(kr, "{}", KM_ERR_INVALID, "missing \"keygen_session_id\"");
    rejects(kr, "{\"keygen_session_id\":\"" U1 "\",\"x\":1}", KM_ERR_INVALID, "unknown key \"x\"");
    rejects(kr, "{\"keygen_session_id\":5}", KM_ERR_INVALID, "keygen_session_id: must be a UUID");
    rejects(kr, "{\"keygen_session_id\":\"not-a-uuid\"}", KM_ERR_INVALID, "must be a UUID");
    rejects(kr, "{\"keygen_session_id\":\"00000000-0000-0000-0000-000000000000\"}", KM_ERR_INVALID,
            "nil UUID");

    const struct proto_schema *cfg = &proto_configure_args_schema;
    rejects(cfg, "{\"enclave_id\":-1}", KM_ERR_INVALID, "integer in 0..4294967295");
    rejects(cfg, "{\"enclave_id\":4294967296}", KM_ERR_INVALID, "integer in");
    rejects(cfg, "{\"enclave_id\":1.5}", KM_ERR_INVALID, "must be an integer");
    rejects(cfg, "{\"enclave_id\":\"1\"}", KM_ERR_INVALID, "must be an integer");
    rejects(cfg, "{\"enclave_id\":true}", KM_ERR_INVALID, "must be an integer");
    rejects(cfg, "{\"enclave_id\":1e300}", KM_ERR_INVALID, "must be an integer");
    rejects(cfg, "{\"enclave_id\":null}", KM_ERR_INVALID, "must be an integer");

    const struct proto_schema *ki = &proto_keygen_init_args_schema;
#define KI_HEAD                                                                                    \
    "{\"keygen_session_id\":\"" U1 "\",\"coordinator\":true,\"encrypted_session_secret\":"
#define KI_ENC                                                                                     \
    "\"enclaves\":[{\"enclave_id\":0,\"public_key\":\"" PK "\"},{\"enclave_id\":1,\"public_key\":" \
    "\"" PK "\"}]"
    rejects(ki,
            KI_HEAD "\"0\"," KI_ENC ",\"participants\":[\"" U1 "\",\"" U2 "\"],"
                    "\"timeout_secs\":1}",
            KM_ERR_INVALID, "encrypted_session_secret: must be at least 1 bytes of hex");
    rejects(ki,
            KI_HEAD "\"zz\"," KI_ENC ",\"participants\":[\"" U1 "\",\"" U2 "\"],"
                    "\"timeout_secs\":1}",
            KM_ERR_INVALID, "not valid hex");
    rejects(ki,
            KI_HEAD "\"00\"," KI_ENC ",\"participants\":[\"" U1 "\",\"" U1 "\"],"
                    "\"timeout_secs\":1}",
            KM_ERR_INVALID, "participants: " U1 " appears more than once");
    rejects(ki, KI_HEAD "\"00\"," KI_ENC ",\"participants\":[\"" U1 "\"],\"timeout_secs\":1}",
            KM_ERR_INVALID, "participants: needs at least 2 entries");
    rejects(ki,
            KI_HEAD "\"00\"," KI_ENC ",\"participants\":[\"" U1 "\",\"" U2 "\"],"
                    "\"timeout_secs\":0}",
            KM_ERR_INVALID, "timeout_secs: must be an integer in 1..86400");
    rejects(ki,
            KI_HEAD "\"00\"," KI_ENC ",\"participants\":[\"" U1 "\",\"" U2 "\"],"
                    "\"timeout_secs\":86401}",
            KM_ERR_INVALID, "timeout_secs");
    rejects(ki,
            KI_HEAD "\"00\",\"enclaves\":[{\"enclave_id\":0,\"public_key\":\"02\"},{}],"
                    "\"participants\":[\"" U1 "\",\"" U2 "\"],\"timeout_secs\":1}",
            KM_ERR_INVALID, "enclaves[0].public_key: must be 33 bytes of hex");
    rejects(ki,
            KI_HEAD "\"00\"," KI_ENC ",\"participants\":[\"" U1 "\",\"" U2 "\"],"
                    "\"subsets\":[{\"subset_id\":\"" U3 "\",\"participants\":[\"" U1 "\"]}],"
                    "\"timeout_secs\":1}",
            KM_ERR_INVALID, "subsets[0].participants: needs at least 2 entries");
    rejects(ki,
            KI_HEAD "\"00\"," KI_ENC ",\"participants\":[\"" U1 "\",\"" U2 "\"],"
                    "\"subsets\":[{\"subset_id\":\"" U3 "\",\"participants\":[\"" U1 "\",\"" U2
                    "\"],\"extra\":1}],\"timeout_secs\":1}",
            KM_ERR_INVALID, "subsets[0]: unknown key \"extra\"");
    rejects(ki, KI_HEAD "\"00\"," KI_ENC ",\"participants\":\"" U1 "\",\"timeout_secs\":1}",
            KM_ERR_INVALID, "participants: must be an array");

    rejects(&proto_clear_session_args_schema, "{}", KM_ERR_INVALID, "exactly one of");
    rejects(&proto_clear_session_args_schema,
            "{\"keygen_session_id\":\"" U1 "\",\"signing_session_id\":\"" U2 "\"}", KM_ERR_INVALID,
            "exactly one of");
    rejects(&proto_signing_finalize_result_schema, "{\"results\":[{\"item_id\":\"" U1 "\"}]}",
            KM_ERR_INVALID, "results[0]: exactly one of");
    rejects(&proto_empty_schema, "{\"a\":1}", KM_ERR_INVALID, "unknown key \"a\"");
    /* A key with an embedded NUL (only a built tree can hold one) never
     * matches a field. */
    json_t *nul = json_object();
    json_object_setn_new(nul, "keygen_session_id\0x", 19, json_string(U1));
    struct proto_keygen_ref_args ref;
    struct km_error err;
    CHECK_ERR(proto_keygen_ref_args_decode(&ref, nul, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "unknown key");
    json_decref(nul);
    rejects(&proto_public_info_schema,
            "{\"public_key\":\"" PK "\",\"key_epoch\":1,\"uptime_secs\":0,\"active_sessions\":"
            "{\"keygen\":0,\"signing\":0},\"version\":\"a\\nb\"}",
            KM_ERR_INVALID, "version: must be printable ASCII");
    rejects(&proto_public_info_schema,
            "{\"public_key\":\"" PK "\",\"key_epoch\":9007199254740992,\"uptime_secs\":0,"
            "\"active_sessions\":{\"keygen\":0,\"signing\":0},\"version\":\"a\"}",
            KM_ERR_INVALID, "key_epoch");
}

/* Builds {"keygen_session_id":..., "participants":[n registrations]}. */
static json_t *many_registrations(size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char id[48];
        snprintf(id, sizeof(id), "01900000-0000-7000-8000-%012zx", i + 1);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b}", "user_id", id,
                                             "encrypted_private_key", "00", "auth_pubkey", H32,
                                             "require_signing_approval", 0));
    }
    return json_pack("{s:s, s:o}", "keygen_session_id", U1, "participants", arr);
}

static void test_limits(void **state)
{
    (void)state;
    struct proto_keygen_add_participants_args a;
    struct km_error err;
    json_t *j = many_registrations(PROTO_MAX_PARTICIPANTS);
    CHECK_OK(proto_keygen_add_participants_args_decode(&a, j, &err));
    CHECK_EQ(a.n_participants, PROTO_MAX_PARTICIPANTS);
    proto_keygen_add_participants_args_clear(&a);
    json_decref(j);

    j = many_registrations(PROTO_MAX_PARTICIPANTS + 1);
    CHECK_ERR(proto_keygen_add_participants_args_decode(&a, j, &err), KM_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "participants: too many entries (1001; at most 1000)");
    json_decref(j);

    /* A blob over its maximum is refused before decoding. */
    size_t hexlen = 2 * (PROTO_ECIES_MAX + 1);
    char *big = malloc(hexlen + 1);
    memset(big, 'a', hexlen);
    big[hexlen] = '\0';
    j = json_pack("{s:s, s:[{s:s, s:s, s:s, s:b}]}", "keygen_session_id", U1, "participants",
                  "user_id", U2, "encrypted_private_key", big, "auth_pubkey", H32,
                  "require_signing_approval", 0);
    CHECK_ERR(proto_keygen_add_participants_args_decode(&a, j, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "too long (at most 512 bytes)");
    json_decref(j);
    free(big);
}

static void test_decode_bytes(void **state)
{
    (void)state;
    struct proto_keygen_ref_args a;
    struct km_error err;
    const char *ok = "{\"keygen_session_id\":\"" U1 "\"}";
    CHECK_OK(proto_decode_bytes(&proto_keygen_ref_args_schema, &a, (const uint8_t *)ok, strlen(ok),
                                &err));
    const char *dup = "{\"keygen_session_id\":\"" U1 "\",\"keygen_session_id\":\"" U2 "\"}";
    CHECK_ERR(proto_decode_bytes(&proto_keygen_ref_args_schema, &a, (const uint8_t *)dup,
                                 strlen(dup), &err),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "invalid JSON");
    const char *trailing = "{\"keygen_session_id\":\"" U1 "\"} x";
    CHECK_ERR(proto_decode_bytes(&proto_keygen_ref_args_schema, &a, (const uint8_t *)trailing,
                                 strlen(trailing), &err),
              KM_ERR_INVALID);
    struct buf b;
    buf_init(&b, 1024);
    CHECK_OK(proto_decode_bytes(&proto_keygen_ref_args_schema, &a, (const uint8_t *)ok, strlen(ok),
                                &err));
    CHECK_OK(proto_encode_bytes(&b, &proto_keygen_ref_args_schema, &a));
    CHECK_EQ(buf_len(&b), strlen(ok));
    CHECK_MEM_EQ(buf_peek(&b), ok, strlen(ok));
    buf_release(&b);
}

static void test_tables(void **state)
{
    (void)state;
    enum proto_code c;
    for (int i = 0; i < PROTO_E_COUNT_; i++) {
        CHECK_OK(proto_code_parse(&c, proto_code_name((enum proto_code)i)));
        CHECK_EQ(c, i);
    }
    CHECK_ERR(proto_code_parse(&c, "nope"), KM_ERR_INVALID);
    CHECK_EQ(c, PROTO_E_INTERNAL);
    CHECK(proto_code_retryable(PROTO_E_BUSY));
    CHECK(!proto_code_retryable(PROTO_E_INVALID_STATE));
    CHECK_STR_EQ(proto_code_name(PROTO_E_INVALID_PARTIAL_SIGNATURE), "invalid_partial_signature");

    for (int i = 0; i < PROTO_CMD_COUNT_; i++) {
        const struct proto_command *pc = proto_command_get((enum proto_cmd)i);
        CHECK_EQ(pc->cmd, i);
        CHECK(proto_command_find(pc->name) == pc);
        CHECK_NOT_NULL(pc->args);
        CHECK_NOT_NULL(pc->result);
    }
    CHECK_NULL(proto_command_find("sign_everything"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_roundtrips),   TEST(test_typed_wrappers_and_blobs),
        TEST(test_strictness),   TEST(test_limits),
        TEST(test_decode_bytes), TEST(test_tables),
        TEST(test_pool_codecs),
    };
    return RUN_TESTS("protocol.commands", tests);
}
