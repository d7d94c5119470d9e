/*
 * test_rotation.c - rotating an enclave's identity key through the
 * gateway's operator route (docs/OPERATIONS.md "Rotating an enclave key"):
 * every keygen signs again afterwards, also after the enclave restarts
 * with its new sealed key; a rotation is refused while a keygen using the
 * enclave is in progress, and from another host; a rotation interrupted by
 * kill -9 of the gateway completes after the restart, also when the
 * enclave had committed and only the gateway's record was missing.
 *
 * Backend-neutral: CTest runs it on SQLite (integration.rotation) and on a
 * throwaway PostgreSQL cluster (integration.rotation.pg); the interrupted
 * commit is staged in whichever database the stack's gateway uses.
 */
#include "test.h"

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "client/attest.h"
#include "client/session.h"
#include "common/clock.h"
#include "common/secure.h"
#include "stack.h"
#include "common/banned.h"

#define MAX_KEYGENS 40

struct rig {
    struct stack stack;
    struct rest_client *http;
    struct client_trust trust;
    size_t n;
    struct client_keygen k[MAX_KEYGENS];
};

static void stack_fail_cmocka(const char *msg)
{
    fail_msg("%s", msg);
}

static void rig_start(struct rig *g, size_t keygens)
{
    struct km_error err;
    stack_fail_hook = stack_fail_cmocka;
    stack_start(&g->stack, 3);
    g->http = rest_client_new(g->stack.base_url, 60000);
    stack_client_trust(&g->stack, &g->trust);
    g->n = keygens;
    for (size_t i = 0; i < keygens; i++) {
        CHECK_OK(client_keygen_new(&g->k[i], 3, NULL));
        g->k[i].trust = &g->trust;
        if (client_keygen_run(g->http, &g->k[i], 600, 20000, &err) != KM_OK)
            fail_msg("keygen %zu: %s", i, err.msg);
    }
}

static void rig_stop(struct rig *g)
{
    for (size_t i = 0; i < g->n; i++)
        client_keygen_clear(&g->k[i]);
    client_trust_release(&g->trust);
    rest_client_free(g->http);
    stack_stop(&g->stack);
}

static void sign_all(struct rig *g)
{
    struct km_error err;
    for (size_t i = 0; i < g->n; i++) {
        uint8_t msg[1][32];
        struct client_signing s;
        CHECK_OK(secure_random(msg, sizeof(msg)));
        CHECK_OK(client_signing_new(&s, (const uint8_t(*)[32])msg, 1));
        if (client_sign_create(g->http, &g->k[i], &s, 600, 20000, &err) != KM_OK)
            fail_msg("keygen %zu does not sign: %s", i, err.msg);
        CHECK(client_signing_done(&s));
        client_signing_clear(&s);
    }
}

/* POST the operator route; returns the HTTP status, *reply the body. */
static long rotate(struct rig *g, uint32_t eid, json_t **reply)
{
    struct rest_response r;
    struct km_error err;
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/admin/enclaves/%u/rotate-key", eid);
    *reply = NULL;
    if (rest_call(g->http, &r, "POST", path, NULL, NULL, &err) != KM_OK)
        return 0;
    long st = r.status;
    *reply = r.body ? json_incref(r.body) : NULL;
    rest_response_clear(&r);
    return st;
}

static void enclave_key(struct rig *g, uint32_t eid, char out[67])
{
    char path[64], *body = NULL;
    snprintf(path, sizeof(path), "/api/v1/enclaves/%u/public-key", eid);
    out[0] = '\0';
    if (stack_http_get(&g->stack, path, &body) == 200) {
        json_t *j = json_loads(body, 0, NULL);
        snprintf(out, 67, "%s", json_string_value(json_object_get(j, "public_key")));
        json_decref(j);
    }
    free(body);
}

