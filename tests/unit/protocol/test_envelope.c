#include "test.h"

#include <string.h>

#include "protocol/envelope.h"
#include "common/banned.h"

static int decode_req(const char *json, struct env_request *req, bool *has_id, struct km_error *err)
{
    return env_request_decode(req, has_id, (const uint8_t *)json, strlen(json), err);
}

static void test_request_roundtrip(void **state)
{
    (void)state;
    struct uuid cid;
    struct buf b;
    CHECK_OK(uuid_v7_new(&cid));
    buf_init(&b, 4096);
    json_t *args = json_pack("{s:s, s:i}", "session", "abc", "n", 3);
    CHECK_OK(env_request_encode(&b, 42, &cid, "keygen_init", args));
    json_decref(args);

    struct env_request req;
    struct km_error err;
    bool has_id;
    CHECK_OK(env_request_decode(&req, &has_id, buf_peek(&b), buf_len(&b), &err));
    CHECK(has_id);
    CHECK_EQ(req.id, 42);
    CHECK(uuid_equal(&req.command_id, &cid));
    CHECK_STR_EQ(req.cmd, "keygen_init");
    CHECK_STR_EQ(json_string_value(json_object_get(req.args, "session")), "abc");
    env_request_clear(&req);

    /* args omitted = {} */
    buf_reset(&b);
    CHECK_OK(env_request_encode(&b, 1, &cid, "ping", NULL));
    CHECK_OK(env_request_decode(&req, &has_id, buf_peek(&b), buf_len(&b), &err));
    CHECK(json_is_object(req.args) && json_object_size(req.args) == 0);
    env_request_clear(&req);
    CHECK_ERR(env_request_encode(&b, 1, &cid, "Bad-Name", NULL), KM_ERR_INVALID);
    buf_release(&b);
}

/* Arguments encoded once (a fan-out) give the same bytes as encoding the
 * object with each request; text that is no object is refused. */
static void test_request_with_encoded_args(void **state)
{
    (void)state;
    struct uuid cid;
    struct buf args_text, want, got;
    CHECK_OK(uuid_v7_new(&cid));
    buf_init(&args_text, 4096);
    buf_init(&want, 4096);
    buf_init(&got, 4096);
    json_t *args = json_pack("{s:s, s:[i,i]}", "session", "abc", "units", 1, 2);
    CHECK_OK(env_dump_json(&args_text, args));
    CHECK_OK(env_request_encode(&want, 7, &cid, "signing_sign", args));
    CHECK_OK(env_request_encode_text(&got, 7, &cid, "signing_sign", buf_peek(&args_text),
                                     buf_len(&args_text)));
    CHECK_EQ(buf_len(&got), buf_len(&want));
    CHECK(memcmp(buf_peek(&got), buf_peek(&want), buf_len(&want)) == 0);
    json_decref(args);

    buf_reset(&got);
    CHECK_ERR(env_request_encode_text(&got, 7, &cid, "signing_sign", (const uint8_t *)"[1]", 3),
              KM_ERR_INVALID);
    CHECK_ERR(env_request_encode_text(&got, 7, &cid, "signing_sign", (const uint8_t *)"{", 1),
              KM_ERR_INVALID);
    CHECK_ERR(env_request_encode_text(&got, 7, &cid, "Bad-Name", (const uint8_t *)"{}", 2),
              KM_ERR_INVALID);
    buf_release(&args_text);
    buf_release(&want);
    buf_release(&got);
}

static void test_request_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        bool has_id;
        const char *msg;
    } cases[] = {
        {"", false, "invalid JSON"},
        {"[1,2]", false, "JSON object"},
        {"{\"v\":1}", false, "missing \"id\""},
        {"{\"v\":1,\"id\":-1}", false, "\"id\" must be"},
        {"{\"v\":1,\"id\":9007199254740992}", false, "\"id\" must be"},
        {"{\"v\":1,\"id\":1.5}", false, "\"id\" must be"},
        {"{\"v\":2,\"id\":7,\"command_id\":\"0190f4a2-1234-7abc-8def-0123456789ab\",\"cmd\":\"ping\"}",
         true, "unsupported protocol version 2"},
        {"{\"id\":7,\"command_id\":\"0190f4a2-1234-7abc-8def-0123456789ab\",\"cmd\":\"ping\"}",
         true, "\"v\""},
        {"{\"v\":1,\"id\":7,\"command_id\":\"nope\",\"cmd\":\"ping\"}", true, "command_id"},
        /* docs/PROTOCOL.md: the nil UUID is refused. */
        {"{\"v\":1,\"id\":7,\"command_id\":\"00000000-0000-0000-0000-000000000000\",\"cmd\":"
         "\"ping\"}",
         true, "\"command_id\" must not be the nil UUID"},
        {"{\"v\":1,\"id\":7,\"command_id\":\"0190f4a2-1234-7abc-8def-0123456789ab\",\"cmd\":\"Ping!\"}",
         true, "snake_case"},
        {"{\"v\":1,\"id\":7,\"command_id\":\"0190f4a2-1234-7abc-8def-0123456789ab\",\"cmd\":\"ping\","
         "\"args\":[]}",
         true, "\"args\" must be an object"},
        {"{\"v\":1,\"id\":7,\"command_id\":\"0190f4a2-1234-7abc-8def-0123456789ab\",\"cmd\":\"ping\","
         "\"extra\":1}",
         true, "unexpected key \"extra\""},
        {"{\"v\":1,\"id\":7,\"id\":8}", false, "duplicate"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        struct env_request req;
        struct km_error err;
        bool has_id;
        km_error_clear(&err);
        if (decode_req(cases[i].json, &req, &has_id, &err) != KM_ERR_INVALID)
            fail_msg("case %zu should fail: %s", i, cases[i].json);
        CHECK_EQ(has_id, cases[i].has_id);
        if (has_id)
            CHECK_EQ(req.id, 7);
        CHECK_CONTAINS(err.msg, cases[i].msg);
        CHECK_NULL(req.args);
    }
}

