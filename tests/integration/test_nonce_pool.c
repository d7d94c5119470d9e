/*
 * test_nonce_pool.c - signings from pre-generated nonces (issue 15,
 * coordinator.nonce_pool_size, docs/PROTOCOL.md "Nonce pools"): 3 enclave
 * processes and a gateway on 127.0.0.1, at debug level so every enclave
 * logs each pool entry it consumes ("pool entry <hex> used by signing
 * session <id>").
 *
 *  - after a keygen's first signing fills the pools, signings take two
 *    rounds (signing_sign, signing_finalize) and verify;
 *  - an enclave restarted (its pools gone): signings that had stock on it
 *    fall back to three rounds with fresh nonces and complete;
 *  - kill -9 of the gateway while signings are in signing_sign (one enclave
 *    stopped), then a restart: every signing completes and verifies;
 *  - across all of it, no pool entry is ever named for two signing
 *    sessions in any enclave's log: a pre-generated nonce never signs twice,
 *    also across a gateway crash and resume.
 */
#include "test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/session.h"
#include "common/clock.h"
#include "common/secure.h"
#include "stack_session.h"
#include "common/banned.h"

#define NUSERS    3
#define NITEMS    2
#define POOL_MARK "pool entry "

/* The stack (enclaves logging each pool entry they use) and a keygen. */
static void begin(struct stack_session *s)
{
    s->stack.log_level = "debug";
    stack_session_start(s, NUSERS);
    stack_session_keygen(s);
}

/* A log of the stack's, whole. */
static char *slurp(const struct stack_session *s, const char *name)
{
    char path[512];
    stack_log_path(&s->stack, name, path, sizeof(path));
    return test_read_file(path, NULL);
}

