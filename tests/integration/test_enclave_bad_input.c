/*
 * test_enclave_bad_input.c - keymeld-enclave processes under bad input
 * (issue 4 "Bad input"): garbage frames, valid JSON with wrong types,
 * unknown commands, huge numbers, unknown session ids, a replayed
 * command_id, a nonce from a non-participant, an invalid partial signature
 * (the coordinator names the signer), an oversized frame. Each gets an
 * error reply and a `ping` afterwards still works.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procs.h"
#include "transport/frame.h"
#include "transport/sock.h"
#include "common/banned.h"

#define CID "01900000-0000-7000-8000-00000000c1d0"

struct env {
    char dir[64];
    struct procs p;
    struct drv d;
    int fd; /* raw connection to enclave 0 */
    struct tp_reader rd;
};

static int raw_connect(struct env *e)
{
    struct tp_addr a;
    struct km_error err;
    int fd;
    CHECK_OK(tp_addr_tcp(&a, "127.0.0.1", e->p.port[0], &err));
    CHECK_OK(tp_connect(&fd, &a, deadline_in_ms(5000), &err));
    return fd;
}

static void env_start(struct env *e)
{
    memset(e, 0, sizeof(*e));
    struct km_error err;
    struct drv_link link;
    snprintf(e->dir, sizeof(e->dir), "/tmp/km_bad_XXXXXX");
    CHECK_NOT_NULL(mkdtemp(e->dir));
    if (procs_start(&e->p, 3, e->dir, "info", NULL, &err) != KM_OK)
        fail_msg("%s", err.msg);
    drv_link_pools(&link, &e->p.pools);
    if (drv_init(&e->d, &link, 3, &err) != KM_OK)
        fail_msg("drv_init: %s", err.msg);
    e->fd = raw_connect(e);
    tp_reader_init(&e->rd, FRAME_MAX_DEFAULT);
}

static void env_stop(struct env *e)
{
    close(e->fd);
    tp_reader_release(&e->rd);
    CHECK_EQ(procs_stop(&e->p), 0);
    for (size_t i = 0; i < 3; i++)
        unlink(e->p.log[i]);
    rmdir(e->dir);
}

static void raw_send_bytes(int fd, const void *p, size_t n)
{
    struct km_error err;
    CHECK_OK(tp_write_all(fd, p, n, deadline_in_ms(5000), &err));
}

/* Sends one frame and reads exactly one reply. */
static void raw_call(struct env *e, const char *payload, struct env_reply *rep)
{
    struct buf b;
    struct km_error err;
    const uint8_t *p;
    size_t n;
    buf_init(&b, FRAME_MAX_DEFAULT + 4);
    CHECK_OK(frame_encode(&b, (const uint8_t *)payload, strlen(payload), FRAME_MAX_DEFAULT));
    raw_send_bytes(e->fd, buf_peek(&b), buf_len(&b));
    buf_release(&b);
    CHECK_OK(tp_reader_next(&e->rd, e->fd, deadline_in_ms(10000), 10000, &p, &n, &err));
    CHECK_OK(env_reply_decode(rep, p, n, &err));
}

static void expect_raw(struct env *e, const char *payload, const char *code, const char *want)
{
    struct env_reply rep;
    raw_call(e, payload, &rep);
    if (rep.ok || strcmp(rep.error.code, code) != 0)
        fail_msg("%.200s: expected %s, got %s: %s", payload, code, rep.ok ? "ok" : rep.error.code,
                 rep.error.message);
    if (want != NULL)
        CHECK_CONTAINS(rep.error.message, want);
    env_reply_clear(&rep);
}

/* A ping on the raw connection and through the pool both work. */
static void still_serving(struct env *e)
{
    struct env_reply rep;
    struct km_error err;
    uint64_t rtt;
    raw_call(e, "{\"v\":1,\"id\":99,\"command_id\":\"" CID "\",\"cmd\":\"ping\",\"args\":{}}",
             &rep);
    CHECK(rep.ok && rep.id == 99);
    env_reply_clear(&rep);
    for (size_t i = 0; i < 3; i++)
        CHECK_OK(pool_ping(e->p.pools.pool[i], &rtt, 5000, &err));
}

/* A request with id (two digits) and a command_id of its own. */
#define REQ(id, cmd, args)                                                                         \
    "{\"v\":1,\"id\":" #id ",\"command_id\":\"01900000-0000-7000-8000-0000000000" #id              \
    "\",\"cmd\":\"" cmd "\",\"args\":" args "}"

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    env_start(e);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_stop(*state);
    free(*state);
    return 0;
}

