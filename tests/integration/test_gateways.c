/*
 * test_gateways.c - two gateways on one PostgreSQL database, active-active
 * (docs/SCALING.md "Several gateways"):
 *
 *  - a signing created on one gateway is waited for on the other, which
 *    hears of its completion at once (LISTEN/NOTIFY), not at its timeout;
 *  - a signed request replayed to the other gateway is refused (401);
 *  - kill -9 of one gateway under load: every signing either gateway
 *    accepted completes through the other within the lease plus a step,
 *    none lost or duplicated (rows counted, every signature verified);
 *  - an API key's quota raced from both gateways is never exceeded;
 *  - PostgreSQL stopped and started under load: 503 while it is down, no
 *    crash, every accepted signing completes, nothing lost.
 */
#include "test.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#include "client/attest.h"
#include "client/session.h"
#include "common/clock.h"
#include "common/hex.h"
#include "common/secure.h"
#include "crypto/auth.h"
#include "pg_cluster.h"
#include "stack.h"
#include "common/banned.h"

#define VSOCK_TIMEOUT_SECS 4 /* the lease is this + 15 s */
#define LEASE_SECS         (VSOCK_TIMEOUT_SECS + 15)
#define HTTP_TIMEOUT_MS    90000
#define N_KEYGENS          4
#define N_WORKERS          4
#define MAX_PER_WORKER     512

static void stack_fail_cmocka(const char *msg)
{
    fail_msg("%s", msg);
}

static void start_two(struct stack *st, bool require_api_keys)
{
    stack_fail_hook = stack_fail_cmocka;
    memset(st, 0, sizeof(*st));
    st->postgres = true;
    st->vsock_timeout_secs = VSOCK_TIMEOUT_SECS;
    st->require_api_keys = require_api_keys;
    stack_start(st, 3);
    stack_start_gateway2(st);
}

/* A 3-party keygen (every enclave) made through base_url. */
static void make_keygen(const struct stack *st, const char *base_url, struct client_keygen *k)
{
    struct rest_client *c = rest_client_new(base_url, HTTP_TIMEOUT_MS);
    struct client_trust trust;
    stack_client_trust(st, &trust);
    struct km_error err;
    CHECK_OK(client_keygen_new(k, 3, NULL));
    k->max_signing_sessions = 100000;
    k->trust = &trust;
    if (client_keygen_run(c, k, 3600, 30000, &err) != KM_OK)
        fail_msg("keygen on %s: %s", base_url, err.msg);
    k->trust = NULL;
    client_trust_release(&trust);
    rest_client_free(c);
}

static int64_t count_rows(const char *url, const char *sql)
{
    PGconn *pg = PQconnectdb(url);
    CHECK(PQstatus(pg) == CONNECTION_OK);
    PGresult *res = PQexec(pg, sql);
    CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
    int64_t n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(pg);
    return n;
}

/* ---- created on one gateway, waited for on the other; replay ----------- */

/* A signed GET sent twice, to each gateway once: the second is a replay. */
static void replay_across(const struct stack *st, const struct client_keygen *k)
{
    char path[128], sigh[129], nonceh[33], ts[32];
    snprintf(path, sizeof(path), "/api/v1/keygen/%s/status", k->id_s);
    struct auth_request ar = {0};
    ar.method = "GET";
    ar.method_len = 3;
    ar.path = path;
    ar.path_len = strlen(path);
    ar.timestamp = clock_wall_ms() / 1000u;
    CHECK_OK(secure_random(ar.nonce, 16));
    CHECK_OK(auth_body_hash(ar.body_hash, NULL, 0));
    uint8_t sig[64];
    CHECK_OK(auth_sign(sig, &k->session_auth, &ar));
    hex_encode(sigh, sizeof(sigh), sig, 64);
    hex_encode(nonceh, sizeof(nonceh), ar.nonce, 16);
    snprintf(ts, sizeof(ts), "%llu", (unsigned long long)ar.timestamp);
    const char *urls[2] = {st->base_url, st->base_url2};
    char codes[2][8] = {"", ""};
    for (int i = 0; i < 2; i++) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "curl -s -o /dev/null -w '%%{http_code}' -H 'X-KeyMeld-Timestamp: %s' "
                 "-H 'X-KeyMeld-Nonce: %s' -H 'X-KeyMeld-Signature: %s' '%s%s'",
                 ts, nonceh, sigh, urls[i], path);
        FILE *f = popen(cmd, "r");
        CHECK(f != NULL && fgets(codes[i], sizeof(codes[i]), f) != NULL);
        pclose(f);
    }
    CHECK_STR_EQ(codes[0], "200");
    CHECK_STR_EQ(codes[1], "401");
}