static size_t count_in(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Signings the gateway completed from pool nonces so far. */
static size_t pooled_signings(const struct stack_session *s)
{
    char *log = slurp(s, "gateway.log");
    size_t n = count_in(log, "pool nonces)");
    free(log);
    return n;
}

/* One signing of NITEMS random messages, created and waited for (every
 * signature opened and verified). */
static void sign_one(struct stack_session *s)
{
    uint8_t msgs[NITEMS][32];
    struct client_signing g;
    struct km_error err;
    CHECK_OK(secure_random(msgs, sizeof(msgs)));
    CHECK_OK(client_signing_new(&g, (const uint8_t(*)[32])msgs, NITEMS));
    test_expect_ok(client_sign_create(s->http, &s->k, &g, 600, 20000, &err), &err);
    if (!client_signing_done(&g))
        test_expect_ok(client_sign_wait(s->http, &s->k, &g, 0, 20000, &err), &err);
    client_signing_clear(&g);
}

/* Signs until the gateway has completed `want` more signings from pool
 * nonces (the first of a keygen fills the pools); at most `max` signings. */
static void sign_until_pooled(struct stack_session *s, size_t want, size_t max)
{
    size_t before = pooled_signings(s);
    for (size_t i = 0; i < max && pooled_signings(s) < before + want; i++)
        sign_one(s);
    CHECK(pooled_signings(s) >= before + want);
}

/* Every "pool entry <hex32> used by signing session <uuid>" line of every
 * enclave log; no entry id may appear twice (an entry is taken once). */
static size_t check_no_entry_used_twice(const struct stack_session *s)
{
    size_t n = 0, cap = 256;
    char(*ids)[33] = malloc(cap * sizeof(*ids));
    CHECK_NOT_NULL(ids);
    for (size_t e = 0; e < s->stack.n; e++) {
        char name[48];
        snprintf(name, sizeof(name), "enclave-%zu.log", e);
        char *log = slurp(s, name);
        for (const char *p = strstr(log, POOL_MARK); p != NULL; p = strstr(p + 1, POOL_MARK)) {
            const char *hex = p + strlen(POOL_MARK);
            if (strspn(hex, "0123456789abcdef") != 32 || strncmp(hex + 32, " used by", 8) != 0)
                continue; /* another message naming a pool entry */
            for (size_t i = 0; i < n; i++) {
                if (memcmp(ids[i], hex, 32) == 0)
                    fail_msg("pool entry %.32s was used twice (enclave-%zu.log)", hex, e);
            }
            if (n == cap) {
                cap *= 2;
                ids = realloc(ids, cap * sizeof(*ids));
                CHECK_NOT_NULL(ids);
            }
            memcpy(ids[n], hex, 32);
            ids[n][32] = '\0';
            n++;
        }
        free(log);
    }
    free(ids);
    return n;
}

/* The value of the sample `name` (its full name with labels) in
 * GET /api/v1/metrics. */
static unsigned long long metric(struct stack_session *s, const char *name)
{
    struct rest_response res;
    struct km_error err;
    test_expect_ok(rest_call(s->http, &res, "GET", "/api/v1/metrics", NULL, NULL, &err), &err);
    CHECK_EQ(res.status, 200);
    char needle[160];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *p = strstr(res.text, needle);
    if (p == NULL)
        fail_msg("no %s in the metrics", name);
    unsigned long long v = strtoull(p + strlen(needle), NULL, 10);
    rest_response_clear(&res);
    return v;
}

static void test_signings_take_two_rounds(void **state)
{
    (void)state;
    struct stack_session s = {0};
    begin(&s);
    sign_until_pooled(&s, 8, 30);
    /* /api/v1/metrics counts them, and the entries the fills brought. */
    CHECK(metric(&s, "keymeld_nonce_pool_signings_total{source=\"pool\"}") >= 8);
    CHECK(metric(&s, "keymeld_nonce_pool_entries_filled_total") >= 8 * NITEMS);
    CHECK_EQ(metric(&s, "keymeld_nonce_pool_drops_total"), 0);
    /* Each pooled signing took NITEMS entries on each of the 3 enclaves. */
    CHECK(check_no_entry_used_twice(&s) >= 8 * NITEMS * 3);
    /* The gateway never named an entry it had handed out before (the
     * enclave would have refused it: nonce_unavailable). */
    CHECK(!stack_log_contains(&s.stack, "gateway.log", "nonce_unavailable"));
    stack_session_end(&s);
}

static void test_enclave_restart_falls_back(void **state)
{
    (void)state;
    struct stack_session s = {0};
    begin(&s);
    sign_until_pooled(&s, 2, 20);
    /* Its pools die with it; the gateway's stock for it is stale. */
    stack_stop_enclave(&s.stack, 1);
    stack_start_enclave(&s.stack, 1);
    CHECK(stack_wait_ready(&s.stack, 20000));
    for (int i = 0; i < 6; i++)
        sign_one(&s);
    /* The stale stock was dropped on the way; the pools come back. */
    sign_until_pooled(&s, 2, 20);
    check_no_entry_used_twice(&s);
    stack_session_end(&s);
}

#define NLOAD 8

/* kill -9 of the gateway while signings wait in signing_sign on a stopped
 * enclave (the others, the coordinator among them, have consumed their
 * entries and signed); the restarted gateway resumes them on three rounds,
 * finds the sessions on the coordinator, clears them and starts again
 * with fresh nonces. */
static void test_gateway_crash_under_load(void **state)
{
    (void)state;
    struct stack_session s = {0};
    struct client_signing g[NLOAD];
    struct km_error err;
    begin(&s);
    sign_until_pooled(&s, 2, 20);
    size_t stopped = (s.k.coordinator_enclave_id + 1) % 3;
    CHECK(kill(s.stack.enclave_pid[stopped], SIGSTOP) == 0);
    for (int i = 0; i < NLOAD; i++) {
        uint8_t msgs[NITEMS][32];
        CHECK_OK(secure_random(msgs, sizeof(msgs)));
        CHECK_OK(client_signing_new(&g[i], (const uint8_t(*)[32])msgs, NITEMS));
        test_expect_ok(client_sign_create(s.http, &s.k, &g[i], 600, 0, &err), &err);
    }
    clock_sleep_ms(300);
    stack_kill_gateway(&s.stack);
    CHECK(kill(s.stack.enclave_pid[stopped], SIGCONT) == 0);
    stack_start_gateway(&s.stack);
    for (int i = 0; i < NLOAD; i++) {
        test_expect_ok(client_sign_wait(s.http, &s.k, &g[i], 2, 30000, &err), &err);
        client_signing_clear(&g[i]);
    }
    CHECK(stack_log_contains(&s.stack, "gateway.log", "resuming"));
    CHECK(stack_log_contains(&s.stack, "gateway.log", "already exists"));
    CHECK(stack_log_contains(&s.stack, "gateway.log", "starting again with fresh nonces"));
    /* The enclaves that got signing_sign before the crash did consume
     * entries; none of them was used again after the resume. */
    sign_until_pooled(&s, 2, 20);
    check_no_entry_used_twice(&s);
    stack_session_end(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_signings_take_two_rounds),
        TEST(test_enclave_restart_falls_back),
        TEST(test_gateway_crash_under_load),
    };
    return RUN_TESTS("integration.nonce_pool", tests);
}
