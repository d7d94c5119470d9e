/*
 * test_validate.c - cfg_validate: the seed's CID scenarios, address rules
 * and the production rules, each with its message and location.
 */
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Real CIDs for the production base, so no template warnings; a loopback
 * host (a local TLS proxy in front), so plain HTTP is allowed. */
static const char *const prod_cids[] = {"KEYMELD_ENCLAVE_0_CID=16", "KEYMELD_ENCLAVE_1_CID=17",
                                        "KEYMELD_ENCLAVE_2_CID=18", "KEYMELD_HOST=127.0.0.1", NULL};
/* The same CIDs with the production default host (0.0.0.0). */
static const char *const prod_cids_any_host[] = {
    "KEYMELD_ENCLAVE_0_CID=16", "KEYMELD_ENCLAVE_1_CID=17", "KEYMELD_ENCLAVE_2_CID=18", NULL};
/* Appended to cfgt_prod_yaml: TLS terminated in front of the gateway. */
static const char behind_proxy[] = "server:\n  allow_plain_http: true\n";

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
                        "    - {id: 2, cid: 5, port: 8000}\n"
                        "server: {host: 127.0.0.1}\n",
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
                                       "KEYMELD_ENCLAVE_2_CID=17", "KEYMELD_HOST=::1", NULL};
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
                 "      port: 8000\n    - {id: 1, cid: 20, port: 8000}\n"
                 "server: {allow_plain_http: true}\n",
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
    CHECK_OK(full_with(f, cfgt_prod_yaml, behind_proxy, NULL));
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
    CHECK_OK(full_with(f, cfgt_prod_yaml, behind_proxy, one));
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
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "test.yaml:14: CORS is enabled in production for every origin "
                             "(server.enable_cors: true without server.cors_allowed_origins)"));
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
        {"database:\n  url: 'mysql://u:pw@h/db'\n", "test.yaml:14",
         "database.url must be postgresql://USER@HOST:PORT/DB (or postgres://) or sqlite:PATH "
         "(got 'mysql')"},
        {"database:\n  url: 'sqlite:'\n", "test.yaml:14", "database.url 'sqlite:' names no file"},
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

/* database.url: PostgreSQL or SQLite, from the file or KEYMELD_DATABASE_URL;
 * reports never show the password. */
static void test_database_url(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_OK(full_with(f, cfgt_dev_yaml, "database:\n  url: 'sqlite:data/x.db'\n", NULL));
    CHECK_STR_EQ(cfg_database_url(&f->c), "sqlite:data/x.db");
    fx_free(f);

    f = fx_new();
    static const char *const env[] = {
        "KEYMELD_DATABASE_URL=postgresql://keymeld:s3cret@db.internal:5432/keymeld", NULL};
    CHECK_OK(full_with(f, cfgt_dev_yaml, "", env));
    CHECK_STR_EQ(cfg_database_url(&f->c), "postgresql://keymeld:s3cret@db.internal:5432/keymeld");
    char out[256];
    CHECK_STR_EQ(cfg_database_describe(out, sizeof(out), &f->c),
                 "postgresql://keymeld:***@db.internal:5432/keymeld");
    CHECK_EQ(cfg_database_field(&f->c), CFG_F_DATABASE_URL);
    fx_free(f);

    /* Without url, the SQLite file at path, as before. */
    f = fx_new();
    CHECK_OK(full_with(f, cfgt_dev_yaml, "database:\n  path: ./data/y.db\n", NULL));
    CHECK_STR_EQ(cfg_database_url(&f->c), "./data/y.db");
    CHECK_STR_EQ(cfg_database_describe(out, sizeof(out), &f->c), "./data/y.db");
    fx_free(f);

    /* Production: a relative SQLite path in the URL is refused. */
    f = fx_new();
    CHECK_ERR(full_with(f, cfgt_prod_yaml, "database:\n  url: 'sqlite:rel.db'\n", prod_cids),
              KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:14",
                   "database.url must name an absolute SQLite path in production");
    fx_free(f);
}

/* A body deadline too short for the largest body the size limit allows
 * is a warning naming both keys; the defaults (1 MiB in 30 s) are not. */
