/*
 * test_gateway_api.c - the gateway end to end: 3 enclave processes and a
 * gateway process on 127.0.0.1, driven over HTTP by a test that plays the
 * coordinator and the participants with keys it makes itself.
 *
 *  - keygen and batch signing through the REST API; every signature
 *    verifies under the tweaked aggregate key the test computes itself;
 *  - the database file holds none of the private keys, the session
 *    secret, the messages or the signatures;
 *  - signing approvals;
 *  - kill -9 of the gateway in the middle of a signing, then a restart;
 *  - an enclave stopped and started again (readiness, clear errors);
 *  - bad input on every endpoint: 4xx with a message, never 5xx.
 */
#include "test.h"

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/session.h"
#include "common/clock.h"
#include "common/hex.h"
#include "common/secure.h"
#include "crypto/auth.h"
#include "crypto/schnorr.h"
#include "pg_cluster.h"
#include "stack_session.h"
#include "common/banned.h"

#define NUSERS 3
#define NITEMS 4

/* The stack and a keygen of NUSERS, user 1 approving each signing when asked. */
static void begin(struct stack_session *s, bool approve_user1)
{
    stack_session_start(s, NUSERS);
    s->k.users[1].require_approval = approve_user1;
    stack_session_keygen(s);
}

static void new_signing(struct client_signing *g)
{
    uint8_t msgs[NITEMS][32];
    CHECK_OK(secure_random(msgs, sizeof(msgs)));
    CHECK_OK(client_signing_new(g, (const uint8_t(*)[32])msgs, NITEMS));
}

/* One request; asserts the status; returns the parsed body (caller frees). */
static json_t *call(struct stack_session *s, const char *method, const char *path, json_t *body,
                    const struct keypair *signer, long want)
{
    struct rest_response r;
    struct km_error err;
    if (rest_call(s->http, &r, method, path, body, signer, &err) != KM_OK)
        fail_msg("%s %s: %s", method, path, err.msg);
    if (r.status != want)
        fail_msg("%s %s: HTTP %ld (wanted %ld): %s", method, path, r.status, want, r.text);
    json_t *out = json_incref(r.body);
    rest_response_clear(&r);
    json_decref(body);
    return out;
}

/* The secrets one file must not hold, raw or in hex. */
struct secret_ref {
    const uint8_t *p;
    const char *what;
};
static const struct secret_ref *g_secrets;
static size_t g_nsecrets;

static void check_file_has_no_secrets(const char *path)
{
    size_t len;
    if (access(path, R_OK) != 0)
        return;
    char *db = test_read_file(path, &len);
    for (size_t k = 0; k < g_nsecrets; k++) {
        char hex[65], upper[65];
        hex_encode(hex, sizeof(hex), g_secrets[k].p, 32);
        for (size_t c = 0; c < 64; c++)
            upper[c] = (char)(hex[c] >= 'a' ? hex[c] - 32 : hex[c]);
        upper[64] = '\0';
        if (memmem(db, len, g_secrets[k].p, 32) || memmem(db, len, hex, 64) ||
            memmem(db, len, upper, 64))
            fail_msg("the database (%s) contains a %s", path, g_secrets[k].what);
    }
    free(db);
}

static int scan_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_F && S_ISREG(st->st_mode))
        check_file_has_no_secrets(path);
    return 0;
}

/* Searches the database's files for secrets, raw and in hex: the SQLite
 * file and its WAL, or every file of the PostgreSQL cluster (tables and
 * its WAL). */
