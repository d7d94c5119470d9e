/*
 * test_parse.c - cfg_parse: schema, defaults, sources, and every kind of
 * bad input producing one clear message at file:line.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_test.h"
#include "config/internal.h"
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

/* Parses dev_yaml with extra text appended (new top-level sections). */
static int parse_with(struct fx *f, const char *extra, const char *const *envp)
{
    char yaml[8192];
    snprintf(yaml, sizeof(yaml), "%s%s", cfgt_dev_yaml, extra);
    return cfgt_parse(&f->c, &f->d, yaml, envp);
}

static void test_dev_defaults_and_sources(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_OK(cfgt_parse(&f->c, &f->d, cfgt_dev_yaml, NULL));
    cfgt_clean(&f->d);
    CHECK_EQ(f->c.environment, CFG_DEVELOPMENT);
    CHECK_EQ(f->c.src[CFG_F_ENVIRONMENT].kind, CFG_SRC_FILE);
    CHECK_EQ(f->c.src[CFG_F_ENVIRONMENT].line, 1);
    /* Development defaults (docs/CONFIGURATION.md). */
    CHECK_EQ(f->c.server.port, 8090);
    CHECK_STR_EQ(f->c.server.host, "127.0.0.1");
    CHECK_EQ(f->c.src[CFG_F_SERVER_PORT].kind, CFG_SRC_DEFAULT);
    /* CORS is off unless configured (docs/API.md "CORS"). */
    CHECK(!f->c.server.enable_cors);
    CHECK_STR_EQ(f->c.server.cors_allowed_origins, "");
    CHECK_EQ(f->c.src[CFG_F_SERVER_CORS_ALLOWED_ORIGINS].kind, CFG_SRC_DEFAULT);
    CHECK_EQ(f->c.server.header_timeout_secs, 10);
    CHECK_EQ(f->c.server.body_timeout_secs, 30);
    CHECK_STR_EQ(f->c.database.path, "./data/keymeld-dev.db");
    CHECK_EQ(f->c.enclaves.max_message_size_bytes, 16777216);
    CHECK_EQ(f->c.enclaves.connection_load_threshold, 50);
    CHECK_EQ(f->c.enclaves.max_connections_per_enclave, 8);
    CHECK_EQ(f->c.enclaves.max_retry_attempts, 3);
    CHECK(f->c.enclaves.retry_backoff_multiplier == 2.0);
    CHECK_EQ(f->c.logging.format, LOG_FORMAT_PRETTY);
    CHECK(!f->c.security.enable_attestation);
    CHECK(f->c.security.allow_insecure_connections);
    CHECK(!f->c.development.present);
    /* Enclaves with their lines. */
    CHECK_EQ(f->c.enclaves.count, 3);
    const struct cfg_enclave *e = &f->c.enclaves.list[1];
    CHECK_EQ(e->id, 1);
    CHECK_EQ(e->cid, 2);
    CHECK_EQ(e->port, 5001);
    CHECK_EQ(e->transport, TP_KIND_VSOCK);
    CHECK_EQ(e->line, 7);
    CHECK_EQ(e->src[CFG_EF_CID].kind, CFG_SRC_FILE);
    CHECK_EQ(e->src[CFG_EF_CID].line, 8);
    CHECK_EQ(e->src[CFG_EF_PORT].line, 9);
    CHECK_EQ(e->src[CFG_EF_TRANSPORT].kind, CFG_SRC_DEFAULT);
    CHECK_EQ(e->src[CFG_EF_UNIX_PATH].kind, CFG_SRC_UNSET);
    fx_free(f);
}

static void test_production_defaults(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_OK(cfgt_parse(&f->c, &f->d, cfgt_prod_yaml, NULL));
    CHECK_EQ(f->c.environment, CFG_PRODUCTION);
    CHECK_EQ(f->c.server.port, 443);
    CHECK_STR_EQ(f->c.server.host, "0.0.0.0");
    CHECK(!f->c.server.enable_cors);
    CHECK_STR_EQ(f->c.server.cors_allowed_origins, "");
    CHECK_STR_EQ(f->c.database.path, "/var/lib/keymeld/keymeld.db");
    CHECK_EQ(f->c.logging.format, LOG_FORMAT_JSON);
    CHECK(f->c.security.enable_attestation);
    CHECK(f->c.security.strict_validation);
    CHECK(!f->c.security.allow_insecure_connections);
    CHECK(f->c.security.require_tls);
    CHECK_EQ(f->c.src[CFG_F_SECURITY_REQUIRE_TLS].kind, CFG_SRC_DEFAULT);
    fx_free(f);
}

