/*
 * schema.c - every configuration key: YAML name, type, allowed range and
 * its development/production defaults (docs/CONFIGURATION.md lists the same
 * table for people). Defaults are written as the text a YAML file would
 * hold and go through the same parser as file values, so a default can
 * never bypass a range check.
 */
#include "config/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/banned.h"

#define MEMBER_SIZE(type, m) sizeof(((type *)0)->m)

#define F_U32(sec, k, m, lo, hi, dev, prod)                                                        \
    {                                                                                              \
        .section = sec, .key = k, .path = sec "." k, .type = CFG_T_U32,                            \
        .offset = offsetof(struct cfg, m), .min = lo, .max = hi, .def_dev = dev, .def_prod = prod  \
    }
#define F_BOOL(sec, k, m, dev, prod)                                                               \
    {                                                                                              \
        .section = sec, .key = k, .path = sec "." k, .type = CFG_T_BOOL,                           \
        .offset = offsetof(struct cfg, m), .def_dev = dev, .def_prod = prod                        \
    }
#define F_STR(sec, k, m, dev, prod)                                                                \
    {                                                                                              \
        .section = sec, .key = k, .path = sec "." k, .type = CFG_T_STR,                            \
        .offset = offsetof(struct cfg, m), .size = MEMBER_SIZE(struct cfg, m), .def_dev = dev,     \
        .def_prod = prod                                                                           \
    }
#define F_ENUM(sec, k, t, m, dev, prod)                                                            \
    {                                                                                              \
        .section = sec, .key = k, .path = sec "." k, .type = t, .offset = offsetof(struct cfg, m), \
        .def_dev = dev, .def_prod = prod                                                           \
    }

#define SECS_DAY 86400u