static void test_rotate_then_sign(void **state)
{
    (void)state;
    struct rig *g = calloc(1, sizeof(*g));
    rig_start(g, 3);
    char before[67], after[67];
    enclave_key(g, 1, before);
    json_t *rep = NULL;
    CHECK_EQ(rotate(g, 1, &rep), 200);
    CHECK_EQ(json_integer_value(json_object_get(rep, "key_epoch")), 2);
    CHECK_EQ(json_integer_value(json_object_get(rep, "keygens_reencrypted")), 3);
    json_decref(rep);
    /* The gateway sees (and attests) the new key at once. */
    for (int t = 0; t < 100; t++) {
        enclave_key(g, 1, after);
        if (after[0] && strcmp(after, before) != 0)
            break;
        clock_sleep_ms(50);
    }
    CHECK(strcmp(after, before) != 0);
    sign_all(g);
    /* Restarted: it opens its new sealed key; evicted keygens are restored
     * from the re-encrypted ciphertexts. */
    stack_kill_enclave(&g->stack, 1);
    stack_start_enclave(&g->stack, 1);
    CHECK(stack_wait_ready(&g->stack, 20000));
    sign_all(g);
    CHECK(stack_log_contains(&g->stack, "enclave-1.log", "identity key epoch 2 restored"));
    /* And again: epoch 3. */
    CHECK_EQ(rotate(g, 1, &rep), 200);
    CHECK_EQ(json_integer_value(json_object_get(rep, "key_epoch")), 3);
    json_decref(rep);
    sign_all(g);
    rig_stop(g);
    free(g);
}

static void test_refused_while_keygen_in_progress(void **state)
{
    (void)state;
    struct rig *g = calloc(1, sizeof(*g));
    struct km_error err;
    rig_start(g, 1);
    struct client_keygen open;
    CHECK_OK(client_keygen_new(&open, 3, NULL));
    open.trust = &g->trust;
    CHECK_OK(client_keygen_reserve(g->http, &open, 600, &err));
    json_t *rep = NULL;
    CHECK_EQ(rotate(g, 0, &rep), 409);
    CHECK_CONTAINS(json_string_value(json_object_get(json_object_get(rep, "error"), "message")),
                   "in progress");
    json_decref(rep);
    client_keygen_clear(&open);
    CHECK_EQ(rotate(g, 9, &rep), 404);
    json_decref(rep);
    rig_stop(g);
    free(g);
}

/* kill -9 of the gateway at a random point of a rotation of many keygens:
 * after the restart the rotation completes (by itself when it had begun,
 * else when run again) and every keygen signs. */
static void test_rotation_interrupted(void **state)
{
    (void)state;
    struct rig *g = calloc(1, sizeof(*g));
    rig_start(g, 24);
    char before[67], after[67];
    enclave_key(g, 2, before);
    /* The rotation request in the background; the gateway dies under it. */
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        json_t *rep = NULL;
        (void)rotate(g, 2, &rep);
        _exit(0);
    }
    uint8_t r;
    CHECK_OK(secure_random(&r, 1));
    clock_sleep_ms(5 + r % 60);
    stack_kill_gateway(&g->stack);
    waitpid(child, NULL, 0);
    stack_start_gateway(&g->stack);
    bool rotated = false;
    for (int t = 0; t < 200 && !rotated; t++) {
        enclave_key(g, 2, after);
        rotated = after[0] && strcmp(after, before) != 0;
        if (!rotated)
            clock_sleep_ms(50);
    }
    if (!rotated) { /* killed before the next key was stored: run it again */
        json_t *rep = NULL;
        CHECK_EQ(rotate(g, 2, &rep), 200);
        json_decref(rep);
    }
    print_message("rotation %s after the gateway was killed\n",
                  rotated ? "resumed by itself" : "run again");
    sign_all(g);
    rig_stop(g);
    free(g);
}

/* Runs statements on the stack's database, whichever engine it is:
 * PostgreSQL when the stack runs one (KEYMELD_TEST_DB=postgres), else the
 * gateway's SQLite file. The SQL must be in the subset both accept (values
 * as literals); it runs as one transaction on either. */