static void test_body_deadline_warns(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_OK(full_with(f, cfgt_dev_yaml,
                       "server:\n  max_request_size_bytes: 104857600\n  body_timeout_secs: 10\n",
                       NULL));
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "test.yaml:15: server.body_timeout_secs (10) is short for "
                             "server.max_request_size_bytes (104857600): a client must send a "
                             "body of that size at 10240 KiB/s or faster"));
    fx_free(f);
    f = fx_new();
    CHECK_OK(full_with(f, cfgt_dev_yaml, "server:\n  header_timeout_secs: 5\n", NULL));
    CHECK_EQ(f->c.server.header_timeout_secs, 5);
    CHECK_NULL(cfgt_find(&f->d, CFG_WARNING, "body_timeout_secs"));
    fx_free(f);
}

/* server.cors_allowed_origins: origins as browsers send them, or "*"
 * alone; each refusal says what is wrong and what to write. */
static void test_cors_origins(void **state)
{
    (void)state;
    static const char *const good[] = {
        "https://wallet.example.com",
        "https://wallet.example.com,http://localhost:5173",
        " https://a.example , http://127.0.0.1:8080 ",
        "http://[::1]:5173",
        "https://xn--bcher-kva.example:8443",
        "\"*\"",
        " \"  * \"",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(good); i++) {
        char extra[256];
        snprintf(extra, sizeof(extra), "server:\n  cors_allowed_origins: %s\n", good[i]);
        struct fx *f = fx_new();
        if (full_with(f, cfgt_dev_yaml, extra, NULL) != KM_OK) {
            cfgt_dump(&f->d);
            fail_msg("refused: %s", good[i]);
        }
        cfgt_clean(&f->d);
        fx_free(f);
    }

    static const struct {
        const char *list, *needle;
    } bad[] = {
        {"wallet.example.com", "'wallet.example.com' is not an origin: it must start with http:// "
                               "or https://"},
        {"ftp://wallet.example.com", "it must start with http:// or https://"},
        {"HTTPS://wallet.example.com", "it must start with http:// or https://"},
        {"https://Wallet.example.com", "the host must be in lower case"},
        {"https://wallet.example.com/", "an origin has no path, query or trailing '/': write "
                                        "'https://wallet.example.com'"},
        {"https://wallet.example.com/app", "write 'https://wallet.example.com'"},
        {"https://wallet.example.com:443", "browsers leave out the scheme's default port: write "
                                           "'https://wallet.example.com'"},
        {"http://localhost:80", "write 'http://localhost'"},
        {"http://localhost:0", "the port must be a number 1..65535"},
        {"http://localhost:65536", "the port must be a number 1..65535"},
        {"\"http://localhost:\"", "the port must be a number 1..65535"},
        {"https://*.example.com", "no wildcards: list each origin"},
        {"https://wallet_x.example.com", "no wildcards: list each origin"},
        {"https://", "it must start with http:// or https://"},
        {"http://[::1", "it has no host"},
        {"https://a.example,,https://b.example", "entry 2 is empty: remove the extra comma"},
        {"https://a.example,", "entry 2 is empty"},
        {"\"*,https://a.example\"", "'*' (every origin) cannot be combined with other entries"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        char extra[256];
        snprintf(extra, sizeof(extra), "server:\n  cors_allowed_origins: %s\n", bad[i].list);
        struct fx *f = fx_new();
        CHECK_ERR(full_with(f, cfgt_dev_yaml, extra, NULL), KM_ERR_CONFIG);
        cfgt_one_error(&f->d, "test.yaml:14", bad[i].needle);
        CHECK_CONTAINS(f->d.entries[0].msg, "server.cors_allowed_origins");
        fx_free(f);
    }

    /* The limits: CFG_CORS_MAX_ORIGINS entries, CFG_CORS_ORIGIN_MAX bytes each. */
    char *extra = malloc(CFG_CORS_LIST_MAX + 64);
    CHECK_NOT_NULL(extra);
    size_t n = (size_t)snprintf(extra, 64, "server:\n  cors_allowed_origins: ");
    for (int i = 0; i <= CFG_CORS_MAX_ORIGINS; i++)
        n += (size_t)snprintf(extra + n, 64, "%shttp://h%d.example", i ? "," : "", i);
    snprintf(extra + n, 4, "\n");
    struct fx *f = fx_new();
    CHECK_ERR(full_with(f, cfgt_dev_yaml, extra, NULL), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:14", "lists 33 origins: at most 32 are allowed");
    fx_free(f);
    n = (size_t)snprintf(extra, 64, "server:\n  cors_allowed_origins: https://");
    memset(extra + n, 'a', CFG_CORS_ORIGIN_MAX);
    n += CFG_CORS_ORIGIN_MAX - 8 + 1; /* one byte over */
    snprintf(extra + n, 4, "\n");
    f = fx_new();
    CHECK_ERR(full_with(f, cfgt_dev_yaml, extra, NULL), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:14", "entry 1 is 301 bytes long: at most 300 allowed");
    fx_free(f);
    free(extra);
}

/* Production: every origin allowed ("*", or enable_cors without a list)
 * is a warning at the value that does it; a list of origins is not. */
static void test_cors_production(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_OK(full_with(f, cfgt_prod_yaml, "server:\n  cors_allowed_origins: \"*\"\n", prod_cids));
    CHECK_EQ(f->d.warnings, 1);
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "test.yaml:14: CORS allows every origin in production "
                             "(server.cors_allowed_origins is \"*\")"));
    fx_free(f);

    f = fx_new();
    CHECK_OK(full_with(f, cfgt_prod_yaml,
                       "server:\n  enable_cors: true\n  cors_allowed_origins: "
                       "https://wallet.example.com\n",
                       prod_cids));
    cfgt_clean(&f->d);
    fx_free(f);

    static const char *const env_star[] = {
        "KEYMELD_ENCLAVE_0_CID=16", "KEYMELD_ENCLAVE_1_CID=17",       "KEYMELD_ENCLAVE_2_CID=18",
        "KEYMELD_HOST=127.0.0.1",   "KEYMELD_CORS_ALLOWED_ORIGINS=*", NULL};
    f = fx_new();
    CHECK_OK(full_with(f, cfgt_prod_yaml, "", env_star));
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "env KEYMELD_CORS_ALLOWED_ORIGINS: CORS allows every origin"));
    fx_free(f);

    /* "*" in development: no warning. */
    f = fx_new();
    CHECK_OK(full_with(f, cfgt_dev_yaml, "server:\n  cors_allowed_origins: \"*\"\n", NULL));
    cfgt_clean(&f->d);
    fx_free(f);
}

