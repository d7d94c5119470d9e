/*
 * test_report.c - the `keymeld config check` report (cfg_check_print) and
 * the source descriptions it is built from.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_test.h"
#include "common/banned.h"

struct fx {
    struct cfg c;
    struct cfg_diag d;
};

static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof(*f));
    CHECK_NOT_NULL(f);
    cfg_diag_init(&f->d);
    return f;
}

static void fx_free(struct fx *f)
{
    cfg_release(&f->c);
    cfg_diag_release(&f->d);
    free(f);
}

/* cfg_check_print into a malloc'd string. */
static char *report(const struct fx *f)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CHECK_NOT_NULL(out);
    cfg_check_print(out, &f->c, &f->d);
    fclose(out);
    return text;
}

static void test_report_production_with_overrides(void **state)
{
    (void)state;
    static const char *const envp[] = {"KEYMELD_ENVIRONMENT=production", "KEYMELD_ENCLAVE_0_CID=16",
                                       "KEYMELD_ENCLAVE_1_CID=17", NULL};
    /* TLS terminated in front of the gateway (plain HTTP on 0.0.0.0 is
     * refused in production otherwise). */
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), "%sserver:\n  allow_plain_http: true\n", cfgt_prod_yaml);
    struct fx *f = fx_new();
    CHECK_OK(cfgt_full(&f->c, &f->d, yaml, envp));
    char *text = report(f);
    CHECK_CONTAINS(text, "Config: test.yaml (given directly)\n");
    CHECK_CONTAINS(text, "Environment: Production (env KEYMELD_ENVIRONMENT)\n");
    CHECK_CONTAINS(text, "Server: 0.0.0.0:443  [host (default), port (default)]\n");
    CHECK_CONTAINS(text, "TLS: none (plain HTTP");
    CHECK_CONTAINS(text, "Enclaves: 3\n");
    CHECK_CONTAINS(text, "  enclave 0: vsock://16:8000  [cid 16 (env KEYMELD_ENCLAVE_0_CID), "
                         "port 8000 (file test.yaml:6), transport vsock (default)]\n");
    CHECK_CONTAINS(text, "  enclave 2: vsock://5:8000  [cid 5 (file test.yaml:11), ");
    CHECK_CONTAINS(text, "Warnings:\n  test.yaml:11: enclave 2: CID 5 is a template value");
    CHECK(strstr(text, "Errors:") == NULL);
    CHECK_CONTAINS(text, "Configuration OK (1 warning)\n");
    free(text);
    fx_free(f);
}

static void test_report_invalid(void **state)
{
    (void)state;
    static const char *const envp[] = {"KEYMELD_ENVIRONMENT=production", NULL};
    struct fx *f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d, cfgt_dev_yaml, envp), KM_ERR_CONFIG);
    char *text = report(f);
    CHECK_CONTAINS(text, "Environment: Production (env KEYMELD_ENVIRONMENT)\n");
    CHECK_CONTAINS(text, "Warnings:\n  env KEYMELD_ENVIRONMENT: overrides 'environment: "
                         "development' (file test.yaml:1)");
    CHECK_CONTAINS(text, "Errors:\n");
    CHECK_CONTAINS(text, "  test.yaml:11: Duplicate enclave CIDs detected");
    char last[64];
    snprintf(last, sizeof(last), "Configuration invalid: %zu error(s)\n", f->d.errors);
    CHECK_CONTAINS(text, last);
    /* Errors come after warnings. */
    CHECK(strstr(text, "Warnings:") < strstr(text, "Errors:"));
    free(text);
    fx_free(f);
}