const struct cfg_field_def cfg_field_defs[CFG_F_COUNT] = {
    [CFG_F_ENVIRONMENT] = {.key = "environment",
                           .path = "environment",
                           .type = CFG_T_ENVIRONMENT,
                           .offset = offsetof(struct cfg, environment),
                           .def_dev = "development",
                           .def_prod = "production"},

    [CFG_F_SERVER_HOST] = F_STR("server", "host", server.host, "127.0.0.1", "0.0.0.0"),
    [CFG_F_SERVER_PORT] = F_U32("server", "port", server.port, 1, 65535, "8090", "443"),
    [CFG_F_SERVER_ENABLE_CORS] = F_BOOL("server", "enable_cors", server.enable_cors, "false", NULL),
    [CFG_F_SERVER_CORS_ALLOWED_ORIGINS] =
        F_STR("server", "cors_allowed_origins", server.cors_allowed_origins, "", NULL),
    [CFG_F_SERVER_ENABLE_COMPRESSION] =
        F_BOOL("server", "enable_compression", server.enable_compression, "true", NULL),
    [CFG_F_SERVER_MAX_REQUEST_SIZE_BYTES] =
        F_U32("server", "max_request_size_bytes", server.max_request_size_bytes, 1024, 1u << 30,
              "1048576", NULL),
    [CFG_F_SERVER_MAX_CONNECTIONS] =
        F_U32("server", "max_connections", server.max_connections, 16, 100000, "1024", NULL),
    [CFG_F_SERVER_MAX_CONNECTIONS_PER_IP] = F_U32(
        "server", "max_connections_per_ip", server.max_connections_per_ip, 1, 100000, "64", NULL),
    [CFG_F_SERVER_IDLE_TIMEOUT_SECS] =
        F_U32("server", "idle_timeout_secs", server.idle_timeout_secs, 1, 3600, "15", NULL),
    [CFG_F_SERVER_HEADER_TIMEOUT_SECS] =
        F_U32("server", "header_timeout_secs", server.header_timeout_secs, 1, 300, "10", NULL),
    [CFG_F_SERVER_BODY_TIMEOUT_SECS] =
        F_U32("server", "body_timeout_secs", server.body_timeout_secs, 1, 3600, "30", NULL),
    [CFG_F_SERVER_OPEN_RESERVE] =
        F_BOOL("server", "open_reserve", server.open_reserve, "false", NULL),
    [CFG_F_SERVER_REQUESTS_PER_SEC_PER_IP] =
        F_U32("server", "requests_per_sec_per_ip", server.requests_per_sec_per_ip, 0, 1000000, "50",
              NULL),
    [CFG_F_SERVER_REQUEST_BURST_PER_IP] = F_U32(
        "server", "request_burst_per_ip", server.request_burst_per_ip, 1, 1000000, "200", NULL),
    [CFG_F_SERVER_RESERVES_PER_SEC_PER_API_KEY] =
        F_U32("server", "reserves_per_sec_per_api_key", server.reserves_per_sec_per_api_key, 0,
              1000000, "10", NULL),
    [CFG_F_SERVER_TLS_CERT_FILE] = F_STR("server", "tls_cert_file", server.tls_cert_file, "", NULL),
    [CFG_F_SERVER_TLS_KEY_FILE] = F_STR("server", "tls_key_file", server.tls_key_file, "", NULL),
    [CFG_F_SERVER_ALLOW_PLAIN_HTTP] =
        F_BOOL("server", "allow_plain_http", server.allow_plain_http, "false", NULL),

    [CFG_F_DATABASE_PATH] = F_STR("database", "path", database.path, "./data/keymeld-dev.db",
                                  "/var/lib/keymeld/keymeld.db"),
    [CFG_F_DATABASE_URL] = F_STR("database", "url", database.url, "", NULL),
    [CFG_F_DATABASE_MAX_CONNECTIONS] =
        F_U32("database", "max_connections", database.max_connections, 1, 1000, "50", NULL),
    [CFG_F_DATABASE_CONNECTION_TIMEOUT_SECS] =
        F_U32("database", "connection_timeout_secs", database.connection_timeout_secs, 1, 3600,
              "30", NULL),
    [CFG_F_DATABASE_IDLE_TIMEOUT_SECS] = F_U32(
        "database", "idle_timeout_secs", database.idle_timeout_secs, 1, SECS_DAY, "300", NULL),
    [CFG_F_DATABASE_ENABLE_WAL_MODE] =
        F_BOOL("database", "enable_wal_mode", database.enable_wal_mode, "true", NULL),
    [CFG_F_DATABASE_FSYNC_EACH_COMMIT] =
        F_BOOL("database", "fsync_each_commit", database.fsync_each_commit, "true", NULL),

    [CFG_F_KMS_ENABLED] = F_BOOL("kms", "enabled", kms.enabled, "false", NULL),
    [CFG_F_KMS_ENDPOINT_URL] = F_STR("kms", "endpoint_url", kms.endpoint_url, "", NULL),
    [CFG_F_KMS_KEY_ID] = F_STR("kms", "key_id", kms.key_id, "", NULL),

    [CFG_F_ENCLAVES_LIST] = {.section = "enclaves",
                             .key = "enclaves",
                             .path = "enclaves.enclaves",
                             .type = CFG_T_LIST},
    [CFG_F_ENCLAVES_VSOCK_TIMEOUT_SECS] = F_U32(
        "enclaves", "vsock_timeout_secs", enclaves.vsock_timeout_secs, 1, SECS_DAY, "30", NULL),
    [CFG_F_ENCLAVES_NONCE_GENERATION_TIMEOUT_SECS] =
        F_U32("enclaves", "nonce_generation_timeout_secs", enclaves.nonce_generation_timeout_secs,
              1, SECS_DAY, "10", NULL),
    [CFG_F_ENCLAVES_SESSION_INIT_TIMEOUT_SECS] =
        F_U32("enclaves", "session_init_timeout_secs", enclaves.session_init_timeout_secs, 1,
              SECS_DAY, "15", NULL),
    [CFG_F_ENCLAVES_SIGNING_TIMEOUT_SECS] = F_U32(
        "enclaves", "signing_timeout_secs", enclaves.signing_timeout_secs, 1, SECS_DAY, "20", NULL),
    [CFG_F_ENCLAVES_NETWORK_WRITE_TIMEOUT_SECS] =
        F_U32("enclaves", "network_write_timeout_secs", enclaves.network_write_timeout_secs, 1,
              3600, "5", NULL),
    [CFG_F_ENCLAVES_NETWORK_READ_TIMEOUT_SECS] =
        F_U32("enclaves", "network_read_timeout_secs", enclaves.network_read_timeout_secs, 1,
              SECS_DAY, "300", NULL),
    [CFG_F_ENCLAVES_POOL_ACQUIRE_TIMEOUT_SECS] =
        F_U32("enclaves", "pool_acquire_timeout_secs", enclaves.pool_acquire_timeout_secs, 1, 3600,
              "30", NULL),
    [CFG_F_ENCLAVES_MAX_MESSAGE_SIZE_BYTES] =
        F_U32("enclaves", "max_message_size_bytes", enclaves.max_message_size_bytes, 1024, 1u << 28,
              "16777216", NULL),
    [CFG_F_ENCLAVES_MAX_RETRY_ATTEMPTS] =
        F_U32("enclaves", "max_retry_attempts", enclaves.max_retry_attempts, 1, 100, "3", NULL),
    [CFG_F_ENCLAVES_INITIAL_RETRY_DELAY_MS] =
        F_U32("enclaves", "initial_retry_delay_ms", enclaves.initial_retry_delay_ms, 1, 600000,
              "100", NULL),
    [CFG_F_ENCLAVES_MAX_RETRY_DELAY_MS] = F_U32(
        "enclaves", "max_retry_delay_ms", enclaves.max_retry_delay_ms, 1, 3600000, "5000", NULL),
    [CFG_F_ENCLAVES_RETRY_BACKOFF_MULTIPLIER] = {.section = "enclaves",
                                                 .key = "retry_backoff_multiplier",
                                                 .path = "enclaves.retry_backoff_multiplier",
                                                 .type = CFG_T_F64,
                                                 .offset = offsetof(
                                                     struct cfg, enclaves.retry_backoff_multiplier),
                                                 .fmin = 1.0,
                                                 .fmax = 100.0,
                                                 .def_dev = "2.0"},
    [CFG_F_ENCLAVES_CONNECTION_RETRY_DELAY_MS] =
        F_U32("enclaves", "connection_retry_delay_ms", enclaves.connection_retry_delay_ms, 1, 60000,
              "100", NULL),
    [CFG_F_ENCLAVES_MAX_CHANNEL_SIZE] =
        F_U32("enclaves", "max_channel_size", enclaves.max_channel_size, 1, 1000000, "1000", NULL),
    [CFG_F_ENCLAVES_CONNECTION_LOAD_THRESHOLD] =
        F_U32("enclaves", "connection_load_threshold", enclaves.connection_load_threshold, 1,
              1000000, "50", NULL),
    [CFG_F_ENCLAVES_MAX_CONNECTIONS_PER_ENCLAVE] =
        F_U32("enclaves", "max_connections_per_enclave", enclaves.max_connections_per_enclave, 1,
              1024, "8", NULL),

    [CFG_F_COORDINATOR_PROCESSING_INTERVAL_MS] =
        F_U32("coordinator", "processing_interval_ms", coordinator.processing_interval_ms, 1, 60000,
              "100", NULL),
    [CFG_F_COORDINATOR_BATCH_SIZE] =
        F_U32("coordinator", "batch_size", coordinator.batch_size, 1, 10000, "20", NULL),
    [CFG_F_COORDINATOR_MAX_RETRIES] =
        F_U32("coordinator", "max_retries", coordinator.max_retries, 0, 100, "3", NULL),
    [CFG_F_COORDINATOR_PROCESSING_TIMEOUT_MINS] =
        F_U32("coordinator", "processing_timeout_mins", coordinator.processing_timeout_mins, 1,
              1440, "5", NULL),
    [CFG_F_COORDINATOR_CLEANUP_INTERVAL_SECS] =
        F_U32("coordinator", "cleanup_interval_secs", coordinator.cleanup_interval_secs, 1,
              SECS_DAY, "300", NULL),
    [CFG_F_COORDINATOR_DELETE_SESSIONS_OLDER_THAN_SECS] =
        F_U32("coordinator", "delete_sessions_older_than_secs",
              coordinator.delete_sessions_older_than_secs, 1, 3650u * SECS_DAY, "86400", NULL),
    [CFG_F_COORDINATOR_METRIC_RECORD_INTERVAL_SECS] =
        F_U32("coordinator", "metric_record_interval_secs", coordinator.metric_record_interval_secs,
              1, SECS_DAY, "30", NULL),
    [CFG_F_COORDINATOR_HEALTH_CHECK_INTERVAL_SECS] =
        F_U32("coordinator", "health_check_interval_secs", coordinator.health_check_interval_secs,
              1, SECS_DAY, "10", NULL),
    [CFG_F_COORDINATOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD] =
        F_U32("coordinator", "circuit_breaker_failure_threshold",
              coordinator.circuit_breaker_failure_threshold, 1, 1000, "10", NULL),
    [CFG_F_COORDINATOR_CIRCUIT_BREAKER_RESET_TIMEOUT_SECS] =
        F_U32("coordinator", "circuit_breaker_reset_timeout_secs",
              coordinator.circuit_breaker_reset_timeout_secs, 1, SECS_DAY, "60", NULL),
    [CFG_F_COORDINATOR_MAX_CONCURRENT_SESSIONS] =
        F_U32("coordinator", "max_concurrent_sessions", coordinator.max_concurrent_sessions, 1,
              100000, "20", NULL),
    [CFG_F_COORDINATOR_MAX_SESSIONS_PER_ENCLAVE] =
        F_U32("coordinator", "max_sessions_per_enclave", coordinator.max_sessions_per_enclave, 0,
              100000, "0", NULL),
    [CFG_F_COORDINATOR_SESSION_LEASE_SECS] =
        F_U32("coordinator", "session_lease_secs", coordinator.session_lease_secs, 0, SECS_DAY, "0",
              NULL),
    [CFG_F_COORDINATOR_NONCE_POOL_SIZE] =
        F_U32("coordinator", "nonce_pool_size", coordinator.nonce_pool_size, 0, 128, "32", NULL),
    [CFG_F_COORDINATOR_DB_OPERATION_TIMEOUT_SECS] =
        F_U32("coordinator", "db_operation_timeout_secs", coordinator.db_operation_timeout_secs, 1,
              3600, "15", NULL),
    [CFG_F_COORDINATOR_INDIVIDUAL_SESSION_TIMEOUT_SECS] =
        F_U32("coordinator", "individual_session_timeout_secs",
              coordinator.individual_session_timeout_secs, 1, SECS_DAY, "60", NULL),
    [CFG_F_COORDINATOR_STUCK_SESSION_DETECTION_THRESHOLD_SECS] =
        F_U32("coordinator", "stuck_session_detection_threshold_secs",
              coordinator.stuck_session_detection_threshold_secs, 1, SECS_DAY, "300", NULL),

    [CFG_F_LOGGING_LEVEL] =
        F_ENUM("logging", "level", CFG_T_LOG_LEVEL, logging.level, "info", NULL),
    [CFG_F_LOGGING_FORMAT] =
        F_ENUM("logging", "format", CFG_T_LOG_FORMAT, logging.format, "pretty", "json"),
    [CFG_F_LOGGING_ENABLE_FILE_OUTPUT] =
        F_BOOL("logging", "enable_file_output", logging.enable_file_output, "false", NULL),
    [CFG_F_LOGGING_FILE_PATH] = F_STR("logging", "file_path", logging.file_path, "logs/gateway.log",
                                      "/var/log/keymeld/gateway.log"),
    [CFG_F_LOGGING_DISABLE_ANSI] =
        F_BOOL("logging", "disable_ansi", logging.disable_ansi, "false", NULL),

    [CFG_F_SECURITY_ENABLE_ATTESTATION] =
        F_BOOL("security", "enable_attestation", security.enable_attestation, "false", "true"),
    [CFG_F_SECURITY_STRICT_VALIDATION] =
        F_BOOL("security", "strict_validation", security.strict_validation, "false", "true"),
    [CFG_F_SECURITY_ALLOW_INSECURE_CONNECTIONS] =
        F_BOOL("security", "allow_insecure_connections", security.allow_insecure_connections,
               "true", "false"),
    [CFG_F_SECURITY_REQUIRE_TLS] =
        F_BOOL("security", "require_tls", security.require_tls, "false", "true"),
    [CFG_F_SECURITY_ATTESTATION_ROOT] =
        F_STR("security", "attestation_root", security.attestation_root, "", NULL),
    [CFG_F_SECURITY_ATTESTATION_PCRS] = F_STR(
        "security", "attestation_pcrs", security.attestation_pcrs, "", "/etc/keymeld/pcrs.json"),
    [CFG_F_SECURITY_ATTESTATION_MAX_AGE_SECS] =
        F_U32("security", "attestation_max_age_secs", security.attestation_max_age_secs, 1,
              SECS_DAY, "300", NULL),
    [CFG_F_SECURITY_ATTESTATION_ALLOW_DEBUG] = F_BOOL(
        "security", "attestation_allow_debug", security.attestation_allow_debug, "false", NULL),

    [CFG_F_AUDIT_PATH] = F_STR("audit", "path", audit.path, "", "/var/log/keymeld/audit.jsonl"),
    [CFG_F_AUDIT_FSYNC] = F_BOOL("audit", "fsync", audit.fsync, "true", NULL),

    [CFG_F_DEVELOPMENT_SECTION] = {.key = "development",
                                   .path = "development",
                                   .type = CFG_T_SECTION},
    [CFG_F_DEVELOPMENT_ENABLE_TEST_ENDPOINTS] = F_BOOL(
        "development", "enable_test_endpoints", development.enable_test_endpoints, "false", NULL),
    [CFG_F_DEVELOPMENT_DISABLE_ENCLAVE_VERIFICATION] =
        F_BOOL("development", "disable_enclave_verification",
               development.disable_enclave_verification, "false", NULL),
    [CFG_F_DEVELOPMENT_EXTENDED_LOGGING] =
        F_BOOL("development", "extended_logging", development.extended_logging, "false", NULL),
};