/* Sets every scalar key of the schema to a non-default value: each must be
 * accepted silently and recorded with source file:line. */
static const char *sample_value(const struct cfg_field_def *d)
{
    switch (d->type) {
    case CFG_T_BOOL:
        return "true";
    case CFG_T_F64:
        return "3.5";
    case CFG_T_LOG_LEVEL:
        return "warn";
    case CFG_T_LOG_FORMAT:
        return "json";
    case CFG_T_U32:
        return d->max >= 4000 ? "4000" : "7";
    case CFG_T_STR:
        return strcmp(d->key, "endpoint_url") == 0 ? "http://127.0.0.1:4566" : "/some/value";
    default:
        return NULL;
    }
}

static void test_every_key_is_accepted(void **state)
{
    (void)state;
    static const char *const sections[] = {"server",   "database",    "kms",
                                           "enclaves", "coordinator", "logging",
                                           "security", "audit",       "development"};
    char *yaml = malloc(65536);
    CHECK_NOT_NULL(yaml);
    size_t n = (size_t)snprintf(yaml, 65536, "environment: development\n");
    for (size_t s = 0; s < KM_ARRAY_LEN(sections); s++) {
        n += (size_t)snprintf(yaml + n, 65536 - n, "%s:\n", sections[s]);
        if (strcmp(sections[s], "enclaves") == 0)
            n += (size_t)snprintf(yaml + n, 65536 - n,
                                  "  enclaves:\n    - {id: 0, cid: 2, port: 5000}\n"
                                  "    - {id: 1, cid: 2, port: 5001}\n");
        for (int i = 0; i < CFG_F_COUNT; i++) {
            const struct cfg_field_def *d = &cfg_field_defs[i];
            const char *v = sample_value(d);
            if (d->section == NULL || strcmp(d->section, sections[s]) != 0 || v == NULL)
                continue;
            n += (size_t)snprintf(yaml + n, 65536 - n, "  %s: %s\n", d->key, v);
        }
    }
    struct fx *f = fx_new();
    int r = cfgt_parse(&f->c, &f->d, yaml, NULL);
    cfgt_clean(&f->d);
    CHECK_OK(r);
    for (int i = 0; i < CFG_F_COUNT; i++) {
        const struct cfg_field_def *d = &cfg_field_defs[i];
        if (d->section == NULL || sample_value(d) == NULL)
            continue;
        char got[128];
        if (f->c.src[i].kind != CFG_SRC_FILE)
            fail_msg("%s: not recorded as set by the file", d->path);
        CHECK(f->c.src[i].line > 1);
        if (d->type != CFG_T_F64)
            CHECK_STR_EQ(cfg_value_format(got, sizeof(got), d, &f->c), sample_value(d));
    }
    CHECK(f->c.enclaves.retry_backoff_multiplier == 3.5);
    CHECK(f->c.development.present);
    free(yaml);
    fx_free(f);
}

/* server.cors_allowed_origins is one string: the list as written, with its
 * line; "*" must be quoted (a plain * starts a YAML alias); the length
 * limit is the field's. The entries are checked by cfg_validate. */