static void test_report_clean_and_truncated(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_OK(cfgt_full(&f->c, &f->d, cfgt_dev_yaml, NULL));
    char *text = report(f);
    CHECK_CONTAINS(text, "Environment: Development (file test.yaml:1)\n");
    CHECK_CONTAINS(text, "  enclave 1: vsock://2:5001  [cid 2 (file test.yaml:8), port 5001 "
                         "(file test.yaml:9), transport vsock (default)]\n");
    CHECK(strstr(text, "Warnings:") == NULL);
    CHECK_CONTAINS(text, "Configuration OK\n");
    free(text);
    /* More diagnostics than kept: the rest is counted. */
    for (int i = 0; i < CFG_MAX_DIAG + 5; i++)
        cfg_diag_add(&f->d, CFG_ERROR, "x", "error %d", i);
    text = report(f);
    CHECK_CONTAINS(text, "  ... and 5 more (not shown)\n");
    CHECK_CONTAINS(text, "Configuration invalid: 105 error(s)\n");
    free(text);
    fx_free(f);
}

static void test_report_invalid_enclave_entries(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d,
                        "enclaves:\n  enclaves:\n"
                        "    - {cid: 2, port: 5000}\n"
                        "    - {id: 1, transport: unix, unix_path: /run/e1.sock}\n"
                        "    - {id: 2, cid: 0, port: 5002}\n",
                        NULL),
              KM_ERR_CONFIG);
    char *text = report(f);
    CHECK_CONTAINS(text, "  enclaves.enclaves[0] (no id): (invalid address)  [cid 2 (file "
                         "test.yaml:3), port 5000 (file test.yaml:3), transport vsock (default)]");
    CHECK_CONTAINS(text, "  enclave 1: unix:///run/e1.sock  [unix_path /run/e1.sock (file "
                         "test.yaml:4), transport unix (file test.yaml:4)]");
    CHECK_CONTAINS(text, "  enclave 2: (invalid address)  [cid 0 (file test.yaml:5)");
    free(text);
    fx_free(f);
}

static void test_src_describe(void **state)
{
    (void)state;
    struct cfg c;
    cfg_init(&c, CFG_DEVELOPMENT);
    char buf[256];
    struct cfg_src s = {.kind = CFG_SRC_DEFAULT};
    CHECK_STR_EQ(cfg_src_describe(buf, sizeof(buf), &c, &s), "default");
    s.kind = CFG_SRC_UNSET;
    CHECK_STR_EQ(cfg_src_describe(buf, sizeof(buf), &c, &s), "not set");
    s.kind = CFG_SRC_ENV;
    snprintf(s.var, sizeof(s.var), "KEYMELD_PORT");
    CHECK_STR_EQ(cfg_src_describe(buf, sizeof(buf), &c, &s), "env KEYMELD_PORT");
    s.kind = CFG_SRC_FILE;
    s.line = 14;
    s.var[0] = '\0';
    c.path = strdup("config/production.yaml");
    CHECK_STR_EQ(cfg_src_describe(buf, sizeof(buf), &c, &s), "file config/production.yaml:14");
    CHECK_STR_EQ(cfg_field_key(CFG_F_ENCLAVES_MAX_CONNECTIONS_PER_ENCLAVE),
                 "enclaves.max_connections_per_enclave");
    CHECK_STR_EQ(cfg_enclave_field_key(CFG_EF_TCP_HOST), "enclaves.enclaves[].tcp_host");
    CHECK_STR_EQ(cfg_environment_name(CFG_PRODUCTION), "Production");
    CHECK_STR_EQ(cfg_enclave_env_name(buf, sizeof(buf), 12, "TCP_HOST"),
                 "KEYMELD_ENCLAVE_12_TCP_HOST");
    CHECK_EQ(cfg_source(&c, CFG_F_SERVER_PORT)->kind, CFG_SRC_DEFAULT);
    /* Truncation is safe. */
    char tiny[8];
    cfg_src_describe(tiny, sizeof(tiny), &c, &s);
    CHECK_EQ(strlen(tiny), 7);
    cfg_release(&c);
    cfg_release(&c); /* idempotent */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_report_production_with_overrides),
        TEST(test_report_invalid),
        TEST(test_report_clean_and_truncated),
        TEST(test_report_invalid_enclave_entries),
        TEST(test_src_describe),
    };
    return RUN_TESTS("unit.config.report", tests);
}
