/*
 * test_policy.c - the trust configuration (attest/policy.h): PCR policy
 * files (valid and invalid, write + load round trip) and the pinned root
 * (embedded AWS Root-G1, PEM to DER, loading from a file).
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nitro_fixture.h"

#include "attest/policy.h"
#include "common/banned.h"

#define AWS_ROOT_SHA256 "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

static const char H0[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                         "202122232425262728292a2b2c2d2e2f";
static const char H1[] = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
                         "ffffffffffffffffffffffffffffffff";

static int parse_str(struct attest_pcr_policy *p, const char *json, struct km_error *err)
{
    return attest_pcr_policy_parse(p, (const uint8_t *)json, strlen(json), err);
}

static void test_parse_valid(void **state)
{
    (void)state;
    struct attest_pcr_policy *p = calloc(1, sizeof(*p));
    struct km_error err;
    char json[8192];

    snprintf(json, sizeof(json), "{\"pcr_sets\": [{\"PCR0\": \"%s\", \"PCR8\": \"%s\"}]}", H0, H1);
    CHECK_OK(parse_str(p, json, &err));
    CHECK_EQ(p->nsets, 1);
    CHECK(p->sets[0].want[0]);
    CHECK(p->sets[0].want[8]);
    CHECK(!p->sets[0].want[1]);
    CHECK_EQ(p->sets[0].value[0][0], 0x00);
    CHECK_EQ(p->sets[0].value[0][47], 0x2f);
    CHECK_EQ(p->sets[0].value[8][20], 0xff);

    /* Upper-case hex, two sets, PCR31. */
    char up[97];
    for (size_t i = 0; i < 96; i++)
        up[i] = H0[i] >= 'a' ? (char)(H0[i] - 32) : H0[i];
    up[96] = '\0';
    snprintf(json, sizeof(json),
             "{\"pcr_sets\": [{\"PCR1\": \"%s\"}, {\"PCR31\": \"%s\", \"PCR10\": \"%s\"}]}", up, H1,
             H0);
    CHECK_OK(parse_str(p, json, &err));
    CHECK_EQ(p->nsets, 2);
    CHECK(p->sets[0].want[1]);
    CHECK_EQ(p->sets[0].value[1][47], 0x2f);
    CHECK(p->sets[1].want[31] && p->sets[1].want[10]);

    /* All 32 PCRs in one set; 16 sets. */
    size_t n = (size_t)snprintf(json, sizeof(json), "{\"pcr_sets\": [{");
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"PCR%d\": \"%s\"", i ? "," : "", i,
                              H0);
    n += (size_t)snprintf(json + n, sizeof(json) - n, "}");
    for (int i = 1; i < 16; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, ", {\"PCR%d\": \"%s\"}", i, H1);
    snprintf(json + n, sizeof(json) - n, "]}");
    CHECK_OK(parse_str(p, json, &err));
    CHECK_EQ(p->nsets, 16);
    for (int i = 0; i < 32; i++)
        CHECK(p->sets[0].want[i]);
    free(p);
}

/* fmt with every '@' replaced by H0. */
static void subst(char *out, size_t cap, const char *fmt)
{
    size_t n = 0;
    for (const char *c = fmt; *c; c++) {
        const char *piece = *c == '@' ? H0 : (const char[]){*c, '\0'};
        size_t k = strlen(piece);
        CHECK(n + k < cap);
        memcpy(out + n, piece, k);
        n += k;
    }
    out[n] = '\0';
}