static void test_reply_roundtrip(void **state)
{
    (void)state;
    struct buf b;
    struct env_reply r;
    struct km_error err;
    buf_init(&b, 4096);
    json_t *res = json_pack("{s:b}", "pong", 1);
    CHECK_OK(env_reply_encode_ok(&b, 9, res));
    json_decref(res);
    CHECK_OK(env_reply_decode(&r, buf_peek(&b), buf_len(&b), &err));
    CHECK(r.ok);
    CHECK_EQ(r.id, 9);
    CHECK(json_is_true(json_object_get(r.result, "pong")));
    env_reply_clear(&r);

    buf_reset(&b);
    CHECK_OK(
        env_reply_encode_error(&b, 10, "invalid_state", "keygen_init in state completed", true));
    CHECK_OK(env_reply_decode(&r, buf_peek(&b), buf_len(&b), &err));
    CHECK(!r.ok);
    CHECK_STR_EQ(r.error.code, "invalid_state");
    CHECK_STR_EQ(r.error.message, "keygen_init in state completed");
    CHECK(r.error.retryable);
    CHECK_NULL(r.result);
    env_reply_clear(&r);
    buf_release(&b);
}

static void test_error_message_truncated_on_utf8_boundary(void **state)
{
    (void)state;
    char msg[ENV_ERROR_MSG_MAX + 10];
    memset(msg, 'a', sizeof(msg));
    /* A 2-byte character straddling the limit. */
    msg[ENV_ERROR_MSG_MAX - 1] = (char)0xc3;
    msg[ENV_ERROR_MSG_MAX] = (char)0xa9;
    msg[sizeof(msg) - 1] = '\0';
    struct buf b;
    struct env_reply r;
    struct km_error err;
    buf_init(&b, 8192);
    CHECK_OK(env_reply_encode_error(&b, 1, "internal", msg, false));
    CHECK_OK(env_reply_decode(&r, buf_peek(&b), buf_len(&b), &err));
    CHECK_EQ(strlen(r.error.message), ENV_ERROR_MSG_MAX - 1);
    env_reply_clear(&r);

    /* Invalid UTF-8 still produces a reply. */
    buf_reset(&b);
    CHECK_OK(env_reply_encode_error(&b, 2, "internal", "\xff\xfe", false));
    CHECK_OK(env_reply_decode(&r, buf_peek(&b), buf_len(&b), &err));
    CHECK_CONTAINS(r.error.message, "not valid UTF-8");
    env_reply_clear(&r);
    buf_release(&b);
}

static void test_reply_rejects(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"v\":1,\"id\":1}",
        "{\"v\":1,\"id\":1,\"ok\":\"yes\"}",
        "{\"v\":1,\"id\":1,\"ok\":true,\"result\":3}",
        "{\"v\":1,\"id\":1,\"ok\":false}",
        ("{\"v\":1,\"id\":1,\"ok\":false,\"error\":{\"code\":\"Bad Code\",\"message\":\"\","
         "\"retryable\":false}}"),
        "{\"v\":1,\"id\":1,\"ok\":false,\"error\":{\"code\":\"x\",\"message\":1,\"retryable\":false}}",
        "{\"v\":1,\"id\":1,\"ok\":true,\"error\":{}}",
        "{\"v\":3,\"id\":1,\"ok\":true}",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        struct env_reply r;
        struct km_error err;
        if (env_reply_decode(&r, (const uint8_t *)bad[i], strlen(bad[i]), &err) != KM_ERR_INVALID)
            fail_msg("reply %zu should fail: %s", i, bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_request_roundtrip),
        TEST(test_request_with_encoded_args),
        TEST(test_request_rejects),
        TEST(test_reply_roundtrip),
        TEST(test_error_message_truncated_on_utf8_boundary),
        TEST(test_reply_rejects),
    };
    return RUN_TESTS("protocol.envelope", tests);
}
