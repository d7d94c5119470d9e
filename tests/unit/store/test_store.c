#include "test.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/internal.h"
#include "store/store.h"
#include "common/banned.h"

#define K1 "0190f4a2-0000-7000-8000-000000000001"
#define S1 "0190f4a2-0000-7000-8000-0000000000a1"
#define U1 "0190f4a2-0000-7000-8000-00000000000a"
#define U2 "0190f4a2-0000-7000-8000-00000000000b"
#define U3 "0190f4a2-0000-7000-8000-00000000000c"

static char db_path[128];

static struct store *open_fresh(void)
{
    snprintf(db_path, sizeof(db_path), "/tmp/km-store-test-%d/db.sqlite", (int)getpid());
    unlink(db_path);
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", db_path);
    unlink(wal);
    struct store_options o;
    struct store *s;
    struct km_error err;
    store_options_default(&o, db_path);
    if (store_open(&s, &o, &err) != KM_OK)
        fail_msg("store_open: %s", err.msg);
    return s;
}

static struct store *reopen(void)
{
    struct store_options o;
    struct store *s;
    struct km_error err;
    store_options_default(&o, db_path);
    if (store_open(&s, &o, &err) != KM_OK)
        fail_msg("store_open: %s", err.msg);
    return s;
}

static void reserve_three(struct store *s)
{
    struct store_participant slots[3] = {0};
    snprintf(slots[0].user_id, 37, U1);
    slots[0].enclave_id = 0;
    snprintf(slots[1].user_id, 37, U2);
    slots[1].enclave_id = 1;
    snprintf(slots[2].user_id, 37, U3);
    slots[2].enclave_id = 2;
    struct store_keygen k = {0};
    snprintf(k.id, sizeof(k.id), K1);
    snprintf(k.coordinator_user_id, 37, U1);
    k.timeout_secs = 600;
    k.max_signing_sessions = 2;
    k.participants = slots;
    k.nparticipants = 3;
    k.enclave_keys = json_pack("{s:s, s:s, s:s}", "0", "02aa", "1", "02bb", "2", "02cc");
    CHECK_OK(store_keygen_reserve(s, &k, NULL, NULL));
    CHECK_ERR(store_keygen_reserve(s, &k, NULL, NULL), KM_ERR_EXISTS);
    json_decref(k.enclave_keys);
}

static struct store_participant reg(const char *user, const char *key)
{
    struct store_participant p = {0};
    snprintf(p.user_id, sizeof(p.user_id), "%s", user);
    p.encrypted_private_key = (char *)(uintptr_t)key;
    snprintf(p.auth_pubkey, sizeof(p.auth_pubkey), "%064x", 7);
    return p;
}

static void complete_keygen(struct store *s)
{
    struct store_participant p1 = reg(U1, "c1");
    CHECK_OK(store_keygen_initialize(s, K1, "ab", "secret-ct", &p1));
    size_t n, expected;
    bool running;
    struct store_participant p2 = reg(U2, "c2"), p3 = reg(U3, "c3");
    CHECK_OK(store_keygen_register(s, K1, &p2, &n, &expected, &running));
    CHECK_OK(store_keygen_register(s, K1, &p3, &n, &expected, &running));
    CHECK(running);
    struct store_keygen_progress done = {.from_step = 0,
                                         .to_step = 5,
                                         .status = STORE_KEYGEN_COMPLETED,
                                         .encrypted_aggregate_public_key = "aggct",
                                         .aggregate_check = "chk"};
    CHECK_OK(store_keygen_advance(s, K1, &done));
}

static void test_open_migrate_reopen(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    int v;
    CHECK_OK(store_schema_version(s, &v));
    CHECK_EQ(v, STORE_SCHEMA_VERSION);
    struct km_error err;
    CHECK_OK(store_ping(s, &err));
    store_close(s);
    s = reopen();
    CHECK_OK(store_schema_version(s, &v));
    CHECK_EQ(v, STORE_SCHEMA_VERSION);
    store_close(s);

    /* A database from the future is refused with a clear message. */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "sqlite3 %s 'PRAGMA user_version=99'", db_path);
    if (system(cmd) == 0) {
        struct store_options o;
        store_options_default(&o, db_path);
        CHECK_ERR(store_open(&s, &o, &err), KM_ERR_STATE);
        CHECK_CONTAINS(err.msg, "schema version 99 is newer");
    }
}

