/*
 * test_db.c - the db.h contract, the same scenarios on both backends:
 * SQLite on a temporary file and PostgreSQL on a throwaway cluster
 * (tests/support/pg_cluster.h). Plus what only PostgreSQL has: lost
 * connections (server restarts) and messages that must not leak values.
 */
#include "test.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg_cluster.h"
#include "store/db.h"
#include "common/banned.h"

/* One backend under test: each scenario opens a fresh database from it. */
struct backend {
    const char *name;
    enum db_kind kind;
    char url[256]; /* of the scenario's fresh database */
};

static struct backend sqlite_be = {.name = "sqlite", .kind = DB_SQLITE};
static struct backend pg_be = {.name = "postgres", .kind = DB_POSTGRES};
static struct pg_cluster cluster;

/* SQLite files made by the scenarios, removed after a passing run. */
#define MAX_SQLITE_FILES 32
static char sqlite_dir[64];
static char sqlite_files[MAX_SQLITE_FILES][128];
static unsigned nsqlite_files;

static struct db_conn *open_url(const char *url, uint32_t busy_timeout_ms)
{
    enum db_kind kind;
    const char *target;
    struct km_error err;
    CHECK_OK(db_parse_url(url, &kind, &target, &err));
    struct db_open_options o = {.busy_timeout_ms = busy_timeout_ms, .wal = true};
    struct db_conn *c = NULL;
    if (db_open(&c, kind, target, &o, &err) != KM_OK)
        fail_msg("db_open %s: %s", url, err.msg);
    CHECK_EQ(db_kind(c), kind);
    return c;
}

/* A new empty database for this scenario (be->url) and a connection. */
static struct db_conn *open_fresh(struct backend *be)
{
    if (be->kind == DB_POSTGRES) {
        if (pg_cluster_create_db(&cluster, be->url, sizeof(be->url)) != 0)
            fail_msg("cannot create a PostgreSQL database");
    } else {
        CHECK(nsqlite_files < MAX_SQLITE_FILES);
        char *path = sqlite_files[nsqlite_files];
        snprintf(path, sizeof(sqlite_files[0]), "%s/db%u.sqlite", sqlite_dir, nsqlite_files);
        nsqlite_files++;
        snprintf(be->url, sizeof(be->url), "sqlite:%s", path);
    }
    return open_url(be->url, 2000);
}

static struct db_stmt *prepare(struct db_conn *c, const char *sql)
{
    struct db_stmt *st = db_prepare(c, sql);
    if (st == NULL)
        fail_msg("prepare '%s': %s", sql, db_errmsg(c));
    return st;
}

/* Runs a statement without results to its end; returns DB_DONE or the error. */
static int run_sql(struct db_conn *c, const char *sql)
{
    struct db_stmt *st = prepare(c, sql);
    int r = db_step(st);
    db_stmt_free(st);
    return r;
}

/* Number of rows of table t (id column). */
static int64_t count_rows(struct db_conn *c, const char *table)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    struct db_stmt *st = prepare(c, sql);
    CHECK_EQ(db_step(st), DB_ROW);
    int64_t n = db_col_int64(st, 0);
    CHECK_EQ(db_step(st), DB_DONE);
    db_stmt_free(st);
    return n;
}

static const char CREATE_T[] = "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT NOT NULL,"
                               " note TEXT, n BIGINT)";

/* ---- db_parse_url ------------------------------------------------------ */