#define E_FIELD(k, t, m, lo, hi, dev)                                                              \
    {                                                                                              \
        .key = k, .path = "enclaves.enclaves[]." k, .type = t,                                     \
        .offset = offsetof(struct cfg_enclave, m), .size = MEMBER_SIZE(struct cfg_enclave, m),     \
        .min = lo, .max = hi, .def_dev = dev                                                       \
    }

const struct cfg_field_def cfg_enclave_field_defs[CFG_EF_COUNT] = {
    [CFG_EF_ID] = E_FIELD("id", CFG_T_U32, id, 0, UINT32_MAX, NULL),
    [CFG_EF_CID] = E_FIELD("cid", CFG_T_U32, cid, 0, UINT32_MAX, NULL),
    [CFG_EF_PORT] = E_FIELD("port", CFG_T_U32, port, 1, UINT32_MAX, NULL),
    [CFG_EF_TRANSPORT] = E_FIELD("transport", CFG_T_TRANSPORT, transport, 0, 0, "vsock"),
    [CFG_EF_TCP_HOST] = E_FIELD("tcp_host", CFG_T_STR, tcp_host, 0, 0, ""),
    [CFG_EF_UNIX_PATH] = E_FIELD("unix_path", CFG_T_STR, unix_path, 0, 0, NULL),
};