static void check_database_has_no_secrets(struct stack_session *s, const struct client_signing *g)
{
    struct secret_ref secrets[NUSERS + 1 + NITEMS * 2];
    size_t nsec = 0;
    secrets[nsec++] = (struct secret_ref){s->k.secret, "session secret"};
    for (size_t u = 0; u < NUSERS; u++)
        secrets[nsec++] = (struct secret_ref){s->k.users[u].kp.seckey, "private key"};
    for (size_t i = 0; i < NITEMS; i++) {
        secrets[nsec++] = (struct secret_ref){g->msgs[i], "message"};
        secrets[nsec++] = (struct secret_ref){g->sigs[i] + 32, "signature"};
    }
    g_secrets = secrets;
    g_nsecrets = nsec;
    if (s->stack.pg != NULL) {
        CHECK(nftw(s->stack.pg->dir, scan_entry, 16, FTW_PHYS) == 0);
    } else {
        const char *suffixes[] = {"", "-wal"};
        for (size_t f = 0; f < 2; f++) {
            char path[256];
            snprintf(path, sizeof(path), "%s/data/keymeld.db%s", s->stack.dir, suffixes[f]);
            check_file_has_no_secrets(path);
        }
    }
    g_secrets = NULL;
    g_nsecrets = 0;
}

static void test_keygen_and_batch_signing(void **state)
{
    (void)state;
    struct stack_session s = {0};
    struct client_signing g;
    struct km_error err;
    begin(&s, false);
    new_signing(&g);
    test_expect_ok(client_sign_create(s.http, &s.k, &g, 600, 0, &err), &err);
    CHECK_STR_EQ(g.status, "running");
    /* Opens and verifies every signature under the aggregate key. */
    test_expect_ok(client_sign_wait(s.http, &s.k, &g, 0, 20000, &err), &err);
    check_database_has_no_secrets(&s, &g);
    client_signing_clear(&g);

    /* POST /signing?wait_ms: the create reply itself carries the outcome. */
    new_signing(&g);
    test_expect_ok(client_sign_create(s.http, &s.k, &g, 600, 20000, &err), &err);
    CHECK_STR_EQ(g.status, "completed");
    CHECK(client_signing_done(&g));
    client_signing_clear(&g);
    stack_session_end(&s);
}

static void test_signing_waits_for_approval(void **state)
{
    (void)state;
    struct stack_session s = {0};
    struct client_signing g;
    struct km_error err;
    begin(&s, true);
    new_signing(&g);
    /* A create that would wait answers at once while approvals are pending
     * (nothing can finish before someone approves). */
    uint64_t t0 = clock_now_ms();
    test_expect_ok(client_sign_create(s.http, &s.k, &g, 600, 5000, &err), &err);
    CHECK(clock_now_ms() - t0 < 2500);
    CHECK_STR_EQ(g.status, "awaiting_approvals");
    /* Nothing happens without it. */
    CHECK_ERR(client_sign_wait(s.http, &s.k, &g, 2, 300, &err), KM_ERR_TIMEOUT);
    /* Another participant's key cannot approve for user 1. */
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/signing/%s/approve/%s", g.id_s, s.k.users[1].id_s);
    json_decref(call(&s, "POST", path, json_pack("{s:i, s:s}", "timestamp", 1, "signature", "00"),
                     &s.k.users[2].auth, 401));
    test_expect_ok(client_sign_approve(s.http, &s.k, &g, 1, &err), &err);
    test_expect_ok(client_sign_wait(s.http, &s.k, &g, 1, 20000, &err), &err);
    client_signing_clear(&g);
    stack_session_end(&s);
}

static void test_gateway_crash_mid_signing_resumes(void **state)
{
    (void)state;
    struct stack_session s = {0};
    struct client_signing g;
    struct km_error err;
    begin(&s, false);
    new_signing(&g);
    test_expect_ok(client_sign_create(s.http, &s.k, &g, 600, 0, &err), &err);
    stack_kill_gateway(&s.stack); /* SIGKILL right after the commit */
    stack_start_gateway(&s.stack);
    /* Resumed from its last committed step; completes with valid sigs. */
    test_expect_ok(client_sign_wait(s.http, &s.k, &g, 2, 20000, &err), &err);
    CHECK(stack_log_contains(&s.stack, "gateway.log", "resuming"));
    client_signing_clear(&g);
    stack_session_end(&s);
}

/* kill -9 while signings are in the middle of their steps (enclave 0 holds
 * its answers, the others have run theirs): the restarted gateway resumes
 * them from their last commit (coord_signing.c commits only a signing's
 * outcome), the enclaves answer the repeated commands from their reply
 * caches, and every signing completes with valid signatures. */