static void test_garbage_and_types(void **state)
{
    struct env *e = *state;
    expect_raw(e, "this is not JSON", "invalid_request", "invalid JSON");
    still_serving(e);
    expect_raw(e, "[1,2,3]", "invalid_request", "must be a JSON object");
    still_serving(e);
    expect_raw(e, "{\"v\":1,\"id\":1}", "invalid_request", NULL);
    still_serving(e);
    expect_raw(e, "{\"v\":2,\"id\":1,\"command_id\":\"" CID "\",\"cmd\":\"ping\"}",
               "invalid_request", "version");
    still_serving(e);
    /* Valid JSON, wrong types. */
    expect_raw(e, REQ(12, "keygen_init", "{\"keygen_session_id\":5}"), "invalid_argument",
               "keygen_session_id: must be a UUID string");
    expect_raw(e, REQ(13, "keygen_get_aggregate", "{\"keygen_session_id\":[\"" CID "\"]}"),
               "invalid_argument", "must be a UUID");
    expect_raw(e, REQ(14, "configure", "{\"enclave_id\":\"zero\"}"), "invalid_argument",
               "must be an integer");
    expect_raw(e, REQ(15, "signing_init", "{\"items\":{}}"), "invalid_argument",
               "signing_init args");
    still_serving(e);
    /* Unknown commands. */
    expect_raw(e, REQ(16, "sign_this_for_me", "{}"), "unknown_command", "sign_this_for_me");
    still_serving(e);
    /* Huge numbers: too big for any JSON integer, and beyond 2^53. */
    expect_raw(e, REQ(17, "configure", "{\"enclave_id\":123456789012345678901234567890}"),
               "invalid_request", "too big integer");
    expect_raw(e, REQ(18, "configure", "{\"enclave_id\":9007199254740993}"), "invalid_argument",
               "enclave_id");
    expect_raw(e, REQ(19, "configure", "{\"enclave_id\":1e308}"), "invalid_argument",
               "must be an integer");
    expect_raw(e,
               "{\"v\":1,\"id\":18446744073709551615,\"command_id\":\"" CID "\",\"cmd\":\"ping\"}",
               "invalid_request", NULL);
    still_serving(e);
    /* Unknown session ids. */
    expect_raw(e,
               REQ(20, "keygen_add_participants",
                   "{\"keygen_session_id\":\"" CID "\",\"participants\":[{\"user_id\":\"" CID
                   "\",\"encrypted_private_key\":\"00\",\"auth_pubkey\":\"" CID "\"}]}"),
               "invalid_argument", "auth_pubkey");
    expect_raw(e, REQ(21, "keygen_get_aggregate", "{\"keygen_session_id\":\"" CID "\"}"),
               "not_found", "keygen session " CID " not found");
    expect_raw(e,
               REQ(22, "signing_distribute_nonces",
                   "{\"signing_session_id\":\"" CID "\",\"nonces\":[{\"user_id\":\"" CID
                   "\",\"encrypted_nonces\":\"00\"}]}"),
               "not_found", "signing session");
    still_serving(e);
}

static void test_oversized_frame(void **state)
{
    struct env *e = *state;
    const uint8_t *p;
    size_t n;
    struct km_error err;
    struct env_reply rep;
    uint8_t hdr[4];
    frame_encode_header(hdr, FRAME_MAX_DEFAULT + 1);
    raw_send_bytes(e->fd, hdr, sizeof(hdr));
    CHECK_OK(tp_reader_next(&e->rd, e->fd, deadline_in_ms(5000), 5000, &p, &n, &err));
    CHECK_OK(env_reply_decode(&rep, p, n, &err));
    CHECK(!rep.ok);
    CHECK_STR_EQ(rep.error.code, "too_large");
    env_reply_clear(&rep);
    /* That connection is closed; a new one is served. */
    close(e->fd);
    tp_reader_release(&e->rd);
    e->fd = raw_connect(e);
    tp_reader_init(&e->rd, FRAME_MAX_DEFAULT);
    still_serving(e);
}

