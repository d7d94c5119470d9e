/*
 * test_attest.c - runs the built `keymeld` binary
 * ($KEYMELD_TEST_BUILD_DIR/src/cmd/keymeld) for attestation:
 *
 *  - `keymeld attest verify` on the real AWS Nitro documents of
 *    tests/data/nitro (all expired: verified at their verify_at_unix);
 *  - `keymeld attest ENCLAVE_ID` against a stand-in gateway on 127.0.0.1
 *    serving a document from the development provider;
 *  - `keymeld dev-ca init`;
 *  - the trust options of keygen and demo, and usage errors.
 */
#include "test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "attest/policy.h"
#include "attest/provider.h"
#include "common/hex.h"
#include "cmd_test_support.h"
#include "common/banned.h"

#define NITRO   "tests/data/nitro/"
#define CAPE    NITRO "cape-2022-prod.b64"
#define CAPE_ID "i-0697c9729fa547b20-enc0183422ede9a5dc8"

/* Runs keymeld in the source directory (see cmd_run). */
static struct run run_in(const char *const *args, const char *const *vars, const char *in_path)
{
    return cmd_run(args, vars, in_path, true);
}

/* run_in with stdin from /dev/null. */
static struct run run_keymeld(const char *const *args, const char *const *vars)
{
    return run_in(args, vars, NULL);
}

/* Exit status and a needle in stdout. */
static void expect(struct run *r, int status, const char *needle)
{
    cmd_expect(r, status, needle, NULL);
}

/* Exit status and a needle in stderr. */
static void expect_err(struct run *r, int status, const char *needle)
{
    cmd_expect(r, status, NULL, needle);
}

/* The fixture's description (tests/data/nitro/<name>.json). */
static json_t *fixture_json(const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/" NITRO "%s.json", cmd_source_dir(), name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (j == NULL)
        fail_msg("%s: %s (the Nitro fixtures belong in tests/data/nitro)", path, e.text);
    return j;
}

/* verify_at_unix of a fixture, as a decimal string. */
static void fixture_at(char *out, size_t cap, const char *name)
{
    json_t *j = fixture_json(name);
    json_int_t at = json_integer_value(json_object_get(j, "verify_at_unix"));
    CHECK(at > 0);
    snprintf(out, cap, "%lld", (long long)at);
    json_decref(j);
}

static json_t *parse_output(const struct run *r)
{
    json_error_t e;
    json_t *j = json_loads(r->out, 0, &e);
    if (j == NULL || !json_is_object(j))
        fail_msg("not one JSON object (%s):\n%s", e.text, r->out);
    return j;
}

/* ---- keymeld attest verify ------------------------------------------------ */

