/*
 * test_kms_sealer.c - SEALER=aws-kms end to end: the KMS stand-in as a
 * process (km_kms_server on 127.0.0.1, checking SigV4 with the stack's
 * credentials and every attestation document against the stack's
 * development root and the PCR0 of this build's keymeld-enclave), a stack
 * of 3 enclave processes running SEALER=aws-kms against it and a gateway
 * whose environment holds the AWS credentials it hands them in configure.
 *
 *  - every enclave creates its identity key with GenerateDataKey (checked
 *    by a Decrypt) and the gateway becomes ready; a keygen signs;
 *  - kill -9 of an enclave and a new start: the gateway hands back the
 *    sealed key, KMS Decrypt recovers the KEK, the enclave has the same
 *    public key and the keygen signs again;
 *  - every KMS request succeeded, and no log holds the secret access key.
 * Nothing here connects a VSock socket: the enclaves run KMS_PROXY_PORT=0
 * and reach the stand-in over TCP.
 */
#include "test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "attest/doc.h"
#include "attest/provider.h"
#include "client/session.h"
#include "common/clock.h"
#include "common/hex.h"
#include "common/secure.h"
#include "crypto/schnorr.h"
#include "process_spawn.h"
#include "stack.h"
#include "common/banned.h"

#define NENCLAVES       3
#define NUSERS          3
#define WAIT_MS         20000
#define HTTP_TIMEOUT_MS 60000

#ifndef KM_KMS_SERVER_PATH
#error "KM_KMS_SERVER_PATH: the km_kms_server binary (tests/integration/CMakeLists.txt)"
#endif

/* The KMS stand-in process. */
struct kms_proc {
    pid_t pid;
    char log[256];
    char endpoint[64];
};

static void stack_fail_cmocka(const char *msg)
{
    fail_msg("%s", msg);
}

static void print_file(const char *path)
{
    char line[1024];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return;
    fprintf(stderr, "---- %s ----\n", path);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fprintf(stderr, "----\n");
    fclose(f);
}

/* stack_start's hook: the dev CA and PCR policy exist, no process runs
 * yet. Starts km_kms_server trusting them (the PCR0 of this build's
 * keymeld-enclave), waits for "listening on PORT" and points the stack's
 * enclaves at it. */
static void start_kms(struct stack *s, void *ctx)
{
    struct kms_proc *k = ctx;
    struct km_error err;
    uint8_t pcr0[ATTEST_PCR_LEN];
    char bin[600], pcr_hex[2 * ATTEST_PCR_LEN + 1];
    snprintf(bin, sizeof(bin), "%s/keymeld-enclave", s->bin_dir);
    if (attest_dev_measure(pcr0, bin, &err) != KM_OK)
        fail_msg("measuring %s: %s", bin, err.msg);
    hex_encode(pcr_hex, sizeof(pcr_hex), pcr0, sizeof(pcr0));

    char exe[] = KM_KMS_SERVER_PATH, name[] = "km_kms_server", port[] = "--port", zero[] = "0",
         region[] = "--region", us[] = "us-east-1", key[] = "--key-id", key_id[] = STACK_KMS_KEY_ID,
         root[] = "--root", pcr[] = "--pcr0";
    char *argv[] = {name,   port, zero,          region, us,      key,
                    key_id, root, s->trust_root, pcr,    pcr_hex, NULL};
    const char *env[] = {"AWS_ACCESS_KEY_ID=" STACK_AWS_ACCESS_KEY_ID,
                         "AWS_SECRET_ACCESS_KEY=" STACK_AWS_SECRET_ACCESS_KEY,
                         "AWS_SESSION_TOKEN=" STACK_AWS_SESSION_TOKEN, NULL};
    const char *drop[] = {"AWS_", NULL};
    snprintf(k->log, sizeof(k->log), "%s/kms.log", s->dir);
    k->pid = spawn_process(exe, argv, env, drop, k->log, false);
    if (k->pid < 0)
        fail_msg("cannot start %s", exe);

    uint64_t until = clock_now_ms() + 10000;
    unsigned p = 0;
    while (p == 0 && clock_now_ms() < until) {
        char line[256];
        FILE *f = fopen(k->log, "rb");
        while (f != NULL && fgets(line, sizeof(line), f))
            if (strncmp(line, "listening on ", 13) == 0)
                p = (unsigned)strtoul(line + 13, NULL, 10);
        if (f != NULL)
            fclose(f);
        if (p == 0 && waitpid(k->pid, NULL, WNOHANG) == k->pid) {
            k->pid = 0;
            print_file(k->log);
            fail_msg("km_kms_server exited during start-up");
        }
        if (p == 0)
            clock_sleep_ms(10);
    }
    if (p == 0) {
        print_file(k->log);
        fail_msg("km_kms_server did not report its port within 10 s");
    }
    snprintf(k->endpoint, sizeof(k->endpoint), "http://127.0.0.1:%u", p);
    s->kms_endpoint = k->endpoint;
}

/* SIGTERM and wait; the requests it counted from its last line. */
static void stop_kms(struct kms_proc *k, unsigned *requests, unsigned *succeeded)
{
    int status = 0;
    *requests = *succeeded = 0;
    if (k->pid <= 0)
        return;
    kill(k->pid, SIGTERM);
    waitpid(k->pid, &status, 0);
    k->pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        print_file(k->log);
        fail_msg("km_kms_server did not stop cleanly (status %d)", status);
    }
    char line[256];
    FILE *f = fopen(k->log, "rb");
    while (f != NULL && fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "stopping (");
        if (p != NULL &&
            sscanf(p, "stopping (%u requests, %u succeeded)", requests, succeeded) != 2)
            *requests = *succeeded = 0;
    }
    if (f != NULL)
        fclose(f);
}