const char *const cfg_enclave_env_suffix[CFG_EF_COUNT] = {
    [CFG_EF_ID] = NULL,
    [CFG_EF_CID] = "CID",
    [CFG_EF_PORT] = "PORT",
    [CFG_EF_TRANSPORT] = "TRANSPORT",
    [CFG_EF_TCP_HOST] = "TCP_HOST",
    [CFG_EF_UNIX_PATH] = "UNIX_PATH",
};

const struct cfg_ignored_key cfg_ignored_keys[] = {
    {"logging", "enable_json", "use logging.format: json instead"},
    {"logging", "component", "every process names its own component"},
    {"logging", "include_target", "log lines always carry file:line in JSON"},
    {"logging", "include_thread_ids", "not supported"},
    {NULL, NULL, NULL},
};

bool cfg_is_section(const char *name)
{
    static const char *const sections[] = {"server",   "database",    "kms",
                                           "enclaves", "coordinator", "logging",
                                           "security", "audit",       "development"};
    for (size_t i = 0; i < KM_ARRAY_LEN(sections); i++) {
        if (strcmp(name, sections[i]) == 0)
            return true;
    }
    return false;
}

/* ---- Value parsers ---------------------------------------------------- */

static int reason(char *why, size_t whycap, int code, const char *fmt, ...) KM_PRINTF(4, 5);