static void test_verify_real_document(void **state)
{
    (void)state;
    char at[32];
    fixture_at(at, sizeof(at), "cape-2022-prod");

    const char *ok[] = {"attest", "verify", CAPE, "--at", at, NULL};
    struct run r = run_keymeld(ok, NULL);
    expect(&r, 0, "module_id:    " CAPE_ID "\n");
    CHECK_CONTAINS(r.out, "timestamp:    2022-09-15T17:43:28.848Z");
    CHECK_CONTAINS(r.out, "digest:       SHA384\n");
    CHECK_CONTAINS(r.out,
                   "PCR0:         ea4212ee889ba1b4dbfe744aadecca8b1930de60a3a1ce3b0c79f42b2317"
                   "00fc561c3d9b34f0565ed9eb6f460996624c\n");
    CHECK_CONTAINS(r.out, "PCR8:         6f1ff0f2a7a0b1c4");
    CHECK_CONTAINS(r.out,
                   "public_key:   15db1c67adc9fce91f7da323c708b6e639f0585af8a4a091127f2dfdcfe"
                   "af808\n");
    CHECK_CONTAINS(r.out, "user_data:    {\"func_checksum\":"); /* printable: as text */
    CHECK_CONTAINS(r.out, "nonce:        47b5fba6979cbf7e567e2629\n");
    CHECK_CONTAINS(r.out, "leaf + 4 in the bundle");
    CHECK_CONTAINS(r.out, "pcrs:         not checked");
    CHECK_CONTAINS(r.out, "verified:     yes\n");
    run_free(&r);

    /* The shipped copy of the AWS root, explicitly; and from stdin. */
    const char *root[] = {
        "attest", "verify", CAPE, "--at", at, "--root", NITRO "aws_nitro_root_g1.pem", NULL};
    r = run_keymeld(root, NULL);
    expect(&r, 0, CAPE_ID);
    run_free(&r);
    char in[4096];
    snprintf(in, sizeof(in), "%s/" CAPE, cmd_source_dir());
    const char *std_in[] = {"attest", "verify", "-", "--at", at, NULL};
    r = run_in(std_in, NULL, in);
    expect(&r, 0, CAPE_ID);
    run_free(&r);

    /* The right nonce and public key, and a freshness window around --at. */
    const char *match[] = {"attest",
                           "verify",
                           CAPE,
                           "--at",
                           at,
                           "--nonce",
                           "47b5fba6979cbf7e567e2629",
                           "--public-key",
                           "15db1c67adc9fce91f7da323c708b6e639f0585af8a4a091127f2dfdcfeaf808",
                           "--max-age",
                           "60",
                           NULL};
    r = run_keymeld(match, NULL);
    expect(&r, 0, "verified:     yes\n");
    run_free(&r);
}

static void test_verify_failures(void **state)
{
    (void)state;
    char at[32];
    fixture_at(at, sizeof(at), "cape-2022-prod");

    /* Now: every certificate has long expired. The fields are still shown,
     * marked as not verified. */
    const char *now[] = {"attest", "verify", CAPE, NULL};
    struct run r = run_keymeld(now, NULL);
    expect(&r, 1, "FAILED: validity: ");
    CHECK_CONTAINS(r.out, "(decoded, NOT verified)\n");
    CHECK_CONTAINS(r.out, CAPE_ID);
    CHECK(strstr(r.out, "verified:     yes") == NULL);
    run_free(&r);

    const char *nonce[] = {"attest", "verify", CAPE, "--at", at, "--nonce", "47b5fba6", NULL};
    r = run_keymeld(nonce, NULL);
    expect(&r, 1, "FAILED: nonce: ");
    run_free(&r);

    const char *key[] = {"attest", "verify", CAPE, "--at", at, "--public-key", "0011", NULL};
    r = run_keymeld(key, NULL);
    expect(&r, 1, "FAILED: public_key: ");
    run_free(&r);

    static const struct {
        const char *file, *check;
    } bad[] = {
        {NITRO "cape-2022-prod-bad-root.b64", "FAILED: root: "},
        {NITRO "cape-2022-prod-bad-chain.b64", "FAILED: chain: "},
        {NITRO "cape-2022-prod-bad-signature.b64", "FAILED: signature: "},
        {NITRO "cape-2022-prod-bad-payload.b64", "FAILED: signature: "},
        {NITRO "cape-2022-prod-bad-truncated.b64", "FAILED: decode: "},
        {"README.md", "FAILED: decode: "},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        const char *args[] = {"attest", "verify", bad[i].file, "--at", at, NULL};
        r = run_keymeld(args, NULL);
        expect(&r, 1, bad[i].check);
        run_free(&r);
    }

    /* A debug-mode enclave is refused unless --allow-debug. */
    char dat[32];
    fixture_at(dat, sizeof(dat), "eternis-2024-debug");
    const char *debug[] = {"attest", "verify", NITRO "eternis-2024-debug.b64", "--at", dat, NULL};
    r = run_keymeld(debug, NULL);
    expect(&r, 1, "FAILED: debug: ");
    CHECK_CONTAINS(r.out, "debug mode:   yes");
    run_free(&r);
    const char *allow[] = {"attest",        "verify", NITRO "eternis-2024-debug.b64", "--at", dat,
                           "--allow-debug", NULL};
    r = run_keymeld(allow, NULL);
    expect(&r, 0, "verified:     yes\n");
    run_free(&r);

    /* Files that cannot be read. */
    const char *missing[] = {"attest", "verify", "tests/data/nitro/nope.b64", NULL};
    r = run_keymeld(missing, NULL);
    expect_err(&r, 1, "nope.b64: cannot open");
    run_free(&r);
    const char *root[] = {"attest", "verify", CAPE, "--root", "nope.pem", NULL};
    r = run_keymeld(root, NULL);
    expect_err(&r, 1, "nope.pem");
    run_free(&r);
}