static void test_parse_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *fmt; /* @ = H0 */
        int code;
        const char *msg;
    } bad[] = {
        {"", KM_ERR_INVALID, "not JSON"},
        {"{", KM_ERR_INVALID, "not JSON"},
        {"[]", KM_ERR_INVALID, "not a JSON object"},
        {"{}", KM_ERR_INVALID, "pcr_sets is missing"},
        {"{\"pcr_sets\": {}}", KM_ERR_INVALID, "pcr_sets is missing or not an array"},
        {"{\"pcr_sets\": []}", KM_ERR_INVALID, "pcr_sets is empty"},
        {"{\"pcr_sets\": [{}]}", KM_ERR_INVALID, "pcr_sets[0]: names no PCR"},
        {"{\"pcr_sets\": [5]}", KM_ERR_INVALID, "pcr_sets[0]: not an object"},
        {"{\"pcr_sets\": [{\"PCR0\": \"@\"}], \"extra\": 1}", KM_ERR_INVALID,
         "unknown key \"extra\""},
        {"{\"pcr_sets\": [{\"PCR0\": \"@\", \"pcr1\": \"@\"}]}", KM_ERR_INVALID,
         "pcr_sets[0]: unknown key \"pcr1\""},
        {"{\"pcr_sets\": [{\"PCR99\": \"@\"}]}", KM_ERR_INVALID, "unknown key \"PCR99\""},
        {"{\"pcr_sets\": [{\"PCR32\": \"@\"}]}", KM_ERR_INVALID, "unknown key \"PCR32\""},
        {"{\"pcr_sets\": [{\"PCR01\": \"@\"}]}", KM_ERR_INVALID, "unknown key \"PCR01\""},
        {"{\"pcr_sets\": [{\"PCR\": \"@\"}]}", KM_ERR_INVALID, "unknown key"},
        {"{\"pcr_sets\": [{\"PCR-1\": \"@\"}]}", KM_ERR_INVALID, "unknown key"},
        {"{\"pcr_sets\": [{\"PCR0 \": \"@\"}]}", KM_ERR_INVALID, "unknown key"},
        {"{\"pcr_sets\": [{\"PCR0\": \"zz@\"}]}", KM_ERR_INVALID, "pcr_sets[0].PCR0: not 48"},
        {"{\"pcr_sets\": [{\"PCR0\": \"@00\"}]}", KM_ERR_INVALID, "pcr_sets[0].PCR0: not 48"},
        {"{\"pcr_sets\": [{\"PCR0\": \"0@\"}]}", KM_ERR_INVALID, "not 48 bytes of hex"},
        {"{\"pcr_sets\": [{\"PCR0\": \"00\"}]}", KM_ERR_INVALID, "not 48 bytes of hex"},
        {"{\"pcr_sets\": [{\"PCR0\": 5}]}", KM_ERR_INVALID, "not 48 bytes of hex"},
        {"{\"pcr_sets\": [{\"PCR0\": null}]}", KM_ERR_INVALID, "not 48 bytes of hex"},
        {"{\"pcr_sets\": [{\"PCR0\": \"@\"}, {\"PCR2\": \"xx\"}]}", KM_ERR_INVALID,
         "pcr_sets[1].PCR2"},
        {"{\"pcr_sets\": [{\"PCR0\": \"@\", \"PCR0\": \"@\"}]}", KM_ERR_INVALID, "not JSON"},
        {"{\"pcr_sets\": [], \"pcr_sets\": []}", KM_ERR_INVALID, "not JSON"},
    };
    struct attest_pcr_policy *p = calloc(1, sizeof(*p));
    struct km_error err;
    char json[1024];

    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        subst(json, sizeof(json), bad[i].fmt);
        km_error_clear(&err);
        p->nsets = 99;
        int r = parse_str(p, json, &err);
        if (r != bad[i].code || strstr(err.msg, bad[i].msg) == NULL)
            fail_msg("%s: want %d \"%s\", got %d \"%s\"", json, bad[i].code, bad[i].msg, r,
                     err.msg);
        CHECK_EQ(p->nsets, 0);
    }
    /* 17 sets. */
    size_t n = (size_t)snprintf(json, sizeof(json), "{\"pcr_sets\": [");
    for (int i = 0; i < 17; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s{}", i ? "," : "");
    snprintf(json + n, sizeof(json) - n, "]}");
    CHECK_ERR(parse_str(p, json, &err), KM_ERR_TOO_LARGE);
    CHECK_CONTAINS(err.msg, "17 sets (at most 16)");
    /* Larger than 64 KiB. */
    char *huge = malloc(ATTEST_POLICY_FILE_MAX + 2);
    memset(huge, ' ', ATTEST_POLICY_FILE_MAX + 1);
    huge[0] = '{';
    huge[ATTEST_POLICY_FILE_MAX] = '}';
    CHECK_ERR(attest_pcr_policy_parse(p, (const uint8_t *)huge, ATTEST_POLICY_FILE_MAX + 1, &err),
              KM_ERR_TOO_LARGE);
    /* NUL bytes inside the input. */
    CHECK_ERR(attest_pcr_policy_parse(p, (const uint8_t *)"{\"pcr_sets\"\0: []}", 17, &err),
              KM_ERR_INVALID);
    CHECK_ERR(attest_pcr_policy_parse(p, (const uint8_t *)"{}", 2, NULL), KM_ERR_INVALID);
    free(huge);
    free(p);
}