static void test_parse_url(void **state)
{
    (void)state;
    enum db_kind kind;
    const char *target;
    struct km_error err;

    const char *pg = "postgresql://u:pw@db.example:5433/keymeld?sslmode=require";
    CHECK_OK(db_parse_url(pg, &kind, &target, &err));
    CHECK_EQ(kind, DB_POSTGRES);
    CHECK(target == pg);
    CHECK_OK(db_parse_url("postgres://h/d", &kind, &target, &err));
    CHECK_EQ(kind, DB_POSTGRES);

    CHECK_OK(db_parse_url("sqlite:/var/lib/keymeld/db", &kind, &target, &err));
    CHECK_EQ(kind, DB_SQLITE);
    CHECK_STR_EQ(target, "/var/lib/keymeld/db");
    CHECK_OK(db_parse_url("sqlite:///abs/db", &kind, &target, &err));
    CHECK_STR_EQ(target, "/abs/db");
    CHECK_OK(db_parse_url("sqlite:rel.db", &kind, &target, &err));
    CHECK_STR_EQ(target, "rel.db");
    CHECK_OK(db_parse_url("/plain/path.db", &kind, &target, &err));
    CHECK_EQ(kind, DB_SQLITE);
    CHECK_STR_EQ(target, "/plain/path.db");

    CHECK_ERR(db_parse_url("", &kind, &target, &err), KM_ERR_INVALID);
    CHECK_ERR(db_parse_url(NULL, &kind, &target, &err), KM_ERR_INVALID);
    CHECK_ERR(db_parse_url("sqlite:", &kind, &target, &err), KM_ERR_INVALID);
    CHECK_ERR(db_parse_url("mysql://u:pw@h/d", &kind, &target, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "'mysql'");
    CHECK(strstr(err.msg, "pw") == NULL);
}

/* ---- both backends ----------------------------------------------------- */

static void insert_row(struct db_stmt *ins, int64_t id, const char *name, const char *note,
                       bool note_null, int64_t n)
{
    db_reset(ins);
    CHECK_OK(db_bind_int64(ins, 1, id));
    CHECK_OK(db_bind_text(ins, 2, name));
    if (note_null)
        CHECK_OK(db_bind_null(ins, 3));
    else
        CHECK_OK(db_bind_text(ins, 3, note));
    CHECK_OK(db_bind_int64(ins, 4, n));
    CHECK_EQ(db_step(ins), DB_DONE);
    CHECK_EQ(db_changes(ins), 1);
}

/* Parameters, NULLs, a '?1' inside a string literal, rows and changes. */
static void test_rows(void **state)
{
    struct backend *be = *state;
    struct db_conn *c = open_fresh(be);
    CHECK_OK(db_exec_script(c, CREATE_T));

    struct db_stmt *ins = prepare(c, "INSERT INTO t (id, name, note, n) VALUES (?1, ?2, ?3, ?4)");
    CHECK_EQ(db_param_count(ins), 4);
    CHECK(!db_stmt_readonly(ins));
    insert_row(ins, 1, "alpha", "first", false, INT64_MAX);
    insert_row(ins, 2, "beta", NULL, true, INT64_MIN);
    insert_row(ins, 3, "gamma", NULL, false, -7); /* NULL text binds NULL */
    db_stmt_free(ins);

    /* The literal holds "?1" and a doubled quote: neither is a parameter;
     * ?2 comes before ?1 and is used twice. The CAST: PostgreSQL infers a
     * parameter's type from its context, and "?2 * 10" alone says
     * integer while the column says bigint. */
    struct db_stmt *lit = prepare(c, "INSERT INTO t (id, name, note, n)"
                                     " VALUES (?2, 'lit ?1 ''q?3''', ?1, CAST(?2 AS BIGINT) * 10)");
    CHECK_EQ(db_param_count(lit), 2);
    CHECK_OK(db_bind_text(lit, 1, "note ?1"));
    CHECK_OK(db_bind_int64(lit, 2, 4));
    CHECK_EQ(db_step(lit), DB_DONE);
    CHECK_EQ(db_changes(lit), 1);
    CHECK(db_bind_int64(lit, 3, 1) < 0); /* no ?3 */
    db_stmt_free(lit);

    struct db_stmt *sel = prepare(c, "SELECT id, name, note, n FROM t WHERE id >= ?1 ORDER BY id");
    CHECK(db_stmt_readonly(sel));
    CHECK_EQ(db_param_count(sel), 1);
    for (int round = 0; round < 2; round++) { /* a statement runs again after db_reset */
        db_reset(sel);
        CHECK_OK(db_bind_int64(sel, 1, 1));
        CHECK_EQ(db_step(sel), DB_ROW);
        CHECK_EQ(db_col_int64(sel, 0), 1);
        CHECK_STR_EQ(db_col_text(sel, 1), "alpha");
        CHECK_EQ(db_col_bytes(sel, 1), 5);
        CHECK_STR_EQ(db_col_text(sel, 2), "first");
        CHECK(!db_col_is_null(sel, 2));
        CHECK(db_col_int64(sel, 3) == INT64_MAX);
        CHECK_EQ(db_step(sel), DB_ROW);
        CHECK_EQ(db_col_int64(sel, 0), 2);
        CHECK_NULL(db_col_text(sel, 2));
        CHECK(db_col_is_null(sel, 2));
        CHECK_EQ(db_col_bytes(sel, 2), 0);
        CHECK(db_col_int64(sel, 3) == INT64_MIN);
        CHECK_EQ(db_step(sel), DB_ROW);
        CHECK(db_col_is_null(sel, 2));
        CHECK_EQ(db_col_int64(sel, 3), -7);
        CHECK_EQ(db_step(sel), DB_ROW);
        CHECK_EQ(db_col_int64(sel, 0), 4);
        CHECK_STR_EQ(db_col_text(sel, 1), "lit ?1 'q?3'");
        CHECK_STR_EQ(db_col_text(sel, 2), "note ?1");
        CHECK_EQ(db_col_int64(sel, 3), 40);
        CHECK_EQ(db_step(sel), DB_DONE);
    }
    /* Unbound parameters are NULL: no row matches id >= NULL. */
    db_reset(sel);
    CHECK_EQ(db_step(sel), DB_DONE);
    db_stmt_free(sel);

    struct db_stmt *upd = prepare(c, "UPDATE t SET n = n + 1 WHERE id BETWEEN ?1 AND ?2");
    CHECK_OK(db_bind_int64(upd, 1, 3));
    CHECK_OK(db_bind_int64(upd, 2, 4));
    CHECK_EQ(db_step(upd), DB_DONE);
    CHECK_EQ(db_changes(upd), 2);
    db_stmt_free(upd);

    struct db_stmt *del = prepare(c, "DELETE FROM t WHERE note IS NULL");
    CHECK_EQ(db_step(del), DB_DONE);
    CHECK_EQ(db_changes(del), 2);
    db_stmt_free(del);
    CHECK_EQ(count_rows(c, "t"), 2);
    db_close(c, true);
}

/* Unique, NOT NULL and foreign-key violations are KM_ERR_EXISTS; the
 * connection goes on working. */
static void test_constraints(void **state)
{
    struct backend *be = *state;
    struct db_conn *c = open_fresh(be);
    CHECK_OK(db_exec_script(c, "CREATE TABLE p (id BIGINT NOT NULL PRIMARY KEY);"
                               "CREATE TABLE ch (id BIGINT NOT NULL REFERENCES p (id));"
                               "INSERT INTO p (id) VALUES (1);"));
    CHECK_ERR(db_exec_script(c, "INSERT INTO p (id) VALUES (1)"), KM_ERR_EXISTS);
    struct db_stmt *ins = prepare(c, "INSERT INTO p (id) VALUES (?1)");
    CHECK_OK(db_bind_int64(ins, 1, 1));
    CHECK_ERR(db_step(ins), KM_ERR_EXISTS);
    CHECK(strlen(db_errmsg(c)) > 0);
    db_reset(ins);
    CHECK_ERR(db_step(ins), KM_ERR_EXISTS); /* NULL into the primary key */
    db_reset(ins);
    CHECK_OK(db_bind_int64(ins, 1, 2));
    CHECK_EQ(db_step(ins), DB_DONE);
    db_stmt_free(ins);
    CHECK_ERR(run_sql(c, "INSERT INTO ch (id) VALUES (99)"), KM_ERR_EXISTS);
    CHECK_EQ(run_sql(c, "INSERT INTO ch (id) VALUES (2)"), DB_DONE);
    /* The store's way to insert-if-absent on both engines. */
    CHECK_EQ(run_sql(c, "INSERT INTO p (id) VALUES (2) ON CONFLICT DO NOTHING"), DB_DONE);
    CHECK_EQ(count_rows(c, "p"), 2);
    db_close(c, false);
}

/* Commit and rollback as another connection sees them; one writer. */
static void test_transactions(void **state)
{
    struct backend *be = *state;
    struct db_conn *a = open_fresh(be);
    struct db_conn *b = open_url(be->url, 100);
    CHECK_OK(db_exec_script(a, CREATE_T));
    CHECK(!db_in_transaction(a));

    CHECK_OK(db_begin(a));
    CHECK(db_in_transaction(a));
    CHECK_EQ(run_sql(a, "INSERT INTO t (id, name) VALUES (1, 'x')"), DB_DONE);
    CHECK_EQ(count_rows(a, "t"), 1);
    CHECK_EQ(count_rows(b, "t"), 0); /* not committed */
    /* The writers' lock: a second writer waits out its busy timeout. */
    CHECK_ERR(db_begin(b), KM_ERR_TIMEOUT);
    CHECK(!db_in_transaction(b));
    db_rollback(a);
    CHECK(!db_in_transaction(a));
    CHECK_EQ(count_rows(a, "t"), 0);

    CHECK_OK(db_begin(b)); /* free again */
    db_rollback(b);
    CHECK_OK(db_begin(a));
    CHECK_EQ(run_sql(a, "INSERT INTO t (id, name) VALUES (2, 'y')"), DB_DONE);
    CHECK_OK(db_commit(a));
    CHECK(!db_in_transaction(a));
    CHECK_EQ(count_rows(b, "t"), 1);

    /* A constraint error inside a transaction: roll back (PostgreSQL
     * aborts the whole transaction, SQLite only the statement). */
    CHECK_OK(db_begin(a));
    CHECK_ERR(run_sql(a, "INSERT INTO t (id, name) VALUES (2, 'dup')"), KM_ERR_EXISTS);
    CHECK(db_in_transaction(a));
    db_rollback(a);
    CHECK(!db_in_transaction(a));

    db_rollback(a); /* harmless outside a transaction */
    CHECK(db_commit(a) < 0);
    db_close(b, false);
    db_close(a, false);
}

static void test_schema_version(void **state)
{
    struct backend *be = *state;
    struct db_conn *c = open_fresh(be);
    int v = -1;
    CHECK_OK(db_schema_version(c, &v));
    CHECK_EQ(v, 0);
    CHECK_OK(db_schema_version(c, &v)); /* reading twice creates nothing twice */
    CHECK_EQ(v, 0);

    /* The store's migration: read and bump under the writers' lock. */
    CHECK_OK(db_begin(c));
    CHECK_OK(db_schema_version(c, &v));
    CHECK_EQ(v, 0);
    CHECK_OK(db_exec_script(c, "CREATE TABLE m1 (id BIGINT);"));
    CHECK_OK(db_set_schema_version(c, 3));
    CHECK_OK(db_commit(c));
    CHECK_OK(db_schema_version(c, &v));
    CHECK_EQ(v, 3);

    CHECK_OK(db_begin(c));
    CHECK_OK(db_set_schema_version(c, 4));
    db_rollback(c);
    CHECK_OK(db_schema_version(c, &v));
    CHECK_EQ(v, 3);

    struct db_conn *other = open_url(be->url, 2000);
    CHECK_OK(db_schema_version(other, &v));
    CHECK_EQ(v, 3);
    db_close(other, false);
    db_close(c, false);
}

static void test_param_count_readonly(void **state)
{
    struct backend *be = *state;
    struct db_conn *c = open_fresh(be);
    CHECK_OK(db_exec_script(c, CREATE_T));
    static const struct {
        const char *sql;
        int params;
        bool readonly;
    } cases[] = {
        {"SELECT 1", 0, true},
        {"  select id FROM t WHERE id = ?1 OR n = ?1", 1, true},
        {"\n\tWITH x AS (SELECT id FROM t WHERE id > ?2) SELECT count(*) FROM x WHERE ?1 = 1", 2,
         true},
        {"SELECT name FROM t WHERE name = '?9' AND id = ?3 AND n = ?1 AND note = ?2", 3, true},
        {"INSERT INTO t (id, name) VALUES (?1, ?2)", 2, false},
        {"UPDATE t SET name = ?2 WHERE id = ?1", 2, false},
        {"DELETE FROM t", 0, false},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        struct db_stmt *st = prepare(c, cases[i].sql);
        if (db_param_count(st) != cases[i].params || db_stmt_readonly(st) != cases[i].readonly)
            fail_msg("%s: '%s': %d params, readonly %d", be->name, cases[i].sql, db_param_count(st),
                     db_stmt_readonly(st));
        db_stmt_free(st);
    }
    CHECK_NULL(db_prepare(c, "SELEKT nonsense"));
    CHECK(strlen(db_errmsg(c)) > 0);
    CHECK_NULL(db_prepare(c, "SELECT * FROM no_such_table"));
    db_close(c, false);
}

/* ---- PostgreSQL only --------------------------------------------------- */

/* Steps a write until it is done, allowing lost-connection reports;
 * returns how many there were. */
static int write_through_reconnect(struct db_conn *c, struct db_stmt *ins, int64_t id)
{
    int lost = 0;
    for (;;) {
        db_reset(ins);
        CHECK_OK(db_bind_int64(ins, 1, id));
        int r = db_step(ins);
        if (r == DB_DONE)
            return lost;
        if (r != KM_ERR_CONNECT)
            fail_msg("step after restart: %d (%s)", r, db_errmsg(c));
        if (++lost > 1)
            fail_msg("KM_ERR_CONNECT more than once after a restart");
    }
}

static void test_pg_reconnect(void **state)
{
    struct backend *be = *state;
    struct db_conn *c = open_fresh(be);
    CHECK_OK(db_exec_script(c, "CREATE TABLE r (id BIGINT PRIMARY KEY)"));
    struct db_stmt *ins = prepare(c, "INSERT INTO r (id) VALUES (?1)");
    struct db_stmt *sel = prepare(c, "SELECT count(*) FROM r");
    CHECK_EQ(write_through_reconnect(c, ins, 1), 0);

    /* A write after a restart: at most one KM_ERR_CONNECT, then the
     * statement is prepared again on the new session. */
    CHECK_EQ(pg_cluster_restart(&cluster), 0);
    CHECK(write_through_reconnect(c, ins, 2) <= 1);

    /* A read outside a transaction is sent again by the backend. */
    CHECK_EQ(pg_cluster_restart(&cluster), 0);
    db_reset(sel);
    CHECK_EQ(db_step(sel), DB_ROW);
    CHECK_EQ(db_col_int64(sel, 0), 2);

    /* So is a BEGIN. */
    CHECK_EQ(pg_cluster_restart(&cluster), 0);
    CHECK_OK(db_begin(c));
    CHECK_EQ(write_through_reconnect(c, ins, 3), 0);
    CHECK_OK(db_commit(c));

    /* Inside a transaction the loss is reported until the rollback: the
     * transaction's work is gone, nothing goes on on a new session. */
    CHECK_OK(db_begin(c));
    CHECK_EQ(write_through_reconnect(c, ins, 4), 0);
    CHECK_EQ(pg_cluster_restart(&cluster), 0);
    db_reset(ins);
    CHECK_OK(db_bind_int64(ins, 1, 5));
    CHECK_ERR(db_step(ins), KM_ERR_CONNECT);
    db_reset(sel);
    CHECK_ERR(db_step(sel), KM_ERR_CONNECT);
    CHECK(db_in_transaction(c));
    CHECK_ERR(db_commit(c), KM_ERR_CONNECT);
    CHECK(!db_in_transaction(c));
    db_rollback(c);
    CHECK_EQ(count_rows(c, "r"), 3);

    /* Server down: errors, not hangs; back up: works again. */
    CHECK_EQ(pg_cluster_stop_server(&cluster), 0);
    db_reset(sel);
    CHECK_ERR(db_step(sel), KM_ERR_CONNECT);
    CHECK_ERR(db_begin(c), KM_ERR_CONNECT);
    /* A statement prepared while the server is away is prepared at its
     * first execution: the lost connection, not "no such statement". */
    struct db_stmt *late = db_prepare(c, "SELECT 1");
    CHECK_NOT_NULL(late);
    CHECK_ERR(db_step(late), KM_ERR_CONNECT);
    CHECK_EQ(pg_cluster_start_server(&cluster), 0);
    db_reset(sel);
    CHECK_EQ(db_step(sel), DB_ROW);
    CHECK_EQ(db_col_int64(sel, 0), 3);
    db_reset(late);
    CHECK_EQ(db_step(late), DB_ROW);
    CHECK_EQ(db_col_int64(late, 0), 1);
    db_stmt_free(late);

    db_stmt_free(sel);
    db_stmt_free(ins);
    db_close(c, false);
}

struct load {
    const char *url;
    atomic_bool stop;
    atomic_int ok_after;       /* successes since the main thread's last reset */
    int64_t done, lost, other; /* read by main after the join */
};

/* Inserts rows in transactions until told to stop, through restarts. */
static void *load_main(void *arg)
{
    struct load *l = arg;
    enum db_kind kind;
    const char *target;
    struct km_error err;
    struct db_open_options o = {.busy_timeout_ms = 5000};
    struct db_conn *c = NULL;
    if (db_parse_url(l->url, &kind, &target, &err) != KM_OK ||
        db_open(&c, kind, target, &o, &err) != KM_OK) {
        l->other++;
        return NULL;
    }
    struct db_stmt *ins = db_prepare(c, "INSERT INTO r (id) VALUES (?1)");
    for (int64_t id = 1; ins != NULL && !atomic_load(&l->stop); id++) {
        int r = db_begin(c);
        if (r == KM_OK) {
            db_reset(ins);
            r = db_bind_int64(ins, 1, id);
            r = r == KM_OK ? db_step(ins) : r;
            r = r == DB_DONE ? db_commit(c) : r;
        }
        if (r == KM_OK) {
            l->done++;
            atomic_fetch_add(&l->ok_after, 1);
        } else {
            db_rollback(c);
            if (r == KM_ERR_CONNECT)
                l->lost++;
            else
                l->other++;
        }
    }
    if (ins == NULL)
        l->other++;
    db_stmt_free(ins);
    db_close(c, false);
    return NULL;
}

/* Waits (bounded) until the load thread has committed n more rows. */
static void wait_progress(struct load *l, int n)
{
    atomic_store(&l->ok_after, 0);
    for (int i = 0; i < 3000 && atomic_load(&l->ok_after) < n; i++)
        usleep(10000);
    if (atomic_load(&l->ok_after) < n)
        fail_msg("no progress through a restart");
}

static void test_pg_restart_under_load(void **state)
{
    struct backend *be = *state;
    struct db_conn *c = open_fresh(be);
    CHECK_OK(db_exec_script(c, "CREATE TABLE r (id BIGINT PRIMARY KEY)"));
    db_close(c, false);

    struct load l = {.url = be->url};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, load_main, &l), 0);
    wait_progress(&l, 20);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(pg_cluster_restart(&cluster), 0);
        wait_progress(&l, 20);
    }
    atomic_store(&l.stop, true);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(l.other, 0);
    CHECK(l.done >= 60);

    /* A COMMIT whose answer was lost may have committed. */
    c = open_url(be->url, 2000);
    int64_t rows = count_rows(c, "r");
    CHECK(rows >= l.done && rows <= l.done + l.lost);
    db_close(c, false);
}