static void test_cors_allowed_origins(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_OK(parse_with(f,
                        "server:\n  cors_allowed_origins: "
                        "https://wallet.example.com,http://localhost:5173\n",
                        NULL));
    cfgt_clean(&f->d);
    CHECK_STR_EQ(f->c.server.cors_allowed_origins,
                 "https://wallet.example.com,http://localhost:5173");
    CHECK_EQ(f->c.src[CFG_F_SERVER_CORS_ALLOWED_ORIGINS].kind, CFG_SRC_FILE);
    CHECK_EQ(f->c.src[CFG_F_SERVER_CORS_ALLOWED_ORIGINS].line, 14);
    fx_free(f);

    f = fx_new();
    CHECK_OK(parse_with(f, "server:\n  cors_allowed_origins: \"*\"\n  enable_cors: true\n", NULL));
    CHECK_STR_EQ(f->c.server.cors_allowed_origins, "*");
    CHECK(f->c.server.enable_cors);
    fx_free(f);

    f = fx_new();
    CHECK(parse_with(f, "server:\n  cors_allowed_origins: *\n", NULL) != KM_OK);
    cfgt_one_error(&f->d, "test.yaml:14", "while scanning an alias");
    fx_free(f);

    /* One byte over the list's capacity (CFG_CORS_LIST_MAX, the YAML
     * scalar limit). */
    char *yaml = malloc(CFG_CORS_LIST_MAX + 64);
    CHECK_NOT_NULL(yaml);
    int n = snprintf(yaml, 64, "server:\n  cors_allowed_origins: ");
    memset(yaml + n, 'a', CFG_CORS_LIST_MAX + 1);
    snprintf(yaml + n + CFG_CORS_LIST_MAX + 1, 4, "\n");
    f = fx_new();
    CHECK(parse_with(f, yaml, NULL) != KM_OK);
    cfgt_one_error(&f->d, "test.yaml:14", "value longer than 4096 bytes");
    CHECK_STR_EQ(f->c.server.cors_allowed_origins, "");
    fx_free(f);
    free(yaml);
}