static void db_exec(struct rig *g, const char *sql)
{
    char tx[2048];
    CHECK(snprintf(tx, sizeof(tx), "BEGIN; %s COMMIT;", sql) < (int)sizeof(tx));
    if (g->stack.pg != NULL) {
        PGconn *pg = PQconnectdb(g->stack.db_url);
        if (PQstatus(pg) != CONNECTION_OK)
            fail_msg("connect %s: %s", g->stack.db_url, PQerrorMessage(pg));
        PGresult *res = PQexec(pg, tx);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            fail_msg("%s: %s", tx, PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(pg);
        return;
    }
    char path[600];
    snprintf(path, sizeof(path), "%s/data/keymeld.db", g->stack.dir);
    sqlite3 *db = NULL;
    char *msg = NULL;
    CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, tx, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", tx, msg);
    sqlite3_close(db);
}

/* A public key from the gateway, safe to write as an SQL literal. */
static bool is_hex(const char *s)
{
    if (s[0] == '\0')
        return false;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s))
            return false;
    return true;
}

/* The gateway stopped after the enclave committed the rotation and before
 * it recorded the commit: the database still names the old key current
 * and the new one next, the enclave runs on the new one. The restarted
 * gateway records the commit; it must not take the new key for a restart
 * (which would fail the enclave's sessions). */
static void test_commit_not_recorded(void **state)
{
    (void)state;
    struct rig *g = calloc(1, sizeof(*g));
    rig_start(g, 4);
    char before[67], after[67], seen[67];
    enclave_key(g, 2, before);
    json_t *rep = NULL;
    CHECK_EQ(rotate(g, 2, &rep), 200);
    json_decref(rep);
    enclave_key(g, 2, after);
    CHECK(strcmp(before, after) != 0);
    CHECK(is_hex(before));
    stack_kill_gateway(&g->stack);
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "UPDATE enclave_sealed_keys SET state = 'next' WHERE enclave_id = 2 AND state = "
             "'current';"
             "UPDATE enclave_sealed_keys SET state = 'current' WHERE enclave_id = 2 AND "
             "public_key = '%s';"
             "UPDATE enclaves SET public_key = '%s', key_epoch = key_epoch - 1 WHERE enclave_id "
             "= 2;",
             before, before);
    db_exec(g, sql);
    stack_start_gateway(&g->stack);
    bool back = false;
    for (int t = 0; t < 200 && !back; t++) {
        enclave_key(g, 2, seen);
        back = strcmp(seen, after) == 0;
        if (!back)
            clock_sleep_ms(50);
    }
    CHECK(back);
    CHECK(!stack_log_contains(&g->stack, "gateway.log", "restarted: public key changed"));
    sign_all(g);
    rig_stop(g);
    free(g);
}

/* An enclave started without its sealer while the database holds its
 * sealed key is refused with a clear error, and its keygens are kept: once
 * it runs with its sealer again they all sign. */
static void test_sealer_none_refused(void **state)
{
    (void)state;
    struct rig *g = calloc(1, sizeof(*g));
    rig_start(g, 3);
    stack_stop_enclave(&g->stack, 1);
    g->stack.enclave_sealer = "none";
    stack_start_enclave(&g->stack, 1);
    bool refused = false;
    for (int t = 0; t < 200 && !refused; t++) {
        refused = stack_log_contains(&g->stack, "gateway.log", "runs without a sealer");
        if (!refused)
            clock_sleep_ms(50);
    }
    CHECK(refused);
    stack_stop_enclave(&g->stack, 1);
    g->stack.enclave_sealer = NULL;
    stack_start_enclave(&g->stack, 1);
    CHECK(!stack_log_contains(&g->stack, "gateway.log", "restarted: public key changed"));
    sign_all(g);
    rig_stop(g);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_rotate_then_sign),     TEST(test_refused_while_keygen_in_progress),
        TEST(test_rotation_interrupted), TEST(test_commit_not_recorded),
        TEST(test_sealer_none_refused),
    };
    return RUN_TESTS("integration.rotation", tests);
}