static int reason(char *why, size_t whycap, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whycap, fmt, ap);
    va_end(ap);
    return code;
}

/* Strict decimal: digits only, no sign, no leading zero (YAML 1.1 reads
 * "010" as octal 8, YAML 1.2 as 10: refuse the ambiguity). */
static int parse_decimal(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return len == 0 ? KM_ERR_INVALID : KM_ERR_RANGE;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return KM_ERR_INVALID;
        unsigned dgt = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            return KM_ERR_RANGE;
        v = v * 10 + dgt;
    }
    *out = v;
    return KM_OK;
}

static bool all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return len > 0;
}

static int set_u32(const struct cfg_field_def *d, uint32_t *dst, const char *s, size_t len,
                   bool plain, char *why, size_t whycap)
{
    char q[80];
    cfg_quote(q, sizeof(q), s, len, 40);
    if (!plain)
        return reason(why, whycap, KM_ERR_INVALID,
                      "expected a number, got the quoted text '%s' (remove the quotes)", q);
    if (len > 1 && s[0] == '-' && all_digits(s + 1, len - 1))
        return reason(why, whycap, KM_ERR_RANGE, "%s is out of range: expected %u..%u", q, d->min,
                      d->max);
    if (len > 1 && s[0] == '0' && all_digits(s, len))
        return reason(why, whycap, KM_ERR_INVALID,
                      "'%s' has a leading zero (octal in YAML 1.1): write the number without it",
                      q);
    uint64_t v;
    int r = parse_decimal(s, len, &v);
    if (r == KM_ERR_INVALID)
        return reason(why, whycap, KM_ERR_INVALID, "expected a whole number %u..%u, got '%s'",
                      d->min, d->max, q);
    if (r == KM_ERR_RANGE || v > d->max || v < d->min) {
        if (r == KM_OK && v == 0)
            return reason(why, whycap, KM_ERR_RANGE,
                          "must be greater than 0 (expected %u..%u), got 0", d->min, d->max);
        return reason(why, whycap, KM_ERR_RANGE, "%s is out of range: expected %u..%u", q, d->min,
                      d->max);
    }
    *dst = (uint32_t)v;
    return KM_OK;
}

