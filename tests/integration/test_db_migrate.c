/*
 * test_db_migrate.c - `keymeld db migrate` end to end: a deployment on
 * SQLite (3 enclave processes, a gateway, an API key, 3 keygens, signings
 * completed and one waiting for an approval) is copied into a throwaway
 * PostgreSQL database by the CLI, and a gateway on the copy carries on:
 *
 *  - the command's report names every table of the source with its row
 *    count (read here from the file with SQLite itself) and says "checked";
 *    the source file is byte for byte unchanged;
 *  - on PostgreSQL every migrated keygen signs again (signatures verify),
 *    old signings are read back and their signatures verify, the pending
 *    signing completes with the approval given before the move, and the
 *    API key reserves;
 *  - refusals: a target that already holds rows (the message names the
 *    table), a source file that does not exist (and is not created), a
 *    server that cannot be reached (the URL's password is never printed).
 */
#include "test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "../unit/cmd/cmd_test_support.h"
#include "client/session.h"
#include "common/clock.h"
#include "common/secure.h"
#include "crypto/schnorr.h"
#include "pg_cluster.h"
#include "stack.h"
#include "common/banned.h"

#define NUSERS   3
#define NKEYGENS 3
#define WAIT_MS  20000
/* k[APPROVAL_KEYGEN] needs the approval of users 1 and 2 to sign. */
#define APPROVAL_KEYGEN 2

struct env {
    struct stack stack;
    struct rest_client *http;
    struct client_trust trust;
    char *token; /* API key */
    struct client_keygen k[NKEYGENS];
    struct client_signing done[NKEYGENS]; /* one completed signing per keygen */
    struct client_signing pending;        /* on k[APPROVAL_KEYGEN]: user 1 approved */
    struct pg_cluster pg;
    char pg_url[192];
    char db_path[256];
};

static void stack_fail_cmocka(const char *msg)
{
    fail_msg("%s", msg);
}

static void expect_ok(int r, const struct km_error *err)
{
    if (r != KM_OK)
        fail_msg("%s", err->msg);
}

/* POST /api/v1/admin/api-keys (no quota); returns the token (malloc'ed). */
static char *create_api_key(struct env *e)
{
    struct rest_response r;
    struct km_error err;
    json_t *body = json_pack("{s:s, s:i, s:i, s:i}", "name", "migrated", "keygens_per_hour", 0,
                             "live_keygens", 0, "max_participants", 0);
    CHECK_OK(rest_call(e->http, &r, "POST", "/api/v1/admin/api-keys", body, NULL, &err));
    json_decref(body);
    if (r.status != 201)
        fail_msg("create key: HTTP %ld: %s", r.status, r.text);
    char *token = strdup(json_string_value(json_object_get(r.body, "token")));
    rest_response_clear(&r);
    return token;
}

/* A keygen reserved with the API key; users 1 and 2 of k[APPROVAL_KEYGEN]
 * require approval. */
static void make_keygen(struct env *e, struct client_keygen *k, bool approvals)
{
    struct km_error err;
    struct proto_tweak tweak = {.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT};
    CHECK_OK(client_keygen_new(k, NUSERS, &tweak));
    k->trust = &e->trust;
    k->users[1].require_approval = approvals;
    k->users[2].require_approval = approvals;
    CHECK_OK(rest_client_set_api_key(e->http, e->token));
    int r = client_keygen_run(e->http, k, 600, WAIT_MS, &err);
    CHECK_OK(rest_client_set_api_key(e->http, NULL));
    expect_ok(r, &err);
}

static void new_signing(struct client_signing *g)
{
    uint8_t msgs[2][32];
    CHECK_OK(secure_random(msgs, sizeof(msgs)));
    CHECK_OK(client_signing_new(g, (const uint8_t(*)[32])msgs, 2));
}

/* Signs on k (approving as users 1 and 2 when k needs it) and checks every
 * signature with BIP-340 under the keygen's key. g is kept (clear it). */