static void test_wrong_types(void **state)
{
    (void)state;
    static const struct {
        const char *extra, *loc, *needle;
    } cases[] = {
        {"server:\n  port: abc\n", "test.yaml:14",
         "server.port: expected a whole number 1..65535, got 'abc'"},
        {"server:\n  port: [1, 2]\n", "test.yaml:14", "server.port: expected a number, got a list"},
        {"server: [1]\n", "test.yaml:13", "server: expected a mapping of settings"},
        {"server: 5\n", "test.yaml:13", "server: expected a mapping"},
        {"security:\n  require_tls: yes\n", "test.yaml:14", "expected true or false, got 'yes'"},
        {"server:\n  port: \"5000\"\n", "test.yaml:14", "remove the quotes"},
        {"logging:\n  level: loud\n", "test.yaml:14", "logging.level: expected trace, debug"},
        {"logging:\n  format: xml\n", "test.yaml:14", "expected pretty or json, got 'xml'"},
        {"server:\n  host: {a: 1}\n", "test.yaml:14",
         "server.host: expected a single value, got a mapping"},
        {"server:\n  host: \"a\\0b\"\n", "test.yaml:14", "NUL byte"},
        {"server:\n  host: \"a\\tb\"\n", "test.yaml:14", "control character"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        struct fx *f = fx_new();
        CHECK_ERR(parse_with(f, cases[i].extra, NULL), KM_ERR_CONFIG);
        cfgt_one_error(&f->d, cases[i].loc, cases[i].needle);
        fx_free(f);
    }
    /* A list where the enclave list's mapping items are expected, and a
     * mapping where the list is expected. */
    struct fx *f = fx_new();
    CHECK_ERR(cfgt_parse(&f->c, &f->d, "enclaves:\n  enclaves:\n    id: 0\n", NULL), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:3", "enclaves.enclaves: expected a list of enclaves");
    fx_free(f);
    f = fx_new();
    CHECK_ERR(cfgt_parse(&f->c, &f->d, "enclaves:\n  enclaves:\n    - 5\n    - id: 1\n", NULL),
              KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:3", "enclaves.enclaves[0]: expected a mapping");
    CHECK_EQ(f->c.enclaves.count, 1);
    fx_free(f);
    f = fx_new();
    CHECK_ERR(cfgt_parse(&f->c, &f->d,
                         "enclaves:\n  retry_backoff_multiplier: 1e3\n  enclaves: []\n", NULL),
              KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:2", "enclaves.retry_backoff_multiplier: expected a decimal");
    fx_free(f);
    f = fx_new();
    CHECK_ERR(cfgt_parse(&f->c, &f->d, "- 1\n- 2\n", NULL), KM_ERR_INVALID);
    cfgt_one_error(&f->d, "test.yaml:1", "the top level must be a mapping");
    fx_free(f);
}

static void test_out_of_range(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *loc, *needle;
    } cases[] = {
        {"server:\n  port: 70000\n", "test.yaml:2", "70000 is out of range: expected 1..65535"},
        {"server:\n  port: 0\n", "test.yaml:2", "must be greater than 0"},
        {"server:\n  port: -1\n", "test.yaml:2", "-1 is out of range"},
        {"server:\n  port: 0800\n", "test.yaml:2", "leading zero"},
        {"enclaves:\n  vsock_timeout_secs: 0\n", "test.yaml:2",
         "enclaves.vsock_timeout_secs: must be greater than 0"},
        {"enclaves:\n  enclaves:\n    - id: 0\n      cid: 4294967296\n", "test.yaml:4",
         "enclaves.enclaves[0].cid: 4294967296 is out of range: expected 0..4294967295"},
        {"enclaves:\n  enclaves:\n    - id: 0\n      port: 99999999999999999999999\n",
         "test.yaml:4", "out of range"},
        {"enclaves:\n  retry_backoff_multiplier: 1.0\n", "test.yaml:2",
         "expected more than 1 and at most 100"},
        {"coordinator:\n  batch_size: 10001\n", "test.yaml:2", "coordinator.batch_size"},
        {"server:\n  header_timeout_secs: 0\n", "test.yaml:2",
         "server.header_timeout_secs: must be greater than 0"},
        {"server:\n  header_timeout_secs: 301\n", "test.yaml:2", "expected 1..300"},
        {"server:\n  body_timeout_secs: 3601\n", "test.yaml:2", "expected 1..3600"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        struct fx *f = fx_new();
        CHECK_ERR(cfgt_parse(&f->c, &f->d, cases[i].yaml, NULL), KM_ERR_CONFIG);
        cfgt_one_error(&f->d, cases[i].loc, cases[i].needle);
        fx_free(f);
    }
    /* The refused value leaves the default in place. */
    struct fx *f = fx_new();
    CHECK_ERR(cfgt_parse(&f->c, &f->d, "server:\n  port: 70000\n", NULL), KM_ERR_CONFIG);
    CHECK_EQ(f->c.server.port, 8090);
    CHECK_EQ(f->c.src[CFG_F_SERVER_PORT].kind, CFG_SRC_DEFAULT);
    fx_free(f);
}

static void test_unknown_keys_warn_with_path(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_OK(cfgt_parse(&f->c, &f->d,
                        "enclaves:\n"
                        "  enclaves:\n"
                        "    - id: 0\n"
                        "      cid: 2\n"
                        "      port: 5000\n"
                        "    - id: 1\n"
                        "      port: 5001\n"
                        "      tcp_hots: x\n"
                        "  vsock_timeout: 3\n"
                        "servr:\n"
                        "  port: 1\n"
                        "zzz_unrelated: 1\n"
                        "logging:\n"
                        "  enable_json: true\n",
                        NULL));
    CHECK_EQ(f->d.errors, 0);
    CHECK_EQ(f->d.warnings, 5);
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "test.yaml:8: unknown key enclaves.enclaves[1].tcp_hots (ignored): "
                             "did you mean tcp_host?"));
    CHECK_NOT_NULL(
        cfgt_find(&f->d, CFG_WARNING, "test.yaml:9: unknown key enclaves.vsock_timeout (ignored)"));
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "test.yaml:10: unknown key servr (ignored): did "
                             "you mean server?"));
    CHECK_NOT_NULL(
        cfgt_find(&f->d, CFG_WARNING, "test.yaml:12: unknown key zzz_unrelated (ignored)"));
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "test.yaml:14: logging.enable_json is accepted for compatibility"));
    fx_free(f);
}