static void test_gateway_crash_mid_step_resumes(void **state)
{
    (void)state;
    struct stack_session s = {0};
    struct client_signing g[3];
    struct km_error err;
    begin(&s, false);
    CHECK(kill(s.stack.enclave_pid[0], SIGSTOP) == 0);
    for (int i = 0; i < 3; i++) {
        new_signing(&g[i]);
        test_expect_ok(client_sign_create(s.http, &s.k, &g[i], 600, 0, &err), &err);
    }
    clock_sleep_ms(300);
    stack_kill_gateway(&s.stack);
    CHECK(kill(s.stack.enclave_pid[0], SIGCONT) == 0);
    stack_start_gateway(&s.stack);
    for (int i = 0; i < 3; i++) {
        test_expect_ok(client_sign_wait(s.http, &s.k, &g[i], 2, 20000, &err), &err);
        client_signing_clear(&g[i]);
    }
    CHECK(stack_log_contains(&s.stack, "gateway.log", "resuming"));
    stack_session_end(&s);
}

/* Stops enclave 2 and checks readiness names it and a signing that needs
 * it fails clearly after its retries. */
static void enclave_2_down(struct stack_session *s)
{
    struct client_signing g;
    struct km_error err;
    stack_stop_enclave(&s->stack, 2);

    /* Liveness is independent of enclaves; readiness names the one down. */
    char *body = NULL;
    uint64_t until = clock_now_ms() + 10000;
    long ready = 200;
    while (clock_now_ms() < until &&
           (ready = stack_http_get(&s->stack, "/health/ready", &body)) == 200) {
        free(body);
        body = NULL;
        clock_sleep_ms(50);
    }
    CHECK_EQ(ready, 503);
    CHECK_CONTAINS(body, "\"enclave_id\":2");
    CHECK_CONTAINS(body, "Connection refused");
    free(body);
    CHECK_EQ(stack_http_get(&s->stack, "/health", NULL), 200);

    new_signing(&g);
    test_expect_ok(client_sign_create(s->http, &s->k, &g, 600, 0, &err), &err);
    CHECK_ERR(client_sign_wait(s->http, &s->k, &g, 0, 30000, &err), KM_ERR_STATE);
    CHECK_CONTAINS(err.msg, "enclave 2 unreachable");
    client_signing_clear(&g);
}

/* With a sealer (the stack's default, file) the enclave comes back with
 * the same key: the keygen it served is restored on demand and signs. */
static void test_enclave_down_and_back(void **state)
{
    (void)state;
    struct stack_session s = {0};
    struct client_signing g;
    struct km_error err;
    begin(&s, false);
    enclave_2_down(&s);
    stack_start_enclave(&s.stack, 2);
    CHECK(stack_wait_ready(&s.stack, 15000));
    new_signing(&g);
    test_expect_ok(client_sign_create(s.http, &s.k, &g, 600, 20000, &err), &err);
    CHECK(client_signing_done(&g));
    client_signing_clear(&g);
    CHECK(stack_log_contains(&s.stack, "gateway.log", "restored from its stored ciphertexts"));
    CHECK(stack_log_contains(&s.stack, "enclave-2.log", "identity key epoch 1 restored"));
    stack_session_end(&s);
}

/* SEALER=none: keys live in enclave memory only, so a restart gives a new
 * key and the keygen that relied on it says why it is gone. */
static void test_enclave_restart_without_sealer(void **state)
{
    (void)state;
    struct stack_session s = {0};
    s.stack.enclave_sealer = "none";
    begin(&s, false);
    enclave_2_down(&s);
    stack_start_enclave(&s.stack, 2);
    CHECK(stack_wait_ready(&s.stack, 15000));
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/keygen/%s/status", s.k.id_s);
    json_t *res = call(&s, "GET", path, NULL, &s.k.session_auth, 200);
    CHECK_STR_EQ(json_string_value(json_object_get(res, "status")), "failed");
    CHECK_CONTAINS(json_string_value(json_object_get(res, "error")), "enclave 2 restarted");
    json_decref(res);
    stack_session_end(&s);
}