static void sign(struct env *e, const struct client_keygen *k, struct client_signing *g)
{
    struct km_error err;
    new_signing(g);
    bool approvals = k->users[1].require_approval;
    expect_ok(client_sign_create(e->http, k, g, 600, approvals ? 0 : WAIT_MS, &err), &err);
    if (approvals) {
        CHECK_STR_EQ(g->status, "awaiting_approvals");
        expect_ok(client_sign_approve(e->http, k, g, 1, &err), &err);
        expect_ok(client_sign_approve(e->http, k, g, 2, &err), &err);
        expect_ok(client_sign_wait(e->http, k, g, 0, WAIT_MS, &err), &err);
    }
    CHECK(client_signing_done(g));
    for (size_t i = 0; i < g->nitems; i++)
        CHECK_OK(schnorr_verify(g->sigs[i], 64, g->msgs[i], 32, k->xonly, 32));
}

/* SIGTERM and a clean exit: the gateway checkpoints its WAL into the file
 * on the way out. */
static void stop_gateway(struct env *e)
{
    int status = 0;
    CHECK(e->stack.gateway_pid > 0);
    CHECK_EQ(kill(e->stack.gateway_pid, SIGTERM), 0);
    CHECK_EQ(waitpid(e->stack.gateway_pid, &status, 0), e->stack.gateway_pid);
    e->stack.gateway_pid = 0;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static struct run migrate(const char *from, const char *to)
{
    const char *args[] = {"db", "migrate", "--from", from, "--to", to, NULL};
    return cmd_run(args, NULL, NULL, false);
}

/* Every table of the SQLite file appears in the report with its count(*):
 * the copy's table list covers the schema, and nothing is left out. */
static void expect_report_matches(const char *db_path, const char *out)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *tables = NULL;
    CHECK_EQ(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_prepare_v2(db,
                                "SELECT name FROM sqlite_master WHERE type = 'table'"
                                " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                                -1, &tables, NULL),
             SQLITE_OK);
    size_t ntables = 0;
    while (sqlite3_step(tables) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(tables, 0);
        char sql[128], line[160];
        sqlite3_stmt *count = NULL;
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", name);
        CHECK_EQ(sqlite3_prepare_v2(db, sql, -1, &count, NULL), SQLITE_OK);
        CHECK_EQ(sqlite3_step(count), SQLITE_ROW);
        snprintf(line, sizeof(line), "\n%s: %lld rows copied, checked\n", name,
                 (long long)sqlite3_column_int64(count, 0));
        sqlite3_finalize(count);
        CHECK_CONTAINS(out, line);
        ntables++;
    }
    sqlite3_finalize(tables);
    sqlite3_close(db);
    char done[64];
    snprintf(done, sizeof(done), "done: %zu tables, ", ntables);
    CHECK_CONTAINS(out, done);
}

/* The gateway's configuration with database.url instead of the SQLite
 * file (the stack wrote "database:" and its indented keys). */
static void point_config_at(const struct env *e, const char *url)
{
    char *conf = test_read_file(e->stack.config_path, NULL);
    char *db = strstr(conf, "database:\n");
    CHECK_NOT_NULL(db);
    char *rest = db + strlen("database:\n");
    while (strncmp(rest, "  ", 2) == 0)
        rest = strchr(rest, '\n') + 1;
    FILE *f = fopen(e->stack.config_path, "w");
    CHECK_NOT_NULL(f);
    fprintf(f, "%.*sdatabase:\n  url: '%s'\n%s", (int)(db - conf), conf, url, rest);
    CHECK_EQ(fclose(f), 0);
    free(conf);
}

static void sqlite_exec(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    CHECK_EQ(sqlite3_open(db_path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

/* More rows than one page of the copy (1000) in a table with a two-column
 * key, the same key column across page boundaries, and in the table
 * without a key: the pages must join up without a gap or an overlap. */
static void add_synthetic_rows(const char *db_path)
{
    sqlite_exec(db_path,
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)"
                " INSERT INTO auth_nonces (key, nonce, expires_at)"
                " SELECT printf('%064x', i % 3), printf('%032x', i), 4102444800 FROM n;"
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)"
                " INSERT INTO api_key_reserves (api_key_id, reserved_at)"
                " SELECT 'kmk_0000000000000000', 1000 + i / 2 FROM n;");
}

/* A copy of the SQLite file at src, changed by sql, at dst. */
static void tampered_copy(const char *src, const char *dst, const char *sql)
{
    size_t len;
    char *bytes = test_read_file(src, &len);
    FILE *f = fopen(dst, "wb");
    CHECK_NOT_NULL(f);
    CHECK_EQ(fwrite(bytes, 1, len, f), len);
    CHECK_EQ(fclose(f), 0);
    free(bytes);
    sqlite_exec(dst, sql);
}

/* The deployment on SQLite: what the copy must carry over. */
static void build_sqlite_deployment(struct env *e)
{
    struct km_error err;
    stack_fail_hook = stack_fail_cmocka;
    /* The deployment to move is on SQLite, whatever the run asks for. */
    unsetenv("KEYMELD_TEST_DB");
    e->stack.require_api_keys = true;
    stack_start(&e->stack, 3);
    snprintf(e->db_path, sizeof(e->db_path), "%s/data/keymeld.db", e->stack.dir);
    e->http = rest_client_new(e->stack.base_url, 30000);
    stack_client_trust(&e->stack, &e->trust);
    e->token = create_api_key(e);
    for (size_t i = 0; i < NKEYGENS; i++) {
        make_keygen(e, &e->k[i], i == APPROVAL_KEYGEN);
        sign(e, &e->k[i], &e->done[i]);
    }
    const struct client_keygen *ka = &e->k[APPROVAL_KEYGEN];
    new_signing(&e->pending);
    expect_ok(client_sign_create(e->http, ka, &e->pending, 600, 0, &err), &err);
    CHECK_STR_EQ(e->pending.status, "awaiting_approvals");
    expect_ok(client_sign_approve(e->http, ka, &e->pending, 1, &err), &err);
}

/* What the command refuses, each with a clear message and exit 1. */
static void expect_refusals(struct env *e, const char *from)
{
    /* The target already holds the copy. */
    struct run r = migrate(from, e->pg_url);
    cmd_expect(&r, 1, NULL, "target database is not empty: table enclaves holds 3 rows");
    run_free(&r);

    /* A source that does not exist, and is not created by the attempt. */
    char missing[300], url[320];
    snprintf(missing, sizeof(missing), "%s/data/no-such.db", e->stack.dir);
    snprintf(url, sizeof(url), "sqlite:%s", missing);
    r = migrate(url, e->pg_url);
    cmd_expect(&r, 1, NULL, "does not exist");
    CHECK_NE(access(missing, F_OK), 0);
    run_free(&r);

    /* A value SQLite accepts but the copy cannot carry unchanged: refused,
     * and the target's transaction is rolled back. */
    char bad[300], bad_url[320], fresh[192];
    snprintf(bad, sizeof(bad), "%s/bad-value.db", e->stack.dir);
    snprintf(bad_url, sizeof(bad_url), "sqlite:%s", bad);
    tampered_copy(e->db_path, bad, "UPDATE enclaves SET key_epoch = 'two' WHERE enclave_id = 1");
    CHECK_EQ(pg_cluster_create_db(&e->pg, fresh, sizeof(fresh)), 0);
    r = migrate(bad_url, fresh);
    cmd_expect(&r, 1, NULL, "enclaves.key_epoch of row 2 is not an integer");
    CHECK_CONTAINS(r.err, "rolled back (the target holds no copied row)");
    run_free(&r);
    /* Nothing was left behind: the same target takes the good copy. */
    r = migrate(from, fresh);
    cmd_expect(&r, 0, "done: 9 tables", NULL);
    run_free(&r);

    /* A column the copy does not know (a newer migration, or made by
     * hand): refused before anything is copied. */
    snprintf(bad, sizeof(bad), "%s/extra-column.db", e->stack.dir);
    snprintf(bad_url, sizeof(bad_url), "sqlite:%s", bad);
    tampered_copy(e->db_path, bad, "ALTER TABLE signing_sessions ADD COLUMN note TEXT");
    CHECK_EQ(pg_cluster_create_db(&e->pg, fresh, sizeof(fresh)), 0);
    r = migrate(bad_url, fresh);
    cmd_expect(&r, 1, NULL, "column signing_sessions.note this keymeld does not copy");
    run_free(&r);

    /* No server there; the password appears nowhere. */
    r = migrate(from, "postgresql://keymeld:s3cr3t-pw@127.0.0.1:1/keymeld");
    cmd_expect(&r, 1, "postgresql://keymeld:***@127.0.0.1:1/keymeld", "cannot connect");
    CHECK(strstr(r.out, "s3cr3t-pw") == NULL);
    CHECK(strstr(r.err, "s3cr3t-pw") == NULL);
    run_free(&r);
}

/* On PostgreSQL: everything made on SQLite works. */
static void expect_deployment_carries_on(struct env *e)
{
    struct km_error err;
    /* Old signings are read from the copy and their signatures verify. */
    for (size_t i = 0; i < NKEYGENS; i++)
        expect_ok(client_sign_wait(e->http, &e->k[i], &e->done[i], 0, WAIT_MS, &err), &err);
    /* The pending one completes with the approval given before the move. */
    const struct client_keygen *ka = &e->k[APPROVAL_KEYGEN];
    expect_ok(client_sign_approve(e->http, ka, &e->pending, 2, &err), &err);
    expect_ok(client_sign_wait(e->http, ka, &e->pending, 0, WAIT_MS, &err), &err);
    /* Every migrated keygen signs again. */
    for (size_t i = 0; i < NKEYGENS; i++) {
        struct client_signing g;
        sign(e, &e->k[i], &g);
        client_signing_clear(&g);
    }
    /* The API key (stored as its hash) still reserves. */
    struct client_keygen k;
    make_keygen(e, &k, false);
    client_keygen_clear(&k);
}

static void test_sqlite_to_postgres(void **state)
{
    (void)state;
    struct env *e = calloc(1, sizeof(*e));
    CHECK_NOT_NULL(e);
    build_sqlite_deployment(e);
    stop_gateway(e);

    if (pg_cluster_start(&e->pg) != 0)
        fail_msg("cannot start a PostgreSQL cluster (scripts/install-deps installs it)");
    CHECK_EQ(pg_cluster_create_db(&e->pg, e->pg_url, sizeof(e->pg_url)), 0);
    add_synthetic_rows(e->db_path);
    char from[300];
    snprintf(from, sizeof(from), "sqlite:%s", e->db_path);
    size_t before_len, after_len;
    char *before = test_read_file(e->db_path, &before_len);

    uint64_t t0 = clock_now_ms();
    struct run r = migrate(from, e->pg_url);
    cmd_expect(&r, 0, "keygen_sessions: 3 rows copied, checked", NULL);
    print_message("migrate in %llu ms:\n%s", (unsigned long long)(clock_now_ms() - t0), r.out);
    CHECK_CONTAINS(r.out, "signing_sessions: 4 rows copied, checked");
    CHECK_CONTAINS(r.out, "signing_approvals: 3 rows copied, checked");
    CHECK_CONTAINS(r.out, "api_keys: 1 rows copied, checked");
    expect_report_matches(e->db_path, r.out);
    run_free(&r);
    char *after = test_read_file(e->db_path, &after_len);
    CHECK(before_len == after_len && memcmp(before, after, before_len) == 0);
    free(before);
    free(after);

    /* Into a new SQLite file as well: any two backends. */
    char copy[300];
    snprintf(copy, sizeof(copy), "sqlite:%s/copy/keymeld.db", e->stack.dir);
    r = migrate(from, copy);
    cmd_expect(&r, 0, "keygen_sessions: 3 rows copied, checked", NULL);
    run_free(&r);

    expect_refusals(e, from);

    point_config_at(e, e->pg_url);
    stack_start_gateway(&e->stack);
    CHECK(stack_log_contains(&e->stack, "gateway.log", "database ready on PostgreSQL"));
    expect_deployment_carries_on(e);

    for (size_t i = 0; i < NKEYGENS; i++) {
        client_signing_clear(&e->done[i]);
        client_keygen_clear(&e->k[i]);
    }
    client_signing_clear(&e->pending);
    free(e->token);
    client_trust_release(&e->trust);
    rest_client_free(e->http);
    stack_stop(&e->stack);
    pg_cluster_destroy(&e->pg);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_sqlite_to_postgres),
    };
    return RUN_TESTS("integration.db_migrate", tests);
}