#define SCHEMA_RACERS 6

struct racer {
    const char *url;
    pthread_barrier_t *go;
    int result;
    int version;
};

static void *schema_racer(void *arg)
{
    struct racer *r = arg;
    enum db_kind kind;
    const char *target;
    struct km_error err;
    struct db_open_options o = {.busy_timeout_ms = 10000};
    struct db_conn *c = NULL;
    r->result = db_parse_url(r->url, &kind, &target, &err);
    if (r->result == KM_OK)
        r->result = db_open(&c, kind, target, &o, &err);
    (void)pthread_barrier_wait(r->go);
    if (r->result == KM_OK)
        r->result = db_schema_version(c, &r->version);
    db_close(c, false);
    return NULL;
}

/* Gateways starting together on a new database: every one reads version 0
 * and keymeld_schema gets one row (unlocked, CREATE TABLE IF NOT EXISTS
 * races on the catalog and the first row could be inserted twice). */
static void test_pg_concurrent_schema_version(void **state)
{
    struct backend *be = *state;
    db_close(open_fresh(be), false);
    pthread_barrier_t go;
    CHECK_EQ(pthread_barrier_init(&go, NULL, SCHEMA_RACERS), 0);
    struct racer racers[SCHEMA_RACERS];
    pthread_t t[SCHEMA_RACERS];
    for (int i = 0; i < SCHEMA_RACERS; i++) {
        racers[i] = (struct racer){.url = be->url, .go = &go, .result = -1, .version = -1};
        CHECK_EQ(pthread_create(&t[i], NULL, schema_racer, &racers[i]), 0);
    }
    for (int i = 0; i < SCHEMA_RACERS; i++) {
        CHECK_EQ(pthread_join(t[i], NULL), 0);
        CHECK_OK(racers[i].result);
        CHECK_EQ(racers[i].version, 0);
    }
    pthread_barrier_destroy(&go);
    struct db_conn *c = open_url(be->url, 2000);
    CHECK_EQ(count_rows(c, "keymeld_schema"), 1);
    db_close(c, false);
}