static void write_policy(const char *path, const char *pcr0_hex)
{
    FILE *f = fopen(path, "w");
    CHECK_NOT_NULL(f);
    fprintf(f, "{\"pcr_sets\": [{\"PCR0\": \"%s\"}]}\n", pcr0_hex);
    CHECK(fclose(f) == 0);
}

static void test_verify_pcrs(void **state)
{
    (void)state;
    char at[32], path[64];
    fixture_at(at, sizeof(at), "cape-2022-prod");
    close(cmd_temp_file(path, sizeof(path)));

    write_policy(path, "ea4212ee889ba1b4dbfe744aadecca8b1930de60a3a1ce3b0c79f42b231700fc561c3d9b3"
                       "4f0565ed9eb6f460996624c");
    const char *args[] = {"attest", "verify", CAPE, "--at", at, "--pcrs", path, NULL};
    struct run r = run_keymeld(args, NULL);
    expect(&r, 0, "verified:     yes\n");
    CHECK(strstr(r.out, "not checked") == NULL);
    run_free(&r);

    write_policy(path, "eb4212ee889ba1b4dbfe744aadecca8b1930de60a3a1ce3b0c79f42b231700fc561c3d9b3"
                       "4f0565ed9eb6f460996624c");
    r = run_keymeld(args, NULL);
    expect(&r, 1, "FAILED: pcrs: ");
    run_free(&r);

    write_policy(path, "not hex");
    r = run_keymeld(args, NULL);
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, path);
    run_free(&r);
    unlink(path);
}

