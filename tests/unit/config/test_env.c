/*
 * test_env.c - cfg_apply_env: overrides, their sources, and bad values
 * named by variable. The environment is always a fake one (no setenv).
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

/* Parses yaml without env, then applies envp only. */
static int apply(struct fx *f, const char *yaml, const char *const *envp)
{
    struct cfg_getenv env;
    CHECK_OK(cfgt_parse(&f->c, &f->d, yaml, NULL));
    cfg_getenv_envp(&env, envp);
    return cfg_apply_env(&f->c, &env, &f->d);
}

static void test_seed_cid_overrides_with_sources(void **state)
{
    (void)state;
    static const char *const envp[] = {"KEYMELD_ENCLAVE_0_CID=16", "KEYMELD_ENCLAVE_1_CID=17",
                                       "KEYMELD_ENCLAVE_2_CID=18", "UNRELATED=1", NULL};
    /* TLS terminated in front of the gateway (plain HTTP on 0.0.0.0 is
     * refused in production otherwise). */
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), "%sserver:\n  allow_plain_http: true\n", cfgt_prod_yaml);
    struct fx *f = fx_new();
    CHECK_OK(apply(f, yaml, envp));
    CHECK_OK(cfg_validate(&f->c, &f->d));
    cfgt_clean(&f->d);
    char buf[512];
    for (uint32_t id = 0; id < 3; id++) {
        const struct cfg_enclave *e = cfgt_enclave(&f->c, id);
        CHECK_NOT_NULL(e);
        CHECK_EQ(e->cid, 16 + id);
        CHECK_EQ(e->src[CFG_EF_CID].kind, CFG_SRC_ENV);
        char var[64];
        cfg_enclave_env_name(var, sizeof(var), id, "CID");
        CHECK_STR_EQ(e->src[CFG_EF_CID].var, var);
        /* The port still comes from the file. */
        CHECK_EQ(e->src[CFG_EF_PORT].kind, CFG_SRC_FILE);
        CHECK(e->addr_ok);
    }
    const struct cfg_enclave *e0 = cfgt_enclave(&f->c, 0);
    CHECK_STR_EQ(cfg_src_describe(buf, sizeof(buf), &f->c, &e0->src[CFG_EF_CID]),
                 "env KEYMELD_ENCLAVE_0_CID");
    CHECK_STR_EQ(cfg_enclave_describe(buf, sizeof(buf), &f->c, e0),
                 "vsock://16:8000  [cid 16 (env KEYMELD_ENCLAVE_0_CID), port 8000 (file "
                 "test.yaml:6), transport vsock (default)]");
    fx_free(f);
}

static void test_seed_tcp_mode_by_env(void **state)
{
    (void)state;
    /* The seed's Kubernetes gateway Deployment, on top of the dev file. */
    static const char *const envp[] = {"KEYMELD_ENCLAVE_0_TRANSPORT=tcp",
                                       "KEYMELD_ENCLAVE_0_TCP_HOST=keymeld-enclave-0",
                                       "KEYMELD_ENCLAVE_0_PORT=5000",
                                       "KEYMELD_ENCLAVE_1_TRANSPORT=tcp",
                                       "KEYMELD_ENCLAVE_1_TCP_HOST=keymeld-enclave-1",
                                       "KEYMELD_ENCLAVE_1_PORT=5000",
                                       "KEYMELD_ENCLAVE_2_TRANSPORT=TCP",
                                       "KEYMELD_ENCLAVE_2_PORT=5007",
                                       NULL};
    struct fx *f = fx_new();
    CHECK_OK(apply(f, cfgt_dev_yaml, envp));
    CHECK_OK(cfg_validate(&f->c, &f->d));
    cfgt_clean(&f->d);
    char addr[TP_ADDR_STR_MAX], buf[512];
    CHECK_STR_EQ(tp_addr_format(addr, sizeof(addr), &cfgt_enclave(&f->c, 0)->addr),
                 "tcp://keymeld-enclave-0:5000");
    CHECK_STR_EQ(tp_addr_format(addr, sizeof(addr), &cfgt_enclave(&f->c, 1)->addr),
                 "tcp://keymeld-enclave-1:5000");
    /* No TCP_HOST: "localhost", shown as the default. */
    CHECK_STR_EQ(cfg_enclave_describe(buf, sizeof(buf), &f->c, cfgt_enclave(&f->c, 2)),
                 "tcp://localhost:5007  [tcp_host localhost (default), port 5007 (env "
                 "KEYMELD_ENCLAVE_2_PORT), transport tcp (env KEYMELD_ENCLAVE_2_TRANSPORT)]");
    fx_free(f);
}

