/*
 * test_durable.c - keys that survive restarts, end to end: a stack of 3
 * enclave processes (SEALER=file: the identity key is sealed under the
 * key-encryption key in dir/kek and the gateway keeps the sealed blob) and
 * a gateway process.
 *
 *  - kill -9 of an enclave under a signing load: signings in flight may
 *    fail with a clear error, none hangs, no completed keygen fails, and
 *    every keygen signs again (the gateway restores what the restarted
 *    enclave lost from the stored ciphertexts);
 *  - every process stopped and started again: every keygen signs;
 *  - an enclave restarted with a different KEK is refused (readiness says
 *    why) and its sealed key row is left as it was; with the right KEK back
 *    it signs again;
 *  - a session table much smaller than the number of keygens
 *    (ENCLAVE_MAX_SESSIONS): completed keygens are evicted and restored on
 *    demand, every one signs, and the enclaves' memory stays bounded.
 *    KEYMELD_DURABLE_KEYGENS / KEYMELD_DURABLE_MAX_SESSIONS size it
 *    (default 300 / 20; the figure is 5000 / 100).
 *
 * Backend-neutral: CTest runs it on SQLite (integration.durable) and on a
 * throwaway PostgreSQL cluster (integration.durable.pg); the sealed key
 * rows are read from whichever database the stack's gateway uses.
 */
#include "test.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "client/session.h"
#include "common/clock.h"
#include "common/secure.h"
#include "crypto/schnorr.h"
#include "stack.h"
#include "common/banned.h"

#define NUSERS          3
#define WAIT_MS         20000
#define HTTP_TIMEOUT_MS 60000
#define KEYGEN_THREADS  4

#if defined(__SANITIZE_ADDRESS__)
#define KM_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KM_TEST_ASAN 1
#endif
#endif

/* Peak RSS bound of one enclave: generous, it only catches unbounded
 * growth (ASan's shadow memory and quarantine need more). */
#ifdef KM_TEST_ASAN
#define ENCLAVE_RSS_MAX_KIB (1024u * 1024u)
#else
#define ENCLAVE_RSS_MAX_KIB (256u * 1024u)
#endif

struct env {
    struct stack stack;
    struct rest_client *http;
    struct client_trust trust;
    size_t nkeygens;
    struct client_keygen *k;
    uint32_t max_signing_sessions; /* of each keygen; 0 = the gateway's default */
};

static void stack_fail_cmocka(const char *msg)
{
    fail_msg("%s", msg);
}

static size_t env_size(const char *name, size_t dflt)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        return dflt;
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || *end != '\0' || n == 0)
        fail_msg("%s=%s: not a positive number", name, v);
    return (size_t)n;
}

static void begin(struct env *e)
{
    stack_fail_hook = stack_fail_cmocka;
    stack_start(&e->stack, 3);
    e->http = rest_client_new(e->stack.base_url, HTTP_TIMEOUT_MS);
    stack_client_trust(&e->stack, &e->trust);
}

static void end(struct env *e)
{
    for (size_t i = 0; i < e->nkeygens; i++)
        client_keygen_clear(&e->k[i]);
    free(e->k);
    client_trust_release(&e->trust);
    rest_client_free(e->http);
    stack_stop(&e->stack);
}

/* ---- keygens, made by a few threads (each with its own client and trust:
 * neither is thread-safe) ---- */

struct kg_worker {
    struct env *e;
    atomic_size_t *next;
    struct rest_client *http;
    struct client_trust trust;
    int rc;
    char err[1024];
};

static void *kg_worker_run(void *arg)
{
    struct kg_worker *w = arg;
    struct proto_tweak tweak = {.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT};
    for (;;) {
        size_t i = atomic_fetch_add(w->next, 1);
        if (i >= w->e->nkeygens || w->rc != KM_OK)
            break;
        struct client_keygen *k = &w->e->k[i];
        struct km_error err;
        if (client_keygen_new(k, NUSERS, &tweak) != KM_OK) {
            w->rc = KM_ERR_IO;
            snprintf(w->err, sizeof(w->err), "keygen %zu: client_keygen_new failed", i);
            break;
        }
        k->trust = &w->trust;
        k->max_signing_sessions = w->e->max_signing_sessions;
        int r = client_keygen_run(w->http, k, 600, WAIT_MS, &err);
        k->trust = NULL;
        if (r != KM_OK) {
            w->rc = r;
            snprintf(w->err, sizeof(w->err), "keygen %zu (%s): %s", i, k->id_s, err.msg);
        }
    }
    return NULL;
}

