/*
 * test_validate.c - cfg_validate: the seed's CID scenarios, address rules
 * and the production rules, each with its message and location.
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

/* Real CIDs for the production base, so no template warnings. */
static const char *const prod_cids[] = {"KEYMELD_ENCLAVE_0_CID=16", "KEYMELD_ENCLAVE_1_CID=17",
                                        "KEYMELD_ENCLAVE_2_CID=18", NULL};

/* cfgt_full on base + extra (appended top-level sections, from line 13). */
static int full_with(struct fx *f, const char *base, const char *extra, const char *const *envp)
{
    char yaml[8192];
    snprintf(yaml, sizeof(yaml), "%s%s", base, extra);
    return cfgt_full(&f->c, &f->d, yaml, envp);
}

static void test_seed_production_duplicate_cids(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d,
                        "environment: production\n"
                        "enclaves:\n"
                        "  enclaves:\n"
                        "    - {id: 0, cid: 3, port: 8000}\n"
                        "    - {id: 1, cid: 3, port: 8001}\n"
                        "    - {id: 2, cid: 5, port: 8000}\n",
                        NULL),
              KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:5",
                   "Duplicate enclave CIDs detected: enclaves 0, 1 all use CID 3 in production");
    const struct cfg_diag_entry *e = cfgt_find(&f->d, CFG_ERROR, "Duplicate");
    /* The seed's troubleshooting, in the message itself. */
    CHECK_CONTAINS(e->msg, "Development mode allows a shared CID 2");
    CHECK_CONTAINS(e->msg, "check KEYMELD_ENVIRONMENT (environment is production, from file "
                           "test.yaml:1)");
    fx_free(f);

    /* Duplicates made by the environment point at the variable. */
    static const char *const envp[] = {"KEYMELD_ENCLAVE_0_CID=16", "KEYMELD_ENCLAVE_1_CID=16",
                                       "KEYMELD_ENCLAVE_2_CID=17", NULL};
    f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d, cfgt_prod_yaml, envp), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "env KEYMELD_ENCLAVE_1_CID", "Duplicate enclave CIDs detected");
    fx_free(f);
}

static void test_seed_development_shares_cid_2(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_OK(cfgt_full(&f->c, &f->d, cfgt_dev_yaml, NULL));
    cfgt_clean(&f->d);
    for (size_t i = 0; i < 3; i++) {
        CHECK(f->c.enclaves.list[i].addr_ok);
        CHECK_EQ(f->c.enclaves.list[i].addr.cid, 2);
    }
    fx_free(f);

    /* The same file forced into production: the seed's symptom. */
    static const char *const envp[] = {"KEYMELD_ENVIRONMENT=production", NULL};
    f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d, cfgt_dev_yaml, envp), KM_ERR_CONFIG);
    const struct cfg_diag_entry *e = cfgt_find(&f->d, CFG_ERROR, "Duplicate enclave CIDs detected");
    CHECK_NOT_NULL(e);
    CHECK_CONTAINS(e->msg, "enclaves 0, 1, 2 all use CID 2");
    CHECK_CONTAINS(e->msg, "from env KEYMELD_ENVIRONMENT");
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_ERROR,
                             "test.yaml:5: enclave 0: CID 2 (the host) is for "
                             "development only"));
    fx_free(f);
}

static void test_same_address_twice(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d,
                        "enclaves:\n  enclaves:\n"
                        "    - {id: 0, cid: 2, port: 5000}\n"
                        "    - {id: 1, cid: 2, port: 5000}\n",
                        NULL),
              KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:4", "enclaves 0 and 1 both use vsock://2:5000");
    fx_free(f);
    /* TCP: host names compare case-insensitively. */
    f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d,
                        "enclaves:\n  enclaves:\n"
                        "    - {id: 0, transport: tcp, tcp_host: Enclave-A, port: 5000}\n"
                        "    - {id: 1, transport: tcp, tcp_host: enclave-a, port: 5000}\n",
                        NULL),
              KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:4", "both use tcp://enclave-a:5000");
    fx_free(f);
    /* Same port, different hosts (development-k8s.yaml): fine. */
    f = fx_new();
    CHECK_OK(cfgt_full(
        &f->c, &f->d,
        "enclaves:\n  enclaves:\n"
        "    - {id: 0, cid: 2, transport: tcp, tcp_host: keymeld-enclave-0, port: 5000}\n"
        "    - {id: 1, cid: 2, transport: tcp, tcp_host: keymeld-enclave-1, port: 5000}\n",
        NULL));
    cfgt_clean(&f->d);
    fx_free(f);
}