static void test_top_level_overrides(void **state)
{
    (void)state;
    static const char *const envp[] = {"KEYMELD_HOST=0.0.0.0",
                                       "KEYMELD_PORT=9000",
                                       "KEYMELD_DATABASE_PATH=/tmp/x.db",
                                       "KEYMELD_LOG_LEVEL=trace",
                                       "KEYMELD_LOG_FORMAT=json",
                                       "KEYMELD_ENCLAVE_0_UNIX_PATH=/run/e0.sock",
                                       "KEYMELD_ENCLAVE_0_TRANSPORT=unix",
                                       NULL};
    struct fx *f = fx_new();
    CHECK_OK(apply(f, cfgt_dev_yaml, envp));
    CHECK_OK(cfg_validate(&f->c, &f->d));
    cfgt_clean(&f->d);
    CHECK_STR_EQ(f->c.server.host, "0.0.0.0");
    CHECK_EQ(f->c.server.port, 9000);
    CHECK_STR_EQ(f->c.database.path, "/tmp/x.db");
    CHECK_EQ(f->c.logging.level, LOG_LEVEL_TRACE);
    CHECK_EQ(f->c.logging.format, LOG_FORMAT_JSON);
    CHECK_EQ(f->c.src[CFG_F_SERVER_PORT].kind, CFG_SRC_ENV);
    CHECK_STR_EQ(f->c.src[CFG_F_SERVER_PORT].var, "KEYMELD_PORT");
    CHECK_STR_EQ(f->c.src[CFG_F_LOGGING_FORMAT].var, "KEYMELD_LOG_FORMAT");
    char addr[TP_ADDR_STR_MAX];
    CHECK_STR_EQ(tp_addr_format(addr, sizeof(addr), &cfgt_enclave(&f->c, 0)->addr),
                 "unix:///run/e0.sock");
    fx_free(f);
}

/* KEYMELD_CORS_ALLOWED_ORIGINS replaces the file's list, and is checked
 * like it (the error names the variable). */
static void test_cors_override(void **state)
{
    (void)state;
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), "%sserver:\n  cors_allowed_origins: https://a.example\n",
             cfgt_dev_yaml);
    static const char *const envp[] = {
        "KEYMELD_CORS_ALLOWED_ORIGINS=https://wallet.example.com, http://localhost:5173", NULL};
    struct fx *f = fx_new();
    CHECK_OK(apply(f, yaml, envp));
    CHECK_OK(cfg_validate(&f->c, &f->d));
    cfgt_clean(&f->d);
    CHECK_STR_EQ(f->c.server.cors_allowed_origins,
                 "https://wallet.example.com, http://localhost:5173");
    CHECK_EQ(f->c.src[CFG_F_SERVER_CORS_ALLOWED_ORIGINS].kind, CFG_SRC_ENV);
    CHECK_STR_EQ(f->c.src[CFG_F_SERVER_CORS_ALLOWED_ORIGINS].var, "KEYMELD_CORS_ALLOWED_ORIGINS");
    fx_free(f);

    static const char *const bad[] = {"KEYMELD_CORS_ALLOWED_ORIGINS=https://wallet.example.com/",
                                      NULL};
    f = fx_new();
    CHECK_OK(apply(f, cfgt_dev_yaml, bad));
    CHECK_ERR(cfg_validate(&f->c, &f->d), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "env KEYMELD_CORS_ALLOWED_ORIGINS",
                   "'https://wallet.example.com/' is not an origin");
    fx_free(f);

    static const char *const empty[] = {"KEYMELD_CORS_ALLOWED_ORIGINS=", NULL};
    f = fx_new();
    CHECK_ERR(apply(f, cfgt_dev_yaml, empty), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "env KEYMELD_CORS_ALLOWED_ORIGINS", "set but empty");
    fx_free(f);
}

