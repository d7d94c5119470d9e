/*
 * test_attestation.c - attestation end to end (docs/ATTESTATION.md): a
 * stack whose enclaves run development attestation, verified by the
 * gateway and by the client.
 *
 *  - A malicious host: a proxy between the client and the gateway swaps
 *    enclave 1's public key for one the test holds, in every reply (the
 *    reserve reply, and the key relayed beside the attestation document).
 *    The client refuses to encrypt to it, the other enclaves' steps still
 *    work, and no request that left the client holds anything the test's
 *    key can decrypt.
 *  - An enclave restarted without attestation is not used by the gateway
 *    (readiness 503 naming it); a gateway whose PCR policy does not match
 *    never becomes ready and says which check failed.
 *  - /health/detail shows the PCRs the gateway verified; a document with
 *    the client's nonce verifies with the client's trust.
 */
#include "test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "attest/provider.h"
#include "client/attest.h"
#include "client/session.h"
#include "common/clock.h"
#include "common/hex.h"
#include "common/secure.h"
#include "crypto/ecies.h"
#include "crypto/keypair.h"
#include "process_spawn.h"
#include "stack.h"
#include "common/banned.h"

static void stack_fail_cmocka(const char *msg)
{
    fail_msg("%s", msg);
}

static void enclave_key_hex(struct stack *s, uint32_t id, char out[67])
{
    char path[64], *body = NULL;
    snprintf(path, sizeof(path), "/api/v1/enclaves/%u/public-key", id);
    CHECK_EQ(stack_http_get(s, path, &body), 200);
    json_t *j = json_loads(body, 0, NULL);
    CHECK_NOT_NULL(j);
    snprintf(out, 67, "%s", json_string_value(json_object_get(j, "public_key")));
    json_decref(j);
    free(body);
}

struct proxy {
    pid_t pid;
    char url[64];
    char log[256];
};

static void proxy_start(struct proxy *p, struct stack *s, const char *swap)
{
    char out[256], script[512];
    const char *src = getenv("KEYMELD_SOURCE_DIR");
    CHECK_NOT_NULL(src);
    snprintf(script, sizeof(script), "%s/tests/tools/mitm_proxy.py", src);
    snprintf(p->log, sizeof(p->log), "%s/mitm-requests.log", s->dir);
    snprintf(out, sizeof(out), "%s/mitm.out", s->dir);
    char py[] = "python3", a1[] = "--upstream", a3[] = "--swap", a5[] = "--log";
    char *argv[] = {py, script, a1, s->base_url, a3, (char *)(uintptr_t)swap, a5, p->log, NULL};
    p->pid = spawn_process("/usr/bin/python3", argv, NULL, NULL, out, false);
    CHECK(p->pid > 0);
    unsigned port = 0;
    for (int i = 0; i < 500 && port == 0; i++) {
        FILE *f = fopen(out, "r");
        if (f != NULL) {
            if (fscanf(f, "listening on %u", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port == 0)
            clock_sleep_ms(20);
    }
    CHECK(port != 0);
    snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%u", port);
}

static void proxy_stop(struct proxy *p)
{
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
}

/* Every string in v that is hex: try to open it with the fake key. */
static void try_open(const json_t *v, const struct keypair *fake, size_t *tried)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)(uintptr_t)v, k, x) try_open(x, fake, tried);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) try_open(x, fake, tried);
    } else if (json_is_string(v)) {
        const char *h = json_string_value(v);
        size_t n = strlen(h), len = 0;
        if (n < 2 * ECIES_OVERHEAD || n % 2 != 0)
            return;
        uint8_t *ct = malloc(n / 2), *pt = malloc(n / 2);
        if (hex_decode(ct, n / 2, &len, h, n) == KM_OK) {
            size_t ptlen = 0;
            (*tried)++;
            CHECK_NE(ecies_decrypt(pt, n / 2, &ptlen, NULL, fake->seckey, ct, len), KM_OK);
        }
        free(ct);
        free(pt);
    }
}