static void test_cid_rules(void **state)
{
    (void)state;
    static const struct {
        const char *env, *cid0, *loc, *needle;
    } errors[] = {
        {"development", "0", "test.yaml:5",
         "enclave 0: CID 0 is reserved and never valid: use CID 2 in development"},
        {"production", "0", "test.yaml:5", "CID 0 is reserved"},
        {"development", "4294967295", "test.yaml:5", "VMADDR_CID_ANY"},
        {"production", "1", "test.yaml:5",
         "enclave 0: CID 1 (local loopback) is for development only: in production set KEYMELD_ENCLAVE_0_CID"},
        {"production", "2", "test.yaml:5", "CID 2 (the host) is for development only"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(errors); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 "environment: %s\nenclaves:\n  enclaves:\n    - id: 0\n      cid: %s\n"
                 "      port: 8000\n    - {id: 1, cid: 20, port: 8000}\n",
                 errors[i].env, errors[i].cid0);
        static const char *const envp[] = {"KEYMELD_ENCLAVE_1_CID=20", NULL};
        struct fx *f = fx_new();
        CHECK_ERR(
            cfgt_full(&f->c, &f->d, yaml, strcmp(errors[i].env, "production") == 0 ? envp : NULL),
            KM_ERR_CONFIG);
        cfgt_one_error(&f->d, errors[i].loc, errors[i].needle);
        fx_free(f);
    }
    /* Guest CIDs in development: allowed, with the seed's hint. */
    struct fx *f = fx_new();
    CHECK_OK(cfgt_full(&f->c, &f->d,
                       "enclaves:\n  enclaves:\n"
                       "    - {id: 0, cid: 3, port: 5000}\n"
                       "    - {id: 1, cid: 2, port: 5001}\n",
                       NULL));
    CHECK_EQ(f->d.warnings, 1);
    const struct cfg_diag_entry *w = cfgt_find(&f->d, CFG_WARNING, "test.yaml:3: enclave 0: CID 3");
    CHECK_NOT_NULL(w);
    CHECK_CONTAINS(w->msg, "No such device (os error 19)");
    CHECK_CONTAINS(w->msg, "use CID 2 (the host) for all enclaves in development");
    fx_free(f);
}

static void test_production_template_cids_warn(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_OK(cfgt_full(&f->c, &f->d, cfgt_prod_yaml, NULL));
    CHECK_EQ(f->d.warnings, 3);
    const struct cfg_diag_entry *w = cfgt_find(&f->d, CFG_WARNING, "test.yaml:5: enclave 0: CID 3");
    CHECK_NOT_NULL(w);
    CHECK_CONTAINS(w->msg, "export KEYMELD_ENCLAVE_0_CID=");
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "test.yaml:11: enclave 2: CID 5 is a template "
                             "value from the file"));
    fx_free(f);

    /* Overriding one leaves two warnings; overriding all, none. */
    static const char *const one[] = {"KEYMELD_ENCLAVE_1_CID=30", NULL};
    f = fx_new();
    CHECK_OK(cfgt_full(&f->c, &f->d, cfgt_prod_yaml, one));
    CHECK_EQ(f->d.warnings, 2);
    CHECK_NULL(cfgt_find(&f->d, CFG_WARNING, "KEYMELD_ENCLAVE_1_CID"));
    fx_free(f);
    f = fx_new();
    CHECK_OK(cfgt_full(&f->c, &f->d, cfgt_prod_yaml, prod_cids));
    cfgt_clean(&f->d);
    fx_free(f);
}