static void test_wait_on_the_other_gateway(void **state)
{
    (void)state;
    struct stack st;
    start_two(&st, false);
    struct client_keygen k;
    make_keygen(&st, st.base_url, &k);
    struct rest_client *c1 = rest_client_new(st.base_url, HTTP_TIMEOUT_MS);
    struct rest_client *c2 = rest_client_new(st.base_url2, HTTP_TIMEOUT_MS);
    uint64_t worst = 0;
    for (int i = 0; i < 5; i++) {
        uint8_t msg[1][PROTO_MSG_LEN];
        memset(msg, i + 1, sizeof(msg));
        struct client_signing s;
        struct km_error err;
        CHECK_OK(client_signing_new(&s, (const uint8_t(*)[PROTO_MSG_LEN])msg, 1));
        uint64_t t0 = clock_now_ms();
        /* Created (and driven) by gateway 2, awaited on gateway 1. */
        if (client_sign_create(c2, &k, &s, 600, 0, &err) != KM_OK ||
            client_sign_wait(c1, &k, &s, 0, 20000, &err) != KM_OK)
            fail_msg("signing across gateways: %s", err.msg);
        CHECK(client_signing_done(&s));
        uint64_t ms = clock_now_ms() - t0;
        worst = ms > worst ? ms : worst;
        client_signing_clear(&s);
    }
    printf("# created on gateway 2, awaited on gateway 1: slowest %llu ms\n",
           (unsigned long long)worst);
    CHECK(worst < 3000); /* the long poll's own timeout is 20 s */
    replay_across(&st, &k);
    rest_client_free(c1);
    rest_client_free(c2);
    client_keygen_clear(&k);
    stack_stop(&st);
}

/* ---- kill -9 of one gateway under load ---------------------------------- */

struct load {
    struct stack *st;
    struct client_keygen *keygens;
    volatile bool stop_creating;
    volatile bool gw2_dead;
};

struct worker {
    pthread_t t;
    struct load *load;
    int index;
    size_t accepted, completed, refused;
    char failures[512];
    uint64_t last_done_ms;
};

/* Creates signings on both gateways in turn until told to stop, then
 * waits for every accepted one on gateway 1 (the survivor). */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct load *l = w->load;
    struct rest_client *gw[2] = {rest_client_new(l->st->base_url, HTTP_TIMEOUT_MS),
                                 rest_client_new(l->st->base_url2, HTTP_TIMEOUT_MS)};
    struct client_signing *mine = calloc(MAX_PER_WORKER, sizeof(*mine));
    size_t n = 0;
    const struct client_keygen *k = &l->keygens[w->index % N_KEYGENS];
    for (unsigned i = 0; !l->stop_creating && n < MAX_PER_WORKER; i++) {
        int g = (int)((i + (unsigned)w->index) % 2);
        if (g == 1 && l->gw2_dead)
            g = 0;
        uint8_t msg[1][PROTO_MSG_LEN];
        memset(msg, 0, sizeof(msg));
        memcpy(msg[0], &i, sizeof(i));
        msg[0][31] = (uint8_t)w->index;
        struct km_error err;
        CHECK_OK(client_signing_new(&mine[n], (const uint8_t(*)[PROTO_MSG_LEN])msg, 1));
        if (client_sign_create(gw[g], k, &mine[n], 600, 0, &err) == KM_OK) {
            n++;
        } else {
            w->refused++; /* the gateway died before accepting it: not ours to finish */
            client_signing_clear(&mine[n]);
        }
    }
    w->accepted = n;
    for (size_t i = 0; i < n; i++) {
        struct km_error err;
        int r = KM_ERR_TIMEOUT;
        for (int tries = 0; tries < 4 && r == KM_ERR_TIMEOUT; tries++)
            r = client_sign_wait(gw[0], k, &mine[i], 0, 20000, &err);
        if (r == KM_OK && client_signing_done(&mine[i])) {
            w->completed++;
            w->last_done_ms = clock_now_ms();
        } else if (w->failures[0] == '\0') {
            snprintf(w->failures, sizeof(w->failures), "%s: %.400s", mine[i].id_s,
                     r == KM_OK ? mine[i].status : err.msg);
        }
        client_signing_clear(&mine[i]);
    }
    free(mine);
    rest_client_free(gw[0]);
    rest_client_free(gw[1]);
    return NULL;
}