/* Messages never carry the URL's password or a bound value. */
static void test_pg_messages_hide_secrets(void **state)
{
    struct backend *be = *state;
    struct db_conn *c = open_fresh(be);
    CHECK_OK(db_exec_script(c, CREATE_T));
    struct db_stmt *ins = prepare(c, "INSERT INTO t (id, name) VALUES (?1, 'x')");
    CHECK_OK(db_bind_text(ins, 1, "SECRETVALUE"));
    CHECK_ERR(db_step(ins), KM_ERR_IO);
    CHECK_CONTAINS(db_errmsg(c), "22P02");
    CHECK(strstr(db_errmsg(c), "SECRETVALUE") == NULL);
    db_stmt_free(ins);

    /* A port where nothing listens: the error names it, not the password. */
    int closed_port = cluster.port == 1 ? 2 : 1;
    char url[160];
    snprintf(url, sizeof(url), "postgresql://keymeld:SECRETPW@127.0.0.1:%d/postgres", closed_port);
    struct db_open_options o = {.connect_timeout_secs = 2};
    struct db_conn *bad = NULL;
    struct km_error err;
    CHECK_ERR(db_open(&bad, DB_POSTGRES, url, &o, &err), KM_ERR_CONNECT);
    CHECK_NULL(bad);
    CHECK_CONTAINS(err.msg, "PostgreSQL");
    CHECK(strstr(err.msg, "SECRETPW") == NULL);

    /* A bare '?' is not a placeholder here: refused, not guessed. */
    CHECK_NULL(db_prepare(c, "SELECT id FROM t WHERE id = ?"));
    CHECK_CONTAINS(db_errmsg(c), "?1");
    /* Comparisons are booleans in PostgreSQL: read as 1 / 0. */
    struct db_stmt *b = prepare(c, "SELECT 1 < 2, 2 < 1, CAST(?1 AS BIGINT) + 1");
    CHECK_OK(db_bind_int64(b, 1, 41));
    CHECK_EQ(db_step(b), DB_ROW);
    CHECK_EQ(db_col_int64(b, 0), 1);
    CHECK_EQ(db_col_int64(b, 1), 0);
    CHECK_EQ(db_col_int64(b, 2), 42);
    db_stmt_free(b);
    db_close(c, false);
}