static void test_enclave_key_epochs(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    bool changed, first;
    int64_t epoch;
    char old[67];
    CHECK_OK(store_enclave_observe_key(s, 1, "02aa", old, sizeof(old), &changed, &first, &epoch));
    CHECK(first && !changed && epoch == 1);
    CHECK_OK(store_enclave_observe_key(s, 1, "02aa", old, sizeof(old), &changed, &first, &epoch));
    CHECK(!first && !changed && epoch == 1);
    CHECK_OK(store_enclave_observe_key(s, 1, "02bb", old, sizeof(old), &changed, &first, &epoch));
    CHECK(!first && changed && epoch == 2);
    CHECK_STR_EQ(old, "02aa");
    store_close(s);
}

static void test_keygen_lifecycle(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    reserve_three(s);
    struct store_keygen k;
    CHECK_OK(store_keygen_get(s, K1, &k));
    CHECK_EQ(k.status, STORE_KEYGEN_RESERVED);
    CHECK_EQ(k.nparticipants, 3);
    CHECK_STR_EQ(k.participants[1].user_id, U2);
    CHECK_EQ(k.participants[2].enclave_id, 2);
    store_keygen_clear(&k);

    /* Registration before initialize is refused. */
    size_t n, expected;
    bool running;
    struct store_participant p2 = reg(U2, "c2");
    CHECK_ERR(store_keygen_register(s, K1, &p2, &n, &expected, &running), KM_ERR_STATE);

    struct store_participant p1 = reg(U1, "c1");
    CHECK_OK(store_keygen_initialize(s, K1, "ab", "secret-ct", &p1));
    CHECK_ERR(store_keygen_initialize(s, K1, "ab", "secret-ct", &p1), KM_ERR_STATE);
    CHECK_ERR(store_keygen_initialize(s, "0190f4a2-0000-7000-8000-0000000000ff", "ab", "x", &p1),
              KM_ERR_NOT_FOUND);

    CHECK_OK(store_keygen_register(s, K1, &p2, &n, &expected, &running));
    CHECK(n == 2 && expected == 3 && !running);
    /* Same data again: fine. Other data: conflict. Unknown user: not found. */
    CHECK_OK(store_keygen_register(s, K1, &p2, &n, &expected, &running));
    struct store_participant other = reg(U2, "different");
    CHECK_ERR(store_keygen_register(s, K1, &other, &n, &expected, &running), KM_ERR_EXISTS);
    struct store_participant stranger = reg("0190f4a2-0000-7000-8000-0000000000ee", "c9");
    CHECK_ERR(store_keygen_register(s, K1, &stranger, &n, &expected, &running), KM_ERR_NOT_FOUND);
    struct store_participant p3 = reg(U3, "c3");
    CHECK_OK(store_keygen_register(s, K1, &p3, &n, &expected, &running));
    CHECK(n == 3 && running);
    /* The last registration retried after the session started: still OK
     * (a client that lost the reply can retry); other data: refused. */
    CHECK_OK(store_keygen_register(s, K1, &p3, &n, &expected, &running));
    CHECK(n == 3 && !running);
    struct store_participant p3b = reg(U3, "other");
    CHECK_ERR(store_keygen_register(s, K1, &p3b, &n, &expected, &running), KM_ERR_STATE);

    char(*ids)[37];
    size_t nids;
    CHECK_OK(store_keygen_list_running(s, &ids, &nids));
    CHECK_EQ(nids, 1);
    CHECK_STR_EQ(ids[0], K1);
    free(ids);

    /* Steps are compare-and-set. */
    json_t *st1 = json_pack("{s:s}", "secrets", "ct");
    struct store_keygen_progress p = {
        .from_step = 0, .to_step = 1, .status = STORE_KEYGEN_RUNNING, .state = st1};
    CHECK_OK(store_keygen_advance(s, K1, &p));
    CHECK_ERR(store_keygen_advance(s, K1, &p), KM_ERR_STATE);
    CHECK_OK(store_keygen_retry_later(s, K1, 1, 12345, "enclave 2 unreachable"));
    CHECK_OK(store_keygen_get(s, K1, &k));
    CHECK_EQ(k.step, 1);
    CHECK_EQ(k.attempts, 1);
    CHECK_STR_EQ(k.error, "enclave 2 unreachable");
    CHECK_STR_EQ(json_string_value(json_object_get(k.state, "secrets")), "ct");
    CHECK(k.participants[0].registered);
    CHECK_STR_EQ(k.participants[0].encrypted_private_key, "c1");
    store_keygen_clear(&k);
    json_decref(st1);

    struct store_keygen_progress done = {.from_step = 1,
                                         .to_step = 5,
                                         .status = STORE_KEYGEN_COMPLETED,
                                         .encrypted_aggregate_public_key = "aggct",
                                         .aggregate_check = "chk"};
    CHECK_OK(store_keygen_advance(s, K1, &done));
    CHECK_OK(store_keygen_get(s, K1, &k));
    CHECK_EQ(k.status, STORE_KEYGEN_COMPLETED);
    CHECK_EQ(k.attempts, 0);
    CHECK_NULL(k.error);
    CHECK_STR_EQ(k.encrypted_aggregate_public_key, "aggct");
    CHECK(k.completed_at > 0);
    CHECK_NULL(k.state); /* step outputs are not loaded once finished */
    store_keygen_clear(&k);

    /* A completed session never expires. */
    CHECK_OK(store_keygen_list_expired(s, INT64_MAX, &ids, &nids));
    CHECK_EQ(nids, 0);
    free(ids);
    store_close(s);
}