static void test_verify_json(void **state)
{
    (void)state;
    char at[32];
    fixture_at(at, sizeof(at), "cape-2022-prod");
    json_t *fx = fixture_json("cape-2022-prod");

    const char *ok[] = {"attest", "verify", CAPE, "--at", at, "--json", NULL};
    struct run r = run_keymeld(ok, NULL);
    CHECK_EQ(r.status, 0);
    json_t *j = parse_output(&r);
    CHECK(json_is_true(json_object_get(j, "ok")));
    CHECK(json_is_null(json_object_get(j, "failed_check")));
    CHECK(json_is_null(json_object_get(j, "error")));
    CHECK_STR_EQ(json_string_value(json_object_get(j, "module_id")), CAPE_ID);
    CHECK_EQ(json_integer_value(json_object_get(j, "timestamp_ms")),
             json_integer_value(json_object_get(fx, "timestamp_ms")));
    CHECK_STR_EQ(json_string_value(json_object_get(j, "digest")), "SHA384");
    json_t *pcrs = json_object_get(j, "pcrs");
    static const char *const idx[] = {"0", "1", "2", "3", "4", "8"};
    for (size_t i = 0; i < KM_ARRAY_LEN(idx); i++)
        CHECK_STR_EQ(json_string_value(json_object_get(pcrs, idx[i])),
                     json_string_value(json_object_get(json_object_get(fx, "pcrs"), idx[i])));
    CHECK_NULL(json_object_get(pcrs, "5")); /* zero, not shown */
    static const char *const bytes[] = {"public_key", "user_data", "nonce"};
    for (size_t i = 0; i < KM_ARRAY_LEN(bytes); i++)
        CHECK_STR_EQ(json_string_value(json_object_get(j, bytes[i])),
                     json_string_value(json_object_get(fx, bytes[i])));
    CHECK_EQ(json_integer_value(json_object_get(j, "cabundle_len")), 4);
    json_decref(j);
    run_free(&r);

    const char *expired[] = {"attest", "verify", CAPE, "--json", NULL};
    r = run_keymeld(expired, NULL);
    CHECK_EQ(r.status, 1);
    j = parse_output(&r);
    CHECK(json_is_false(json_object_get(j, "ok")));
    CHECK_STR_EQ(json_string_value(json_object_get(j, "failed_check")), "validity");
    CHECK_NOT_NULL(json_string_value(json_object_get(j, "error")));
    json_decref(j);
    run_free(&r);

    /* A null public_key (CBOR null in the document) is JSON null. */
    char eat[32];
    fixture_at(eat, sizeof(eat), "epsilon-2026-prod");
    const char *eps[] = {"attest", "verify", NITRO "epsilon-2026-prod.b64", "--at", eat,
                         "--json", NULL};
    r = run_keymeld(eps, NULL);
    CHECK_EQ(r.status, 0);
    j = parse_output(&r);
    CHECK(json_is_true(json_object_get(j, "ok")));
    CHECK(json_is_null(json_object_get(j, "public_key")));
    json_decref(j);
    run_free(&r);

    const char *undecodable[] = {"attest", "verify", "README.md", "--json", NULL};
    r = run_keymeld(undecodable, NULL);
    CHECK_EQ(r.status, 1);
    j = parse_output(&r);
    CHECK(json_is_false(json_object_get(j, "ok")));
    CHECK_STR_EQ(json_string_value(json_object_get(j, "failed_check")), "decode");
    CHECK(json_is_null(json_object_get(j, "module_id")));
    json_decref(j);
    run_free(&r);
    json_decref(fx);
}

/* ---- keymeld dev-ca init ------------------------------------------------------ */

