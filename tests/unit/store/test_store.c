/*
 * test_store.c - the store's queries, on SQLite and again on PostgreSQL
 * (a throwaway cluster: tests/support/pg_cluster.h). The tests that need
 * the SQLite file itself (the sqlite3 tool, kill -9 and the WAL) run on
 * SQLite only.
 */
#include "test.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "pg_cluster.h"
#include "store/internal.h"
#include "store/store.h"
#include "common/banned.h"

#define K1 "0190f4a2-0000-7000-8000-000000000001"
#define S1 "0190f4a2-0000-7000-8000-0000000000a1"
#define U1 "0190f4a2-0000-7000-8000-00000000000a"
#define U2 "0190f4a2-0000-7000-8000-00000000000b"
#define U3 "0190f4a2-0000-7000-8000-00000000000c"

static char db_path[128];
/* The database of the running test: db_path, or a new PostgreSQL database
 * of the cluster while the PostgreSQL group runs. */
static char db_url[160];
static struct pg_cluster cluster;
static bool on_pg;

static struct store *open_fresh(void)
{
    if (on_pg) {
        if (pg_cluster_create_db(&cluster, db_url, sizeof(db_url)) != 0)
            fail_msg("cannot create a PostgreSQL database");
    } else {
        snprintf(db_path, sizeof(db_path), "/tmp/km-store-test-%d/db.sqlite", (int)getpid());
        unlink(db_path);
        char wal[160];
        snprintf(wal, sizeof(wal), "%s-wal", db_path);
        unlink(wal);
        snprintf(db_url, sizeof(db_url), "%s", db_path);
    }
    struct store_options o;
    struct store *s;
    struct km_error err;
    store_options_default(&o, db_url);
    if (store_open(&s, &o, &err) != KM_OK)
        fail_msg("store_open: %s", err.msg);
    return s;
}

static struct store *reopen(void)
{
    struct store_options o;
    struct store *s;
    struct km_error err;
    store_options_default(&o, db_url);
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
    CHECK_OK(store_keygen_set_enclave_key(&k, 0, "02aa"));
    CHECK_OK(store_keygen_set_enclave_key(&k, 1, "02bb"));
    CHECK_OK(store_keygen_set_enclave_key(&k, 2, "02cc"));
    CHECK_OK(store_keygen_reserve(s, &k, NULL, NULL));
    CHECK_ERR(store_keygen_reserve(s, &k, NULL, NULL), KM_ERR_EXISTS);
}

/* The text of one column of one row, read past the API (what the
 * database holds); NULL for SQL NULL. sql: a static "SELECT col FROM t
 * WHERE id = ?1". */
static char *column_text(struct store *s, const char *sql, const char *id)
{
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, sql);
    CHECK(st != NULL);
    CHECK_OK(store_bind_text(st, 1, id));
    CHECK_EQ(store_step(c, st), DB_ROW);
    char *text = store_col_strdup(st, 0);
    db_reset(st);
    store_conn_release(s, c);
    return text;
}

static const char SQL_TEST_ENCLAVE_KEYS[] =
    "SELECT enclave_keys FROM keygen_sessions WHERE id = ?1";
static const char SQL_TEST_STATE[] = "SELECT state FROM keygen_sessions WHERE id = ?1";
static const char SQL_TEST_ITEMS[] = "SELECT items FROM signing_sessions WHERE id = ?1";
static const char SQL_TEST_KEYS_SET[] =
    "UPDATE keygen_sessions SET enclave_keys = ?2 WHERE id = ?1";

