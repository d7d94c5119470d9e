/*
 * test_load.c - cfg_load: the shipped config files (config/NAME.yaml), the load order
 * (--config, CONFIG_PATH, config/<env>.yaml) and file errors. The shipped
 * files are read from the source tree (KEYMELD_SOURCE_DIR, set by CTest).
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg_test.h"
#include "common/banned.h"

struct fx {
    struct cfg c;
    struct cfg_diag d;
    struct cfg_getenv env;
};

static struct fx *fx_new(const char *const *envp)
{
    static const char *const empty[] = {NULL};
    struct fx *f = calloc(1, sizeof(*f));
    CHECK_NOT_NULL(f);
    cfg_diag_init(&f->d);
    cfg_getenv_envp(&f->env, envp ? envp : empty);
    return f;
}

static void fx_free(struct fx *f)
{
    cfg_release(&f->c);
    cfg_diag_release(&f->d);
    free(f);
}

static int load_path(struct fx *f, const char *path)
{
    struct cfg_load_opts o = {.path = path, .env = &f->env};
    return cfg_load(&f->c, &o, &f->d);
}

static void check_addr(const struct cfg *c, uint32_t id, const char *want)
{
    char addr[TP_ADDR_STR_MAX];
    const struct cfg_enclave *e = cfgt_enclave(c, id);
    CHECK_NOT_NULL(e);
    CHECK(e->addr_ok);
    CHECK_STR_EQ(tp_addr_format(addr, sizeof(addr), &e->addr), want);
}

static void test_shipped_development(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    CHECK_OK(load_path(f, cfgt_source_path("config/development.yaml")));
    cfgt_clean(&f->d);
    CHECK_EQ(f->c.environment, CFG_DEVELOPMENT);
    CHECK_EQ(f->c.path_origin, CFG_PATH_ARG);
    CHECK_EQ(f->c.enclaves.count, 3);
    check_addr(&f->c, 0, "vsock://2:5000");
    check_addr(&f->c, 1, "vsock://2:5001");
    check_addr(&f->c, 2, "vsock://2:5002");
    CHECK(f->c.development.present);
    fx_free(f);
}

static void test_shipped_development_tcp(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    CHECK_OK(load_path(f, cfgt_source_path("config/development-tcp.yaml")));
    cfgt_clean(&f->d);
    check_addr(&f->c, 0, "tcp://127.0.0.1:5000");
    check_addr(&f->c, 1, "tcp://127.0.0.1:5001");
    check_addr(&f->c, 2, "tcp://127.0.0.1:5002");
    fx_free(f);
}

static void test_shipped_development_k8s(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    CHECK_OK(load_path(f, cfgt_source_path("config/development-k8s.yaml")));
    cfgt_clean(&f->d);
    check_addr(&f->c, 0, "tcp://keymeld-enclave-0:5000");
    check_addr(&f->c, 1, "tcp://keymeld-enclave-1:5000");
    check_addr(&f->c, 2, "tcp://keymeld-enclave-2:5000");
    fx_free(f);
}

static void test_shipped_production(void **state)
{
    (void)state;
    /* Template CIDs, not overridden: valid, with one warning each. */
    struct fx *f = fx_new(NULL);
    CHECK_OK(load_path(f, cfgt_source_path("config/production.yaml")));
    CHECK_EQ(f->c.environment, CFG_PRODUCTION);
    CHECK_EQ(f->d.errors, 0);
    CHECK_EQ(f->d.warnings, 3);
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING, "export KEYMELD_ENCLAVE_0_CID="));
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING, "export KEYMELD_ENCLAVE_2_CID="));
    check_addr(&f->c, 0, "vsock://3:8000");
    check_addr(&f->c, 2, "vsock://5:8000");
    fx_free(f);

    /* The seed's deployment: CIDs from nitro-cli. */
    static const char *const envp[] = {"KEYMELD_ENVIRONMENT=production", "KEYMELD_ENCLAVE_0_CID=16",
                                       "KEYMELD_ENCLAVE_1_CID=17", "KEYMELD_ENCLAVE_2_CID=18",
                                       NULL};
    f = fx_new(envp);
    CHECK_OK(load_path(f, cfgt_source_path("config/production.yaml")));
    cfgt_clean(&f->d);
    check_addr(&f->c, 0, "vsock://16:8000");
    check_addr(&f->c, 1, "vsock://17:8000");
    check_addr(&f->c, 2, "vsock://18:8000");
    fx_free(f);
}

static void test_shipped_dev_files_fail_in_production(void **state)
{
    (void)state;
    static const char *const files[] = {"config/development.yaml", "config/development-tcp.yaml",
                                        "config/development-k8s.yaml"};
    static const char *const envp[] = {"KEYMELD_ENVIRONMENT=production", NULL};
    for (size_t i = 0; i < KM_ARRAY_LEN(files); i++) {
        struct fx *f = fx_new(envp);
        CHECK_ERR(load_path(f, cfgt_source_path(files[i])), KM_ERR_CONFIG);
        CHECK_NOT_NULL(cfgt_find(&f->d, CFG_ERROR, "Attestation must be enabled in production"));
        CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING, "env KEYMELD_ENVIRONMENT: overrides "));
        fx_free(f);
    }
}