static void test_enclave_count_and_ids(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d, "enclaves:\n  enclaves:\n    - {id: 0, cid: 2, port: 5000}\n",
                        NULL),
              KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:3", "at least 2 enclaves are required");
    fx_free(f);
    f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d, "server:\n  port: 8091\n", NULL), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml", "enclaves.enclaves is missing");
    fx_free(f);
    f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d,
                        "enclaves:\n  enclaves:\n"
                        "    - {id: 4, cid: 2, port: 5000}\n"
                        "    - {id: 4, cid: 2, port: 5001}\n",
                        NULL),
              KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:4",
                   "enclave id 4 is used twice (enclaves.enclaves[0] at line 3 and [1])");
    fx_free(f);
}

static void test_required_enclave_fields(void **state)
{
    (void)state;
    static const struct {
        const char *item, *loc, *needle;
    } cases[] = {
        {"{cid: 2, port: 5001}", "test.yaml:4", "enclaves.enclaves[1]: missing id: add 'id: 1'"},
        {"{id: 1, cid: 2}", "test.yaml:4",
         "enclave 1: missing port: add 'port: ...' or set KEYMELD_ENCLAVE_1_PORT"},
        {"{id: 1, port: 5001}", "test.yaml:4", "enclave 1: missing cid for transport vsock"},
        {"{id: 1, transport: unix}", "test.yaml:4", "enclave 1: transport unix needs unix_path"},
        {"{id: 1, transport: unix, unix_path: rel.sock}", "test.yaml:4",
         "unix socket path must be absolute"},
        {"{id: 1, transport: tcp, port: 70000}", "test.yaml:4",
         "enclave 1: TCP port 70000 is out of range 1..65535"},
        {"{id: 1, transport: tcp, tcp_host: 'a b', port: 5001}", "test.yaml:4",
         "invalid TCP host 'a b'"},
        {"{id: 1, cid: 2, port: 4294967295}", "test.yaml:4", "vsock port must be 1..4294967294"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 "enclaves:\n  enclaves:\n    - {id: 0, cid: 2, port: 5000}\n    - %s\n",
                 cases[i].item);
        struct fx *f = fx_new();
        CHECK_ERR(cfgt_full(&f->c, &f->d, yaml, NULL), KM_ERR_CONFIG);
        cfgt_one_error(&f->d, cases[i].loc, cases[i].needle);
        fx_free(f);
    }
    /* A missing value supplied by the environment is fine. */
    static const char *const envp[] = {"KEYMELD_ENCLAVE_1_CID=2", NULL};
    struct fx *f = fx_new();
    CHECK_OK(cfgt_full(&f->c, &f->d,
                       "enclaves:\n  enclaves:\n    - {id: 0, cid: 2, port: 5000}\n"
                       "    - {id: 1, port: 5001}\n",
                       envp));
    cfgt_clean(&f->d);
    fx_free(f);
    /* tcp_host with transport vsock is ignored, with a warning. */
    f = fx_new();
    CHECK_OK(cfgt_full(&f->c, &f->d,
                       "enclaves:\n  enclaves:\n    - {id: 0, cid: 2, port: 5000}\n"
                       "    - {id: 1, cid: 2, port: 5001, tcp_host: x}\n",
                       NULL));
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "test.yaml:4: enclave 1: tcp_host is ignored with "
                             "transport vsock"));
    fx_free(f);
}