static void make_keygens(struct env *e, size_t n)
{
    e->nkeygens = n;
    e->k = calloc(n, sizeof(*e->k));
    CHECK_NOT_NULL(e->k);
    atomic_size_t next = 0;
    size_t nthreads = n < KEYGEN_THREADS ? n : KEYGEN_THREADS;
    struct kg_worker w[KEYGEN_THREADS];
    pthread_t th[KEYGEN_THREADS];
    uint64_t t0 = clock_now_ms();
    for (size_t t = 0; t < nthreads; t++) {
        w[t] = (struct kg_worker){.e = e, .next = &next, .rc = KM_OK};
        w[t].http = rest_client_new(e->stack.base_url, HTTP_TIMEOUT_MS);
        stack_client_trust(&e->stack, &w[t].trust);
        CHECK_EQ(pthread_create(&th[t], NULL, kg_worker_run, &w[t]), 0);
    }
    for (size_t t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    for (size_t t = 0; t < nthreads; t++) {
        rest_client_free(w[t].http);
        client_trust_release(&w[t].trust);
    }
    for (size_t t = 0; t < nthreads; t++)
        if (w[t].rc != KM_OK)
            fail_msg("%s", w[t].err);
    uint64_t ms = clock_now_ms() - t0;
    print_message("%zu keygens of %d participants in %llu ms (%.1f/s)\n", n, NUSERS,
                  (unsigned long long)ms, ms ? (double)n * 1000.0 / (double)ms : 0.0);
}

/* ---- signing ---- */

/* One signing of one random message on k, the reply held until it ends.
 * KM_OK only when it completed and its signature verifies (the client
 * library checked it already; checked here again with BIP-340). A signing
 * still running after wait_ms is KM_ERR_TIMEOUT. */
static int sign_once(struct rest_client *http, const struct client_keygen *k, struct km_error *err)
{
    uint8_t msg[1][32];
    struct client_signing g;
    if (secure_random(msg, sizeof(msg)) != KM_OK ||
        client_signing_new(&g, (const uint8_t(*)[32])msg, 1) != KM_OK)
        return km_error_set(err, KM_ERR_IO, 0, "cannot make a signing");
    int r = client_sign_create(http, k, &g, 600, WAIT_MS, err);
    if (r == KM_OK && !client_signing_done(&g))
        r = km_error_set(err, KM_ERR_TIMEOUT, 0, "signing %s of keygen %s still \"%s\" after %d ms",
                         g.id_s, k->id_s, g.status, WAIT_MS);
    if (r == KM_OK && schnorr_verify(g.sigs[0], 64, msg[0], 32, k->xonly, 32) != KM_OK)
        r = km_error_set(err, KM_ERR_CRYPTO, 0, "signing %s of keygen %s: bad signature", g.id_s,
                         k->id_s);
    client_signing_clear(&g);
    return r;
}

static void expect_signs(struct env *e, const struct client_keygen *k)
{
    struct km_error err;
    if (sign_once(e->http, k, &err) != KM_OK)
        fail_msg("keygen %s does not sign: %s", k->id_s, err.msg);
}

static void expect_all_sign(struct env *e)
{
    uint64_t t0 = clock_now_ms();
    for (size_t i = 0; i < e->nkeygens; i++)
        expect_signs(e, &e->k[i]);
    print_message("%zu keygens signed again in %llu ms\n", e->nkeygens,
                  (unsigned long long)(clock_now_ms() - t0));
}

/* GET /api/v1/keygen/{id}/status signed with the session key: its status
 * (and error, if any) into out. */
static void keygen_status(struct env *e, const struct client_keygen *k, char *out, size_t cap)
{
    char path[128];
    struct rest_response r;
    struct km_error err;
    snprintf(path, sizeof(path), "/api/v1/keygen/%s/status", k->id_s);
    if (rest_call(e->http, &r, "GET", path, NULL, &k->session_auth, &err) != KM_OK)
        fail_msg("GET %s: %s", path, err.msg);
    if (r.status != 200)
        fail_msg("GET %s: HTTP %ld: %s", path, r.status, r.text);
    const char *st = json_string_value(json_object_get(r.body, "status"));
    const char *why = json_string_value(json_object_get(r.body, "error"));
    snprintf(out, cap, "%s%s%s", st ? st : "(none)", why ? ": " : "", why ? why : "");
    rest_response_clear(&r);
}

/* ---- logs and processes ---- */

/* Lines of a log holding text (streamed: the log may be large). */
static size_t log_count(const struct env *e, const char *log, const char *text)
{
    char path[512], line[4096];
    size_t n = 0;
    stack_log_path(&e->stack, log, path, sizeof(path));
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, text) != NULL)
            n++;
    fclose(f);
    return n;
}

