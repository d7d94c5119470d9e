/*
 * test_enclave.c - the dispatcher (enclave/enclave.c): system commands, bad
 * input of every kind, the command x state table, idempotency by
 * command_id (replays, conflicts, a duplicate in flight), the injected
 * handler failure, clear_session, the session limit and expiry.
 */
#include "test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "en_fixture.h"
#include "common/banned.h"

#define U1 "01900000-0000-7000-8000-000000000001"

static void test_system_commands(void **state)
{
    (void)state;
    struct en_fixture f;
    struct env_reply rep;
    struct proto_public_info info;
    struct km_error err;
    en_fixture_start(&f, 1, NULL);
    CHECK_OK(en_fixture_call(&f, 0, "ping", "{}", &rep));
    CHECK(json_is_true(json_object_get(rep.result, "pong")));
    env_reply_clear(&rep);
    CHECK_OK(en_fixture_call(&f, 0, "get_public_info", "{}", &rep));
    CHECK_OK(proto_public_info_decode(&info, rep.result, &err));
    CHECK(info.has_enclave_id && info.enclave_id == 0); /* drv_init configured it */
    CHECK_EQ(info.key_epoch, 1);
    CHECK_MEM_EQ(info.public_key, f.d.pk[0], 33);
    CHECK_STR_EQ(info.version, KM_VERSION);
    env_reply_clear(&rep);
    /* configure is idempotent for the same id and refuses another. */
    CHECK_OK(en_fixture_call(&f, 0, "configure", "{\"enclave_id\":0}", &rep));
    env_reply_clear(&rep);
    CHECK_ERR(en_fixture_call(&f, 0, "configure", "{\"enclave_id\":7}", &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", "this is enclave 0, not enclave 7");
    en_fixture_stop(&f);

    /* ENCLAVE_ID given at start-up. */
    struct enclave_config cfg = {.has_enclave_id = true, .enclave_id = 5};
    struct enclave *en = enclave_new(&cfg, &err);
    CHECK_NOT_NULL(en);
    struct tp_call call = {.cmd = "configure", .args = json_pack("{s:i}", "enclave_id", 4)};
    CHECK_OK(uuid_v7_new(&call.command_id));
    CHECK_NE(enclave_handle(en, &call), KM_OK);
    CHECK_STR_EQ(call.error.code, "invalid_argument");
    json_decref(call.args);
    enclave_free(en);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct en_fixture f;
    struct env_reply rep;
    en_fixture_start(&f, 1, NULL);
    CHECK_ERR(en_fixture_call(&f, 0, "sign_anything", "{}", &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "unknown_command", "unknown command \"sign_anything\"");
    CHECK_ERR(en_fixture_call(&f, 0, "ping", "{\"x\":1}", &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", "unknown key \"x\"");
    CHECK_ERR(en_fixture_call(&f, 0, "keygen_init", "{\"keygen_session_id\":17}", &rep),
              KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", "keygen_session_id: must be a UUID string");
    CHECK_ERR(
        en_fixture_call(&f, 0, "keygen_get_aggregate", "{\"keygen_session_id\":\"" U1 "\"}", &rep),
        KM_ERR_REMOTE);
    en_expect_error(&rep, "not_found", "keygen session " U1 " not found");
    CHECK_ERR(en_fixture_call(&f, 0, "signing_finalize",
                              "{\"signing_session_id\":\"" U1 "\",\"partial_signatures\":"
                              "[{\"user_id\":\"" U1 "\",\"encrypted_partial_signatures\":\"00\"}]}",
                              &rep),
              KM_ERR_REMOTE);
    en_expect_error(&rep, "not_found", "signing session");
    CHECK_ERR(en_fixture_call(&f, 0, "configure", "{\"enclave_id\":9007199254740993}", &rep),
              KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", "enclave_id");
    CHECK_ERR(en_fixture_call(&f, 0, "configure", "{\"enclave_id\":-1}", &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", "enclave_id");

    /* Too many items: limit_exceeded. */
    json_t *items = json_array();
    for (int i = 0; i <= PROTO_MAX_ITEMS; i++) {
        char id[48];
        snprintf(id, sizeof(id), "01900000-0000-7000-8000-%012x", i + 1);
        json_array_append_new(items,
                              json_pack("{s:s,s:s}", "item_id", id, "encrypted_message", "00"));
    }
    json_t *args = json_pack("{s:s,s:s,s:i,s:o}", "signing_session_id", U1, "keygen_session_id", U1,
                             "timeout_secs", 60, "items", items);
    struct km_error err;
    CHECK_ERR(drv_call(&f.d, 0, "signing_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "limit_exceeded", "items: too many entries (101; at most 100)");
    json_decref(args);
    en_fixture_stop(&f);
}

static void test_state_table(void **state)
{
    (void)state;
    struct en_fixture f;
    struct drv_keygen kg;
    struct env_reply rep;
    struct km_error err;
    char kid[UUID_STR_LEN + 1], want[160];
    en_fixture_start(&f, 2, NULL);
    drv_keygen_setup(&kg, 2, 2);
    json_t *args = drv_keygen_init_args(&f.d, &kg, 0, NULL);
    CHECK_OK(drv_call(&f.d, 0, "keygen_init", NULL, args, &rep, &err));
    env_reply_clear(&rep);
    /* keygen_init again: the session exists. */
    CHECK_ERR(drv_call(&f.d, 0, "keygen_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_state", "already exists in state collecting_keys");
    json_decref(args);
    uuid_format(kid, &kg.id);
    snprintf(want, sizeof(want),
             "keygen_get_aggregate is not allowed in state collecting_keys (keygen session %s)",
             kid);
    args = json_pack("{s:s}", "keygen_session_id", kid);
    CHECK_ERR(drv_call(&f.d, 0, "keygen_get_aggregate", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_state", want);
    /* signing_init needs a completed keygen. */
    struct drv_signing sg;
    drv_signing_setup(&sg, 1);
    json_t *sargs = drv_signing_init_args(&kg, &sg);
    CHECK_ERR(drv_call(&f.d, 0, "signing_init", NULL, sargs, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_state", "in state completed; it is in state collecting_keys");
    json_decref(sargs);
    drv_signing_release(&sg);
    json_decref(args);
    drv_keygen_release(&kg);

    /* After completion, the collecting commands are refused. */
    drv_keygen_setup(&kg, 2, 2);
    CHECK_OK(drv_keygen_run(&f.d, &kg, &err));
    uuid_format(kid, &kg.id);
    args = json_pack("{s:s,s:[{s:s,s:s}]}", "keygen_session_id", kid, "public_keys", "user_id", kid,
                     "ciphertext", "00");
    CHECK_ERR(drv_call(&f.d, 1, "keygen_distribute_public_keys", NULL, args, &rep, &err),
              KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_state", "not allowed in state completed");
    json_decref(args);
    drv_keygen_release(&kg);
    en_fixture_stop(&f);
}

static void test_idempotency(void **state)
{
    (void)state;
    struct en_fixture f;
    struct drv_keygen kg;
    struct env_reply a, b;
    struct km_error err;
    struct uuid cid;
    en_fixture_start(&f, 2, NULL);
    drv_keygen_setup(&kg, 2, 2);
    json_t *args = drv_keygen_init_args(&f.d, &kg, 0, NULL);
    CHECK_OK(uuid_v7_new(&cid));
    CHECK_OK(drv_call(&f.d, 0, "keygen_init", &cid, args, &a, &err));
    /* Replayed: the same reply (the same ciphertexts), not "already exists". */
    CHECK_OK(drv_call(&f.d, 0, "keygen_init", &cid, args, &b, &err));
    CHECK(json_equal(a.result, b.result));
    env_reply_clear(&a);
    env_reply_clear(&b);
    /* Error replies are cached too. */
    struct uuid ecid;
    CHECK_OK(uuid_v7_new(&ecid));
    json_t *bad = json_pack("{s:s}", "keygen_session_id", "01900000-0000-7000-8000-0000000000ff");
    CHECK_ERR(drv_call(&f.d, 0, "keygen_get_aggregate", &ecid, bad, &a, &err), KM_ERR_REMOTE);
    CHECK_ERR(drv_call(&f.d, 0, "keygen_get_aggregate", &ecid, bad, &b, &err), KM_ERR_REMOTE);
    CHECK_STR_EQ(a.error.message, b.error.message);
    env_reply_clear(&a);
    env_reply_clear(&b);
    /* The same command_id with other arguments. */
    CHECK_ERR(drv_call(&f.d, 0, "keygen_get_aggregate", &cid, bad, &a, &err), KM_ERR_REMOTE);
    en_expect_error(&a, "invalid_argument", "already used for a different command");
    json_decref(bad);

    /* clear_session drops the session's cached replies: the same
     * command_id then runs again and creates the session anew. */
    CHECK_OK(drv_clear(&f.d, &kg.id, true, &err));
    uint32_t nk, ns;
    enclave_session_counts(f.ip.en[0], &nk, &ns);
    CHECK_EQ(nk, 0);
    CHECK_OK(drv_call(&f.d, 0, "keygen_init", &cid, args, &a, &err));
    env_reply_clear(&a);
    enclave_session_counts(f.ip.en[0], &nk, &ns);
    CHECK_EQ(nk, 1);
    json_decref(args);
    drv_keygen_release(&kg);
    en_fixture_stop(&f);
}

struct dup_arg {
    struct enclave *en;
    struct uuid cid;
    json_t *args;
    json_t *result;
    int rc;
};

static void *dup_thread(void *p)
{
    struct dup_arg *a = p;
    struct tp_call call = {.command_id = a->cid, .cmd = "signing_init", .args = a->args};
    a->rc = enclave_handle(a->en, &call);
    a->result = call.result;
    return NULL;
}

/* Duplicates that arrive while the first is still running get its reply:
 * had the command run twice, one of them would be "already exists". */
static void test_duplicate_in_flight(void **state)
{
    (void)state;
    struct en_fixture f;
    struct drv_keygen kg;
    struct drv_signing sg;
    struct km_error err;
    en_fixture_start(&f, 2, NULL);
    drv_keygen_setup(&kg, 2, 2);
    CHECK_OK(drv_keygen_run(&f.d, &kg, &err));
    drv_signing_setup(&sg, 100);
    json_t *args = drv_signing_init_args(&kg, &sg);
    struct dup_arg d[4];
    pthread_t t[4];
    struct uuid cid;
    CHECK_OK(uuid_v7_new(&cid));
    for (int i = 0; i < 4; i++) {
        d[i] = (struct dup_arg){.en = f.ip.en[0], .cid = cid, .args = args};
        CHECK_EQ(pthread_create(&t[i], NULL, dup_thread, &d[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_OK(d[i].rc);
        CHECK(json_equal(d[i].result, d[0].result));
    }
    for (int i = 0; i < 4; i++)
        json_decref(d[i].result);
    json_decref(args);
    drv_signing_release(&sg);
    drv_keygen_release(&kg);
    en_fixture_stop(&f);
}

static void test_injected_failure(void **state)
{
    (void)state;
    struct enclave_config cfg = {.fault_cmd = "ping"};
    struct en_fixture f;
    struct env_reply rep;
    en_fixture_start(&f, 1, &cfg);
    CHECK_ERR(en_fixture_call(&f, 0, "ping", "{}", &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "internal", "ping failed unexpectedly");
    CHECK_OK(en_fixture_call(&f, 0, "get_public_info", "{}", &rep));
    env_reply_clear(&rep);
    en_fixture_stop(&f);
}

static void test_clear_cascades(void **state)
{
    (void)state;
    struct en_fixture f;
    struct drv_keygen kg;
    struct drv_signing sg;
    struct env_reply rep;
    struct km_error err;
    uint32_t nk, ns;
    en_fixture_start(&f, 2, NULL);
    drv_keygen_setup(&kg, 2, 2);
    CHECK_OK(drv_keygen_run(&f.d, &kg, &err));
    drv_signing_setup(&sg, 1);
    CHECK_OK(drv_sign_init(&f.d, &kg, &sg, &err));
    enclave_session_counts(f.ip.en[1], &nk, &ns);
    CHECK(nk == 1 && ns == 1);
    /* Clearing the keygen clears its signing session too. */
    CHECK_OK(drv_clear(&f.d, &kg.id, true, &err));
    enclave_session_counts(f.ip.en[1], &nk, &ns);
    CHECK(nk == 0 && ns == 0);
    CHECK_ERR(drv_sign_nonces(&f.d, &kg, &sg, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "not_found");
    char sid[UUID_STR_LEN + 1], args[128];
    uuid_format(sid, &sg.id);
    snprintf(args, sizeof(args), "{\"signing_session_id\":\"%s\"}", sid);
    CHECK_OK(en_fixture_call(&f, 0, "clear_session", args, &rep));
    CHECK(json_is_false(json_object_get(rep.result, "cleared")));
    env_reply_clear(&rep);
    CHECK_ERR(en_fixture_call(&f, 0, "clear_session", "{}", &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", "exactly one of");
    drv_signing_release(&sg);
    drv_keygen_release(&kg);
    en_fixture_stop(&f);
}

static void test_session_limit(void **state)
{
    (void)state;
    struct enclave_config cfg = {.max_sessions = 2};
    struct en_fixture f;
    struct drv_keygen kg[3];
    struct env_reply rep;
    struct km_error err;
    en_fixture_start(&f, 2, &cfg);
    for (int i = 0; i < 3; i++) {
        drv_keygen_setup(&kg[i], 2, 2);
        json_t *args = drv_keygen_init_args(&f.d, &kg[i], 0, NULL);
        int r = drv_call(&f.d, 0, "keygen_init", NULL, args, &rep, &err);
        if (i < 2)
            CHECK_OK(r);
        else
            en_expect_error(&rep, "limit_exceeded",
                            "too many sessions in this enclave (at most 2)");
        env_reply_clear(&rep);
        json_decref(args);
    }
    for (int i = 0; i < 3; i++)
        drv_keygen_release(&kg[i]);
    en_fixture_stop(&f);
}

static uint64_t fake_ms;

static uint64_t fake_now(void)
{
    return fake_ms;
}

static void test_expiry(void **state)
{
    (void)state;
    struct enclave_config cfg = {.now_ms = fake_now};
    struct en_fixture f;
    struct drv_keygen done, pending;
    struct drv_signing sg;
    struct km_error err;
    uint32_t nk, ns;
    fake_ms = 1000000;
    en_fixture_start(&f, 2, &cfg);
    drv_keygen_setup(&done, 2, 2);
    done.timeout_secs = 5;
    CHECK_OK(drv_keygen_run(&f.d, &done, &err));
    drv_keygen_setup(&pending, 2, 2);
    pending.timeout_secs = 5;
    json_t *args = drv_keygen_init_args(&f.d, &pending, 0, NULL);
    struct env_reply rep;
    CHECK_OK(drv_call(&f.d, 0, "keygen_init", NULL, args, &rep, &err));
    env_reply_clear(&rep);
    json_decref(args);
    drv_signing_setup(&sg, 1);
    sg.timeout_secs = 10;
    CHECK_OK(drv_sign_init(&f.d, &done, &sg, &err));

    /* 6 s later: the pending keygen is gone, the completed one stays. */
    fake_ms += 6000;
    CHECK_EQ(enclave_reap(f.ip.en[0]), 1);
    enclave_session_counts(f.ip.en[0], &nk, &ns);
    CHECK(nk == 1 && ns == 1);
    /* 11 s: the signing session expired; its round is refused. */
    fake_ms += 5000;
    CHECK_ERR(drv_sign_nonces(&f.d, &done, &sg, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "not_found");
    CHECK_EQ(enclave_reap(f.ip.en[0]), 1);
    enclave_session_counts(f.ip.en[0], &nk, &ns);
    CHECK(nk == 1 && ns == 0);
    /* The completed keygen still signs. */
    drv_signing_release(&sg);
    drv_signing_setup(&sg, 1);
    CHECK_OK(drv_sign_run(&f.d, &done, &sg, &err));
    drv_signing_release(&sg);
    drv_keygen_release(&done);
    drv_keygen_release(&pending);
    en_fixture_stop(&f);
}

static void test_reaper_thread(void **state)
{
    (void)state;
    struct enclave_config cfg = {.now_ms = fake_now};
    struct en_fixture f;
    struct drv_keygen kg;
    struct km_error err;
    struct env_reply rep;
    uint32_t nk = 1, ns;
    fake_ms = 5000000;
    en_fixture_start(&f, 2, &cfg);
    CHECK_OK(enclave_start_reaper(f.ip.en[0], 10));
    drv_keygen_setup(&kg, 2, 2);
    kg.timeout_secs = 1;
    json_t *args = drv_keygen_init_args(&f.d, &kg, 0, NULL);
    CHECK_OK(drv_call(&f.d, 0, "keygen_init", NULL, args, &rep, &err));
    env_reply_clear(&rep);
    json_decref(args);
    fake_ms += 2000;
    for (int i = 0; i < 500 && nk != 0; i++) {
        clock_sleep_ms(10);
        enclave_session_counts(f.ip.en[0], &nk, &ns);
    }
    CHECK_EQ(nk, 0);
    drv_keygen_release(&kg);
    en_fixture_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_system_commands), TEST(test_bad_input),           TEST(test_state_table),
        TEST(test_idempotency),     TEST(test_duplicate_in_flight), TEST(test_injected_failure),
        TEST(test_clear_cascades),  TEST(test_session_limit),       TEST(test_expiry),
        TEST(test_reaper_thread),
    };
    return RUN_TESTS("enclave.enclave", tests);
}