/* A request that must answer `want`; its error message in out. */
static void reply_of(struct stack_session *s, const char *method, const char *path,
                     const struct keypair *signer, long want, char *out, size_t cap)
{
    struct rest_response r;
    struct km_error err;
    CHECK_OK(rest_call(s->http, &r, method, path, NULL, signer, &err));
    if (r.status != want)
        fail_msg("%s %s: HTTP %ld, wanted %ld: %s", method, path, r.status, want, r.text);
    snprintf(out, cap, "%s", rest_error_message(&r));
    rest_response_clear(&r);
}

/* A request whose status must be 4xx with an error message. */
static void expect_4xx(struct stack_session *s, const char *method, const char *path,
                       const char *raw, const struct keypair *signer, long want)
{
    struct rest_response r;
    struct km_error err;
    json_t *body = raw ? json_loads(raw, JSON_DECODE_ANY, NULL) : NULL;
    if (raw && body == NULL) {
        /* Not JSON: send it as a string body through a raw JSON string. */
        body = json_string(raw);
    }
    CHECK_OK(rest_call(s->http, &r, method, path, body, signer, &err));
    if (r.status != want)
        fail_msg("%s %s %s: HTTP %ld, wanted %ld: %s", method, path, raw ? raw : "", r.status, want,
                 r.text);
    CHECK(strlen(rest_error_message(&r)) > 0);
    rest_response_clear(&r);
    json_decref(body);
}