/* Prints the lines of a log holding text (at most max). */
static void log_print_matching(const struct env *e, const char *log, const char *text, size_t max)
{
    char path[512], line[4096];
    stack_log_path(&e->stack, log, path, sizeof(path));
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return;
    while (max > 0 && fgets(line, sizeof(line), f))
        if (strstr(line, text) != NULL) {
            print_message("  %s: %s", log, line);
            max--;
        }
    fclose(f);
}

static bool wait_log(const struct env *e, const char *log, const char *text, uint32_t timeout_ms)
{
    uint64_t until = clock_now_ms() + timeout_ms;
    while (log_count(e, log, text) == 0) {
        if (clock_now_ms() >= until)
            return false;
        clock_sleep_ms(20);
    }
    return true;
}

/* The session counts each enclave reported to the gateway's last health
 * check (GET /api/v1/enclaves: active_sessions). */
static void enclave_sessions(struct env *e, size_t *keygen, size_t *signing, size_t n)
{
    char *body = NULL;
    long status = stack_http_get(&e->stack, "/api/v1/enclaves", &body);
    if (status != 200)
        fail_msg("GET /api/v1/enclaves: HTTP %ld: %s", status, body ? body : "");
    json_t *j = json_loads(body, 0, NULL);
    json_t *arr = json_object_get(j, "enclaves");
    if (json_array_size(arr) != n)
        fail_msg("GET /api/v1/enclaves: %s", body);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        json_t *act = json_object_get(o, "active_sessions");
        if (act == NULL)
            fail_msg("GET /api/v1/enclaves: no active_sessions for enclave %zu: %s", i, body);
        keygen[i] = (size_t)json_integer_value(json_object_get(act, "keygen"));
        signing[i] = (size_t)json_integer_value(json_object_get(act, "signing"));
    }
    json_decref(j);
    free(body);
}