/* Change notices: PostgreSQL carries them between connections; SQLite has
 * nobody to tell (notify is a no-op, listen refused). */
static void test_notify(void **state)
{
    struct backend *be = *state;
    struct db_conn *a = open_fresh(be);
    struct db_conn *b = open_url(be->url, 2000);
    char payload[DB_NOTIFY_PAYLOAD_MAX + 1];
    if (be->kind == DB_SQLITE) {
        CHECK_OK(db_notify(b, "km_changed", "x"));
        CHECK_ERR(db_listen(a, "km_changed"), KM_ERR_INVALID);
    } else {
        CHECK_ERR(db_listen(a, "bad channel; DROP"), KM_ERR_INVALID);
        CHECK_OK(db_listen(a, "km_changed"));
        CHECK_ERR(db_wait_notify(a, 50, payload, sizeof(payload)), KM_ERR_TIMEOUT);
        CHECK_OK(db_notify(b, "km_changed", "session-1"));
        CHECK_OK(db_notify(b, "km_changed", "it's \"quoted\""));
        CHECK_OK(db_wait_notify(a, 2000, payload, sizeof(payload)));
        CHECK_STR_EQ(payload, "session-1");
        CHECK_OK(db_wait_notify(a, 2000, payload, sizeof(payload)));
        CHECK_STR_EQ(payload, "it's \"quoted\"");
        CHECK_ERR(db_wait_notify(a, 50, payload, sizeof(payload)), KM_ERR_TIMEOUT);
        /* A notice inside a transaction is sent at commit only. */
        CHECK_OK(db_begin(b));
        CHECK_OK(db_notify(b, "km_changed", "later"));
        CHECK_ERR(db_wait_notify(a, 100, payload, sizeof(payload)), KM_ERR_TIMEOUT);
        CHECK_OK(db_commit(b));
        CHECK_OK(db_wait_notify(a, 2000, payload, sizeof(payload)));
        CHECK_STR_EQ(payload, "later");
    }
    db_close(b, false);
    db_close(a, false);
}