static void test_production_rules(void **state)
{
    (void)state;
    static const struct {
        const char *extra, *loc, *needle;
    } cases[] = {
        {"security:\n  enable_attestation: false\n", "test.yaml:14",
         "Attestation must be enabled in production: set security.enable_attestation: true"},
        {"security:\n  strict_validation: false\n", "test.yaml:14",
         "Strict validation must be enabled in production"},
        {"security:\n  require_tls: false\n", "test.yaml:14", "TLS must be required in production"},
        {"development:\n  extended_logging: false\n", "test.yaml:13",
         "Development configuration is not allowed in production: remove the development: section"},
        {"server:\n  port: 8090\n", "test.yaml:14",
         "Default development ports are not allowed in production: server.port is 8090"},
        {"server:\n  port: 3000\n", "test.yaml:14", "server.port is 3000"},
        {"database:\n  path: ./data/keymeld.db\n", "test.yaml:14",
         "database.path must be absolute in production (got './data/keymeld.db')"},
        {"database:\n  path: ../k.db\n", "test.yaml:14", "must be absolute in production"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        struct fx *f = fx_new();
        CHECK_ERR(full_with(f, cfgt_prod_yaml, cases[i].extra, prod_cids), KM_ERR_CONFIG);
        cfgt_one_error(&f->d, cases[i].loc, cases[i].needle);
        fx_free(f);
    }
    /* Insecure connections: their own rule plus the TLS conflict. */
    struct fx *f = fx_new();
    CHECK_ERR(
        full_with(f, cfgt_prod_yaml, "security:\n  allow_insecure_connections: true\n", prod_cids),
        KM_ERR_CONFIG);
    CHECK_EQ(f->d.errors, 2);
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_ERROR,
                             "test.yaml:14: Insecure connections are not "
                             "allowed in production"));
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_ERROR,
                             "Configuration conflict: TLS is required but "
                             "insecure connections are allowed"));
    fx_free(f);
    /* CORS: a warning only. */
    f = fx_new();
    CHECK_OK(full_with(f, cfgt_prod_yaml, "server:\n  enable_cors: true\n", prod_cids));
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING, "test.yaml:14: CORS is enabled in production"));
    fx_free(f);
    /* The same file in development is accepted. */
    f = fx_new();
    CHECK_OK(full_with(f, cfgt_dev_yaml,
                       "security:\n  enable_attestation: false\ndevelopment:\n"
                       "  extended_logging: true\ndatabase:\n  path: ./x.db\n",
                       NULL));
    cfgt_clean(&f->d);
    fx_free(f);
}

static void test_general_rules(void **state)
{
    (void)state;
    static const struct {
        const char *extra, *loc, *needle;
    } cases[] = {
        {"kms:\n  enabled: true\n", "test.yaml", "KMS key_id is required when KMS is enabled"},
        {"kms:\n  enabled: true\n  key_id: \"\"\n", "test.yaml:15", "KMS key_id is required"},
        {"kms:\n  endpoint_url: localhost:4566\n", "test.yaml:14",
         "kms.endpoint_url must start with http:// or https://"},
        {"security:\n  require_tls: true\n", "test.yaml",
         "Configuration conflict: TLS is required but insecure connections are allowed"},
        {"logging:\n  enable_file_output: true\n  file_path: ''\n", "test.yaml:15",
         "logging.enable_file_output is true but logging.file_path is empty"},
        {"server:\n  host: 'not a host'\n", "test.yaml:14",
         "server.host 'not a host' is not a host name or IP address"},
        {"database:\n  path: ''\n", "test.yaml:14", "Database path cannot be empty"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        struct fx *f = fx_new();
        CHECK_ERR(full_with(f, cfgt_dev_yaml, cases[i].extra, NULL), KM_ERR_CONFIG);
        cfgt_one_error(&f->d, cases[i].loc, cases[i].needle);
        fx_free(f);
    }
    struct fx *f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d,
                        "enclaves:\n"
                        "  initial_retry_delay_ms: 900\n"
                        "  max_retry_delay_ms: 800\n"
                        "  enclaves: [{id: 0, cid: 2, port: 5000}, {id: 1, cid: 2, port: 5001}]\n",
                        NULL),
              KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:3",
                   "enclaves.max_retry_delay_ms (800) is below enclaves.initial_retry_delay_ms "
                   "(900)");
    fx_free(f);
}

static void test_validate_on_defaults(void **state)
{
    (void)state;
    /* cfg_init alone: only the missing enclaves are wrong, in both
     * environments (the production defaults are production-safe). */
    for (int env = CFG_DEVELOPMENT; env <= CFG_PRODUCTION; env++) {
        struct fx *f = fx_new();
        cfg_init(&f->c, (enum cfg_environment)env);
        CHECK_ERR(cfg_validate(&f->c, &f->d), KM_ERR_CONFIG);
        cfgt_one_error(&f->d, "", "enclaves.enclaves is missing");
        fx_free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_seed_production_duplicate_cids),
        TEST(test_seed_development_shares_cid_2),
        TEST(test_same_address_twice),
        TEST(test_cid_rules),
        TEST(test_production_template_cids_warn),
        TEST(test_enclave_count_and_ids),
        TEST(test_required_enclave_fields),
        TEST(test_production_rules),
        TEST(test_general_rules),
        TEST(test_validate_on_defaults),
    };
    return RUN_TESTS("unit.config.validate", tests);
}