static bool wait_log(const struct stack *s, const char *log, const char *text, uint32_t timeout_ms)
{
    uint64_t until = clock_now_ms() + timeout_ms;
    while (!stack_log_contains(s, log, text)) {
        if (clock_now_ms() >= until)
            return false;
        clock_sleep_ms(20);
    }
    return true;
}

/* One signing of a random message on k; fails the test unless it
 * completes with a valid BIP-340 signature. */
static void expect_signs(struct rest_client *http, const struct client_keygen *k, const char *when)
{
    uint8_t msg[1][32];
    struct client_signing g;
    struct km_error err;
    CHECK_OK(secure_random(msg, sizeof(msg)));
    CHECK_OK(client_signing_new(&g, (const uint8_t(*)[32])msg, 1));
    if (client_sign_create(http, k, &g, 600, WAIT_MS, &err) != KM_OK)
        fail_msg("%s: keygen %s does not sign: %s", when, k->id_s, err.msg);
    CHECK(client_signing_done(&g));
    CHECK_OK(schnorr_verify(g.sigs[0], 64, msg[0], 32, k->xonly, 32));
    client_signing_clear(&g);
}

/* Enclave i's public key as the gateway reports it (hex), into out. */
static void enclave_key(const struct stack *s, size_t i, char *out, size_t cap)
{
    char *body = NULL;
    long st = stack_http_get(s, "/api/v1/enclaves", &body);
    if (st != 200)
        fail_msg("GET /api/v1/enclaves: HTTP %ld: %s", st, body ? body : "");
    json_t *j = json_loads(body, 0, NULL);
    json_t *arr = json_object_get(j, "enclaves");
    const char *pk = NULL;
    for (size_t n = 0; n < json_array_size(arr); n++) {
        json_t *o = json_array_get(arr, n);
        if ((size_t)json_integer_value(json_object_get(o, "enclave_id")) == i)
            pk = json_string_value(json_object_get(o, "public_key"));
    }
    if (pk == NULL)
        fail_msg("no public key for enclave %zu: %s", i, body);
    snprintf(out, cap, "%s", pk);
    json_decref(j);
    free(body);
}

static void test_kms_sealer(void **state)
{
    (void)state;
    struct stack s = {0};
    struct kms_proc kms = {0};
    struct client_trust trust;
    struct km_error err;
    char log[32];
    stack_fail_hook = stack_fail_cmocka;
    s.before_start = start_kms;
    s.before_start_ctx = &kms;
    stack_start(&s, NENCLAVES);
    struct rest_client *http = rest_client_new(s.base_url, HTTP_TIMEOUT_MS);
    stack_client_trust(&s, &trust);

    /* Every enclave made its key with KMS. */
    for (size_t i = 0; i < NENCLAVES; i++) {
        snprintf(log, sizeof(log), "enclave-%zu.log", i);
        CHECK(stack_log_contains(&s, log, "sealer: aws-kms (key " STACK_KMS_KEY_ID));
        CHECK(stack_log_contains(&s, log, "connected directly"));
        CHECK(stack_log_contains(&s, log, "new key-encryption key from KMS GenerateDataKey"));
        CHECK(stack_log_contains(&s, log, "identity key epoch 1 created (sealer aws-kms)"));
    }

    /* A keygen, and a signing. */
    struct client_keygen k;
    struct proto_tweak tweak = {.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT};
    CHECK_OK(client_keygen_new(&k, NUSERS, &tweak));
    k.trust = &trust;
    if (client_keygen_run(http, &k, 600, WAIT_MS, &err) != KM_OK)
        fail_msg("keygen: %s", err.msg);
    expect_signs(http, &k, "before the restart");

    /* kill -9 enclave 1 and start it again: its key comes back by KMS
     * Decrypt of the sealed key the gateway kept. */
    char before[80], after[80];
    enclave_key(&s, 1, before, sizeof(before));
    stack_kill_enclave(&s, 1);
    stack_start_enclave(&s, 1);
    if (!wait_log(&s, "enclave-1.log", "identity key epoch 1 restored (sealer aws-kms)", WAIT_MS)) {
        char path[512];
        stack_log_path(&s, "enclave-1.log", path, sizeof(path));
        print_file(path);
        fail_msg("enclave 1 did not restore its key from KMS");
    }
    CHECK(stack_log_contains(&s, "enclave-1.log",
                             "key-encryption key recovered by KMS Decrypt (key " STACK_KMS_KEY_ID));
    CHECK(stack_wait_ready(&s, WAIT_MS));
    enclave_key(&s, 1, after, sizeof(after));
    CHECK_STR_EQ(before, after);
    expect_signs(http, &k, "after enclave 1 restarted");

    client_keygen_clear(&k);
    client_trust_release(&trust);
    rest_client_free(http);

    /* The credentials travel in configure but never into a log. */
    const char *logs[] = {"gateway.log", "enclave-0.log", "enclave-1.log", "enclave-2.log"};
    for (size_t i = 0; i < KM_ARRAY_LEN(logs); i++) {
        CHECK(!stack_log_contains(&s, logs[i], STACK_AWS_SECRET_ACCESS_KEY));
        CHECK(!stack_log_contains(&s, logs[i], STACK_AWS_SESSION_TOKEN));
    }

    /* 3 x (GenerateDataKey + Decrypt) at start, 1 Decrypt after the
     * restart: all of them answered. */
    unsigned requests = 0, succeeded = 0;
    stop_kms(&kms, &requests, &succeeded);
    print_message("KMS stand-in: %u requests, %u succeeded\n", requests, succeeded);
    CHECK(requests >= 2 * NENCLAVES + 1);
    CHECK_EQ(succeeded, requests);
    stack_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_kms_sealer),
    };
    return RUN_TESTS("integration.kms_sealer", tests);
}