static void check_column(struct store *s, const char *sql, const char *id, const char *want)
{
    char *got = column_text(s, sql, id);
    if (want == NULL)
        CHECK_NULL(got);
    else
        CHECK_STR_EQ(got, want);
    free(got);
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

/* The database URL: "sqlite:PATH" names a file as a bare path does; an
 * unknown scheme or an empty URL is refused before anything is opened. */
static void test_open_by_url(void **state)
{
    (void)state;
    store_close(open_fresh());
    char url[160];
    snprintf(url, sizeof(url), "sqlite:%s", db_path);
    struct store_options o;
    struct store *s;
    struct km_error err;
    store_options_default(&o, url);
    CHECK_OK(store_open(&s, &o, &err));
    int v;
    CHECK_OK(store_schema_version(s, &v));
    CHECK_EQ(v, STORE_SCHEMA_VERSION);
    struct store_stats stats;
    CHECK_OK(store_stats(s, &stats));
    CHECK(stats.db_size_bytes > 0);
    CHECK_EQ(stats.keygen_total, 0);
    store_close(s);

    store_options_default(&o, "mysql://db.example/keymeld");
    CHECK_ERR(store_open(&s, &o, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "mysql");
    store_options_default(&o, "");
    CHECK_ERR(store_open(&s, &o, &err), KM_ERR_INVALID);
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
    struct store_keygen_progress p = {.from_step = 0,
                                      .to_step = 1,
                                      .status = STORE_KEYGEN_RUNNING,
                                      .state = "{\"secrets\":\"ct\"}"};
    CHECK_OK(store_keygen_advance(s, K1, &p));
    CHECK_ERR(store_keygen_advance(s, K1, &p), KM_ERR_STATE);
    CHECK_OK(store_keygen_retry_later(s, K1, 1, 12345, "enclave 2 unreachable"));
    CHECK_OK(store_keygen_get(s, K1, &k));
    CHECK_EQ(k.step, 1);
    CHECK_EQ(k.attempts, 1);
    CHECK_STR_EQ(k.error, "enclave 2 unreachable");
    CHECK_STR_EQ(k.state, "{\"secrets\":\"ct\"}");
    CHECK(k.participants[0].registered);
    CHECK_STR_EQ(k.participants[0].encrypted_private_key, "c1");
    store_keygen_clear(&k);

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

/* Signing session S1 of keygen K1 with one item (sg->items: static text). */
static void signing_of_k1(struct store_signing *sg, enum store_signing_status status)
{
    memset(sg, 0, sizeof(*sg));
    snprintf(sg->id, sizeof(sg->id), S1);
    snprintf(sg->keygen_session_id, sizeof(sg->keygen_session_id), K1);
    sg->status = status;
    sg->items = (char *)(uintptr_t) "[{\"item_id\":\"x\"}]";
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
    /* Approving again replaces the user's approval; it still counts once. */
    a.timestamp = 2;
    snprintf(a.signature, sizeof(a.signature), "sig2");
    CHECK_OK(store_signing_approve(s, S1, &a, 2, required, &running));
    CHECK(!running);
    snprintf(a.user_id, 37, U3);
    CHECK_OK(store_signing_approve(s, S1, &a, 2, required, &running));
    CHECK(running);
    CHECK_OK(store_signing_status_get(s, S1, &status));
    CHECK_EQ(status, STORE_SIGNING_RUNNING);
    CHECK_ERR(store_signing_approve(s, S1, &a, 2, required, &running), KM_ERR_STATE);

    struct store_signing_progress p = {.from_step = 0,
                                       .to_step = 3,
                                       .status = STORE_SIGNING_COMPLETED,
                                       .results = "[{\"item_id\":\"x\",\"sig\":\"ct\"}]"};
    CHECK_OK(store_signing_advance(s, S1, &p));
    struct store_signing got;
    CHECK_OK(store_signing_get(s, S1, &got));
    CHECK_EQ(got.status, STORE_SIGNING_COMPLETED);
    CHECK_EQ(got.napprovals, 2);
    CHECK_STR_EQ(got.approvals[0].user_id, U2);
    CHECK_STR_EQ(got.approvals[0].signature, "sig2");
    CHECK_EQ(got.approvals[0].timestamp, 2);
    CHECK_STR_EQ(got.results, "[{\"item_id\":\"x\",\"sig\":\"ct\"}]");
    CHECK_STR_EQ(got.items, "[{\"item_id\":\"x\"}]");
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

/* Keygen id (coordinator U1, and U2) brought to status st through the
 * store's own transitions. */
static void keygen_in(struct store *s, const char *id, enum store_keygen_status st)
{
    struct store_participant slots[2] = {0};
    snprintf(slots[0].user_id, 37, U1);
    snprintf(slots[1].user_id, 37, U2);
    slots[1].enclave_id = 1;
    struct store_keygen k = {
        .timeout_secs = 600, .max_signing_sessions = 8, .participants = slots, .nparticipants = 2};
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.coordinator_user_id, 37, U1);
    CHECK_OK(store_keygen_reserve(s, &k, NULL, NULL));
    struct store_participant p1 = reg(U1, "c1"), p2 = reg(U2, "c2");
    if (st >= STORE_KEYGEN_COLLECTING)
        CHECK_OK(store_keygen_initialize(s, id, "ab", "secret-ct", &p1));
    size_t n, expected;
    bool running = false;
    if (st >= STORE_KEYGEN_RUNNING) {
        CHECK_OK(store_keygen_register(s, id, &p2, &n, &expected, &running));
        CHECK(running);
    }
    struct store_keygen_progress done = {.from_step = 0,
                                         .to_step = 5,
                                         .status = STORE_KEYGEN_COMPLETED,
                                         .encrypted_aggregate_public_key = "aggct",
                                         .aggregate_check = "chk"};
    if (st == STORE_KEYGEN_COMPLETED)
        CHECK_OK(store_keygen_advance(s, id, &done));
    if (st == STORE_KEYGEN_FAILED)
        CHECK_OK(store_keygen_fail(s, id, "first"));
}

/* Signing id of the completed keygen kid, brought to status st. */
static void signing_in(struct store *s, const char *id, const char *kid,
                       enum store_signing_status st)
{
    struct store_signing sg = {.timeout_secs = 60};
    snprintf(sg.id, sizeof(sg.id), "%s", id);
    snprintf(sg.keygen_session_id, sizeof(sg.keygen_session_id), "%s", kid);
    sg.status = st == STORE_SIGNING_AWAITING_APPROVALS ? st : STORE_SIGNING_RUNNING;
    sg.items = (char *)(uintptr_t) "[{\"item_id\":\"x\"}]";
    CHECK_OK(store_signing_create(s, &sg));
    struct store_signing_progress done = {
        .from_step = 0, .to_step = 3, .status = STORE_SIGNING_COMPLETED};
    if (st == STORE_SIGNING_COMPLETED)
        CHECK_OK(store_signing_advance(s, id, &done));
    if (st == STORE_SIGNING_FAILED)
        CHECK_OK(store_signing_fail(s, id, "first"));
}

/* The ids the kind's list_expired returns at the end of time, as a bit
 * per index in ids. */
static unsigned expired_set(struct store *s, bool keygen, char (*ids)[37], size_t n)
{
    char(*got)[37];
    size_t ngot;
    CHECK_OK(keygen ? store_keygen_list_expired(s, INT64_MAX, &got, &ngot)
                    : store_signing_list_expired(s, INT64_MAX, &got, &ngot));
    unsigned set = 0;
    for (size_t i = 0; i < ngot; i++) {
        for (size_t j = 0; j < n; j++)
            set |= strcmp(got[i], ids[j]) == 0 ? 1u << j : 0;
    }
    free(got);
    return set;
}

/* The lifecycle shared by both kinds (lifecycle.c), from every status:
 * only unfinished sessions expire and fail (a finished one keeps its
 * status and error), only a running one at its step records a retry. */
static void test_lifecycle_by_status(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    char kid[5][37], sid[4][37];
    for (int i = 0; i < 5; i++) {
        snprintf(kid[i], 37, "0190f4a2-0000-7000-8000-00000000010%d", i);
        keygen_in(s, kid[i], (enum store_keygen_status)i);
    }
    for (int i = 0; i < 4; i++) {
        snprintf(sid[i], 37, "0190f4a2-0000-7000-8000-00000000020%d", i);
        signing_in(s, sid[i], kid[STORE_KEYGEN_COMPLETED], (enum store_signing_status)i);
    }
    CHECK_EQ(expired_set(s, true, kid, 5), 0x7u);  /* reserved, collecting, running */
    CHECK_EQ(expired_set(s, false, sid, 4), 0x3u); /* awaiting_approvals, running */

    for (int i = 0; i < 5; i++) {
        bool running = i == STORE_KEYGEN_RUNNING;
        CHECK_ERR(store_keygen_retry_later(s, kid[i], 1, 9, "e"), KM_ERR_STATE);
        CHECK_ERR(store_keygen_retry_later(s, kid[i], 0, 9, "e"), running ? KM_OK : KM_ERR_STATE);
        bool unfinished = i <= STORE_KEYGEN_RUNNING;
        CHECK_ERR(store_keygen_fail(s, kid[i], "boom"), unfinished ? KM_OK : KM_ERR_STATE);
        struct store_keygen k;
        CHECK_OK(store_keygen_get(s, kid[i], &k));
        CHECK_EQ(k.status, unfinished ? STORE_KEYGEN_FAILED : (enum store_keygen_status)i);
        if (unfinished || i == STORE_KEYGEN_FAILED)
            CHECK_STR_EQ(k.error, unfinished ? "boom" : "first");
        else
            CHECK_NULL(k.error);
        store_keygen_clear(&k);
    }
    for (int i = 0; i < 4; i++) {
        bool running = i == STORE_SIGNING_RUNNING;
        CHECK_ERR(store_signing_retry_later(s, sid[i], 1, 9, "e"), KM_ERR_STATE);
        CHECK_ERR(store_signing_retry_later(s, sid[i], 0, 9, "e"), running ? KM_OK : KM_ERR_STATE);
        bool unfinished = i <= STORE_SIGNING_RUNNING;
        CHECK_ERR(store_signing_fail(s, sid[i], "boom"), unfinished ? KM_OK : KM_ERR_STATE);
        struct store_signing sg;
        CHECK_OK(store_signing_get(s, sid[i], &sg));
        CHECK_EQ(sg.status, unfinished ? STORE_SIGNING_FAILED : (enum store_signing_status)i);
        if (unfinished || i == STORE_SIGNING_FAILED)
            CHECK_STR_EQ(sg.error, unfinished ? "boom" : "first");
        else
            CHECK_NULL(sg.error);
        store_signing_clear(&sg);
    }
    CHECK_ERR(store_keygen_fail(s, "0190f4a2-0000-7000-8000-0000000000ff", "x"), KM_ERR_STATE);
    CHECK_ERR(store_signing_fail(s, "0190f4a2-0000-7000-8000-0000000000ff", "x"), KM_ERR_STATE);
    CHECK_EQ(expired_set(s, true, kid, 5), 0u);
    CHECK_EQ(expired_set(s, false, sid, 4), 0u);
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
    char cmd[1024];
    snprintf(
        cmd, sizeof(cmd),
        "sqlite3 %s 'DROP TABLE enclave_sealed_keys; DROP TABLE api_keys; DROP TABLE api_key_reserves; "
        "DROP INDEX keygen_by_api_key; ALTER TABLE keygen_sessions DROP COLUMN api_key_id; "
        "ALTER TABLE keygen_sessions DROP COLUMN signing_sessions_created; "
        "ALTER TABLE keygen_sessions DROP COLUMN lease_owner; "
        "ALTER TABLE keygen_sessions DROP COLUMN lease_expires_at; "
        "ALTER TABLE signing_sessions DROP COLUMN lease_owner; "
        "ALTER TABLE signing_sessions DROP COLUMN lease_expires_at; "
        "PRAGMA user_version=1' 2>/dev/null",
        db_path);
    if (system(cmd) != 0)
        fail_msg("no sqlite3 command: scripts/install-deps installs it");
    s = reopen();
    int v;
    CHECK_OK(store_schema_version(s, &v));
    CHECK_EQ(v, STORE_SCHEMA_VERSION);
    /* Quota 2 (reserve_three): the migrated counter says 1 is used. */
    snprintf(sg.id, sizeof(sg.id), "0190f4a2-0000-7000-8000-0000000000a2");
    CHECK_OK(store_signing_create(s, &sg));
    snprintf(sg.id, sizeof(sg.id), "0190f4a2-0000-7000-8000-0000000000a3");
    CHECK_ERR(store_signing_create(s, &sg), KM_ERR_LIMIT);
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

/* store_keygen_get caches completed keygens: every write to the keygen
 * tables must show in the next read, as without the cache. */
static void test_keygen_cache_follows_writes(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    reserve_three(s);
    complete_keygen(s);
    struct store_keygen k;
    for (int i = 0; i < 2; i++) { /* a load, then a hit */
        CHECK_OK(store_keygen_get(s, K1, &k));
        CHECK_EQ(k.status, STORE_KEYGEN_COMPLETED);
        CHECK_EQ(k.nparticipants, 3);
        CHECK_STR_EQ(k.participants[1].encrypted_private_key, "c2");
        store_keygen_clear(&k);
    }
    size_t failed;
    CHECK_OK(store_fail_sessions_of_enclave(s, 1, "02bb", "enclave 1 restarted", &failed));
    CHECK_EQ(failed, 1);
    CHECK_OK(store_keygen_get(s, K1, &k));
    CHECK_EQ(k.status, STORE_KEYGEN_FAILED);
    CHECK_STR_EQ(k.error, "enclave 1 restarted");
    store_keygen_clear(&k);
    CHECK_OK(store_keygen_delete(s, K1));
    CHECK_ERR(store_keygen_get(s, K1, &k), KM_ERR_NOT_FOUND);
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

/* Leases (several gateways): free, ours or expired can be claimed; a live
 * one of another gateway cannot; only running sessions have one; a
 * running session whose lease lapsed is an orphan to take over. */
static void test_leases(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    reserve_three(s);
    complete_keygen(s);
    struct store_signing sg;
    signing_of_k1(&sg, STORE_SIGNING_RUNNING);
    CHECK_OK(store_signing_create(s, &sg));
    int64_t t = store_now();

    CHECK_OK(store_lease_claim(s, STORE_SIGNING, S1, "gw-a:8080", t, 30));
    CHECK_ERR(store_lease_claim(s, STORE_SIGNING, S1, "gw-b:8080", t + 10, 30), KM_ERR_STATE);
    CHECK_OK(store_lease_claim(s, STORE_SIGNING, S1, "gw-a:8080", t + 10, 30)); /* renewed */
    CHECK_ERR(store_lease_claim(s, STORE_SIGNING, S1, "gw-b:8080", t + 39, 30), KM_ERR_STATE);
    CHECK_OK(store_lease_claim(s, STORE_SIGNING, S1, "gw-b:8080", t + 41, 30)); /* expired */
    CHECK_OK(store_lease_release(s, STORE_SIGNING, S1, "gw-a:8080"));           /* not a's: no-op */
    CHECK_ERR(store_lease_claim(s, STORE_SIGNING, S1, "gw-a:8080", t + 42, 30), KM_ERR_STATE);
    CHECK_OK(store_lease_release(s, STORE_SIGNING, S1, "gw-b:8080"));
    CHECK_OK(store_lease_claim(s, STORE_SIGNING, S1, "gw-a:8080", t + 42, 30));

    /* Orphans: not while the lease lives, once it lapsed. */
    char(*ids)[37] = NULL;
    size_t n = 99;
    CHECK_OK(store_lease_list_orphans(s, STORE_SIGNING, t + 50, &ids, &n));
    CHECK_EQ(n, 0);
    free(ids);
    CHECK_OK(store_lease_list_orphans(s, STORE_SIGNING, t + 80, &ids, &n));
    CHECK_EQ(n, 1);
    CHECK_STR_EQ(ids[0], S1);
    free(ids);

    /* A completed keygen is not driven by anyone: no lease. */
    CHECK_ERR(store_lease_claim(s, STORE_KEYGEN, K1, "gw-a:8080", t, 30), KM_ERR_STATE);
    CHECK_OK(store_lease_list_orphans(s, STORE_KEYGEN, t + 80, &ids, &n));
    CHECK_EQ(n, 0);
    free(ids);

    /* The replay claim: the first insert wins, on any gateway. */
    struct store_auth_nonce pair = {"key", "nonce", t + 300};
    CHECK_OK(store_auth_nonce_claim(s, &pair));
    CHECK_ERR(store_auth_nonce_claim(s, &pair), KM_ERR_EXISTS);
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

/* Group commit: every commit of concurrent writers is made durable (the
 * counters see each one) by fewer WAL syncs than commits when they
 * overlap, never more; the data survives a reopen. Without fsync there is
 * nothing to sync. */
struct committer {
    struct store *s;
    int id;
};

static void *commit_loop(void *arg)
{
    struct committer *c = arg;
    for (int i = 0; i < 50; i++) {
        char nonce[32];
        snprintf(nonce, sizeof(nonce), "t%d-%d", c->id, i);
        if (add_nonce(c->s, "group", nonce, 1000) != KM_OK)
            return (void *)1;
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    struct store_stats before, after;
    CHECK_OK(store_stats(s, &before));
    pthread_t th[4];
    struct committer cs[4];
    for (int t = 0; t < 4; t++) {
        cs[t] = (struct committer){.s = s, .id = t};
        CHECK_EQ(pthread_create(&th[t], NULL, commit_loop, &cs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        void *ret;
        CHECK_EQ(pthread_join(th[t], &ret), 0);
        CHECK_NULL(ret);
    }
    CHECK_OK(store_stats(s, &after));
    uint64_t commits = after.group_commits - before.group_commits;
    uint64_t syncs = after.group_syncs - before.group_syncs;
    print_message("%llu commits made durable by %llu WAL syncs\n", (unsigned long long)commits,
                  (unsigned long long)syncs);
    CHECK(commits >= 200);
    CHECK(syncs >= 1 && syncs <= commits);

    /* A deferred creation is visible at once and durable after its wait. */
    reserve_three(s);
    complete_keygen(s);
    struct store_signing sg;
    signing_of_k1(&sg, STORE_SIGNING_RUNNING);
    uint64_t ticket = 0;
    CHECK_OK(store_signing_create_deferred(s, &sg, &ticket));
    CHECK(ticket > 0);
    struct store_signing got;
    CHECK_OK(store_signing_get(s, S1, &got));
    store_signing_clear(&got);
    store_wait_durable(s, ticket);
    CHECK_OK(store_stats(s, &after));
    CHECK(after.group_commits >= ticket);
    store_wait_durable(s, ticket); /* covered: returns at once */
    store_close(s);
    s = reopen();
    CHECK(nonce_seen(s, "group", "t0-0"));
    CHECK(nonce_seen(s, "group", "t3-49"));
    store_close(s);

    struct store_options o;
    struct km_error err;
    store_options_default(&o, db_url);
    o.fsync_each_commit = false;
    CHECK_OK(store_open(&s, &o, &err));
    CHECK_OK(add_nonce(s, "group", "nofsync", 1000));
    CHECK_OK(store_stats(s, &after));
    CHECK_EQ(after.group_commits, 0);
    CHECK_EQ(after.group_syncs, 0);
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
    CHECK_OK(store_keygen_set_enclave_key(&k, 0, "02aa"));
    CHECK_OK(store_keygen_set_enclave_key(&k, 1, "02bb"));
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
    store_close(s);
}

static struct store_sealed_key sealed(uint32_t enclave_id, int64_t epoch, const char *public_key)
{
    struct store_sealed_key k = {.enclave_id = enclave_id, .key_epoch = epoch};
    snprintf(k.sealer, sizeof(k.sealer), "kms");
    k.sealed_key_hex = (char *)(uintptr_t) "beef";
    snprintf(k.public_key, sizeof(k.public_key), "%s", public_key);
    return k;
}

static size_t keygens_using(struct store *s, uint32_t enclave_id, const char *public_key)
{
    char(*ids)[37];
    size_t n;
    CHECK_OK(store_keygens_using_key(s, enclave_id, public_key, 10, &ids, &n));
    if (n > 0)
        CHECK_STR_EQ(ids[0], K1);
    free(ids);
    return n;
}

/* A rotation of enclave 1's key, as gateway/rotation.c drives it: the next
 * key, the keygens under the old one re-encrypted (compare-and-set on their
 * key snapshot), the promotion. */
static void test_sealed_keys_and_rotation(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    struct store_sealed_key got;
    CHECK_ERR(store_sealed_key_current(s, 1, &got), KM_ERR_NOT_FOUND);
    store_sealed_key_clear(&got);
    struct store_sealed_key k = sealed(1, 1, "02bb");
    CHECK_OK(store_sealed_key_add(s, &k));
    CHECK_ERR(store_sealed_key_add(s, &k), KM_ERR_EXISTS);
    CHECK_OK(store_sealed_key_current(s, 1, &got));
    CHECK_EQ(got.key_epoch, 1);
    CHECK_STR_EQ(got.sealer, "kms");
    CHECK_STR_EQ(got.sealed_key_hex, "beef");
    CHECK_STR_EQ(got.public_key, "02bb");
    store_sealed_key_clear(&got);

    int64_t busy;
    reserve_three(s); /* enclave 1 under key 02bb */
    CHECK_OK(store_keygens_busy_on(s, 1, &busy));
    CHECK_EQ(busy, 1);
    complete_keygen(s);
    CHECK_OK(store_keygens_busy_on(s, 1, &busy));
    CHECK_EQ(busy, 0);
    CHECK_EQ(keygens_using(s, 1, "02bb"), 1);
    CHECK_EQ(keygens_using(s, 1, "02aa"), 0);

    struct store_sealed_key next = sealed(1, 2, "02dd");
    CHECK_ERR(store_sealed_key_next(s, 1, &got), KM_ERR_NOT_FOUND);
    store_sealed_key_clear(&got);
    CHECK_OK(store_sealed_key_add_next(s, &next));
    CHECK_ERR(store_sealed_key_add_next(s, &next), KM_ERR_EXISTS);

    struct store_keygen kg;
    CHECK_OK(store_keygen_get_with_state(s, K1, &kg));
    CHECK_OK(store_keygen_set_enclave_key(&kg, 1, "02dd")); /* replaced in place */
    struct store_keygen_rekey rk = {.keygen_id = K1,
                                    .enclave_id = 1,
                                    .old_public_key = "02bb",
                                    .encrypted_session_secret = "secret-ct2",
                                    .state = "{\"init\":{}}",
                                    .enclave_keys = kg.enclave_keys,
                                    .nenclave_keys = kg.nenclave_keys,
                                    .nslots = 1};
    rk.slots = calloc(1, sizeof(*rk.slots));
    rk.slots[0].user_id = U2;
    rk.slots[0].encrypted_private_key = "c2-new";
    CHECK_OK(store_keygen_rekey(s, &rk));
    CHECK_ERR(store_keygen_rekey(s, &rk), KM_ERR_STATE); /* its snapshot moved on */
    free(rk.slots);
    store_keygen_clear(&kg);
    check_column(s, SQL_TEST_ENCLAVE_KEYS, K1, "{\"0\":\"02aa\",\"1\":\"02dd\",\"2\":\"02cc\"}");
    check_column(s, SQL_TEST_STATE, K1, "{\"init\":{}}");
    CHECK_OK(store_keygen_get(s, K1, &kg));
    CHECK_STR_EQ(kg.encrypted_session_secret, "secret-ct2");
    CHECK_STR_EQ(store_keygen_enclave_key(&kg, 1), "02dd");
    CHECK_EQ(kg.nparticipants, 3);
    CHECK_STR_EQ(kg.participants[1].encrypted_private_key, "c2-new");
    store_keygen_clear(&kg);
    CHECK_EQ(keygens_using(s, 1, "02bb"), 0);
    CHECK_EQ(keygens_using(s, 1, "02dd"), 1);

    /* The wrong epoch promotes nothing and retires nothing. */
    CHECK_ERR(store_sealed_key_promote(s, 1, 3, "02dd"), KM_ERR_STATE);
    CHECK_OK(store_sealed_key_current(s, 1, &got));
    CHECK_EQ(got.key_epoch, 1);
    store_sealed_key_clear(&got);
    CHECK_OK(store_sealed_key_promote(s, 1, 2, "02dd"));
    CHECK_OK(store_sealed_key_current(s, 1, &got));
    CHECK_EQ(got.key_epoch, 2);
    CHECK_STR_EQ(got.public_key, "02dd");
    store_sealed_key_clear(&got);
    CHECK_ERR(store_sealed_key_next(s, 1, &got), KM_ERR_NOT_FOUND);
    store_sealed_key_clear(&got);
    store_close(s);
}

/* Writes text to K1's enclave_keys column past the API. */
static void set_enclave_keys_column(struct store *s, const char *text)
{
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, SQL_TEST_KEYS_SET);
    CHECK(st != NULL);
    CHECK_OK(store_bind_text(st, 1, K1));
    CHECK_OK(store_bind_text(st, 2, text));
    CHECK_EQ(store_step(c, st), DB_DONE);
    db_reset(st);
    store_conn_release(s, c);
}

/* A keygen's enclave keys are typed in the API and a JSON object in the
 * database, in the order recorded: the engines' JSON queries, existing
 * databases and `keymeld db migrate` read that text. The documents the
 * store only keeps are stored and returned byte for byte as given. */
static void test_enclave_keys_and_documents(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    struct store_participant slots[2] = {0};
    snprintf(slots[0].user_id, 37, U1);
    slots[0].enclave_id = 1;
    snprintf(slots[1].user_id, 37, U2);
    slots[1].enclave_id = 0;
    struct store_keygen k = {
        .timeout_secs = 600, .max_signing_sessions = 2, .participants = slots, .nparticipants = 2};
    snprintf(k.id, sizeof(k.id), K1);
    snprintf(k.coordinator_user_id, 37, U1);
    CHECK_NULL(store_keygen_enclave_key(&k, 1));
    CHECK_OK(store_keygen_set_enclave_key(&k, 1, "02bb"));
    CHECK_OK(store_keygen_set_enclave_key(&k, 0, "02aa"));
    CHECK_OK(store_keygen_set_enclave_key(&k, 1, "03bb")); /* replaced where it was */
    CHECK_EQ(k.nenclave_keys, 2);
    char too_long[80];
    memset(too_long, 'a', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    CHECK_ERR(store_keygen_set_enclave_key(&k, 2, too_long), KM_ERR_INVALID);
    CHECK_EQ(k.nenclave_keys, 2);
    k.subsets = (char *)(uintptr_t) "[{\"subset_id\": \"s\", \"participants\": [\"u\"]}]";
    CHECK_OK(store_keygen_reserve(s, &k, NULL, NULL));
    check_column(s, SQL_TEST_ENCLAVE_KEYS, K1, "{\"1\":\"03bb\",\"0\":\"02aa\"}");

    struct store_keygen got;
    CHECK_OK(store_keygen_get(s, K1, &got));
    CHECK_EQ(got.nenclave_keys, 2);
    CHECK_EQ(got.enclave_keys[0].enclave_id, 1);
    CHECK_STR_EQ(got.enclave_keys[0].public_key, "03bb");
    CHECK_EQ(got.enclave_keys[1].enclave_id, 0);
    CHECK_STR_EQ(store_keygen_enclave_key(&got, 0), "02aa");
    CHECK_NULL(store_keygen_enclave_key(&got, 2));
    CHECK_STR_EQ(got.subsets, k.subsets);
    CHECK_NULL(got.subset_results);
    store_keygen_clear(&got);

    /* Completed, with documents in any spacing. */
    struct store_participant p1 = reg(U1, "c1"), p2 = reg(U2, "c2");
    size_t n, expected;
    bool running;
    CHECK_OK(store_keygen_initialize(s, K1, "ab", "secret-ct", &p1));
    CHECK_OK(store_keygen_register(s, K1, &p2, &n, &expected, &running));
    CHECK(running);
    struct store_keygen_progress done = {.from_step = 0,
                                         .to_step = 5,
                                         .status = STORE_KEYGEN_COMPLETED,
                                         .state = "{ \"init\" : {} }",
                                         .encrypted_aggregate_public_key = "aggct",
                                         .aggregate_check = "chk",
                                         .subset_results = "[{\"subset_id\":\"s\"}]"};
    CHECK_OK(store_keygen_advance(s, K1, &done));
    check_column(s, SQL_TEST_STATE, K1, "{ \"init\" : {} }");
    CHECK_OK(store_keygen_get_with_state(s, K1, &got));
    CHECK_STR_EQ(got.state, "{ \"init\" : {} }");
    CHECK_STR_EQ(got.subset_results, "[{\"subset_id\":\"s\"}]");
    store_keygen_clear(&got);

    /* The engines' JSON queries read the column. */
    CHECK_EQ(keygens_using(s, 1, "03bb"), 1);
    CHECK_EQ(keygens_using(s, 0, "02aa"), 1);
    CHECK_EQ(keygens_using(s, 1, "02bb"), 0);

    struct store_signing sg;
    signing_of_k1(&sg, STORE_SIGNING_RUNNING);
    sg.items = (char *)(uintptr_t) "[ {\"item_id\": \"x\"} ]";
    CHECK_OK(store_signing_create(s, &sg));
    check_column(s, SQL_TEST_ITEMS, S1, "[ {\"item_id\": \"x\"} ]");

    /* Entries the gateway never writes are left out when read. */
    set_enclave_keys_column(s, "{\"1\":\"03bb\",\"x\":\"02cc\",\"2\":5,\"007\":\"02dd\","
                               "\"4294967296\":\"02ee\",\"3\":\"02ff\"}");
    CHECK_OK(store_keygen_get(s, K1, &got));
    CHECK_EQ(got.nenclave_keys, 2);
    CHECK_STR_EQ(store_keygen_enclave_key(&got, 1), "03bb");
    CHECK_STR_EQ(store_keygen_enclave_key(&got, 3), "02ff");
    CHECK_NULL(store_keygen_enclave_key(&got, 7));
    store_keygen_clear(&got);
    set_enclave_keys_column(s, "not json");
    CHECK_OK(store_keygen_get(s, K1, &got));
    CHECK_EQ(got.nenclave_keys, 0);
    store_keygen_clear(&got);

    /* No keys: the column stays NULL. */
    keygen_in(s, "0190f4a2-0000-7000-8000-0000000000d1", STORE_KEYGEN_RESERVED);
    check_column(s, SQL_TEST_ENCLAVE_KEYS, "0190f4a2-0000-7000-8000-0000000000d1", NULL);

    /* At most STORE_MAX_ENCLAVES. */
    struct store_keygen full = {0};
    for (uint32_t i = 0; i < STORE_MAX_ENCLAVES; i++)
        CHECK_OK(store_keygen_set_enclave_key(&full, i, "02aa"));
    CHECK_ERR(store_keygen_set_enclave_key(&full, STORE_MAX_ENCLAVES, "02aa"), KM_ERR_LIMIT);
    CHECK_OK(store_keygen_set_enclave_key(&full, 5, "02bb"));
    CHECK_STR_EQ(store_keygen_enclave_key(&full, 5), "02bb");
    store_close(s);
}

static void test_api_keys(void **state)
{
    (void)state;
    struct store *s = open_fresh();
    struct store_api_key k = {.keygens_per_hour = 5, .live_keygens = 2, .max_participants = 3};
    snprintf(k.id, sizeof(k.id), "kmk_0000000000000001");
    snprintf(k.secret_sha256, sizeof(k.secret_sha256), "%064x", 1);
    snprintf(k.name, sizeof(k.name), "ops");
    CHECK_OK(store_api_key_create(s, &k));
    CHECK(k.created_at > 0);
    CHECK_ERR(store_api_key_create(s, &k), KM_ERR_EXISTS);
    struct store_api_key got;
    CHECK_OK(store_api_key_get(s, k.id, &got));
    CHECK_STR_EQ(got.name, "ops");
    CHECK_STR_EQ(got.secret_sha256, k.secret_sha256);
    CHECK_EQ(got.keygens_per_hour, 5);
    CHECK_EQ(got.live_keygens, 2);
    CHECK_EQ(got.max_participants, 3);
    CHECK_EQ(got.revoked_at, 0);
    CHECK_ERR(store_api_key_get(s, "kmk_ffffffffffffffff", &got), KM_ERR_NOT_FOUND);
    CHECK_OK(store_api_key_revoke(s, k.id));
    CHECK_OK(store_api_key_revoke(s, k.id));
    CHECK_ERR(store_api_key_revoke(s, "kmk_ffffffffffffffff"), KM_ERR_NOT_FOUND);
    struct store_api_key *all;
    size_t n;
    CHECK_OK(store_api_key_list(s, &all, &n));
    CHECK_EQ(n, 1);
    CHECK(all[0].revoked_at > 0);
    free(all);
    struct store_stats stats;
    CHECK_OK(store_stats(s, &stats));
    CHECK(stats.db_size_bytes > 0);
    store_close(s);
}

/* The log says which PostgreSQL server, never the URL's password. */
static void test_pg_log_hides_password(void **state)
{
    (void)state;
    char url[160], log_path[128];
    store_close(open_fresh());
    const char *at = strchr(db_url, '@');
    CHECK(at != NULL);
    snprintf(url, sizeof(url), "postgresql://keymeld:hunter2%s", at); /* trust: any password */
    snprintf(log_path, sizeof(log_path), "%s/store.log", cluster.dir);
    struct km_error err;
    CHECK_OK(log_configure(LOG_LEVEL_INFO, LOG_FORMAT_PRETTY, log_path, &err));
    struct store_options o;
    struct store *s;
    store_options_default(&o, url);
    int r = store_open(&s, &o, &err);
    log_shutdown();
    CHECK_OK(log_configure(LOG_LEVEL_INFO, LOG_FORMAT_PRETTY, NULL, &err));
    CHECK_OK(r);
    store_close(s);
    FILE *f = fopen(log_path, "r");
    CHECK(f != NULL);
    char text[4096];
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[len] = '\0';
    char host[64];
    snprintf(host, sizeof(host), "PostgreSQL at 127.0.0.1:%d (", cluster.port);
    CHECK_CONTAINS(text, host);
    CHECK(strstr(text, "hunter2") == NULL);
}

struct opener {
    pthread_t thread;
    int r;
    struct km_error err;
};

static void *open_and_close(void *arg)
{
    struct opener *op = arg;
    struct store_options o;
    struct store *s;
    store_options_default(&o, db_url);
    op->r = store_open(&s, &o, &op->err);
    if (op->r == KM_OK)
        store_close(s);
    return NULL;
}

/* Gateways started together on a new database: each migration step runs
 * under the writer lock and reads the version again, so the later ones
 * find the work done instead of failing on existing tables. */
static void test_pg_gateways_migrate_together(void **state)
{
    (void)state;
    struct opener ops[4];
    for (int round = 0; round < 3; round++) {
        CHECK_EQ(pg_cluster_create_db(&cluster, db_url, sizeof(db_url)), 0);
        for (size_t i = 0; i < KM_ARRAY_LEN(ops); i++)
            CHECK_EQ(pthread_create(&ops[i].thread, NULL, open_and_close, &ops[i]), 0);
        for (size_t i = 0; i < KM_ARRAY_LEN(ops); i++) {
            CHECK_EQ(pthread_join(ops[i].thread, NULL), 0);
            if (ops[i].r != KM_OK)
                fail_msg("store_open: %s", ops[i].err.msg);
        }
    }
    struct store *s = reopen();
    int v;
    CHECK_OK(store_schema_version(s, &v));
    CHECK_EQ(v, STORE_SCHEMA_VERSION);
    store_close(s);
}

static int pg_setup(void **state)
{
    (void)state;
    if (pg_cluster_start(&cluster) != 0)
        return -1;
    on_pg = true;
    return 0;
}

static int pg_teardown(void **state)
{
    (void)state;
    on_pg = false;
    pg_cluster_destroy(&cluster);
    return 0;
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
        TEST(test_open_by_url),
        TEST(test_statement_cache_fits),
        TEST(test_keygen_cache_follows_writes),
        TEST(test_hourly_quota_survives_delete),
        TEST(test_enclave_key_epochs),
        TEST(test_keygen_lifecycle),
        TEST(test_signing_lifecycle),
        TEST(test_lifecycle_by_status),
        TEST(test_migration_1_to_2_keeps_quota),
        TEST(test_enclave_restart_fails_dependent_sessions),
        TEST(test_auth_nonces),
        TEST(test_leases),
        TEST(test_commits_survive_sigkill),
        TEST(test_group_commit),
        TEST(test_sealed_keys_and_rotation),
        TEST(test_enclave_keys_and_documents),
        TEST(test_api_keys),
    };
    /* Everything that does not need the SQLite file, on PostgreSQL. */
    const struct CMUnitTest pg_tests[] = {
        TEST(test_hourly_quota_survives_delete),
        TEST(test_enclave_key_epochs),
        TEST(test_keygen_lifecycle),
        TEST(test_signing_lifecycle),
        TEST(test_lifecycle_by_status),
        TEST(test_enclave_restart_fails_dependent_sessions),
        TEST(test_auth_nonces),
        TEST(test_leases),
        TEST(test_sealed_keys_and_rotation),
        TEST(test_enclave_keys_and_documents),
        TEST(test_api_keys),
        TEST(test_pg_log_hides_password),
        TEST(test_pg_gateways_migrate_together),
    };
    int failed = RUN_TESTS("store", tests);
    failed += cmocka_run_group_tests_name("store on PostgreSQL", pg_tests, pg_setup, pg_teardown);
    if (failed == 0 && db_path[0] != '\0')
        test_remove_database(db_path);
    return failed;
}