/* ---- setup ------------------------------------------------------------- */

/* A scenario on one backend, named "<test>/<backend>"; BOTH: on each. */
/* Group commit (db.h): with it the connection needs syncs, and a sync
 * works from any connection of the database, also one that never read;
 * without it (or on PostgreSQL) a sync is a no-op. The data survives. */
static void test_sync_committed(void **state)
{
    struct backend *be = *state;
    struct db_conn *c = open_fresh(be);
    CHECK(!db_needs_sync(c));
    CHECK_OK(db_sync_committed(c));
    CHECK_EQ(run_sql(c, CREATE_T), DB_DONE);
    if (be->kind == DB_SQLITE) {
        enum db_kind kind;
        const char *target;
        struct km_error err;
        CHECK_OK(db_parse_url(be->url, &kind, &target, &err));
        struct db_open_options o = {
            .busy_timeout_ms = 2000, .wal = true, .fsync_each_commit = true, .group_commit = true};
        struct db_conn *g = NULL, *fresh = NULL;
        CHECK_OK(db_open(&g, kind, target, &o, &err));
        CHECK_OK(db_open(&fresh, kind, target, &o, &err));
        CHECK(db_needs_sync(g));
        CHECK_OK(db_begin(g));
        CHECK_EQ(run_sql(g, "INSERT INTO t (id, name) VALUES (1, 'a')"), DB_DONE);
        CHECK_OK(db_commit(g));
        CHECK_OK(db_sync_committed(fresh)); /* never read: opens the WAL first */
        CHECK_OK(db_sync_committed(g));
        db_close(fresh, false);
        db_close(g, false);
        CHECK_EQ(count_rows(c, "t"), 1);
    }
    db_close(c, false);
}