/* Signing session S1 of keygen K1 with one item (caller decrefs items). */
static void signing_of_k1(struct store_signing *sg, enum store_signing_status status)
{
    memset(sg, 0, sizeof(*sg));
    snprintf(sg->id, sizeof(sg->id), S1);
    snprintf(sg->keygen_session_id, sizeof(sg->keygen_session_id), K1);
    sg->status = status;
    sg->items = json_pack("[{s:s}]", "item_id", "x");
    sg->timeout_secs = 60;
}

static void test_signing_lifecycle(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    reserve_three(s);
    struct store_signing sg;
    signing_of_k1(&sg, STORE_SIGNING_AWAITING_APPROVALS);
    CHECK_ERR(store_signing_create(s, &sg), KM_ERR_STATE); /* keygen not completed */
    complete_keygen(s);
    CHECK_OK(store_signing_create(s, &sg));
    CHECK_ERR(store_signing_create(s, &sg), KM_ERR_EXISTS);

    const char *required[] = {U2, U3};
    struct store_approval a = {0};
    snprintf(a.user_id, 37, U2);
    a.timestamp = 1;
    snprintf(a.signature, sizeof(a.signature), "sig");
    bool running;
    enum store_signing_status status;
    CHECK_OK(store_signing_approve(s, S1, &a, 2, required, &running));
    CHECK(!running);
    CHECK_OK(store_signing_status_get(s, S1, &status));
    CHECK_EQ(status, STORE_SIGNING_AWAITING_APPROVALS);
    snprintf(a.user_id, 37, U3);
    CHECK_OK(store_signing_approve(s, S1, &a, 2, required, &running));
    CHECK(running);
    CHECK_OK(store_signing_status_get(s, S1, &status));
    CHECK_EQ(status, STORE_SIGNING_RUNNING);
    CHECK_ERR(store_signing_approve(s, S1, &a, 2, required, &running), KM_ERR_STATE);

    json_t *results = json_pack("[{s:s}]", "item_id", "x");
    struct store_signing_progress p = {
        .from_step = 0, .to_step = 3, .status = STORE_SIGNING_COMPLETED, .results = results};
    CHECK_OK(store_signing_advance(s, S1, &p));
    json_decref(results);
    struct store_signing got;
    CHECK_OK(store_signing_get(s, S1, &got));
    CHECK_EQ(got.status, STORE_SIGNING_COMPLETED);
    CHECK_EQ(got.napprovals, 2);
    CHECK_EQ(json_array_size(got.results), 1);
    store_signing_clear(&got);

    /* Quota of 2: one more allowed, then refused. */
    snprintf(sg.id, sizeof(sg.id), "0190f4a2-0000-7000-8000-0000000000a2");
    CHECK_OK(store_signing_create(s, &sg));
    snprintf(sg.id, sizeof(sg.id), "0190f4a2-0000-7000-8000-0000000000a3");
    CHECK_ERR(store_signing_create(s, &sg), KM_ERR_LIMIT);
    /* Sessions ever created count: deleting finished ones frees nothing. */
    size_t pruned;
    CHECK_OK(store_prune_finished(s, INT64_MAX, &pruned));
    CHECK_EQ(pruned, 1);
    CHECK_ERR(store_signing_create(s, &sg), KM_ERR_LIMIT);
    json_decref(sg.items);

    /* Expiry lists only unfinished sessions. */
    char(*ids)[37];
    size_t n;
    CHECK_OK(store_signing_list_expired(s, INT64_MAX, &ids, &n));
    CHECK_EQ(n, 1);
    CHECK_STR_EQ(ids[0], "0190f4a2-0000-7000-8000-0000000000a2");
    free(ids);
    CHECK_OK(store_signing_fail(s, "0190f4a2-0000-7000-8000-0000000000a2", "expired"));

    /* Deleting the keygen takes its signing sessions along. */
    CHECK_OK(store_signing_status_get(s, "0190f4a2-0000-7000-8000-0000000000a2", &status));
    CHECK_OK(store_keygen_delete(s, K1));
    CHECK_ERR(store_signing_get(s, "0190f4a2-0000-7000-8000-0000000000a2", &got), KM_ERR_NOT_FOUND);
    CHECK_ERR(store_signing_status_get(s, S1, &status), KM_ERR_NOT_FOUND);
    CHECK_ERR(store_keygen_delete(s, K1), KM_ERR_NOT_FOUND);
    store_close(s);
}