/* VmHWM (peak resident set) of a process in KiB, 0 if unknown. */
static unsigned long peak_rss_kib(pid_t pid)
{
    char path[64], line[256];
    unsigned long kib = 0;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = strtoul(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* ---- 1. kill -9 of an enclave under a signing load ---- */

struct load {
    struct env *e;
    atomic_bool *stop;
    struct rest_client *http;
    unsigned seed;
    size_t ok, failed, unexpected;
    uint64_t max_ms;
    char first_failure[512];
    char first_unexpected[1024];
};

/* A failure during the outage is expected to be a clear one: the signing
 * failed (KM_ERR_STATE) or the gateway refused it (KM_ERR_REMOTE), naming
 * the enclave or the restore. */
static bool expected_failure(int rc, const char *msg)
{
    return (rc == KM_ERR_STATE || rc == KM_ERR_REMOTE) &&
           (strstr(msg, "enclave 1") != NULL || strstr(msg, "restor") != NULL);
}

static void *load_run(void *arg)
{
    struct load *l = arg;
    while (!atomic_load(l->stop)) {
        const struct client_keygen *k = &l->e->k[(size_t)rand_r(&l->seed) % l->e->nkeygens];
        struct km_error err;
        uint64_t t0 = clock_now_ms();
        int rc = sign_once(l->http, k, &err);
        uint64_t ms = clock_now_ms() - t0;
        if (ms > l->max_ms)
            l->max_ms = ms;
        if (rc == KM_OK) {
            l->ok++;
        } else if (expected_failure(rc, err.msg)) {
            if (l->failed++ == 0)
                snprintf(l->first_failure, sizeof(l->first_failure), "%s", err.msg);
        } else if (l->unexpected++ == 0) {
            snprintf(l->first_unexpected, sizeof(l->first_unexpected), "rc %d after %llu ms: %s",
                     rc, (unsigned long long)ms, err.msg);
        }
    }
    return NULL;
}

static void test_kill_enclave_under_signing_load(void **state)
{
    (void)state;
    struct env e = {0};
    begin(&e);
    /* The load makes a few hundred signings per keygen: above the default
     * quota (100). */
    e.max_signing_sessions = 100000;
    make_keygens(&e, 6);

    atomic_bool stop = false;
    struct load l[2];
    pthread_t th[2];
    uint32_t seed;
    CHECK_OK(secure_random(&seed, sizeof(seed)));
    for (size_t t = 0; t < 2; t++) {
        l[t] = (struct load){.e = &e, .stop = &stop, .seed = seed + (unsigned)t};
        l[t].http = rest_client_new(e.stack.base_url, HTTP_TIMEOUT_MS);
        CHECK_EQ(pthread_create(&th[t], NULL, load_run, &l[t]), 0);
    }
    uint64_t t0 = clock_now_ms();
    clock_sleep_ms(1000);
    stack_kill_enclave(&e.stack, 1);
    uint64_t killed = clock_now_ms();
    stack_start_enclave(&e.stack, 1);
    /* Back when the gateway handed it its sealed key again (the readiness
     * endpoint may not have noticed the outage yet). */
    bool ready = wait_log(&e, "enclave-1.log", "identity key epoch 1 restored", 20000) &&
                 stack_wait_ready(&e.stack, 20000);
    uint64_t back = clock_now_ms();
    /* Load for ~3 s in all, at least 1 s of it after the enclave is back. */
    while (clock_now_ms() < t0 + 3000 || clock_now_ms() < back + 1000)
        clock_sleep_ms(50);
    atomic_store(&stop, true);
    for (size_t t = 0; t < 2; t++) {
        pthread_join(th[t], NULL);
        rest_client_free(l[t].http);
    }
    uint64_t total = clock_now_ms() - t0;
    size_t ok = l[0].ok + l[1].ok, failed = l[0].failed + l[1].failed;
    size_t unexpected = l[0].unexpected + l[1].unexpected;
    uint64_t max_ms = l[0].max_ms > l[1].max_ms ? l[0].max_ms : l[1].max_ms;
    print_message("signing load %llu ms (enclave 1 down %llu ms until ready): %zu completed, %zu "
                  "failed clearly, %zu failed otherwise; slowest %llu ms\n",
                  (unsigned long long)total, (unsigned long long)(back - killed), ok, failed,
                  unexpected, (unsigned long long)max_ms);
    for (size_t t = 0; t < 2; t++) {
        if (l[t].failed)
            print_message("  thread %zu, first failure: %s\n", t, l[t].first_failure);
        if (l[t].unexpected)
            print_message("  thread %zu, first unexpected failure: %s\n", t, l[t].first_unexpected);
    }
    CHECK(ready);
    CHECK(ok > 0);
    if (unexpected > 0)
        fail_msg("%zu signings failed without a clear error or hung: %s", unexpected,
                 l[0].unexpected ? l[0].first_unexpected : l[1].first_unexpected);

    /* No completed keygen failed. */
    size_t bad = 0;
    for (size_t i = 0; i < e.nkeygens; i++) {
        char st[512];
        keygen_status(&e, &e.k[i], st, sizeof(st));
        if (strcmp(st, "completed") != 0) {
            print_message("keygen %s: %s\n", e.k[i].id_s, st);
            bad++;
        }
    }
    CHECK_EQ(bad, 0);
    expect_all_sign(&e);
    size_t restored = log_count(&e, "gateway.log", "restored from its stored ciphertexts");
    print_message("gateway restores: %zu\n", restored);
    CHECK(restored > 0);
    CHECK(stack_log_contains(&e.stack, "enclave-1.log", "identity key epoch 1 restored"));
    end(&e);
}

/* ---- 2. every process stopped and started again ---- */

static void test_restart_everything(void **state)
{
    (void)state;
    struct env e = {0};
    begin(&e);
    make_keygens(&e, 4);
    expect_signs(&e, &e.k[0]);

    uint64_t t0 = clock_now_ms();
    stack_kill_gateway(&e.stack);
    for (size_t i = 0; i < e.stack.n; i++)
        stack_stop_enclave(&e.stack, i);
    for (size_t i = 0; i < e.stack.n; i++)
        stack_start_enclave(&e.stack, i);
    stack_start_gateway(&e.stack);
    print_message("stack restarted in %llu ms\n", (unsigned long long)(clock_now_ms() - t0));

    expect_all_sign(&e);
    for (size_t i = 0; i < e.stack.n; i++) {
        char log[48];
        snprintf(log, sizeof(log), "enclave-%zu.log", i);
        CHECK(stack_log_contains(&e.stack, log, "identity key epoch 1 restored"));
    }
    CHECK(stack_log_contains(&e.stack, "gateway.log", "restored from its stored ciphertexts"));
    end(&e);
}

/* ---- 3. a wrong key-encryption key ---- */

struct sealed_row {
    size_t nrows;
    long long key_epoch;
    char *sealed_key, *public_key, *state;
};

static void sealed_row_clear(struct sealed_row *r)
{
    free(r->sealed_key);
    free(r->public_key);
    free(r->state);
    memset(r, 0, sizeof(*r));
}

/* ---- the gateway's database, whichever engine the stack runs ---- */

/* Called for each row with its columns as text (NULL for an SQL NULL);
 * returns 0 to go on (sqlite3_exec's callback shape). */
typedef int (*db_row_fn)(void *ctx, int ncols, char **vals, char **names);

static void db_query_sqlite(const struct stack *s, const char *sql, db_row_fn row, void *ctx)
{
    char path[256];
    sqlite3 *db = NULL;
    char *msg = NULL;
    snprintf(path, sizeof(path), "%s/data/keymeld.db", s->dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        fail_msg("open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, row, ctx, &msg) != SQLITE_OK)
        fail_msg("%s: %s: %s", path, sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_close(db);
}

static void db_query_pg(const struct stack *s, const char *sql, db_row_fn row, void *ctx)
{
    PGconn *pg = PQconnectdb(s->db_url);
    if (PQstatus(pg) != CONNECTION_OK)
        fail_msg("connect %s: %s", s->db_url, PQerrorMessage(pg));
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    int ncols = PQnfields(res);
    char **vals = calloc((size_t)ncols + 1, sizeof(*vals));
    CHECK_NOT_NULL(vals);
    for (int r = 0; r < PQntuples(res); r++) {
        for (int c = 0; c < ncols; c++)
            vals[c] = PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
        if (row(ctx, ncols, vals, NULL) != 0)
            fail_msg("%s: aborted at row %d", sql, r);
    }
    free(vals);
    PQclear(res);
    PQfinish(pg);
}

/* Runs a query on the stack's database: PostgreSQL when the stack runs
 * one (KEYMELD_TEST_DB=postgres), else the gateway's SQLite file, read
 * only. The SQL must be in the subset both accept (values as literals). */
static void db_query(const struct stack *s, const char *sql, db_row_fn row, void *ctx)
{
    if (s->pg != NULL)
        db_query_pg(s, sql, row, ctx);
    else
        db_query_sqlite(s, sql, row, ctx);
}

static char *col_text(const char *v)
{
    return strdup(v ? v : "(null)");
}

/* Keeps the last row's columns: key_epoch, sealed_key, public_key, state. */
static int sealed_row_add(void *ctx, int ncols, char **vals, char **names)
{
    struct sealed_row *out = ctx;
    (void)names;
    if (ncols != 4)
        return 1; /* the query fails (no longjmp through the engine) */
    size_t n = out->nrows;
    sealed_row_clear(out);
    out->nrows = n + 1;
    out->key_epoch = vals[0] ? strtoll(vals[0], NULL, 10) : -1;
    out->sealed_key = col_text(vals[1]);
    out->public_key = col_text(vals[2]);
    out->state = col_text(vals[3]);
    return 0;
}

/* enclave_sealed_keys rows of an enclave (the last one's columns). */
static void read_sealed_row(const struct env *e, uint32_t enclave_id, struct sealed_row *out)
{
    char sql[160];
    memset(out, 0, sizeof(*out));
    snprintf(sql, sizeof(sql),
             "SELECT key_epoch, sealed_key, public_key, state FROM enclave_sealed_keys "
             "WHERE enclave_id = %u ORDER BY key_epoch",
             enclave_id);
    db_query(&e->stack, sql, sealed_row_add, out);
}

static void write_kek(const struct env *e, const uint8_t kek[32])
{
    char path[256];
    snprintf(path, sizeof(path), "%s/kek", e->stack.dir);
    int fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, kek, 32), 32);
    CHECK_EQ(fsync(fd), 0);
    close(fd);
}

static void test_wrong_kek_is_refused(void **state)
{
    (void)state;
    struct env e = {0};
    begin(&e);
    make_keygens(&e, 1);
    expect_signs(&e, &e.k[0]);

    char path[256];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/kek", e.stack.dir);
    char *orig = test_read_file(path, &len);
    CHECK_EQ(len, 32);

    struct sealed_row before, after;
    read_sealed_row(&e, 2, &before);
    CHECK_EQ(before.nrows, 1);
    print_message("enclave 2 sealed key: epoch %lld, state %s, public key %.16s...\n",
                  before.key_epoch, before.state, before.public_key);

    stack_stop_enclave(&e.stack, 2);
    uint8_t wrong[32];
    CHECK_OK(secure_random(wrong, sizeof(wrong)));
    write_kek(&e, wrong);
    stack_start_enclave(&e.stack, 2);

    /* Refused: readiness says why. */
    const char *want = "does not open with this file key-encryption key";
    char *body = NULL;
    long status = 0;
    bool seen = false;
    uint64_t until = clock_now_ms() + 15000;
    while (!seen && clock_now_ms() < until) {
        free(body);
        status = stack_http_get(&e.stack, "/health/ready", &body);
        seen = status == 503 && body != NULL && strstr(body, want) != NULL;
        if (!seen)
            clock_sleep_ms(100);
    }
    if (!seen)
        fail_msg("/health/ready did not say \"%s\" within 15 s: HTTP %ld: %s", want, status,
                 body ? body : "(no body)");
    print_message("/health/ready: HTTP %ld: %.300s\n", status, body);
    free(body);

    /* Nothing changed in the database. */
    read_sealed_row(&e, 2, &after);
    CHECK_EQ(after.nrows, 1);
    CHECK_EQ(after.key_epoch, before.key_epoch);
    CHECK_STR_EQ(after.sealed_key, before.sealed_key);
    CHECK_STR_EQ(after.public_key, before.public_key);
    CHECK_STR_EQ(after.state, before.state);
    sealed_row_clear(&after);

    /* The right KEK back: enclave 2 opens its key and the keygen signs. */
    stack_stop_enclave(&e.stack, 2);
    write_kek(&e, (const uint8_t *)orig);
    stack_start_enclave(&e.stack, 2);
    CHECK(stack_wait_ready(&e.stack, 15000));
    expect_signs(&e, &e.k[0]);
    read_sealed_row(&e, 2, &after);
    CHECK_EQ(after.nrows, 1);
    CHECK_STR_EQ(after.sealed_key, before.sealed_key);
    sealed_row_clear(&after);
    sealed_row_clear(&before);
    free(orig);
    end(&e);
}

/* ---- 4. eviction when the session table is full, and restore ---- */

static void test_eviction_and_restore(void **state)
{
    (void)state;
    struct env e = {0};
    size_t nkeygens = env_size("KEYMELD_DURABLE_KEYGENS", 300);
    size_t max_sessions = env_size("KEYMELD_DURABLE_MAX_SESSIONS", 20);
    e.stack.enclave_max_sessions = (uint32_t)max_sessions;
    uint64_t t0 = clock_now_ms();
    begin(&e);
    print_message("%zu keygens, ENCLAVE_MAX_SESSIONS=%zu\n", nkeygens, max_sessions);
    make_keygens(&e, nkeygens);

    /* Every keygen signs once, in a random order. */
    size_t *order = malloc(nkeygens * sizeof(*order));
    CHECK_NOT_NULL(order);
    uint32_t seed;
    CHECK_OK(secure_random(&seed, sizeof(seed)));
    unsigned rs = seed;
    for (size_t i = 0; i < nkeygens; i++)
        order[i] = i;
    for (size_t i = nkeygens - 1; i > 0; i--) {
        size_t j = (size_t)rand_r(&rs) % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    uint64_t t1 = clock_now_ms();
    size_t failed = 0;
    for (size_t i = 0; i < nkeygens; i++) {
        struct km_error err;
        const struct client_keygen *k = &e.k[order[i]];
        if (sign_once(e.http, k, &err) != KM_OK) {
            if (failed++ < 5)
                print_message("keygen %zu (%s) does not sign: %s\n", order[i], k->id_s, err.msg);
        }
    }
    free(order);
    uint64_t sign_ms = clock_now_ms() - t1;
    print_message("%zu signings (seed %u) in %llu ms (%.1f/s), %zu failed\n", nkeygens, seed,
                  (unsigned long long)sign_ms,
                  sign_ms ? (double)nkeygens * 1000.0 / (double)sign_ms : 0.0, failed);

    /* The enclaves hold at most max_sessions sessions (their evictions are
     * logged at debug level only): the gateway's health check, every
     * second, reports what they hold. */
    clock_sleep_ms(1500);
    size_t held_kg[STACK_MAX_ENCLAVES], held_sg[STACK_MAX_ENCLAVES];
    enclave_sessions(&e, held_kg, held_sg, e.stack.n);
    unsigned long peak[STACK_MAX_ENCLAVES] = {0};
    for (size_t i = 0; i < e.stack.n; i++) {
        peak[i] = peak_rss_kib(e.stack.enclave_pid[i]);
        print_message("enclave %zu: holds %zu keygen and %zu signing sessions, peak RSS %lu KiB "
                      "(%.1f MiB)\n",
                      i, held_kg[i], held_sg[i], peak[i], (double)peak[i] / 1024.0);
    }
    size_t restored = log_count(&e, "gateway.log", "restored from its stored ciphertexts");
    print_message("gateway restores: %zu; total %llu ms\n", restored,
                  (unsigned long long)(clock_now_ms() - t0));
    if (failed > 0) {
        log_print_matching(&e, "gateway.log", "restoring keygen", 5);
        fail_msg("%zu of %zu keygens did not sign", failed, nkeygens);
    }
    CHECK(restored > 0);
    for (size_t i = 0; i < e.stack.n; i++) {
        if (held_kg[i] + held_sg[i] > max_sessions)
            fail_msg("enclave %zu holds %zu sessions, more than ENCLAVE_MAX_SESSIONS=%zu", i,
                     held_kg[i] + held_sg[i], max_sessions);
        CHECK(peak[i] > 0);
        if (peak[i] > ENCLAVE_RSS_MAX_KIB)
            fail_msg("enclave %zu peak RSS %lu KiB exceeds %u KiB", i, peak[i],
                     ENCLAVE_RSS_MAX_KIB);
    }
    end(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_kill_enclave_under_signing_load),
        TEST(test_restart_everything),
        TEST(test_wrong_kek_is_refused),
        TEST(test_eviction_and_restore),
    };
    return RUN_TESTS("integration.durable", tests);
}