static void test_malicious_host_swaps_a_key(void **state)
{
    (void)state;
    struct stack s = {0};
    stack_fail_hook = stack_fail_cmocka;
    stack_start(&s, 3);
    char real[67], fake_hex[67], swap[140];
    enclave_key_hex(&s, 1, real);
    struct keypair fake;
    CHECK_OK(keypair_generate(&fake));
    hex_encode(fake_hex, sizeof(fake_hex), fake.pubkey, 33);
    snprintf(swap, sizeof(swap), "%s=%s", real, fake_hex);
    struct proxy p;
    proxy_start(&p, &s, swap);

    struct rest_client *c = rest_client_new(p.url, 30000);
    struct client_trust trust;
    struct client_keygen k;
    struct km_error err;
    stack_client_trust(&s, &trust);
    CHECK_OK(client_keygen_new(&k, 3, NULL));
    k.trust = &trust;
    CHECK_OK(client_keygen_reserve(c, &k, 600, &err));
    /* The client now holds the fake key for enclave 1, as the host wants. */
    size_t on_one = k.coordinator_enclave_id == 1;
    for (size_t i = 1; i < k.nusers; i++)
        on_one += k.users[i].enclave_id == 1;
    CHECK(on_one > 0);
    int r = client_keygen_initialize(c, &k, &err);
    if (k.coordinator_enclave_id == 1) {
        CHECK_ERR(r, KM_ERR_CRYPTO);
        CHECK_CONTAINS(err.msg, "enclave 1's key is not attested");
    } else {
        CHECK_OK(r);
        for (size_t i = 1; i < k.nusers; i++) {
            r = client_keygen_register(c, &k, i, &err);
            if (k.users[i].enclave_id == 1) {
                CHECK_ERR(r, KM_ERR_CRYPTO);
                CHECK_CONTAINS(err.msg, "enclave 1's key is not attested");
                CHECK_CONTAINS(err.msg, "public_key");
            } else {
                CHECK_OK(r);
            }
        }
    }
    proxy_stop(&p);

    /* What left the client: nothing the fake key opens. */
    size_t len = 0, tried = 0, lines = 0;
    char *log = test_read_file(p.log, &len);
    CHECK_NOT_NULL(log);
    CHECK_CONTAINS(log, "/api/v1/enclaves/1/attestation?nonce=");
    char *save = NULL;
    for (char *line = strtok_r(log, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        CHECK_NOT_NULL(j);
        json_t *body = json_loads(json_string_value(json_object_get(j, "body")), 0, NULL);
        if (body != NULL)
            try_open(body, &fake, &tried);
        json_decref(body);
        json_decref(j);
        lines++;
    }
    /* reserve and enclave 1's attestation at least (just those when
     * enclave 1 is the coordinator: then nothing else was sent). */
    CHECK(lines >= 2);
    free(log);
    print_message("%zu requests, %zu ciphertext candidates: none opens with the swapped key\n",
                  lines, tried);

    keypair_clear(&fake);
    client_keygen_clear(&k);
    client_trust_release(&trust);
    rest_client_free(c);
    stack_stop(&s);
}

static json_t *get_json(struct stack *s, const char *path, long *status)
{
    char *body = NULL;
    *status = stack_http_get(s, path, &body);
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    return j;
}

static void test_gateway_checks_its_enclaves(void **state)
{
    (void)state;
    struct stack s = {0};
    long st;
    stack_fail_hook = stack_fail_cmocka;
    stack_start(&s, 3);

    /* /health/detail: verified, with the PCR0 of this build. */
    char bin[600];
    uint8_t pcr0[ATTEST_PCR_LEN];
    char pcr0_hex[2 * ATTEST_PCR_LEN + 1];
    struct km_error err;
    snprintf(bin, sizeof(bin), "%s/keymeld-enclave", s.bin_dir);
    CHECK_OK(attest_dev_measure(pcr0, bin, &err));
    hex_encode(pcr0_hex, sizeof(pcr0_hex), pcr0, sizeof(pcr0));
    json_t *d = get_json(&s, "/health/detail", &st);
    CHECK_EQ(st, 200);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(d, "enclaves"), i, e)
    {
        json_t *a = json_object_get(e, "attestation");
        CHECK_STR_EQ(json_string_value(json_object_get(a, "status")), "verified");
        CHECK_STR_EQ(json_string_value(json_object_get(a, "provider")), "development");
        CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(a, "pcrs"), "0")), pcr0_hex);
    }
    json_decref(d);

    /* A document with the client's own nonce verifies with its trust. */
    struct rest_client *c = rest_client_new(s.base_url, 30000);
    struct client_trust trust;
    stack_client_trust(&s, &trust);
    uint8_t nonce[32], key[33];
    CHECK_OK(secure_random(nonce, sizeof(nonce)));
    struct attest_doc doc;
    enum attest_check failed;
    CHECK_OK(client_attest_fetch(c, &trust, 2, nonce, sizeof(nonce), &doc, &failed, key, &err));
    CHECK_STR_EQ(doc.module_id, "development-enclave-2");
    attest_doc_clear(&doc);
    /* ... and the gateway's nonce-less copy is the verified one. */
    d = get_json(&s, "/api/v1/enclaves/2/attestation", &st);
    CHECK_EQ(st, 200);
    CHECK(json_is_false(json_object_get(d, "fresh")));
    json_decref(d);
    d = get_json(&s, "/api/v1/enclaves/2/attestation?nonce=zz", &st);
    CHECK_EQ(st, 400);
    json_decref(d);
    client_trust_release(&trust);
    rest_client_free(c);

    /* Enclave 2 restarted without attestation: not used, and named. */
    stack_stop_enclave(&s, 2);
    s.enclave_attestation = "none";
    stack_start_enclave(&s, 2);
    bool named = false;
    for (int t = 0; t < 200 && !named; t++) {
        d = get_json(&s, "/health/ready", &st);
        char *txt = d ? json_dumps(d, 0) : NULL;
        named = st == 503 && txt != NULL && strstr(txt, "ATTESTATION=none") != NULL;
        free(txt);
        json_decref(d);
        if (!named)
            clock_sleep_ms(50);
    }
    CHECK(named);
    stack_stop_enclave(&s, 2);
    s.enclave_attestation = NULL;
    stack_start_enclave(&s, 2);
    CHECK(stack_wait_ready(&s, 20000));

    /* A gateway whose PCR policy pins another build never becomes ready. */
    stack_kill_gateway(&s);
    FILE *f = fopen(s.pcrs_path, "w");
    CHECK_NOT_NULL(f);
    fprintf(f, "{\"pcr_sets\": [{\"PCR0\": \"%096d\"}]}\n", 7);
    fclose(f);
    stack_spawn_gateway(&s);
    bool refused = false;
    for (int t = 0; t < 200 && !refused; t++) {
        d = get_json(&s, "/health/ready", &st);
        char *txt = d ? json_dumps(d, 0) : NULL;
        refused = st == 503 && txt != NULL && strstr(txt, "attestation failed: pcrs") != NULL;
        free(txt);
        json_decref(d);
        if (!refused)
            clock_sleep_ms(50);
    }
    CHECK(refused);
    stack_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_malicious_host_swaps_a_key),
        TEST(test_gateway_checks_its_enclaves),
    };
    return RUN_TESTS("integration.attestation", tests);
}