static void test_protocol_violations(void **state)
{
    struct env *e = *state;
    struct drv_keygen kg;
    struct drv_signing sg;
    struct env_reply a, b;
    struct km_error err;
    char uid[UUID_STR_LEN + 1];
    drv_keygen_setup(&kg, 3, 3);
    CHECK_OK(drv_keygen_run(&e->d, &kg, &err));

    /* A replayed command_id: the same reply, and with other arguments an
     * error. */
    drv_signing_setup(&sg, 2);
    json_t *args = drv_signing_init_args(&kg, &sg);
    struct uuid cid;
    CHECK_OK(uuid_v7_new(&cid));
    CHECK_OK(drv_call(&e->d, 1, "signing_init", &cid, args, &a, &err));
    CHECK_OK(drv_call(&e->d, 1, "signing_init", &cid, args, &b, &err));
    CHECK(json_equal(a.result, b.result));
    env_reply_clear(&a);
    env_reply_clear(&b);
    json_t *other = json_pack("{s:i}", "enclave_id", 1);
    CHECK_ERR(drv_call(&e->d, 1, "configure", &cid, other, &a, &err), KM_ERR_REMOTE);
    CHECK_STR_EQ(a.error.code, "invalid_argument");
    CHECK_CONTAINS(a.error.message, "already used for a different command");
    env_reply_clear(&a);
    json_decref(other);
    json_t *first = args;
    still_serving(e);
    /* Finish that session's first round on the other enclaves. */
    args = drv_signing_init_args(&kg, &sg);
    for (size_t i = 0; i < 3; i += 2) {
        CHECK_OK(drv_call(&e->d, i, "signing_init", NULL, args, &a, &err));
        struct proto_signing_init_result res;
        CHECK_OK(proto_signing_init_result_decode(&res, a.result, &err));
        for (size_t k = 0; k < res.n_nonces; k++) {
            sg.nonces[sg.n_nonces].user_id = res.nonces[k].user_id;
            proto_blob_set(&sg.nonces[sg.n_nonces++].ciphertext, res.nonces[k].ciphertext.p,
                           res.nonces[k].ciphertext.len);
        }
        proto_signing_init_result_clear(&res);
        env_reply_clear(&a);
    }
    json_decref(args);
    /* The replayed enclave-1 reply holds user 1's nonces. */
    CHECK_OK(drv_call(&e->d, 1, "signing_init", &cid, first, &a, &err));
    struct proto_signing_init_result res1;
    CHECK_OK(proto_signing_init_result_decode(&res1, a.result, &err));
    sg.nonces[sg.n_nonces].user_id = res1.nonces[0].user_id;
    proto_blob_set(&sg.nonces[sg.n_nonces++].ciphertext, res1.nonces[0].ciphertext.p,
                   res1.nonces[0].ciphertext.len);
    proto_signing_init_result_clear(&res1);
    env_reply_clear(&a);
    json_decref(first);

    /* A nonce from a non-participant. */
    struct uuid real = sg.nonces[0].user_id;
    CHECK_OK(uuid_v7_new(&sg.nonces[0].user_id));
    uuid_format(uid, &sg.nonces[0].user_id);
    CHECK_ERR(drv_sign_nonces(&e->d, &kg, &sg, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "invalid_nonce");
    CHECK_CONTAINS(err.msg, uid);
    sg.nonces[0].user_id = real;
    still_serving(e);
    CHECK_OK(drv_sign_nonces(&e->d, &kg, &sg, &err));

    /* An invalid partial signature: the coordinator names the signer. */
    struct proto_blob keep = sg.psigs[2].ciphertext;
    uint8_t pt[4096];
    size_t len = 0;
    struct proto_psig_data pd;
    CHECK_OK(participant_open(pt, sizeof(pt), &len, &err, kg.secret, PROTO_CTX_PSIGS, &keep));
    CHECK_OK(proto_decode_bytes(&proto_psig_data_schema, &pd, pt, len, &err));
    pd.partial_signatures[1].psig[0] ^= 0x40;
    struct buf bb;
    buf_init(&bb, 1 << 16);
    CHECK_OK(proto_encode_bytes(&bb, &proto_psig_data_schema, &pd));
    CHECK_OK(participant_seal(&sg.psigs[2].ciphertext, kg.secret, PROTO_CTX_PSIGS, buf_peek(&bb),
                              buf_len(&bb)));
    buf_release(&bb);
    uuid_format(uid, &sg.psigs[2].user_id);
    CHECK_ERR(drv_sign_finalize(&e->d, &kg, &sg, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "invalid_partial_signature");
    CHECK_CONTAINS(err.msg, uid);
    proto_psig_data_clear(&pd);
    still_serving(e);
    proto_blob_clear(&sg.psigs[2].ciphertext);
    sg.psigs[2].ciphertext = keep;
    CHECK_OK(drv_sign_finalize(&e->d, &kg, &sg, &err));
    CHECK_OK(drv_sign_check(&kg, &sg, &err));
    drv_signing_release(&sg);
    drv_keygen_release(&kg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_garbage_and_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_violations, setup, teardown),
    };
    return RUN_TESTS("integration.enclave.bad_input", tests);
}