static int set_f64(const struct cfg_field_def *d, double *dst, const char *s, size_t len,
                   bool plain, char *why, size_t whycap)
{
    char q[80];
    cfg_quote(q, sizeof(q), s, len, 40);
    if (!plain)
        return reason(why, whycap, KM_ERR_INVALID,
                      "expected a number, got the quoted text '%s' (remove the quotes)", q);
    /* [0-9]+(.[0-9]+)? only: no exponents, inf or nan. */
    size_t dot = len;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.' && dot == len)
            dot = i;
        else if (s[i] < '0' || s[i] > '9')
            dot = 0;
    }
    if (len == 0 || len > 32 || dot == 0 || dot + 1 == len)
        return reason(why, whycap, KM_ERR_INVALID, "expected a decimal number like 2.0, got '%s'",
                      q);
    char tmp[40];
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    double v = strtod(tmp, NULL);
    if (!(v > d->fmin && v <= d->fmax))
        return reason(why, whycap, KM_ERR_RANGE,
                      "%s is out of range: expected more than %g and at most %g", q, d->fmin,
                      d->fmax);
    *dst = v;
    return KM_OK;
}

static int set_bool(bool *dst, const char *s, size_t len, bool plain, char *why, size_t whycap)
{
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    char q[80];
    cfg_quote(q, sizeof(q), s, len, 40);
    if (!plain)
        return reason(why, whycap, KM_ERR_INVALID,
                      "expected true or false, got the quoted text '%s' (remove the quotes)", q);
    for (size_t i = 0; i < KM_ARRAY_LEN(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *dst = true;
            return KM_OK;
        }
        if (strcmp(s, no[i]) == 0) {
            *dst = false;
            return KM_OK;
        }
    }
    return reason(why, whycap, KM_ERR_INVALID,
                  "expected true or false, got '%s' (yes/no/on/off are not accepted)", q);
}