/* Version 1 counted a keygen's signing sessions by their rows; version 2
 * keeps a counter, started from the rows a version 1 database holds. */
static void test_migration_1_to_2_keeps_quota(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    reserve_three(s);
    complete_keygen(s);
    struct store_signing sg;
    signing_of_k1(&sg, STORE_SIGNING_RUNNING);
    CHECK_OK(store_signing_create(s, &sg));
    store_close(s);

    /* Back to what version 1 looked like. */
    char cmd[512];
    snprintf(
        cmd, sizeof(cmd),
        "sqlite3 %s 'DROP TABLE enclave_sealed_keys; DROP TABLE api_keys; DROP TABLE api_key_reserves; "
        "DROP INDEX keygen_by_api_key; ALTER TABLE keygen_sessions DROP COLUMN api_key_id; "
        "ALTER TABLE keygen_sessions DROP COLUMN signing_sessions_created; "
        "PRAGMA user_version=1' 2>/dev/null",
        db_path);
    if (system(cmd) != 0) {
        json_decref(sg.items);
        fail_msg("no sqlite3 command: scripts/install-deps installs it");
    }
    s = reopen();
    int v;
    CHECK_OK(store_schema_version(s, &v));
    CHECK_EQ(v, STORE_SCHEMA_VERSION);
    /* Quota 2 (reserve_three): the migrated counter says 1 is used. */
    snprintf(sg.id, sizeof(sg.id), "0190f4a2-0000-7000-8000-0000000000a2");
    CHECK_OK(store_signing_create(s, &sg));
    snprintf(sg.id, sizeof(sg.id), "0190f4a2-0000-7000-8000-0000000000a3");
    CHECK_ERR(store_signing_create(s, &sg), KM_ERR_LIMIT);
    json_decref(sg.items);
    store_close(s);
}

static void test_enclave_restart_fails_dependent_sessions(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    reserve_three(s);
    complete_keygen(s);
    size_t failed;
    CHECK_OK(store_fail_sessions_of_enclave(s, 1, "02zz", "x", &failed));
    CHECK_EQ(failed, 0); /* different key: not this session's enclave instance */
    CHECK_OK(store_fail_sessions_of_enclave(s, 1, "02bb", "enclave 1 restarted", &failed));
    CHECK_EQ(failed, 1);
    struct store_keygen k;
    CHECK_OK(store_keygen_get(s, K1, &k));
    CHECK_EQ(k.status, STORE_KEYGEN_FAILED);
    CHECK_STR_EQ(k.error, "enclave 1 restarted");
    store_keygen_clear(&k);
    store_close(s);
}

static int add_nonce(struct store *s, const char *key, const char *nonce, int64_t expires_at)
{
    struct store_auth_nonce n = {.expires_at = expires_at};
    snprintf(n.key, sizeof(n.key), "%s", key);
    snprintf(n.nonce, sizeof(n.nonce), "%s", nonce);
    return store_auth_nonces_add(s, &n, 1);
}

static bool nonce_seen(struct store *s, const char *key, const char *nonce)
{
    bool seen = false;
    CHECK_OK(store_auth_nonce_seen(s, key, nonce, &seen));
    return seen;
}

static void test_auth_nonces(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    CHECK(!nonce_seen(s, "k", "n1"));
    struct store_auth_nonce batch[3] = {
        {"k", "n1", 100}, {"k2", "n1", 100}, {"k", "n1", 300} /* a repeat: ignored */};
    CHECK_OK(store_auth_nonces_add(s, batch, 3));
    CHECK(nonce_seen(s, "k", "n1"));
    CHECK(nonce_seen(s, "k2", "n1"));
    CHECK(!nonce_seen(s, "k", "n2"));
    CHECK_OK(store_auth_nonce_prune(s, 101)); /* the repeat did not extend it */
    CHECK(!nonce_seen(s, "k", "n1"));
    CHECK_OK(add_nonce(s, "k", "n1", 200));
    CHECK(nonce_seen(s, "k", "n1"));
    store_close(s);
}