#define ON_BACKEND(fn, be, label)                                                                  \
    (struct CMUnitTest)                                                                            \
    {                                                                                              \
        .name = #fn "/" label, .test_func = fn, .initial_state = &(be)                             \
    }
#define BOTH(fn) ON_BACKEND(fn, sqlite_be, "sqlite"), ON_BACKEND(fn, pg_be, "postgres")

static int setup(void **state)
{
    (void)state;
    snprintf(sqlite_dir, sizeof(sqlite_dir), "/tmp/km-db-test-XXXXXX");
    if (mkdtemp(sqlite_dir) == NULL)
        return -1;
    return pg_cluster_start(&cluster);
}

static int teardown(void **state)
{
    (void)state;
    pg_cluster_destroy(&cluster);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_parse_url),
        BOTH(test_rows),
        BOTH(test_constraints),
        BOTH(test_transactions),
        BOTH(test_schema_version),
        BOTH(test_param_count_readonly),
        BOTH(test_notify),
        BOTH(test_sync_committed),
        ON_BACKEND(test_pg_concurrent_schema_version, pg_be, "postgres"),
        ON_BACKEND(test_pg_messages_hide_secrets, pg_be, "postgres"),
        ON_BACKEND(test_pg_reconnect, pg_be, "postgres"),
        ON_BACKEND(test_pg_restart_under_load, pg_be, "postgres"),
    };
    int failed = cmocka_run_group_tests_name("unit.store.db", tests, setup, teardown);
    if (failed == 0) {
        for (unsigned i = 0; i < nsqlite_files; i++)
            test_remove_database(sqlite_files[i]);
        rmdir(sqlite_dir);
    }
    return failed;
}