static void test_load_order(void **state)
{
    (void)state;
    const char *src = getenv("KEYMELD_SOURCE_DIR");
    CHECK_NOT_NULL(src);
    char tcp[4096], env_cp[4200];
    snprintf(tcp, sizeof(tcp), "%s", cfgt_source_path("config/development-tcp.yaml"));
    snprintf(env_cp, sizeof(env_cp), "CONFIG_PATH=%s", tcp);

    /* --config wins over CONFIG_PATH. */
    const char *const with_cp[] = {env_cp, NULL};
    struct fx *f = fx_new(with_cp);
    CHECK_OK(load_path(f, cfgt_source_path("config/development-k8s.yaml")));
    CHECK_EQ(f->c.path_origin, CFG_PATH_ARG);
    check_addr(&f->c, 0, "tcp://keymeld-enclave-0:5000");
    fx_free(f);

    /* CONFIG_PATH wins over KEYMELD_ENVIRONMENT's default file. */
    const char *const cp_and_env[] = {env_cp, "KEYMELD_ENVIRONMENT=development", NULL};
    f = fx_new(cp_and_env);
    struct cfg_load_opts o = {.env = &f->env, .base_dir = src};
    CHECK_OK(cfg_load(&f->c, &o, &f->d));
    CHECK_EQ(f->c.path_origin, CFG_PATH_CONFIG_PATH);
    CHECK_STR_EQ(f->c.path, tcp);
    fx_free(f);

    /* Neither: config/<env>.yaml under base_dir, env defaulting to
     * development. */
    f = fx_new(NULL);
    o.env = &f->env;
    CHECK_OK(cfg_load(&f->c, &o, &f->d));
    CHECK_EQ(f->c.path_origin, CFG_PATH_DEFAULT);
    CHECK_CONTAINS(f->c.path, "config/development.yaml");
    fx_free(f);

    static const char *const prod[] = {"KEYMELD_ENVIRONMENT=prod", NULL};
    f = fx_new(prod);
    o.env = &f->env;
    CHECK_OK(cfg_load(&f->c, &o, &f->d));
    CHECK_CONTAINS(f->c.path, "config/production.yaml");
    CHECK_EQ(f->c.environment, CFG_PRODUCTION);
    fx_free(f);
}

static void test_file_errors(void **state)
{
    (void)state;
    /* Missing file: an error naming it and how to fix it, never a silent
     * fall-back to defaults. */
    struct fx *f = fx_new(NULL);
    CHECK_ERR(load_path(f, "/nonexistent/keymeld.yaml"), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "/nonexistent/keymeld.yaml",
                   "cannot open the configuration file: No such file or directory (check the "
                   "--config argument)");
    CHECK_EQ(f->c.enclaves.count, 0);
    fx_free(f);

    static const char *const cp[] = {"CONFIG_PATH=/nonexistent/cp.yaml", NULL};
    f = fx_new(cp);
    struct cfg_load_opts o = {.env = &f->env};
    CHECK_ERR(cfg_load(&f->c, &o, &f->d), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "/nonexistent/cp.yaml", "CONFIG_PATH names it");
    fx_free(f);

    static const char *const cp_empty[] = {"CONFIG_PATH=", NULL};
    f = fx_new(cp_empty);
    o.env = &f->env;
    CHECK_ERR(cfg_load(&f->c, &o, &f->d), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "env CONFIG_PATH", "set but empty");
    fx_free(f);

    static const char *const bad_env[] = {"KEYMELD_ENVIRONMENT=staging", NULL};
    f = fx_new(bad_env);
    o.env = &f->env;
    CHECK_ERR(cfg_load(&f->c, &o, &f->d), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "env KEYMELD_ENVIRONMENT",
                   "invalid environment: expected development or production, got 'staging'");
    fx_free(f);

    static const char *const base_env[] = {NULL};
    f = fx_new(base_env);
    o.env = &f->env;
    o.base_dir = "/nonexistent";
    CHECK_ERR(cfg_load(&f->c, &o, &f->d), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "/nonexistent/config/development.yaml",
                   "run from the repository root, pass --config FILE, or set CONFIG_PATH");
    fx_free(f);

    f = fx_new(NULL);
    CHECK_ERR(load_path(f, "/"), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "/", "is a directory");
    fx_free(f);

    f = fx_new(NULL);
    CHECK_ERR(load_path(f, ""), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "--config", "needs a file name");
    fx_free(f);
}

static char *write_temp(const void *data, size_t len)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/km_test_cfg_XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, data, len) == (ssize_t)len);
    close(fd);
    return path;
}

static void test_file_content_errors(void **state)
{
    (void)state;
    /* Larger than CFG_MAX_FILE_SIZE. */
    size_t big = CFG_MAX_FILE_SIZE + 10;
    char *data = malloc(big);
    CHECK_NOT_NULL(data);
    memset(data, '#', big);
    char *path = write_temp(data, big);
    free(data);
    struct fx *f = fx_new(NULL);
    CHECK_ERR(load_path(f, path), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, path, "larger than 1048576 bytes");
    unlink(path);
    fx_free(f);

    /* Malformed YAML: just the YAML error, no validation noise. */
    static const char bad[] = "enclaves:\n  enclaves:\n    - id: 0\n   cid: 2\n";
    path = write_temp(bad, sizeof(bad) - 1);
    f = fx_new(NULL);
    CHECK_ERR(load_path(f, path), KM_ERR_CONFIG);
    char loc[128];
    snprintf(loc, sizeof(loc), "%s:4", path);
    cfgt_one_error(&f->d, loc, "invalid YAML");
    unlink(path);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_shipped_development),
        TEST(test_shipped_development_tcp),
        TEST(test_shipped_development_k8s),
        TEST(test_shipped_production),
        TEST(test_shipped_dev_files_fail_in_production),
        TEST(test_load_order),
        TEST(test_file_errors),
        TEST(test_file_content_errors),
    };
    return RUN_TESTS("unit.config.load", tests);
}