static void test_bad_input_gets_4xx(void **state)
{
    (void)state;
    struct stack_session s = {0};
    begin(&s, false);
    char p[256];
    const char *nobody = "0190f4a2-0000-7000-8000-0000000000ff";

    expect_4xx(&s, "POST", "/api/v1/keygen/reserve", "{}", NULL, 400);
    expect_4xx(&s, "POST", "/api/v1/keygen/reserve", "[1,2]", NULL, 400);
    expect_4xx(&s, "POST", "/api/v1/keygen/reserve", "\"not an object\"", NULL, 400);
    expect_4xx(&s, "POST", "/api/v1/keygen/reserve",
               "{\"keygen_session_id\":7,\"coordinator_user_id\":\"x\"}", NULL, 400);
    /* initialize: only the reserver (signed with the session key given at
     * reserve); a bad body from it is a 400. */
    snprintf(p, sizeof(p), "/api/v1/keygen/%s/initialize", s.k.id_s);
    expect_4xx(&s, "POST", p, "{\"session_public_key\":\"zz\"}", NULL, 401);
    expect_4xx(&s, "POST", p, "{\"session_public_key\":\"zz\"}", &s.k.users[1].auth, 401);
    expect_4xx(&s, "POST", p, "{\"session_public_key\":\"zz\"}", &s.k.session_auth, 400);
    /* An unknown id answers exactly like a known one with a wrong signer. */
    char known[256], unknown[256];
    snprintf(p, sizeof(p), "/api/v1/keygen/%s/status", nobody);
    reply_of(&s, "GET", p, &s.k.users[1].auth, 401, unknown, sizeof(unknown));
    snprintf(p, sizeof(p), "/api/v1/keygen/%s/status", s.k.id_s);
    reply_of(&s, "GET", p, &s.k.users[1].auth, 401, known, sizeof(known));
    CHECK_STR_EQ(unknown, known);
    snprintf(p, sizeof(p), "/api/v1/keygen/%s/slots", nobody);
    reply_of(&s, "GET", p, NULL, 401, unknown, sizeof(unknown));
    snprintf(p, sizeof(p), "/api/v1/keygen/%s/slots", s.k.id_s);
    reply_of(&s, "GET", p, NULL, 401, known, sizeof(known));
    CHECK_STR_EQ(unknown, known);
    json_t *slots = call(&s, "GET", p, NULL, &s.k.session_auth, 200);
    json_decref(slots);
    expect_4xx(&s, "GET", "/api/v1/keygen/not-a-uuid/status", NULL, &s.k.session_auth, 400);
    /* Wrong state: initialize a completed session. */
    snprintf(p, sizeof(p), "/api/v1/keygen/%s/initialize", s.k.id_s);
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"session_public_key\":\"%064d\",\"encrypted_session_secret\":\"00\","
             "\"coordinator_encrypted_private_key\":\"00\",\"coordinator_auth_pubkey\":\"%064d\","
             "\"enclave_public_key\":\"02%064d\"}",
             0, 0, 0);
    expect_4xx(&s, "POST", p, body, &s.k.session_auth, 409);
    /* Auth: missing, wrong key, replayed. */
    snprintf(p, sizeof(p), "/api/v1/keygen/%s/status", s.k.id_s);
    expect_4xx(&s, "GET", p, NULL, NULL, 401);
    expect_4xx(&s, "GET", p, NULL, &s.k.users[1].auth, 401);
    expect_4xx(&s, "POST", "/api/v1/signing", "{\"signing_session_id\":1}", &s.k.session_auth, 400);
    expect_4xx(&s, "GET", "/api/v1/enclaves/99/public-key", NULL, NULL, 404);
    expect_4xx(&s, "GET", "/api/v1/enclaves/x/public-key", NULL, NULL, 400);
    expect_4xx(&s, "PUT", "/api/v1/keygen/reserve", "{}", NULL, 405);
    snprintf(p, sizeof(p), "/api/v1/keygen/%s/status?wait_ms=99999999", s.k.id_s);
    expect_4xx(&s, "GET", p, NULL, &s.k.session_auth, 400);
    expect_4xx(&s, "POST", "/api/v1/signing?wait_ms=-1", "{}", &s.k.session_auth, 400);

    /* Oversized body: 413 before any parsing. */
    size_t big = 2u << 20;
    char *huge = malloc(big + 16);
    memset(huge, 'a', big);
    memcpy(huge, "{\"x\":\"", 6);
    memcpy(huge + big - 2, "\"}", 3);
    expect_4xx(&s, "POST", "/api/v1/keygen/reserve", huge, NULL, 413);
    free(huge);

    /* A replayed signed request: same nonce twice. */
    struct auth_request ar = {0};
    char sigh[129], nonceh[33], tsline[64];
    snprintf(p, sizeof(p), "/api/v1/keygen/%s/status", s.k.id_s);
    ar.method = "GET";
    ar.method_len = 3;
    ar.path = p;
    ar.path_len = strlen(p);
    ar.timestamp = clock_wall_ms() / 1000u;
    CHECK_OK(secure_random(ar.nonce, 16));
    CHECK_OK(auth_body_hash(ar.body_hash, NULL, 0));
    uint8_t sig[64];
    CHECK_OK(auth_sign(sig, &s.k.session_auth, &ar));
    hex_encode(sigh, sizeof(sigh), sig, 64);
    hex_encode(nonceh, sizeof(nonceh), ar.nonce, 16);
    snprintf(tsline, sizeof(tsline), "%llu", (unsigned long long)ar.timestamp);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "curl -s -o /dev/null -w '%%{http_code}' -H 'X-KeyMeld-Timestamp: %s' "
             "-H 'X-KeyMeld-Nonce: %s' -H 'X-KeyMeld-Signature: %s' '%s%s'",
             tsline, nonceh, sigh, s.stack.base_url, p);
    char out1[8] = "", out2[8] = "";
    FILE *f = popen(cmd, "r");
    CHECK(f && fgets(out1, sizeof(out1), f));
    pclose(f);
    f = popen(cmd, "r");
    CHECK(f && fgets(out2, sizeof(out2), f));
    pclose(f);
    CHECK_STR_EQ(out1, "200");
    CHECK_STR_EQ(out2, "401");

    /* The gateway is still serving. */
    CHECK_EQ(stack_http_get(&s.stack, "/health", NULL), 200);
    CHECK(!stack_log_contains(&s.stack, "gateway.log", "BUG"));
    stack_session_end(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_keygen_and_batch_signing),
        TEST(test_signing_waits_for_approval),
        TEST(test_gateway_crash_mid_signing_resumes),
        TEST(test_gateway_crash_mid_step_resumes),
        TEST(test_enclave_down_and_back),
        TEST(test_enclave_restart_without_sealer),
        TEST(test_bad_input_gets_4xx),
    };
    return RUN_TESTS("integration.gateway_api", tests);
}