static void test_validate_on_defaults(void **state)
{
    (void)state;
    /* cfg_init alone: only the missing enclaves are wrong, in both
     * environments (the production defaults are production-safe), except
     * that production refuses plain HTTP on 0.0.0.0 until told whether TLS
     * is served or terminated in front. */
    for (int env = CFG_DEVELOPMENT; env <= CFG_PRODUCTION; env++) {
        struct fx *f = fx_new();
        cfg_init(&f->c, (enum cfg_environment)env);
        if (env == CFG_PRODUCTION)
            f->c.server.allow_plain_http = true;
        CHECK_ERR(cfg_validate(&f->c, &f->d), KM_ERR_CONFIG);
        cfgt_one_error(&f->d, "", "enclaves.enclaves is missing");
        fx_free(f);
    }
    struct fx *f = fx_new();
    cfg_init(&f->c, CFG_PRODUCTION);
    CHECK_ERR(cfg_validate(&f->c, &f->d), KM_ERR_CONFIG);
    CHECK_EQ(f->d.errors, 2);
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_ERROR, "Plain HTTP on a network address"));
    fx_free(f);
}

/* ---- HTTPS: server.tls_cert_file, server.tls_key_file, allow_plain_http - */

struct tls_dir {
    char dir[64];
    char cert[96], key[96];
};

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    CHECK_EQ(fchmod(fd, mode), 0);
    CHECK_EQ(close(fd), 0);
}

/* Two placeholder files: the validation only checks they can be read (the
 * gateway parses them when it starts). */
static void tls_dir_make(struct tls_dir *t, mode_t key_mode)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof(t->dir), "%s/km-tlscfg-XXXXXX",
             tmp && tmp[0] && strlen(tmp) < 40 ? tmp : "/tmp");
    CHECK_NOT_NULL(mkdtemp(t->dir));
    snprintf(t->cert, sizeof(t->cert), "%s/cert.pem", t->dir);
    snprintf(t->key, sizeof(t->key), "%s/key.pem", t->dir);
    write_file(t->cert, "-----BEGIN CERTIFICATE-----\n", 0644);
    write_file(t->key, "-----BEGIN PRIVATE KEY-----\n", key_mode);
}

static void tls_dir_remove(struct tls_dir *t)
{
    unlink(t->cert);
    unlink(t->key);
    rmdir(t->dir);
}