/* Commits survive kill -9 of the writing process. */

static void test_commits_survive_sigkill(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    store_close(s);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct store *cs = reopen();
        for (int i = 0; i < 200; i++) {
            char nonce[16];
            snprintf(nonce, sizeof(nonce), "n%d", i);
            if (add_nonce(cs, "crash", nonce, 1000) != KM_OK)
                _exit(3);
        }
        kill(getpid(), SIGKILL); /* no close, no checkpoint */
        _exit(4);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    s = reopen();
    for (int i = 0; i < 200; i++) {
        char nonce[16];
        snprintf(nonce, sizeof(nonce), "n%d", i);
        CHECK(nonce_seen(s, "crash", nonce));
    }
    store_close(s);
}

/* The hourly quota counts reserves, not keygens that still exist: one
 * deleted does not give its reserve back. */
static void test_hourly_quota_survives_delete(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    struct store_participant slots[2] = {0};
    snprintf(slots[0].user_id, 37, U1);
    snprintf(slots[1].user_id, 37, U2);
    slots[1].enclave_id = 1;
    struct store_keygen k = {0};
    snprintf(k.coordinator_user_id, 37, U1);
    snprintf(k.api_key_id, sizeof(k.api_key_id), "kmk_0123456789abcdef");
    k.timeout_secs = 600;
    k.participants = slots;
    k.nparticipants = 2;
    k.enclave_keys = json_pack("{s:s, s:s}", "0", "02aa", "1", "02bb");
    struct store_reserve_quota q = {.keygens_per_hour = 2, .live_keygens = 0};
    const char *which = NULL;
    const char *ids[] = {"0190f4a2-0000-7000-8000-0000000000c1",
                         "0190f4a2-0000-7000-8000-0000000000c2",
                         "0190f4a2-0000-7000-8000-0000000000c3"};
    for (int i = 0; i < 2; i++) {
        snprintf(k.id, sizeof(k.id), "%s", ids[i]);
        CHECK_OK(store_keygen_reserve(s, &k, &q, &which));
    }
    CHECK_OK(store_keygen_delete(s, ids[0]));
    snprintf(k.id, sizeof(k.id), "%s", ids[2]);
    CHECK_ERR(store_keygen_reserve(s, &k, &q, &which), KM_ERR_LIMIT);
    CHECK_STR_EQ(which, "keygens_per_hour");
    /* Another key is not affected. */
    snprintf(k.api_key_id, sizeof(k.api_key_id), "kmk_fedcba9876543210");
    CHECK_OK(store_keygen_reserve(s, &k, &q, &which));
    json_decref(k.enclave_keys);
    store_close(s);
}

/* Every statement of src/store fits the per-connection statement cache
 * (a full cache is a KM_BUG that stops the gateway): counts the SQL_*
 * constants in the sources, with room to spare. */
static void test_statement_cache_fits(void **state)
{
    (void)state;
    DIR *d = opendir(KM_STORE_SRC);
    CHECK(d != NULL);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 2, ".c") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", KM_STORE_SRC, e->d_name);
        FILE *f = fopen(path, "r");
        CHECK(f != NULL);
        char line[1024];
        while (fgets(line, sizeof(line), f) != NULL)
            n += strstr(line, "static const char SQL_") != NULL;
        fclose(f);
    }
    closedir(d);
    print_message("%zu statements, cache of %d\n", n, STORE_STMT_CACHE);
    CHECK(n > 10);
    CHECK(n + 32 <= STORE_STMT_CACHE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_open_migrate_reopen),
        TEST(test_statement_cache_fits),
        TEST(test_hourly_quota_survives_delete),
        TEST(test_enclave_key_epochs),
        TEST(test_keygen_lifecycle),
        TEST(test_signing_lifecycle),
        TEST(test_migration_1_to_2_keeps_quota),
        TEST(test_enclave_restart_fails_dependent_sessions),
        TEST(test_auth_nonces),
        TEST(test_commits_survive_sigkill),
    };
    int failed = RUN_TESTS("store", tests);
    if (failed == 0 && db_path[0] != '\0')
        test_remove_database(db_path);
    return failed;
}