static void remove_ca(const char *dir)
{
    static const char *const files[] = {ATTEST_DEV_ROOT_CERT, ATTEST_DEV_ROOT_KEY,
                                        ATTEST_DEV_INTERM_CERT, ATTEST_DEV_INTERM_KEY};
    char path[512];
    for (size_t i = 0; i < KM_ARRAY_LEN(files); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_dev_ca_init(void **state)
{
    (void)state;
    char base[] = "/tmp/km_test_devca_XXXXXX", dir[128], line[512], path[512];
    CHECK_NOT_NULL(mkdtemp(base));
    snprintf(dir, sizeof(dir), "%s/ca", base);

    const char *args[] = {"dev-ca", "init", dir, NULL};
    struct run r = run_keymeld(args, NULL);
    snprintf(line, sizeof(line), "created development CA in %s (root %s/root.pem)\n", dir, dir);
    expect(&r, 0, line);
    run_free(&r);

    r = run_keymeld(args, NULL);
    snprintf(line, sizeof(line), "development CA in %s already exists (unchanged)\n", dir);
    expect(&r, 0, line);
    run_free(&r);

    /* A partial CA is an error, not silently replaced. */
    snprintf(path, sizeof(path), "%s/%s", dir, ATTEST_DEV_INTERM_KEY);
    CHECK(unlink(path) == 0);
    r = run_keymeld(args, NULL);
    expect_err(&r, 1, "keymeld dev-ca init: ");
    CHECK_CONTAINS(r.err, dir);
    CHECK_EQ(strlen(r.out), 0);
    run_free(&r);

    remove_ca(dir);
    CHECK(rmdir(base) == 0);
}

/* ---- keymeld attest ENCLAVE_ID, against a stand-in gateway ------------------ */

#define TEST_NONCE "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define TEST_KEY                                                                                   \
    "02"                                                                                           \
    "1111111111111111111111111111111111111111111111111111111111111111"
#define TEST_MODULE "development-test-enclave-3"

struct fake_gateway {
    pid_t pid;
    char url[64];
};

/* Serves body for GET /api/v1/enclaves/3/attestation..., 404 otherwise,
 * from a child process, until stopped. */
static void fake_gateway_start(struct fake_gateway *g, const char *body)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(lfd, 16) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
    snprintf(g->url, sizeof(g->url), "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    g->pid = fork();
    CHECK(g->pid >= 0);
    if (g->pid > 0) {
        close(lfd);
        return;
    }
    /* Never outlive a test that failed before stopping it. */
    signal(SIGPIPE, SIG_IGN);
    alarm(120);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        char req[8192];
        size_t n = 0;
        while (n < sizeof(req) - 1) {
            ssize_t k = read(fd, req + n, sizeof(req) - 1 - n);
            if (k <= 0)
                break;
            n += (size_t)k;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        req[n] = '\0';
        bool ours = strncmp(req, "GET /api/v1/enclaves/3/attestation", 34) == 0;
        const char *b = ours ? body : "{\"error\":{\"message\":\"not found\"}}";
        char head[256];
        int hl = snprintf(head, sizeof(head),
                          "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: "
                          "%zu\r\nConnection: close\r\n\r\n",
                          ours ? "200 OK" : "404 Not Found", strlen(b));
        if (write(fd, head, (size_t)hl) < 0 || write(fd, b, strlen(b)) < 0)
            _exit(1);
        close(fd);
    }
}

static void fake_gateway_stop(struct fake_gateway *g)
{
    kill(g->pid, SIGKILL);
    int st;
    waitpid(g->pid, &st, 0);
}

/* A development CA in a temp dir, a document from it attesting TEST_KEY
 * with TEST_NONCE, and the gateway's JSON answer carrying it. */
static char *make_answer(const char *ca_dir, const uint8_t pcr0[ATTEST_PCR_LEN])
{
    struct km_error err;
    bool created;
    CHECK_OK(attest_dev_ca_init(ca_dir, &created, &err));
    struct attest_provider *p;
    CHECK_OK(attest_dev_new(&p, ca_dir, pcr0, TEST_MODULE, &err));
    uint8_t key[33], nonce[32];
    CHECK_OK(hex_decode_exact(key, sizeof(key), TEST_KEY, strlen(TEST_KEY)));
    CHECK_OK(hex_decode_exact(nonce, sizeof(nonce), TEST_NONCE, strlen(TEST_NONCE)));
    struct attest_request req = {.public_key = key,
                                 .public_key_len = sizeof(key),
                                 .nonce = nonce,
                                 .nonce_len = sizeof(nonce)};
    uint8_t *doc;
    size_t doc_len;
    CHECK_OK(attest_provider_attest(p, &doc, &doc_len, &req, &err));
    attest_provider_free(p);
    char *b64 = malloc(4 * (doc_len / 3 + 1) + 1);
    CHECK_NOT_NULL(b64);
    EVP_EncodeBlock((unsigned char *)b64, doc, (int)doc_len);
    free(doc);
    json_t *o = json_pack("{s:i, s:s, s:s, s:i, s:s}", "enclave_id", 3, "attestation",
                          "development", "public_key", TEST_KEY, "key_epoch", 1, "document", b64);
    free(b64);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static void test_attest_enclave(void **state)
{
    (void)state;
    char base[] = "/tmp/km_test_attest_gw_XXXXXX", ca[128], root[160], policy[160], wrong[160],
         pcr0_hex[2 * ATTEST_PCR_LEN + 1];
    CHECK_NOT_NULL(mkdtemp(base));
    snprintf(ca, sizeof(ca), "%s/ca", base);
    snprintf(root, sizeof(root), "%s/root.pem", ca);
    snprintf(policy, sizeof(policy), "%s/pcrs.json", base);
    snprintf(wrong, sizeof(wrong), "%s/wrong.json", base);
    uint8_t pcr0[ATTEST_PCR_LEN], zero[ATTEST_PCR_LEN] = {0};
    memset(pcr0, 0xab, sizeof(pcr0));
    hex_encode(pcr0_hex, sizeof(pcr0_hex), pcr0, sizeof(pcr0));
    struct km_error err;
    CHECK_OK(attest_pcr_policy_write(policy, pcr0, zero, zero, NULL, &err));
    CHECK_OK(attest_pcr_policy_write(wrong, zero, zero, zero, NULL, &err));
    char *answer = make_answer(ca, pcr0);
    struct fake_gateway g;
    fake_gateway_start(&g, answer);

    const char *ok[] = {"attest",       "3",  "--gateway", g.url,  "--nonce", TEST_NONCE,
                        "--trust-root", root, "--pcrs",    policy, NULL};
    struct run r = run_keymeld(ok, NULL);
    expect(&r, 0, "verified:     yes\n");
    CHECK_CONTAINS(r.out, "enclave:      3 (gateway http://127.0.0.1:");
    CHECK_CONTAINS(r.out, "attestation:  development\n");
    CHECK_CONTAINS(r.out, "module_id:    " TEST_MODULE "\n");
    CHECK_CONTAINS(r.out, "PCR0:         abababab");
    CHECK_CONTAINS(r.out, "public_key:   " TEST_KEY "\n");
    CHECK_CONTAINS(r.out, "nonce:        " TEST_NONCE "\n");
    CHECK_CONTAINS(r.out, "leaf + 2 in the bundle");
    run_free(&r);

    /* The same from the environment. */
    char env_gw[96], env_root[200], env_pcrs[200];
    snprintf(env_gw, sizeof(env_gw), "KEYMELD_GATEWAY_URL=%s", g.url);
    snprintf(env_root, sizeof(env_root), "KEYMELD_TRUST_ROOT=%s", root);
    snprintf(env_pcrs, sizeof(env_pcrs), "KEYMELD_PCR_POLICY=%s", policy);
    const char *vars[] = {env_gw, env_root, env_pcrs, NULL};
    const char *by_env[] = {"attest", "3", "--nonce", TEST_NONCE, "--json", NULL};
    r = run_keymeld(by_env, vars);
    CHECK_EQ(r.status, 0);
    json_t *j = parse_output(&r);
    CHECK(json_is_true(json_object_get(j, "ok")));
    CHECK_EQ(json_integer_value(json_object_get(j, "enclave_id")), 3);
    CHECK_STR_EQ(json_string_value(json_object_get(j, "module_id")), TEST_MODULE);
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(j, "pcrs"), "0")), pcr0_hex);
    CHECK_STR_EQ(json_string_value(json_object_get(j, "nonce")), TEST_NONCE);
    CHECK_STR_EQ(json_string_value(json_object_get(j, "attestation")), "development");
    json_decref(j);
    run_free(&r);

    /* No policy: fetched and printed, but not trusted. */
    const char *unpinned[] = {"attest",       "3",  "--gateway", g.url, "--nonce", TEST_NONCE,
                              "--trust-root", root, NULL};
    r = run_keymeld(unpinned, NULL);
    expect(&r, 1, "verified:     NO: pcrs: not pinned");
    CHECK_CONTAINS(r.out, "PCR0:         abababab");
    run_free(&r);

    /* A policy the enclave does not match. */
    const char *mismatch[] = {"attest",       "3",  "--gateway", g.url, "--nonce", TEST_NONCE,
                              "--trust-root", root, "--pcrs",    wrong, NULL};
    r = run_keymeld(mismatch, NULL);
    expect(&r, 1, "verified:     NO: pcrs: ");
    run_free(&r);

    /* A fresh random nonce (the default): the replayed document fails. */
    const char *fresh[] = {"attest", "3",      "--gateway", g.url, "--trust-root",
                           root,     "--pcrs", policy,      NULL};
    r = run_keymeld(fresh, NULL);
    expect(&r, 1, "verified:     NO: nonce: ");
    run_free(&r);

    /* The AWS root (the default) never trusts the development CA. */
    const char *aws[] = {"attest",   "3",      "--gateway", g.url, "--nonce",
                         TEST_NONCE, "--pcrs", policy,      NULL};
    r = run_keymeld(aws, NULL);
    expect(&r, 1, "verified:     NO: root: ");
    run_free(&r);

    /* An enclave the gateway does not know. */
    const char *other[] = {"attest", "4", "--gateway", g.url, "--pcrs", policy, NULL};
    r = run_keymeld(other, NULL);
    expect_err(&r, 1, "HTTP 404");
    run_free(&r);

    fake_gateway_stop(&g);
    free(answer);
    remove_ca(ca);
    unlink(policy);
    unlink(wrong);
    CHECK(rmdir(base) == 0);

    /* No gateway at all. */
    const char *down[] = {"attest", "0", "--gateway", "http://127.0.0.1:1", NULL};
    r = run_keymeld(down, NULL);
    expect_err(&r, 1, "http://127.0.0.1:1");
    run_free(&r);
}