static void test_tls_plain_http_production(void **state)
{
    (void)state;
    /* The production default host, no TLS, nothing said: refused, at the
     * host's source, with both ways out in the message. */
    struct fx *f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d, cfgt_prod_yaml, prod_cids_any_host), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml",
                   "Plain HTTP on a network address is not allowed in production: server.host is "
                   "'0.0.0.0' and no TLS certificate is configured");
    const struct cfg_diag_entry *e = cfgt_find(&f->d, CFG_ERROR, "Plain HTTP");
    CHECK_CONTAINS(e->msg, "Set server.tls_cert_file and server.tls_key_file");
    CHECK_CONTAINS(e->msg, "TLS-terminating proxy or load balancer");
    CHECK_CONTAINS(e->msg, "set server.allow_plain_http: true");
    fx_free(f);

    /* A host from the file or the environment: located there. */
    f = fx_new();
    CHECK_ERR(full_with(f, cfgt_prod_yaml, "server:\n  host: 10.0.0.5\n", prod_cids_any_host),
              KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:14", "server.host is '10.0.0.5'");
    fx_free(f);
    static const char *const env_host[] = {"KEYMELD_ENCLAVE_0_CID=16", "KEYMELD_ENCLAVE_1_CID=17",
                                           "KEYMELD_ENCLAVE_2_CID=18",
                                           "KEYMELD_HOST=gateway.example.com", NULL};
    f = fx_new();
    CHECK_ERR(cfgt_full(&f->c, &f->d, cfgt_prod_yaml, env_host), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "env KEYMELD_HOST", "server.host is 'gateway.example.com'");
    fx_free(f);

    /* allow_plain_http: a proxy or load balancer terminates TLS. */
    f = fx_new();
    CHECK_OK(full_with(f, cfgt_prod_yaml, behind_proxy, prod_cids_any_host));
    cfgt_clean(&f->d);
    CHECK(f->c.server.allow_plain_http);
    CHECK_EQ(f->c.src[CFG_F_SERVER_ALLOW_PLAIN_HTTP].kind, CFG_SRC_FILE);
    fx_free(f);

    /* Loopback hosts: only a local proxy can connect. */
    static const char *const loopback[] = {"127.0.0.1", "127.1.2.3", "::1",
                                           "localhost", "LOCALHOST", "::ffff:127.0.0.1"};
    for (size_t i = 0; i < KM_ARRAY_LEN(loopback); i++) {
        char extra[128];
        snprintf(extra, sizeof(extra), "server:\n  host: \"%s\"\n", loopback[i]);
        f = fx_new();
        CHECK_OK(full_with(f, cfgt_prod_yaml, extra, prod_cids_any_host));
        cfgt_clean(&f->d);
        fx_free(f);
    }
    /* Not loopback: 128.0.0.1, ::2, a mapped public address, a name. */
    static const char *const network[] = {"128.0.0.1", "::", "::2", "::ffff:10.0.0.1",
                                          "localhost.example.com"};
    for (size_t i = 0; i < KM_ARRAY_LEN(network); i++) {
        char extra[128];
        snprintf(extra, sizeof(extra), "server:\n  host: \"%s\"\n", network[i]);
        f = fx_new();
        CHECK_ERR(full_with(f, cfgt_prod_yaml, extra, prod_cids_any_host), KM_ERR_CONFIG);
        cfgt_one_error(&f->d, "test.yaml:14", "Plain HTTP on a network address");
        fx_free(f);
    }

    /* Development: plain HTTP anywhere. */
    f = fx_new();
    CHECK_OK(full_with(f, cfgt_dev_yaml, "server:\n  host: 0.0.0.0\n", NULL));
    cfgt_clean(&f->d);
    fx_free(f);

    /* TLS configured: production on 0.0.0.0 is fine. */
    struct tls_dir t;
    tls_dir_make(&t, 0600);
    char extra[512];
    snprintf(extra, sizeof(extra), "server:\n  tls_cert_file: %s\n  tls_key_file: %s\n", t.cert,
             t.key);
    f = fx_new();
    CHECK_OK(full_with(f, cfgt_prod_yaml, extra, prod_cids_any_host));
    cfgt_clean(&f->d);
    CHECK_STR_EQ(f->c.server.tls_cert_file, t.cert);
    CHECK_STR_EQ(f->c.server.tls_key_file, t.key);
    CHECK(!f->c.server.allow_plain_http);
    fx_free(f);
    tls_dir_remove(&t);
}