static void test_kill_one_gateway_under_load(void **state)
{
    (void)state;
    struct stack st;
    start_two(&st, false);
    struct client_keygen keygens[N_KEYGENS];
    for (size_t i = 0; i < N_KEYGENS; i++)
        make_keygen(&st, i % 2 ? st.base_url2 : st.base_url, &keygens[i]);
    int64_t before = count_rows(st.db_url, "SELECT count(*) FROM signing_sessions");

    struct load l = {.st = &st, .keygens = keygens};
    struct worker w[N_WORKERS];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < N_WORKERS; i++) {
        w[i].load = &l;
        w[i].index = i;
        CHECK(pthread_create(&w[i].t, NULL, worker_main, &w[i]) == 0);
    }
    clock_sleep_ms(1000);
    /* Hold the enclaves' answers a moment, so gateway 2 dies with signings
     * in the middle of their steps (leases held), then kill it. */
    CHECK(kill(st.enclave_pid[0], SIGSTOP) == 0);
    clock_sleep_ms(300);
    stack_kill_gateway2(&st);
    l.gw2_dead = true;
    uint64_t killed_ms = clock_now_ms();
    CHECK(kill(st.enclave_pid[0], SIGCONT) == 0);
    clock_sleep_ms(1500);
    l.stop_creating = true;
    size_t accepted = 0, completed = 0, refused = 0;
    uint64_t last = killed_ms;
    for (int i = 0; i < N_WORKERS; i++) {
        CHECK(pthread_join(w[i].t, NULL) == 0);
        accepted += w[i].accepted;
        completed += w[i].completed;
        refused += w[i].refused;
        if (w[i].failures[0] != '\0')
            fail_msg("worker %d: a signing did not complete: %s", i, w[i].failures);
        last = w[i].last_done_ms > last ? w[i].last_done_ms : last;
    }
    int64_t rows = count_rows(st.db_url, "SELECT count(*) FROM signing_sessions") - before;
    int64_t done =
        count_rows(st.db_url, "SELECT count(*) FROM signing_sessions WHERE status = 'completed'") -
        before;
    printf("# %zu signings accepted (%zu refused: the gateway was gone), %zu completed, %lld "
           "rows; last completion %llu ms after the kill (lease %u s)\n",
           accepted, refused, completed, (long long)rows, (unsigned long long)(last - killed_ms),
           LEASE_SECS);
    CHECK(accepted > 0);
    CHECK_EQ(completed, accepted);
    /* None lost, none created twice. A create the dying gateway committed
     * but could not answer is a row its client never heard of: it must
     * complete too. */
    CHECK(rows >= (int64_t)accepted && rows <= (int64_t)(accepted + refused));
    CHECK_EQ(done, rows);
    /* Within the lease, the sweep (2 s) and its 2 s quiet rule, and a step. */
    CHECK(last - killed_ms < (LEASE_SECS + 10) * 1000u);
    CHECK(stack_log_contains(&st, "gateway.log", "taking over"));
    for (size_t i = 0; i < N_KEYGENS; i++)
        client_keygen_clear(&keygens[i]);
    stack_stop(&st);
}

/* ---- a quota raced from both gateways ----------------------------------- */

#define QUOTA        6
#define RACE_THREADS 8

struct racer {
    pthread_t t;
    const char *base_url;
    const char *token;
    int ok, refused;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    struct rest_client *c = rest_client_new(r->base_url, HTTP_TIMEOUT_MS);
    CHECK_OK(rest_client_set_api_key(c, r->token));
    for (int i = 0; i < 4; i++) {
        struct client_keygen k;
        struct km_error err;
        CHECK_OK(client_keygen_new(&k, 2, NULL));
        if (client_keygen_reserve(c, &k, 600, &err) == KM_OK)
            r->ok++;
        else if (strstr(err.msg, "HTTP 429") != NULL)
            r->refused++;
        else
            fail_msg("reserve: %s", err.msg);
        client_keygen_clear(&k);
    }
    rest_client_free(c);
    return NULL;
}

static void test_quota_raced_from_both(void **state)
{
    (void)state;
    struct stack st;
    start_two(&st, true);
    struct rest_client *admin = rest_client_new(st.base_url, HTTP_TIMEOUT_MS);
    struct rest_response resp;
    struct km_error err;
    json_t *body = json_pack("{s:s, s:i, s:i, s:i}", "name", "race", "keygens_per_hour", QUOTA,
                             "live_keygens", 100, "max_participants", 10);
    CHECK_OK(rest_call(admin, &resp, "POST", "/api/v1/admin/api-keys", body, NULL, &err));
    json_decref(body);
    CHECK_EQ(resp.status, 201);
    char *token = strdup(json_string_value(json_object_get(resp.body, "token")));
    rest_response_clear(&resp);
    rest_client_free(admin);

    struct racer r[RACE_THREADS];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < RACE_THREADS; i++) {
        r[i].base_url = i % 2 ? st.base_url2 : st.base_url;
        r[i].token = token;
        CHECK(pthread_create(&r[i].t, NULL, racer_main, &r[i]) == 0);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        CHECK(pthread_join(r[i].t, NULL) == 0);
        ok += r[i].ok;
        refused += r[i].refused;
    }
    printf("# quota %d raced by %d clients on two gateways: %d reserved, %d refused\n", QUOTA,
           RACE_THREADS, ok, refused);
    CHECK_EQ(ok, QUOTA);
    CHECK_EQ(ok + refused, RACE_THREADS * 4);
    CHECK_EQ(count_rows(st.db_url, "SELECT count(*) FROM keygen_sessions"), QUOTA);
    free(token);
    stack_stop(&st);
}