static void test_malformed_yaml(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *loc, *needle;
    } cases[] = {
        {"server:\n  port: 1\n   host: x\n", "test.yaml:3",
         "invalid YAML: mapping values are not allowed"},
        {"server:\n\tport: 1\n", "test.yaml:2", "tabs cannot indent YAML"},
        {"a: [1, 2\n", "test.yaml:2", "invalid YAML"},
        {"a: \"unterminated\n", "test.yaml:2", "invalid YAML"},
        {"a: 1\n---\nb: 2\n", "test.yaml:2", "more than one YAML document"},
        {"a: \xff\xfe\n", "test.yaml:1", "invalid text"},
        {"a: 1\nb: \x01\n", "test.yaml:2", "invalid text"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        struct fx *f = fx_new();
        CHECK_ERR(cfgt_parse(&f->c, &f->d, cases[i].yaml, NULL), KM_ERR_INVALID);
        cfgt_one_error(&f->d, cases[i].loc, cases[i].needle);
        /* Nothing was applied. */
        CHECK_EQ(f->c.enclaves.count, 0);
        fx_free(f);
    }
}

static void test_refused_constructs(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *loc, *needle;
    } cases[] = {
        {"server:\n  port: 1\n  port: 2\n", "test.yaml:3",
         "duplicate key 'port' (first defined at line 2)"},
        {"server: &s\n  port: 1\n", "test.yaml:1", "anchors and aliases"},
        {"a: 1\nb: *x\n", "test.yaml:2", "anchors and aliases"}, /* undefined alias */
        {"x: &a {p: 1}\ny: *a\n", "test.yaml:1", "anchors and aliases"},
        {"server:\n  port: !!int 5\n", "test.yaml:2",
         "YAML tags ('tag:yaml.org,2002:int') are not supported"},
        {"? [a, b]\n: 1\n", "test.yaml:1", "mapping keys must be plain names, not a list"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        struct fx *f = fx_new();
        CHECK_ERR(cfgt_parse(&f->c, &f->d, cases[i].yaml, NULL), KM_ERR_INVALID);
        cfgt_one_error(&f->d, cases[i].loc, cases[i].needle);
        fx_free(f);
    }
}