static void test_tls_files(void **state)
{
    (void)state;
    /* Defaults: no TLS in either environment. */
    struct cfg c;
    cfg_init(&c, CFG_DEVELOPMENT);
    CHECK_STR_EQ(c.server.tls_cert_file, "");
    CHECK_STR_EQ(c.server.tls_key_file, "");
    CHECK(!c.server.allow_plain_http);
    cfg_release(&c);
    cfg_init(&c, CFG_PRODUCTION);
    CHECK_STR_EQ(c.server.tls_cert_file, "");
    CHECK(!c.server.allow_plain_http);
    CHECK_STR_EQ(cfg_field_key(CFG_F_SERVER_TLS_CERT_FILE), "server.tls_cert_file");
    CHECK_STR_EQ(cfg_field_key(CFG_F_SERVER_TLS_KEY_FILE), "server.tls_key_file");
    CHECK_STR_EQ(cfg_field_key(CFG_F_SERVER_ALLOW_PLAIN_HTTP), "server.allow_plain_http");
    cfg_release(&c);

    struct tls_dir t;
    tls_dir_make(&t, 0600);
    char extra[512];

    /* Only one of the two: an error at the one given, in both
     * environments. */
    snprintf(extra, sizeof(extra), "server:\n  tls_cert_file: %s\n", t.cert);
    struct fx *f = fx_new();
    CHECK_ERR(full_with(f, cfgt_dev_yaml, extra, NULL), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:14",
                   "server.tls_cert_file is set but server.tls_key_file is not");
    fx_free(f);
    snprintf(extra, sizeof(extra), "server:\n  tls_key_file: %s\n", t.key);
    f = fx_new();
    CHECK_ERR(full_with(f, cfgt_prod_yaml, extra, prod_cids), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:14",
                   "server.tls_key_file is set but server.tls_cert_file is not");
    fx_free(f);

    /* Files that cannot be read: named, with the cause. */
    snprintf(extra, sizeof(extra), "server:\n  tls_cert_file: %s/missing.pem\n  tls_key_file: %s\n",
             t.dir, t.key);
    f = fx_new();
    CHECK_ERR(full_with(f, cfgt_dev_yaml, extra, NULL), KM_ERR_CONFIG);
    char needle[256];
    snprintf(needle, sizeof(needle),
             "server.tls_cert_file '%s/missing.pem' (the TLS certificate) cannot be read: No "
             "such file or directory",
             t.dir);
    cfgt_one_error(&f->d, "test.yaml:14", needle);
    fx_free(f);
    snprintf(extra, sizeof(extra), "server:\n  tls_cert_file: %s\n  tls_key_file: %s\n", t.cert,
             t.dir);
    f = fx_new();
    CHECK_ERR(full_with(f, cfgt_dev_yaml, extra, NULL), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:15", "(the TLS private key) is not a regular file");
    fx_free(f);

    /* Both readable: clean; a key every user can read: a warning. */
    snprintf(extra, sizeof(extra), "server:\n  tls_cert_file: %s\n  tls_key_file: %s\n", t.cert,
             t.key);
    f = fx_new();
    CHECK_OK(full_with(f, cfgt_dev_yaml, extra, NULL));
    cfgt_clean(&f->d);
    fx_free(f);
    CHECK_EQ(chmod(t.key, 0644), 0);
    f = fx_new();
    CHECK_OK(full_with(f, cfgt_dev_yaml, extra, NULL));
    CHECK_EQ(f->d.warnings, 1);
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING, "test.yaml:15: server.tls_key_file"));
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING, "is readable by every user (mode 0644)"));
    fx_free(f);
    tls_dir_remove(&t);

    /* Wrong types are refused by the parser. */
    f = fx_new();
    CHECK_ERR(full_with(f, cfgt_dev_yaml, "server:\n  allow_plain_http: yes\n", NULL),
              KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:14", "expected true or false, got 'yes'");
    fx_free(f);
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
        TEST(test_database_url),
        TEST(test_body_deadline_warns),
        TEST(test_cors_origins),
        TEST(test_cors_production),
        TEST(test_validate_on_defaults),
        TEST(test_tls_plain_http_production),
        TEST(test_tls_files),
    };
    return RUN_TESTS("unit.config.validate", tests);
}