static int set_str(const struct cfg_field_def *d, char *dst, const char *s, size_t len, char *why,
                   size_t whycap)
{
    if (len >= d->size)
        return reason(why, whycap, KM_ERR_RANGE, "value is %zu bytes long: at most %zu allowed",
                      len, d->size - 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return reason(why, whycap, KM_ERR_INVALID,
                          "value contains a control character (byte 0x%02x)", ch);
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
    return KM_OK;
}

static int set_environment(enum cfg_environment *dst, const char *s, char *why, size_t whycap)
{
    if (strcasecmp(s, "development") == 0 || strcasecmp(s, "dev") == 0) {
        *dst = CFG_DEVELOPMENT;
        return KM_OK;
    }
    if (strcasecmp(s, "production") == 0 || strcasecmp(s, "prod") == 0) {
        *dst = CFG_PRODUCTION;
        return KM_OK;
    }
    char q[80];
    return reason(why, whycap, KM_ERR_INVALID, "expected development or production, got '%s'",
                  cfg_quote(q, sizeof(q), s, strlen(s), 40));
}

static int set_enum(const struct cfg_field_def *d, void *dst, const char *s, char *why,
                    size_t whycap)
{
    char q[80];
    cfg_quote(q, sizeof(q), s, strlen(s), 40);
    switch (d->type) {
    case CFG_T_LOG_LEVEL: {
        enum log_level v;
        if (log_level_parse(&v, s) != KM_OK)
            return reason(why, whycap, KM_ERR_INVALID,
                          "expected trace, debug, info, warn, error or off, got '%s'", q);
        memcpy(dst, &v, sizeof(v));
        return KM_OK;
    }
    case CFG_T_LOG_FORMAT: {
        enum log_format v;
        if (log_format_parse(&v, s) != KM_OK)
            return reason(why, whycap, KM_ERR_INVALID, "expected pretty or json, got '%s'", q);
        memcpy(dst, &v, sizeof(v));
        return KM_OK;
    }
    case CFG_T_TRANSPORT: {
        enum tp_kind v;
        if (tp_kind_parse(&v, s) != KM_OK)
            return reason(why, whycap, KM_ERR_INVALID, "expected vsock, tcp or unix, got '%s'", q);
        memcpy(dst, &v, sizeof(v));
        return KM_OK;
    }
    default:
        KM_BUG("field %s is not an enum", d->path);
    }
}

int cfg_value_set(const struct cfg_field_def *d, void *base, const char *text, size_t len,
                  bool plain, char *why, size_t whycap)
{
    KM_ASSERT(text[len] == '\0');
    if (memchr(text, '\0', len) != NULL)
        return reason(why, whycap, KM_ERR_INVALID, "value contains a NUL byte");
    void *dst = (char *)base + d->offset;
    switch (d->type) {
    case CFG_T_BOOL:
        return set_bool(dst, text, len, plain, why, whycap);
    case CFG_T_U32:
        return set_u32(d, dst, text, len, plain, why, whycap);
    case CFG_T_F64:
        return set_f64(d, dst, text, len, plain, why, whycap);
    case CFG_T_STR:
        return set_str(d, dst, text, len, why, whycap);
    case CFG_T_ENVIRONMENT:
        return set_environment(dst, text, why, whycap);
    case CFG_T_LOG_LEVEL:
    case CFG_T_LOG_FORMAT:
    case CFG_T_TRANSPORT:
        return set_enum(d, dst, text, why, whycap);
    case CFG_T_SECTION:
    case CFG_T_LIST:
        break;
    }
    KM_BUG("field %s has no scalar value", d->path);
}

char *cfg_value_format(char *out, size_t outcap, const struct cfg_field_def *d, const void *base)
{
    const void *src = (const char *)base + d->offset;
    switch (d->type) {
    case CFG_T_BOOL:
        snprintf(out, outcap, "%s", *(const bool *)src ? "true" : "false");
        break;
    case CFG_T_U32:
        snprintf(out, outcap, "%u", *(const uint32_t *)src);
        break;
    case CFG_T_F64:
        snprintf(out, outcap, "%g", *(const double *)src);
        break;
    case CFG_T_STR:
        snprintf(out, outcap, "%s", (const char *)src);
        break;
    case CFG_T_ENVIRONMENT:
        snprintf(out, outcap, "%s",
                 *(const enum cfg_environment *)src == CFG_PRODUCTION ? "production"
                                                                      : "development");
        break;
    case CFG_T_LOG_LEVEL:
        snprintf(out, outcap, "%s", log_level_name(*(const enum log_level *)src));
        break;
    case CFG_T_LOG_FORMAT:
        snprintf(out, outcap, "%s",
                 *(const enum log_format *)src == LOG_FORMAT_JSON ? "json" : "pretty");
        break;
    case CFG_T_TRANSPORT:
        snprintf(out, outcap, "%s", tp_kind_name(*(const enum tp_kind *)src));
        break;
    case CFG_T_SECTION:
    case CFG_T_LIST:
        snprintf(out, outcap, "-");
        break;
    }
    return out;
}

/* ---- Defaults --------------------------------------------------------- */

static void set_default(const struct cfg_field_def *d, void *base, enum cfg_environment env,
                        struct cfg_src *src)
{
    const char *text = (env == CFG_PRODUCTION && d->def_prod) ? d->def_prod : d->def_dev;
    memset(src, 0, sizeof(*src));
    if (text == NULL || d->type == CFG_T_SECTION || d->type == CFG_T_LIST) {
        src->kind = CFG_SRC_UNSET;
        return;
    }
    char why[200];
    if (cfg_value_set(d, base, text, strlen(text), true, why, sizeof(why)) != KM_OK)
        KM_BUG("default of %s does not parse: %s", d->path, why);
    src->kind = CFG_SRC_DEFAULT;
}

void cfg_field_set_default(struct cfg *c, enum cfg_field f)
{
    KM_ASSERT((unsigned)f < CFG_F_COUNT);
    set_default(&cfg_field_defs[f], c, c->environment, &c->src[f]);
}

void cfg_redefault(struct cfg *c)
{
    for (unsigned f = 0; f < CFG_F_COUNT; f++) {
        if (f == CFG_F_ENVIRONMENT)
            continue;
        if (c->src[f].kind == CFG_SRC_DEFAULT || c->src[f].kind == CFG_SRC_UNSET)
            cfg_field_set_default(c, (enum cfg_field)f);
    }
}

void cfg_enclave_init(struct cfg_enclave *e, uint32_t line)
{
    memset(e, 0, sizeof(*e));
    e->line = line;
    for (unsigned f = 0; f < CFG_EF_COUNT; f++)
        set_default(&cfg_enclave_field_defs[f], e, CFG_DEVELOPMENT, &e->src[f]);
}

void cfg_init(struct cfg *c, enum cfg_environment env)
{
    KM_ASSERT(c != NULL);
    memset(c, 0, sizeof(*c));
    c->environment = env;
    c->src[CFG_F_ENVIRONMENT].kind = CFG_SRC_DEFAULT;
    for (unsigned f = 0; f < CFG_F_COUNT; f++) {
        if (f != CFG_F_ENVIRONMENT)
            cfg_field_set_default(c, (enum cfg_field)f);
    }
}

void cfg_release(struct cfg *c)
{
    if (c == NULL)
        return;
    free(c->path);
    free(c->enclaves.list);
    memset(c, 0, sizeof(*c));
}