static void test_limits(void **state)
{
    (void)state;
    /* Too deep. */
    struct fx *f = fx_new();
    char deep[256];
    size_t n = 0;
    for (int i = 0; i < 20; i++)
        deep[n++] = '[';
    for (int i = 0; i < 20; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    CHECK_ERR(cfgt_parse(&f->c, &f->d, deep, NULL), KM_ERR_INVALID);
    cfgt_one_error(&f->d, "test.yaml:1", "nesting deeper than 16 levels");
    fx_free(f);

    /* Too large: refused before parsing. */
    f = fx_new();
    size_t big = CFG_MAX_FILE_SIZE + 1;
    uint8_t *data = malloc(big);
    CHECK_NOT_NULL(data);
    memset(data, '#', big);
    CHECK_ERR(cfg_parse(&f->c, data, big, "big.yaml", NULL, &f->d), KM_ERR_TOO_LARGE);
    cfgt_one_error(&f->d, "big.yaml", "a configuration may be at most 1048576 bytes");
    free(data);
    fx_free(f);

    /* A scalar longer than CFG_MAX_SCALAR. */
    f = fx_new();
    char *yaml = malloc(CFG_MAX_SCALAR + 64);
    CHECK_NOT_NULL(yaml);
    n = (size_t)snprintf(yaml, 64, "kms:\n  key_id: ");
    memset(yaml + n, 'k', CFG_MAX_SCALAR + 1);
    yaml[n + CFG_MAX_SCALAR + 1] = '\0';
    CHECK_ERR(cfgt_parse(&f->c, &f->d, yaml, NULL), KM_ERR_INVALID);
    cfgt_one_error(&f->d, "test.yaml:2", "value longer than 4096 bytes");
    free(yaml);
    fx_free(f);

    /* More enclaves than CFG_MAX_ENCLAVES. */
    f = fx_new();
    yaml = malloc(8192);
    CHECK_NOT_NULL(yaml);
    n = (size_t)snprintf(yaml, 8192, "enclaves:\n  enclaves:\n");
    for (int i = 0; i <= CFG_MAX_ENCLAVES; i++)
        n +=
            (size_t)snprintf(yaml + n, 8192 - n, "    - {id: %d, cid: 2, port: %d}\n", i, 5000 + i);
    CHECK_ERR(cfgt_parse(&f->c, &f->d, yaml, NULL), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:3", "65 entries: at most 64 enclaves");
    free(yaml);
    fx_free(f);

    /* Too many nodes. */
    f = fx_new();
    yaml = malloc(200000);
    CHECK_NOT_NULL(yaml);
    n = (size_t)snprintf(yaml, 200000, "x: [");
    for (int i = 0; i < CFG_MAX_NODES; i++)
        n += (size_t)snprintf(yaml + n, 200000 - n, "1,");
    snprintf(yaml + n, 200000 - n, "1]\n");
    CHECK_ERR(cfgt_parse(&f->c, &f->d, yaml, NULL), KM_ERR_INVALID);
    cfgt_one_error(&f->d, "test.yaml:1", "more than 20000 YAML nodes");
    free(yaml);
    fx_free(f);
}

static void test_var_expansion(void **state)
{
    (void)state;
    static const char *const envp[] = {"KMS_KEY_ARN=arn:aws:kms:eu-west-1:1:key/abc",
                                       "GW_PORT=9443", "EMPTY=", NULL};
    struct fx *f = fx_new();
    CHECK_OK(cfgt_parse(&f->c, &f->d,
                        "kms:\n"
                        "  enabled: true\n"
                        "  key_id: \"${KMS_KEY_ARN}\"\n"
                        "server:\n"
                        "  port: ${GW_PORT}\n"
                        "  host: pre-${EMPTY}post\n"
                        "database:\n"
                        "  path: /data/$${literal}/$HOME/x$\n",
                        envp));
    cfgt_clean(&f->d);
    CHECK_STR_EQ(f->c.kms.key_id, "arn:aws:kms:eu-west-1:1:key/abc");
    CHECK_EQ(f->c.server.port, 9443);
    CHECK_STR_EQ(f->c.server.host, "pre-post");
    CHECK_STR_EQ(f->c.database.path, "/data/${literal}/$HOME/x$");
    char desc[256];
    CHECK_STR_EQ(cfg_src_describe(desc, sizeof(desc), &f->c, &f->c.src[CFG_F_KMS_KEY_ID]),
                 "file test.yaml:3 via ${KMS_KEY_ARN}");
    fx_free(f);

    static const struct {
        const char *yaml, *needle;
    } bad[] = {
        {"kms:\n  key_id: ${KMS_KEY_ARN}\n",
         "kms.key_id: environment variable KMS_KEY_ARN is not set (referenced as ${KMS_KEY_ARN})"},
        {"kms:\n  key_id: ${KMS_KEY_ARN\n", "kms.key_id: unterminated"},
        {"kms:\n  key_id: ${1BAD}\n", "'${1BAD}' is not a variable reference"},
        {"kms:\n  key_id: ${}\n", "is not a variable reference"},
        {"server:\n  port: ${GW_PORT}\n", "environment variable GW_PORT is not set"},
        /* Found by fuzz_config: a 64-character name overflowed the buffer. */
        {"kms:\n  key_id: ${KMS_KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKEY_ARN}\n",
         "variable name in ${...} longer than 63 characters"},
        {"kms:\n  key_id: ${KMS_KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKEY_ARN}\n",
         "unterminated or overlong"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        f = fx_new();
        CHECK_ERR(cfgt_parse(&f->c, &f->d, bad[i].yaml, NULL), KM_ERR_CONFIG);
        cfgt_one_error(&f->d, "test.yaml:2", bad[i].needle);
        fx_free(f);
    }
    /* An expanded value that does not parse says where it came from. */
    static const char *const envp2[] = {"GW_PORT=http", NULL};
    f = fx_new();
    CHECK_ERR(cfgt_parse(&f->c, &f->d, "server:\n  port: ${GW_PORT}\n", envp2), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:2", "got 'http' (after expanding ${GW_PORT})");
    fx_free(f);
}

static void test_null_values(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_OK(cfgt_parse(&f->c, &f->d,
                        "server:\n"
                        "  port:\n"
                        "kms:\n"
                        "  endpoint_url: null\n"
                        "security: ~\n"
                        "development:\n",
                        NULL));
    CHECK_EQ(f->d.errors, 0);
    CHECK_EQ(f->d.warnings, 1);
    CHECK_NOT_NULL(cfgt_find(&f->d, CFG_WARNING,
                             "test.yaml:2: server.port: no value given: the "
                             "default applies"));
    CHECK_EQ(f->c.server.port, 8090);
    CHECK_STR_EQ(f->c.kms.endpoint_url, "");
    CHECK_EQ(f->c.src[CFG_F_KMS_ENDPOINT_URL].kind, CFG_SRC_FILE);
    CHECK(f->c.development.present);
    CHECK_EQ(f->c.src[CFG_F_DEVELOPMENT_SECTION].line, 6);
    fx_free(f);
}

static void test_empty_and_comment_only(void **state)
{
    (void)state;
    static const char *const inputs[] = {"", "# nothing\n", "---\n", "~\n"};
    for (size_t i = 0; i < KM_ARRAY_LEN(inputs); i++) {
        struct fx *f = fx_new();
        CHECK_OK(cfgt_parse(&f->c, &f->d, inputs[i], NULL));
        CHECK_EQ(f->c.enclaves.count, 0);
        CHECK_EQ(f->c.src[CFG_F_ENCLAVES_LIST].kind, CFG_SRC_UNSET);
        fx_free(f);
    }
}

static void test_all_errors_are_collected(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    CHECK_ERR(cfgt_parse(&f->c, &f->d,
                         "server:\n  port: x\n  enable_cors: maybe\ndatabase:\n"
                         "  max_connections: 0\n",
                         NULL),
              KM_ERR_CONFIG);
    CHECK_EQ(f->d.errors, 3);
    fx_free(f);

    /* Beyond CFG_MAX_DIAG only the count grows. */
    f = fx_new();
    char *yaml = malloc(16384);
    CHECK_NOT_NULL(yaml);
    size_t n = (size_t)snprintf(yaml, 16384, "server:\n");
    for (int i = 0; i < 150; i++)
        n += (size_t)snprintf(yaml + n, 16384 - n, "  unknown_%d: 1\n", i);
    CHECK_OK(cfgt_parse(&f->c, &f->d, yaml, NULL));
    CHECK_EQ(f->d.warnings, 150);
    CHECK_EQ(f->d.count, CFG_MAX_DIAG);
    CHECK_EQ(f->d.dropped, 50);
    free(yaml);
    fx_free(f);
}

static void test_environment_key(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    /* `environment` is read first even when it comes last. */
    CHECK_OK(cfgt_parse(&f->c, &f->d, "server:\n  host: 10.0.0.1\nenvironment: PROD\n", NULL));
    CHECK_EQ(f->c.environment, CFG_PRODUCTION);
    CHECK_EQ(f->c.server.port, 443);
    CHECK_STR_EQ(f->c.server.host, "10.0.0.1");
    fx_free(f);
    f = fx_new();
    CHECK_ERR(cfgt_parse(&f->c, &f->d, "environment: staging\n", NULL), KM_ERR_CONFIG);
    cfgt_one_error(&f->d, "test.yaml:1",
                   "environment: expected development or production, got 'staging'");
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_dev_defaults_and_sources),
        TEST(test_production_defaults),
        TEST(test_every_key_is_accepted),
        TEST(test_cors_allowed_origins),
        TEST(test_wrong_types),
        TEST(test_out_of_range),
        TEST(test_unknown_keys_warn_with_path),
        TEST(test_malformed_yaml),
        TEST(test_refused_constructs),
        TEST(test_limits),
        TEST(test_var_expansion),
        TEST(test_null_values),
        TEST(test_empty_and_comment_only),
        TEST(test_all_errors_are_collected),
        TEST(test_environment_key),
    };
    return RUN_TESTS("unit.config.parse", tests);
}