static void test_bad_override_names_variable(void **state)
{
    (void)state;
    static const struct {
        const char *var, *needle;
    } cases[] = {
        {"KEYMELD_ENCLAVE_0_CID=abc", "invalid cid of enclave 0: expected a whole number "
                                      "0..4294967295, got 'abc' (fix or unset "
                                      "KEYMELD_ENCLAVE_0_CID)"},
        {"KEYMELD_ENCLAVE_0_CID=-3", "out of range"},
        {"KEYMELD_ENCLAVE_0_CID=16 ", "got '16 '"},
        {"KEYMELD_ENCLAVE_0_CID=4294967296", "out of range"},
        {"KEYMELD_ENCLAVE_0_CID=", "set but empty"},
        {"KEYMELD_ENCLAVE_0_PORT=0", "must be greater than 0"},
        {"KEYMELD_ENCLAVE_0_TRANSPORT=udp", "expected vsock, tcp or unix, got 'udp'"},
        {"KEYMELD_PORT=http", "invalid server.port"},
        {"KEYMELD_PORT=65536", "out of range: expected 1..65535"},
        {"KEYMELD_LOG_LEVEL=verbose", "invalid logging.level"},
        {"KEYMELD_LOG_FORMAT=xml", "expected pretty or json"},
        {"KEYMELD_HOST=a\tb", "control character"},
        {"KEYMELD_ENVIRONMENT=staging", "expected development or production, got 'staging'"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        const char *const envp[] = {cases[i].var, NULL};
        char loc[80];
        snprintf(loc, sizeof(loc), "env %.*s", (int)(strchr(cases[i].var, '=') - cases[i].var),
                 cases[i].var);
        struct fx *f = fx_new();
        CHECK_ERR(apply(f, cfgt_dev_yaml, envp), KM_ERR_CONFIG);
        cfgt_one_error(&f->d, loc, cases[i].needle);
        fx_free(f);
    }
    /* The refused override leaves the file's value and source. */
    static const char *const envp[] = {"KEYMELD_ENCLAVE_1_CID=x", NULL};
    struct fx *f = fx_new();
    CHECK_ERR(apply(f, cfgt_dev_yaml, envp), KM_ERR_CONFIG);
    CHECK_EQ(cfgt_enclave(&f->c, 1)->cid, 2);
    CHECK_EQ(cfgt_enclave(&f->c, 1)->src[CFG_EF_CID].kind, CFG_SRC_FILE);
    fx_free(f);
}

static void test_environment_override(void **state)
{
    (void)state;
    /* The file says development, the variable production: a warning (the
     * original overrode silently), production defaults for keys the file
     * did not set. */
    static const char *const prod[] = {"KEYMELD_ENVIRONMENT=production", NULL};
    struct fx *f = fx_new();
    CHECK_OK(apply(f, "environment: development\nserver:\n  port: 8443\n", prod));
    CHECK_EQ(f->c.environment, CFG_PRODUCTION);
    CHECK_EQ(f->c.src[CFG_F_ENVIRONMENT].kind, CFG_SRC_ENV);
    CHECK_EQ(f->d.warnings, 1);
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "env KEYMELD_ENVIRONMENT: overrides 'environment: development' (file "
                             "test.yaml:1): the effective environment is Production"));
    CHECK_EQ(f->c.server.port, 8443);        /* from the file */
    CHECK(f->c.security.enable_attestation); /* production default */
    CHECK_STR_EQ(f->c.database.path, "/var/lib/keymeld/keymeld.db");
    fx_free(f);

    /* Same value as the file, or no environment key in the file: silent. */
    static const char *const dev[] = {"KEYMELD_ENVIRONMENT=dev", NULL};
    f = fx_new();
    CHECK_OK(apply(f, "environment: development\n", dev));
    cfgt_clean(&f->d);
    fx_free(f);
    f = fx_new();
    CHECK_OK(apply(f, "server:\n  port: 8443\n", prod));
    cfgt_clean(&f->d);
    CHECK_EQ(f->c.environment, CFG_PRODUCTION);
    fx_free(f);

    /* Production file, development variable. */
    f = fx_new();
    CHECK_OK(apply(f, cfgt_prod_yaml, dev));
    CHECK_EQ(f->c.environment, CFG_DEVELOPMENT);
    CHECK_EQ(f->c.server.port, 8090);
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING, "overrides 'environment: production'"));
    fx_free(f);
}