static void test_write_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/km-attest-policy-XXXXXX";
    char path[256];
    uint8_t v[4][ATTEST_PCR_LEN];
    struct attest_pcr_policy *p = calloc(1, sizeof(*p));
    struct km_error err;

    CHECK_NOT_NULL(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/pcrs.json", dir);
    for (size_t i = 0; i < 4; i++) {
        for (size_t k = 0; k < ATTEST_PCR_LEN; k++)
            v[i][k] = (uint8_t)(i * 64 + k);
    }
    /* PCR0/1/2/8. */
    CHECK_OK(attest_pcr_policy_write(path, v[0], v[1], v[2], v[3], &err));
    CHECK_OK(attest_pcr_policy_load(p, path, &err));
    CHECK_EQ(p->nsets, 1);
    for (size_t i = 0; i < ATTEST_MAX_PCRS; i++)
        CHECK_EQ(p->sets[0].want[i], i <= 2 || i == 8);
    CHECK_MEM_EQ(p->sets[0].value[0], v[0], ATTEST_PCR_LEN);
    CHECK_MEM_EQ(p->sets[0].value[1], v[1], ATTEST_PCR_LEN);
    CHECK_MEM_EQ(p->sets[0].value[2], v[2], ATTEST_PCR_LEN);
    CHECK_MEM_EQ(p->sets[0].value[8], v[3], ATTEST_PCR_LEN);
    /* Without PCR8 (overwrites). */
    CHECK_OK(attest_pcr_policy_write(path, v[3], v[2], v[1], NULL, &err));
    CHECK_OK(attest_pcr_policy_load(p, path, &err));
    CHECK_EQ(p->nsets, 1);
    CHECK(!p->sets[0].want[8]);
    CHECK_MEM_EQ(p->sets[0].value[0], v[3], ATTEST_PCR_LEN);
    /* The file is readable, documented JSON. */
    char *text = test_read_file(path, NULL);
    CHECK_CONTAINS(text, "\"pcr_sets\": [");
    CHECK_CONTAINS(text, "\"PCR2\": \"4041424344");
    free(text);
    /* A broken file names its path. */
    FILE *f = fopen(path, "w");
    fputs("{\"pcr_sets\": [{\"PCR0\": \"00\"}]}", f);
    fclose(f);
    CHECK_ERR(attest_pcr_policy_load(p, path, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "pcr_sets[0].PCR0");
    CHECK_EQ(p->nsets, 0);
    /* Too large a file. */
    f = fopen(path, "w");
    for (size_t i = 0; i <= ATTEST_POLICY_FILE_MAX; i++)
        fputc(' ', f);
    fclose(f);
    CHECK_ERR(attest_pcr_policy_load(p, path, &err), KM_ERR_TOO_LARGE);
    unlink(path);
    /* Missing file, unwritable path. */
    CHECK_ERR(attest_pcr_policy_load(p, path, &err), KM_ERR_IO);
    CHECK_CONTAINS(err.msg, path);
    snprintf(path, sizeof(path), "%s/no/such/dir/pcrs.json", dir);
    CHECK_ERR(attest_pcr_policy_write(path, v[0], v[1], v[2], NULL, &err), KM_ERR_IO);
    CHECK_CONTAINS(err.msg, path);
    rmdir(dir);
    free(p);
}

static void test_embedded_root(void **state)
{
    (void)state;
    uint8_t *der = NULL, *der2 = NULL;
    size_t n, n2;
    struct km_error err;
    char sha[65];

    /* The embedded text is byte-for-byte the fixture file. */
    char *file = test_read_file(nitro_path("aws_nitro_root_g1.pem"), NULL);
    CHECK_STR_EQ(attest_aws_nitro_root_g1_pem, file);
    free(file);

    CHECK_OK(attest_root_from_pem(&der, &n, (const uint8_t *)attest_aws_nitro_root_g1_pem,
                                  strlen(attest_aws_nitro_root_g1_pem), &err));
    nitro_sha256_hex(sha, der, n);
    CHECK_STR_EQ(sha, AWS_ROOT_SHA256);
    /* The same DER from the file. */
    CHECK_OK(attest_root_load(&der2, &n2, nitro_path("aws_nitro_root_g1.pem"), &err));
    CHECK_EQ(n2, n);
    CHECK_MEM_EQ(der2, der, n);
    free(der2);
    /* And it is cabundle[0] of the real documents (checked by the
     * verifier's root pinning in test_verify). */
    free(der);
}

static void test_root_invalid(void **state)
{
    (void)state;
    uint8_t *der = (uint8_t *)1;
    size_t n = 1;
    struct km_error err;
    const char *pem = attest_aws_nitro_root_g1_pem;

    CHECK_ERR(attest_root_from_pem(&der, &n, (const uint8_t *)"", 0, &err), KM_ERR_INVALID);
    CHECK_NULL(der);
    CHECK_EQ(n, 0);
    CHECK_ERR(attest_root_from_pem(&der, &n, (const uint8_t *)"hello", 5, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "no PEM certificate");
    /* A corrupted body. */
    char *bad = strdup(pem);
    bad[100] = '!';
    CHECK_ERR(attest_root_from_pem(&der, &n, (const uint8_t *)bad, strlen(bad), &err),
              KM_ERR_INVALID);
    /* Cut short. */
    CHECK_ERR(attest_root_from_pem(&der, &n, (const uint8_t *)pem, strlen(pem) / 2, &err),
              KM_ERR_INVALID);
    free(bad);
    /* Two certificates: not one root. */
    size_t len = strlen(pem);
    char *two = malloc(2 * len + 1);
    memcpy(two, pem, len);
    memcpy(two + len, pem, len + 1);
    CHECK_ERR(attest_root_from_pem(&der, &n, (const uint8_t *)two, 2 * len, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "more than one certificate");
    free(two);
    /* Surrounding text is fine (openssl x509 -text output). */
    char *wrapped = malloc(len + 64);
    snprintf(wrapped, len + 64, "subject=aws.nitro-enclaves\n%strailer\n", pem);
    CHECK_OK(attest_root_from_pem(&der, &n, (const uint8_t *)wrapped, strlen(wrapped), &err));
    free(der);
    free(wrapped);
    /* Missing file. */
    CHECK_ERR(attest_root_load(&der, &n, "/nonexistent/root.pem", &err), KM_ERR_IO);
    CHECK_CONTAINS(err.msg, "/nonexistent/root.pem");
    CHECK_NULL(der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_parse_valid),   TEST(test_parse_invalid), TEST(test_write_load),
        TEST(test_embedded_root), TEST(test_root_invalid),
    };
    return RUN_TESTS("unit.attest.policy", tests);
}