/* ---- trust options of keygen and demo ------------------------------------------ */

static void test_trust_options(void **state)
{
    (void)state;
    /* No policy anywhere: refused before the gateway is contacted. */
    const char *demo[] = {"demo", "--gateway", "http://127.0.0.1:1", NULL};
    struct run r = run_keymeld(demo, NULL);
    expect_err(&r, 1, "keymeld demo: attestation needs a PCR policy");
    CHECK(strstr(r.err, "127.0.0.1:1") == NULL);
    run_free(&r);
    const char *keygen[] = {
        "keygen", "--out", "/tmp/km_test_never", "--gateway", "http://127.0.0.1:1", NULL};
    r = run_keymeld(keygen, NULL);
    expect_err(&r, 1, "keymeld keygen: attestation needs a PCR policy");
    run_free(&r);

    /* A policy that cannot be read names the file, flag or environment. */
    const char *missing[] = {"demo",   "--gateway", "http://127.0.0.1:1",
                             "--pcrs", "nope.json", NULL};
    r = run_keymeld(missing, NULL);
    expect_err(&r, 1, "nope.json");
    run_free(&r);
    const char *env_missing[] = {"KEYMELD_PCR_POLICY=nope-env.json", NULL};
    r = run_keymeld(keygen, env_missing);
    expect_err(&r, 1, "nope-env.json");
    run_free(&r);
    /* ... and beats KEYMELD_INSECURE_SKIP_ATTESTATION. */
    const char *both_env[] = {"KEYMELD_PCR_POLICY=nope-env.json",
                              "KEYMELD_INSECURE_SKIP_ATTESTATION=1", NULL};
    r = run_keymeld(keygen, both_env);
    expect_err(&r, 1, "nope-env.json");
    CHECK(strstr(r.err, "WARNING") == NULL);
    run_free(&r);

    /* Insecure: a loud warning, then on to the (absent) gateway. */
    const char *insecure[] = {"demo", "--gateway", "http://127.0.0.1:1",
                              "--insecure-skip-attestation", NULL};
    r = run_keymeld(insecure, NULL);
    expect_err(&r, 1, "WARNING: attestation is NOT verified (--insecure-skip-attestation)");
    CHECK_CONTAINS(r.err, "127.0.0.1:1");
    run_free(&r);
    const char *env_insecure[] = {"KEYMELD_INSECURE_SKIP_ATTESTATION=1", NULL};
    r = run_keymeld(keygen, env_insecure);
    expect_err(&r, 1, "WARNING: attestation is NOT verified (KEYMELD_INSECURE_SKIP_ATTESTATION)");
    CHECK_CONTAINS(r.err, "127.0.0.1:1");
    run_free(&r);

    /* sign encrypts nothing to an enclave: no trust needed. */
    const char *sign[] = {"sign",
                          "--session",
                          "/tmp/km_test_no_such_session",
                          "--message",
                          "0000000000000000000000000000000000000000000000000000000000000000",
                          NULL};
    r = run_keymeld(sign, NULL);
    CHECK_EQ(r.status, 1);
    CHECK(strstr(r.err, "PCR") == NULL);
    CHECK_CONTAINS(r.err, "km_test_no_such_session");
    run_free(&r);
}