/* ---- PostgreSQL restarted under load ----------------------------------- */

struct pg_load {
    const char *base_url;
    const struct client_keygen *k;
    volatile bool stop;
    size_t accepted, unavailable;
    char other_error[512];
    struct client_signing *pending; /* accepted, outcome not seen yet */
    size_t npending;
};

/* Signs until told to stop; while the database is down the gateway must
 * answer 503 (never a crash, a hang or another error). */
static void *pg_load_main(void *arg)
{
    struct pg_load *l = arg;
    struct rest_client *c = rest_client_new(l->base_url, HTTP_TIMEOUT_MS);
    l->pending = calloc(MAX_PER_WORKER, sizeof(*l->pending));
    for (unsigned i = 0; !l->stop && l->npending < MAX_PER_WORKER; i++) {
        uint8_t msg[1][PROTO_MSG_LEN];
        memset(msg, 0x77, sizeof(msg));
        memcpy(msg[0], &i, sizeof(i));
        struct client_signing *s = &l->pending[l->npending];
        struct km_error err;
        CHECK_OK(client_signing_new(s, (const uint8_t(*)[PROTO_MSG_LEN])msg, 1));
        int r = client_sign_create(c, l->k, s, 600, 0, &err);
        if (r == KM_OK) {
            l->accepted++;
            l->npending++;
            continue;
        }
        client_signing_clear(s);
        if (strstr(err.msg, "HTTP 503") != NULL) {
            l->unavailable++;
            clock_sleep_ms(50);
        } else if (l->other_error[0] == '\0') {
            snprintf(l->other_error, sizeof(l->other_error), "%.500s", err.msg);
        }
    }
    rest_client_free(c);
    return NULL;
}

static void test_postgres_restarted_under_load(void **state)
{
    (void)state;
    struct stack st;
    stack_fail_hook = stack_fail_cmocka;
    memset(&st, 0, sizeof(st));
    st.postgres = true;
    st.vsock_timeout_secs = VSOCK_TIMEOUT_SECS;
    stack_start(&st, 3);
    struct client_keygen k;
    make_keygen(&st, st.base_url, &k);
    struct pg_load l = {.base_url = st.base_url, .k = &k};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, pg_load_main, &l) == 0);
    clock_sleep_ms(800);
    CHECK(pg_cluster_stop_server(st.pg) == 0);
    clock_sleep_ms(1500);
    long down_ready = stack_http_get(&st, "/health/ready", NULL);
    CHECK(pg_cluster_start_server(st.pg) == 0);
    clock_sleep_ms(2500);
    l.stop = true;
    CHECK(pthread_join(t, NULL) == 0);
    if (l.other_error[0] != '\0')
        fail_msg("while PostgreSQL restarted: %s", l.other_error);

    /* Every accepted signing completes once the database is back. */
    struct rest_client *c = rest_client_new(st.base_url, HTTP_TIMEOUT_MS);
    size_t completed = 0;
    for (size_t i = 0; i < l.npending; i++) {
        struct km_error err;
        if (client_sign_wait(c, &k, &l.pending[i], 0, 30000, &err) != KM_OK)
            fail_msg("signing %s after the restart: %s", l.pending[i].id_s, err.msg);
        completed += client_signing_done(&l.pending[i]);
        client_signing_clear(&l.pending[i]);
    }
    free(l.pending);
    rest_client_free(c);
    int64_t rows = count_rows(st.db_url, "SELECT count(*) FROM signing_sessions");
    printf("# PostgreSQL stopped 1.5 s under load: %zu signings accepted, %zu answered 503, "
           "/health/ready %ld while down; %zu completed, %lld rows\n",
           l.accepted, l.unavailable, down_ready, completed, (long long)rows);
    CHECK(l.unavailable > 0);
    CHECK_EQ(down_ready, 503);
    CHECK_EQ(completed, l.accepted);
    CHECK_EQ(rows, (int64_t)l.accepted);
    CHECK_EQ(stack_http_get(&st, "/health/ready", NULL), 200);
    client_keygen_clear(&k);
    stack_stop(&st); /* fails if the gateway crashed or does not stop cleanly */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_on_the_other_gateway),
        cmocka_unit_test(test_kill_one_gateway_under_load),
        cmocka_unit_test(test_quota_raced_from_both),
        cmocka_unit_test(test_postgres_restarted_under_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