static void test_unknown_enclave_variables_warn(void **state)
{
    (void)state;
    static const char *const envp[] = {"KEYMELD_ENCLAVE_7_CID=20",
                                       "KEYMELD_ENCLAVE_0_CIDD=1",
                                       "KEYMELD_ENCLAVE_X_CID=1",
                                       "KEYMELD_ENCLAVE_01_CID=1",
                                       "KEYMELD_ENCLAVE_99999999999_PORT=1",
                                       "KEYMELD_ENCLAVE_1_PORT=5009",
                                       NULL};
    struct fx *f = fx_new();
    CHECK_OK(apply(f, cfgt_dev_yaml, envp));
    CHECK_EQ(f->d.errors, 0);
    CHECK_EQ(f->d.warnings, 5);
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "env KEYMELD_ENCLAVE_7_CID: no enclave with id 7 in test.yaml "
                             "(ignored): environment variables cannot add enclaves; add '- id: 7' "
                             "to enclaves.enclaves"));
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "env KEYMELD_ENCLAVE_0_CIDD: not a KeyMeld "
                             "variable (ignored)"));
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING, "env KEYMELD_ENCLAVE_X_CID: not a KeyMeld"));
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING, "env KEYMELD_ENCLAVE_01_CID: not a KeyMeld"));
    CHECK_EQ(f->c.enclaves.count, 3); /* no enclave was added */
    CHECK_EQ(cfgt_enclave(&f->c, 1)->port, 5009);
    fx_free(f);
}

static const char *get_only(const void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "KEYMELD_ENCLAVE_0_PORT") == 0 ? "6000" : NULL;
}

static void test_getenv_without_enumeration(void **state)
{
    (void)state;
    struct cfg_getenv env = {.get = get_only};
    struct fx *f = fx_new();
    CHECK_OK(cfgt_parse(&f->c, &f->d, cfgt_dev_yaml, NULL));
    CHECK_OK(cfg_apply_env(&f->c, &env, &f->d));
    cfgt_clean(&f->d);
    CHECK_EQ(cfgt_enclave(&f->c, 0)->port, 6000);
    fx_free(f);
}

static void test_process_environment(void **state)
{
    (void)state;
    /* The real environment adapter reads getenv(); CTest sets
     * KEYMELD_SOURCE_DIR for every test. */
    struct cfg_getenv env;
    cfg_getenv_process(&env);
    CHECK_NOT_NULL(env.get(env.ctx, "KEYMELD_SOURCE_DIR"));
    CHECK_NULL(env.get(env.ctx, "KEYMELD_SURELY_UNSET_VARIABLE_42"));
    bool found = false;
    for (size_t i = 0; env.entry(env.ctx, i) != NULL; i++)
        found = found || strncmp(env.entry(env.ctx, i), "KEYMELD_SOURCE_DIR=", 19) == 0;
    CHECK(found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_seed_cid_overrides_with_sources),
        TEST(test_seed_tcp_mode_by_env),
        TEST(test_top_level_overrides),
        TEST(test_cors_override),
        TEST(test_bad_override_names_variable),
        TEST(test_environment_override),
        TEST(test_unknown_enclave_variables_warn),
        TEST(test_getenv_without_enumeration),
        TEST(test_process_environment),
    };
    return RUN_TESTS("unit.config.env", tests);
}