static void test_usage(void **state)
{
    (void)state;
    static const struct {
        const char *args[8];
        int status;
        const char *out, *err;
    } cases[] = {
        {{"attest", "--help"}, 0, "usage: keymeld attest ENCLAVE_ID", ""},
        {{"attest", "verify", "--help"}, 0, "keymeld attest verify FILE", ""},
        {{"dev-ca", "--help"}, 0, "usage: keymeld dev-ca <command>", ""},
        {{"dev-ca", "init", "--help"}, 0, "usage: keymeld dev-ca init DIR", ""},
        {{"--help"}, 0, "attest ID | verify FILE", ""},
        {{"keygen", "--help"}, 0, "--insecure-skip-attestation", ""},
        {{"demo", "--help"}, 0, "--pcrs FILE", ""},
        {{"attest"}, 2, "", "ENCLAVE_ID or verify FILE is required"},
        {{"attest", "zero"}, 2, "", "ENCLAVE_ID must be a number"},
        {{"attest", "0", "1"}, 2, "", "unexpected argument '1'"},
        {{"attest", "0", "--bogus"}, 2, "", "unknown option '--bogus'"},
        {{"attest", "0", "--nonce", "xyz"}, 2, "", "--nonce must be 1..32 bytes of hex"},
        {{"attest", "0", "--nonce", "00", "--no-nonce"}, 2, "", "contradict"},
        {{"attest", "0", "--pcrs"}, 2, "", "--pcrs needs a value"},
        {{"attest", "verify"}, 2, "", "FILE is required"},
        {{"attest", "verify", "a", "b"}, 2, "", "one FILE only"},
        {{"attest", "verify", "a", "--at", "soon"}, 2, "", "--at must be a whole number"},
        {{"attest", "verify", "a", "--nonce", ""}, 2, "", "--nonce must be"},
        {{"attest", "verify", "a", "--public-key", "0"}, 2, "", "--public-key must be"},
        {{"attest", "verify", "a", "--bogus"}, 2, "", "unknown option '--bogus'"},
        {{"dev-ca"}, 2, "", "usage: keymeld dev-ca <command>"},
        {{"dev-ca", "init"}, 2, "", "DIR is required"},
        {{"dev-ca", "init", "a", "b"}, 2, "", "one DIR only"},
        {{"dev-ca", "frob"}, 2, "", "unknown command 'frob'"},
        {{"demo", "--pcrs", "p.json", "--insecure-skip-attestation"}, 2, "", "contradict"},
        {{"keygen", "--out", "f", "--pcrs", "p", "--insecure-skip-attestation"},
         2,
         "",
         "contradict"},
        {{"keygen", "--out", "f", "--trust-root"}, 2, "", "--trust-root needs a value"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        struct run r = run_keymeld(cases[i].args, NULL);
        if (r.status != cases[i].status)
            fail_msg("case %zu (%s %s): exit %d, expected %d; stderr: %s", i, cases[i].args[0],
                     cases[i].args[1] ? cases[i].args[1] : "", r.status, cases[i].status, r.err);
        CHECK_CONTAINS(r.out, cases[i].out);
        CHECK_CONTAINS(r.err, cases[i].err);
        run_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_verify_real_document), TEST(test_verify_failures), TEST(test_verify_pcrs),
        TEST(test_verify_json),          TEST(test_dev_ca_init),     TEST(test_attest_enclave),
        TEST(test_trust_options),        TEST(test_usage),
    };
    return RUN_TESTS("unit.cmd.attest", tests);
}
