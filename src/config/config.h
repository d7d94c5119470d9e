/*
 * config.h - the gateway's configuration: YAML loading, environment
 * overrides, validation, and where every effective value came from.
 *
 * Flow (cfg_load does all of it; the pieces are public for tests and tools):
 *
 *   cfg_parse()      YAML bytes -> struct cfg (defaults for the file's
 *                    environment, then the file's values), no environment
 *                    overrides, no cross-field validation
 *   cfg_apply_env()  KEYMELD_ENVIRONMENT, KEYMELD_HOST, KEYMELD_PORT, ...,
 *                    KEYMELD_ENCLAVE_<id>_{CID,PORT,TRANSPORT,TCP_HOST,UNIX_PATH}
 *   cfg_validate()   builds each enclave's effective address and applies the
 *                    rules of docs/CONFIGURATION.md (DESIGN.md section 5)
 *
 * Every effective value remembers its source (default, file:line or env
 * variable): struct cfg_src, cfg_source(), cfg_src_describe().
 *
 * Problems never stop at the first: every warning and error goes into a
 * struct cfg_diag with a location ("config/production.yaml:14" or
 * "env KEYMELD_ENCLAVE_0_CID") and a message that says what to change.
 * Functions return KM_ERR_CONFIG when they added at least one error; the
 * struct cfg is still filled as far as possible so `keymeld config check`
 * can show it.
 *
 * Ownership: struct cfg and struct cfg_diag are caller-owned; release them
 * with cfg_release() / cfg_diag_release() whatever the functions returned.
 * Nothing here is thread-safe on the same struct; distinct structs are
 * independent (no globals).
 */
#ifndef KM_CONFIG_CONFIG_H
#define KM_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/log.h"
#include "transport/addr.h"

/* Limits on untrusted input (cfg_parse). */
#define CFG_MAX_FILE_SIZE (1u << 20) /* bytes of YAML */
#define CFG_MAX_DEPTH     16         /* nested mappings/lists */
#define CFG_MAX_NODES     20000      /* scalars + mappings + lists */
#define CFG_MAX_MAP_KEYS  256        /* keys in one mapping */
#define CFG_MAX_SCALAR    4096       /* bytes in one value (after ${VAR} expansion) */
#define CFG_MAX_ENCLAVES  64
#define CFG_MAX_DIAG      100 /* diagnostics kept; later ones are only counted */

/* String capacities (bytes, without the NUL). */
#define CFG_HOST_MAX     TP_HOST_MAX
#define CFG_PATH_MAX     1024
#define CFG_URL_MAX      2048
#define CFG_KEY_ID_MAX   2048
#define CFG_VAR_NAME_MAX 63 /* environment variable names */

/* server.cors_allowed_origins: origins in the list, bytes of one origin
 * ("https://" + a 253-byte DNS name + ":65535" fits) and of the whole
 * comma-separated list. */
#define CFG_CORS_MAX_ORIGINS 32
#define CFG_CORS_ORIGIN_MAX  300
#define CFG_CORS_LIST_MAX    CFG_MAX_SCALAR

enum cfg_environment {
    CFG_DEVELOPMENT = 0,
    CFG_PRODUCTION = 1,
};

/* Where a value came from. */
enum cfg_src_kind {
    CFG_SRC_UNSET = 0, /* no default and not given (e.g. an enclave's cid) */
    CFG_SRC_DEFAULT,   /* built-in default for the effective environment */
    CFG_SRC_FILE,      /* the YAML file, at .line */
    CFG_SRC_ENV,       /* the environment variable .var */
};

struct cfg_src {
    enum cfg_src_kind kind;
    uint32_t line;                  /* CFG_SRC_FILE: 1-based line */
    char var[CFG_VAR_NAME_MAX + 1]; /* ENV: the variable; FILE: the ${VAR} the
                                       value expanded, or "" */
};

/*
 * Top-level fields, one per YAML key, used to index struct cfg.src. The
 * YAML key of each is its lower-case name with the first '_' as '.', e.g.
 * CFG_F_SERVER_PORT is server.port (see docs/CONFIGURATION.md).
 */
enum cfg_field {
    CFG_F_ENVIRONMENT = 0,
    CFG_F_SERVER_HOST,
    CFG_F_SERVER_PORT,
    CFG_F_SERVER_ENABLE_CORS,
    CFG_F_SERVER_CORS_ALLOWED_ORIGINS,
    CFG_F_SERVER_ENABLE_COMPRESSION,
    CFG_F_SERVER_MAX_REQUEST_SIZE_BYTES,
    CFG_F_SERVER_MAX_CONNECTIONS,
    CFG_F_SERVER_MAX_CONNECTIONS_PER_IP,
    CFG_F_SERVER_IDLE_TIMEOUT_SECS,
    CFG_F_SERVER_HEADER_TIMEOUT_SECS,
    CFG_F_SERVER_BODY_TIMEOUT_SECS,
    CFG_F_SERVER_OPEN_RESERVE,
    CFG_F_SERVER_REQUESTS_PER_SEC_PER_IP,
    CFG_F_SERVER_REQUEST_BURST_PER_IP,
    CFG_F_SERVER_RESERVES_PER_SEC_PER_API_KEY,
    CFG_F_SERVER_TLS_CERT_FILE,
    CFG_F_SERVER_TLS_KEY_FILE,
    CFG_F_SERVER_ALLOW_PLAIN_HTTP,
    CFG_F_DATABASE_PATH,
    CFG_F_DATABASE_URL,
    CFG_F_DATABASE_MAX_CONNECTIONS,
    CFG_F_DATABASE_CONNECTION_TIMEOUT_SECS,
    CFG_F_DATABASE_IDLE_TIMEOUT_SECS,
    CFG_F_DATABASE_ENABLE_WAL_MODE,
    CFG_F_DATABASE_FSYNC_EACH_COMMIT,
    CFG_F_KMS_ENABLED,
    CFG_F_KMS_ENDPOINT_URL,
    CFG_F_KMS_KEY_ID,
    CFG_F_ENCLAVES_LIST, /* enclaves.enclaves (source = where the list is) */
    CFG_F_ENCLAVES_VSOCK_TIMEOUT_SECS,
    CFG_F_ENCLAVES_NONCE_GENERATION_TIMEOUT_SECS,
    CFG_F_ENCLAVES_SESSION_INIT_TIMEOUT_SECS,
    CFG_F_ENCLAVES_SIGNING_TIMEOUT_SECS,
    CFG_F_ENCLAVES_NETWORK_WRITE_TIMEOUT_SECS,
    CFG_F_ENCLAVES_NETWORK_READ_TIMEOUT_SECS,
    CFG_F_ENCLAVES_POOL_ACQUIRE_TIMEOUT_SECS,
    CFG_F_ENCLAVES_MAX_MESSAGE_SIZE_BYTES,
    CFG_F_ENCLAVES_MAX_RETRY_ATTEMPTS,
    CFG_F_ENCLAVES_INITIAL_RETRY_DELAY_MS,
    CFG_F_ENCLAVES_MAX_RETRY_DELAY_MS,
    CFG_F_ENCLAVES_RETRY_BACKOFF_MULTIPLIER,
    CFG_F_ENCLAVES_CONNECTION_RETRY_DELAY_MS,
    CFG_F_ENCLAVES_MAX_CHANNEL_SIZE,
    CFG_F_ENCLAVES_CONNECTION_LOAD_THRESHOLD,
    CFG_F_ENCLAVES_MAX_CONNECTIONS_PER_ENCLAVE,
    CFG_F_COORDINATOR_PROCESSING_INTERVAL_MS,
    CFG_F_COORDINATOR_BATCH_SIZE,
    CFG_F_COORDINATOR_MAX_RETRIES,
    CFG_F_COORDINATOR_PROCESSING_TIMEOUT_MINS,
    CFG_F_COORDINATOR_CLEANUP_INTERVAL_SECS,
    CFG_F_COORDINATOR_DELETE_SESSIONS_OLDER_THAN_SECS,
    CFG_F_COORDINATOR_METRIC_RECORD_INTERVAL_SECS,
    CFG_F_COORDINATOR_HEALTH_CHECK_INTERVAL_SECS,
    CFG_F_COORDINATOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD,
    CFG_F_COORDINATOR_CIRCUIT_BREAKER_RESET_TIMEOUT_SECS,
    CFG_F_COORDINATOR_MAX_CONCURRENT_SESSIONS,
    CFG_F_COORDINATOR_MAX_SESSIONS_PER_ENCLAVE,
    CFG_F_COORDINATOR_SESSION_LEASE_SECS,
    CFG_F_COORDINATOR_NONCE_POOL_SIZE,
    CFG_F_COORDINATOR_DB_OPERATION_TIMEOUT_SECS,
    CFG_F_COORDINATOR_INDIVIDUAL_SESSION_TIMEOUT_SECS,
    CFG_F_COORDINATOR_STUCK_SESSION_DETECTION_THRESHOLD_SECS,
    CFG_F_LOGGING_LEVEL,
    CFG_F_LOGGING_FORMAT,
    CFG_F_LOGGING_ENABLE_FILE_OUTPUT,
    CFG_F_LOGGING_FILE_PATH,
    CFG_F_LOGGING_DISABLE_ANSI,
    CFG_F_SECURITY_ENABLE_ATTESTATION,
    CFG_F_SECURITY_STRICT_VALIDATION,
    CFG_F_SECURITY_ALLOW_INSECURE_CONNECTIONS,
    CFG_F_SECURITY_REQUIRE_TLS,
    CFG_F_SECURITY_ATTESTATION_ROOT,
    CFG_F_SECURITY_ATTESTATION_PCRS,
    CFG_F_SECURITY_ATTESTATION_MAX_AGE_SECS,
    CFG_F_SECURITY_ATTESTATION_ALLOW_DEBUG,
    CFG_F_AUDIT_PATH,
    CFG_F_AUDIT_FSYNC,
    CFG_F_DEVELOPMENT_SECTION, /* the development: key itself (presence) */
    CFG_F_DEVELOPMENT_ENABLE_TEST_ENDPOINTS,
    CFG_F_DEVELOPMENT_DISABLE_ENCLAVE_VERIFICATION,
    CFG_F_DEVELOPMENT_EXTENDED_LOGGING,
    CFG_F_COUNT
};

/* Per-enclave fields, indexing struct cfg_enclave.src. */
enum cfg_enclave_field {
    CFG_EF_ID = 0,
    CFG_EF_CID,
    CFG_EF_PORT,
    CFG_EF_TRANSPORT,
    CFG_EF_TCP_HOST,
    CFG_EF_UNIX_PATH,
    CFG_EF_COUNT
};

/*
 * One enclave of enclaves.enclaves. id and port are required; cid is
 * required with transport vsock, unix_path with transport unix; tcp_host
 * defaults to "localhost" with transport tcp. Env overrides may supply
 * cid/port/transport/tcp_host/unix_path (not the id).
 */
struct cfg_enclave {
    uint32_t id;
    uint32_t cid;  /* ignored unless transport is vsock */
    uint32_t port; /* vsock port (u32) or TCP port (1..65535) */
    enum tp_kind transport;
    char tcp_host[CFG_HOST_MAX + 1];      /* "" = "localhost" */
    char unix_path[TP_UNIX_PATH_MAX + 1]; /* absolute */
    uint32_t line;                        /* line of the list item (1-based) */
    /* Effective address, set by cfg_validate(); addr_ok false if invalid. */
    struct tp_addr addr;
    bool addr_ok;
    struct cfg_src src[CFG_EF_COUNT];
};

struct cfg_server {
    char host[CFG_HOST_MAX + 1];
    uint32_t port;
    /* CORS (docs/API.md "CORS"): the web origins whose pages may call the
     * API from a browser, comma-separated exact origins
     * ("https://wallet.example.com,http://localhost:5173", at most
     * CFG_CORS_MAX_ORIGINS of at most CFG_CORS_ORIGIN_MAX bytes each), or
     * "*" for every origin; "" = CORS off. enable_cors is the older switch,
     * kept for existing files: true with an empty list means "*"; it is
     * ignored when the list is set. */
    bool enable_cors;
    char cors_allowed_origins[CFG_CORS_LIST_MAX + 1];
    bool enable_compression;
    uint32_t max_request_size_bytes;
    /* Connection limits (docs/CONFIGURATION.md "server"): all connections,
     * connections from one address (one client cannot hold them all), and
     * the seconds a connection may sit without a byte. */
    uint32_t max_connections;
    uint32_t max_connections_per_ip;
    uint32_t idle_timeout_secs;
    /* Request deadlines: a request's headers must be complete this long
     * after the connection opened (or its previous request ended), its body
     * this long after the headers; the idle timeout alone restarts with
     * every byte, so a client trickling bytes would never hit it. */
    uint32_t header_timeout_secs;
    uint32_t body_timeout_secs;
    /* Anyone may reserve keygens, without an API key: development only
     * (an error in production). */
    bool open_reserve;
    /* Request rates (token buckets, 429 + Retry-After beyond them): per
     * client address (0 = off; behind a reverse proxy every request comes
     * from the proxy's address: limit there and set 0 here), and reserves
     * per API key (0 = off; the burst is 4 times the rate). */
    uint32_t requests_per_sec_per_ip;
    uint32_t request_burst_per_ip;
    uint32_t reserves_per_sec_per_api_key;
    /* HTTPS (docs/OPERATIONS.md "TLS"): PEM files of the certificate
     * (chain, leaf first) and its private key; both "" = plain HTTP, both
     * or neither must be set. In production plain HTTP on a host that is
     * not a loopback address is refused unless allow_plain_http says a
     * TLS-terminating proxy or load balancer stands in front. */
    char tls_cert_file[CFG_PATH_MAX + 1];
    char tls_key_file[CFG_PATH_MAX + 1];
    bool allow_plain_http;
};

struct cfg_database {
    char path[CFG_PATH_MAX + 1];
    /* "" = the SQLite file at path; else sqlite:PATH or postgresql://...
     * (cfg_database_url gives the one in effect) */
    char url[CFG_URL_MAX + 1];
    uint32_t max_connections;
    uint32_t connection_timeout_secs;
    uint32_t idle_timeout_secs;
    bool enable_wal_mode;
    bool fsync_each_commit; /* synchronous=FULL, else NORMAL */
};

struct cfg_kms {
    bool enabled;
    char endpoint_url[CFG_URL_MAX + 1]; /* "" = the AWS default endpoint */
    char key_id[CFG_KEY_ID_MAX + 1];
};

struct cfg_enclaves {
    struct cfg_enclave *list; /* owned; count entries */
    size_t count;
    uint32_t vsock_timeout_secs; /* per-request deadline on the enclave link */
    uint32_t nonce_generation_timeout_secs;
    uint32_t session_init_timeout_secs;
    uint32_t signing_timeout_secs;
    uint32_t network_write_timeout_secs;
    uint32_t network_read_timeout_secs;
    uint32_t pool_acquire_timeout_secs; /* connect timeout */
    uint32_t max_message_size_bytes;    /* frame cap */
    uint32_t max_retry_attempts;
    uint32_t initial_retry_delay_ms;
    uint32_t max_retry_delay_ms;
    double retry_backoff_multiplier;
    uint32_t connection_retry_delay_ms;
    uint32_t max_channel_size;
    uint32_t connection_load_threshold; /* in-flight requests before a new connection */
    uint32_t max_connections_per_enclave;
};

struct cfg_coordinator {
    uint32_t processing_interval_ms;
    uint32_t batch_size;
    uint32_t max_retries;
    uint32_t processing_timeout_mins;
    uint32_t cleanup_interval_secs;
    uint32_t delete_sessions_older_than_secs;
    uint32_t metric_record_interval_secs;
    uint32_t health_check_interval_secs;
    uint32_t circuit_breaker_failure_threshold;
    uint32_t circuit_breaker_reset_timeout_secs;
    uint32_t max_concurrent_sessions;
    uint32_t max_sessions_per_enclave; /* 0: half of max_concurrent_sessions */
    uint32_t session_lease_secs;       /* 0: enclaves.vsock_timeout_secs + 15 */
    uint32_t nonce_pool_size;          /* pool entries per keygen and enclave; 0: off */
    uint32_t db_operation_timeout_secs;
    uint32_t individual_session_timeout_secs;
    uint32_t stuck_session_detection_threshold_secs;
};

struct cfg_logging {
    enum log_level level;
    enum log_format format;
    bool enable_file_output;
    char file_path[CFG_PATH_MAX + 1];
    bool disable_ansi;
};

struct cfg_security {
    bool enable_attestation;
    bool strict_validation;
    bool allow_insecure_connections;
    bool require_tls;
    /* Attestation trust (docs/ATTESTATION.md): the root certificate (PEM;
     * "" = the AWS Nitro root shipped with KeyMeld), the PCR policy file
     * (required when enable_attestation), the freshness window, and
     * whether debug-mode enclaves (all-zero PCR0-2) are accepted. */
    char attestation_root[CFG_PATH_MAX + 1];
    char attestation_pcrs[CFG_PATH_MAX + 1];
    uint32_t attestation_max_age_secs;
    bool attestation_allow_debug;
};

/* The audit log (audit/audit.h): one JSON line per security event, each
 * carrying the hash of the line before. path "" turns it off; fsync makes
 * every line durable before the request answers. */
struct cfg_audit {
    char path[CFG_PATH_MAX + 1];
    bool fsync;
};

struct cfg_development {
    bool present; /* the file has a development: section */
    bool enable_test_endpoints;
    bool disable_enclave_verification;
    bool extended_logging;
};

/* How cfg_load chose the file. */
enum cfg_path_origin {
    CFG_PATH_NONE = 0,    /* parsed from memory (cfg_parse) */
    CFG_PATH_ARG,         /* --config */
    CFG_PATH_CONFIG_PATH, /* the CONFIG_PATH variable */
    CFG_PATH_DEFAULT,     /* config/<environment>.yaml */
};

struct cfg {
    char *path; /* owned; the file name used in messages ("" if none) */
    enum cfg_path_origin path_origin;
    enum cfg_environment environment;
    struct cfg_server server;
    struct cfg_database database;
    struct cfg_kms kms;
    struct cfg_enclaves enclaves;
    struct cfg_coordinator coordinator;
    struct cfg_logging logging;
    struct cfg_security security;
    struct cfg_audit audit;
    struct cfg_development development;
    struct cfg_src src[CFG_F_COUNT];
};

/* ---- Diagnostics ------------------------------------------------------ */

enum cfg_severity {
    CFG_WARNING = 1,
    CFG_ERROR = 2,
};

struct cfg_diag_entry {
    enum cfg_severity severity;
    char loc[320]; /* "config/x.yaml:14", "config/x.yaml", "env VAR" */
    char msg[512];
};

struct cfg_diag {
    struct cfg_diag_entry *entries; /* owned; count entries, in order found */
    size_t count;
    size_t cap;
    size_t errors;   /* all errors, including dropped ones */
    size_t warnings; /* all warnings, including dropped ones */
    size_t dropped;  /* entries beyond CFG_MAX_DIAG, counted only */
};

void cfg_diag_init(struct cfg_diag *d);
void cfg_diag_release(struct cfg_diag *d);

/* Records a diagnostic. loc may be NULL or "" (no location). The message is
 * truncated to fit. */
void cfg_diag_add(struct cfg_diag *d, enum cfg_severity sev, const char *loc, const char *fmt, ...)
    KM_PRINTF(4, 5);

/* As cfg_diag_add with loc "file:line" ("file" when line is 0). */
void cfg_diag_at(struct cfg_diag *d, enum cfg_severity sev, const char *file, uint32_t line,
                 const char *fmt, ...) KM_PRINTF(5, 6);

/* "loc: msg" (or "msg" without a location) into out; returns out. */
char *cfg_diag_format(char *out, size_t outcap, const struct cfg_diag_entry *e);

/* ---- Environment access ----------------------------------------------- */

/*
 * How the config reads the environment, so tests can pass a fake one
 * without setenv(). get returns a borrowed value or NULL when unset. entry,
 * optional, returns the i-th "NAME=VALUE" string or NULL past the end; it is
 * used only to warn about KEYMELD_ENCLAVE_<id>_* variables that match no
 * configured enclave.
 */
struct cfg_getenv {
    const char *(*get)(const void *ctx, const char *name);
    const char *(*entry)(const void *ctx, size_t i);
    const void *ctx;
};

/* The process environment (getenv(3) and environ). */
void cfg_getenv_process(struct cfg_getenv *out);

/* A NULL-terminated array of "NAME=VALUE" strings; envp must outlive out. */
void cfg_getenv_envp(struct cfg_getenv *out, const char *const *envp);

/* ---- Building a configuration ----------------------------------------- */

/* Fills c with the defaults of env: no file, no enclaves. */
void cfg_init(struct cfg *c, enum cfg_environment env);

/* Frees what c owns and zeroes it. Safe on a zeroed or released struct. */
void cfg_release(struct cfg *c);

/*
 * Parses a YAML configuration from untrusted bytes data[0..len) (no NUL
 * needed). source_name names the file in messages and sources (copied).
 * env is used only to expand ${VAR} in values; NULL means an empty
 * environment (every ${VAR} is refused).
 *
 * Initializes *out (any previous contents are overwritten, not freed):
 * defaults for the file's environment (development when absent), then the
 * file's values. Rejects: malformed YAML, anchors/aliases, tags, several
 * documents, duplicate keys, wrong types, out-of-range numbers, unset
 * ${VAR}, input beyond the CFG_MAX_* limits. Unknown keys are warnings.
 *
 * Returns KM_OK; KM_ERR_CONFIG when some values were refused (the rest
 * were applied); KM_ERR_INVALID when the YAML itself could not be read
 * or is not a mapping (nothing applied) or KM_ERR_TOO_LARGE beyond CFG_MAX_FILE_SIZE. Every
 * failure is described in diag.
 */
int cfg_parse(struct cfg *out, const uint8_t *data, size_t len, const char *source_name,
              const struct cfg_getenv *env, struct cfg_diag *diag) KM_WUR;

/*
 * Applies the environment overrides (docs/CONFIGURATION.md): first
 * KEYMELD_ENVIRONMENT (switching the defaults of values the file did not set,
 * with a warning when it contradicts the file), then KEYMELD_HOST,
 * KEYMELD_PORT, KEYMELD_DATABASE_PATH, KEYMELD_LOG_LEVEL, KEYMELD_LOG_FORMAT,
 * and KEYMELD_ENCLAVE_<id>_{CID,PORT,TRANSPORT,TCP_HOST,UNIX_PATH} for every
 * enclave listed in the file. A variable that is set but does not parse is
 * an error naming it. Returns KM_OK or KM_ERR_CONFIG.
 */
int cfg_apply_env(struct cfg *c, const struct cfg_getenv *env, struct cfg_diag *diag) KM_WUR;

/*
 * Builds every enclave's effective address (e->addr, e->addr_ok) and checks
 * the rules of docs/CONFIGURATION.md for c->environment. Call once, after
 * cfg_apply_env. Returns KM_OK or KM_ERR_CONFIG.
 */
int cfg_validate(struct cfg *c, struct cfg_diag *diag) KM_WUR;

struct cfg_load_opts {
    const char *path;             /* --config value, or NULL */
    const struct cfg_getenv *env; /* NULL: the process environment */
    const char *base_dir;         /* where config/<env>.yaml lives; NULL: "." */
};

/*
 * The whole start-up sequence: choose the file (opts->path, else CONFIG_PATH,
 * else config/<env>.yaml with env from KEYMELD_ENVIRONMENT, default
 * development), read it (at most CFG_MAX_FILE_SIZE bytes), cfg_parse,
 * cfg_apply_env, cfg_validate. *out is always initialized (release it).
 * Returns KM_OK when there is no error (warnings allowed), else KM_ERR_CONFIG.
 */
int cfg_load(struct cfg *out, const struct cfg_load_opts *opts, struct cfg_diag *diag) KM_WUR;

/* ---- Describing a configuration --------------------------------------- */

/* "Development" | "Production". */
const char *cfg_environment_name(enum cfg_environment env);

/* The YAML key of a field ("server.port"); "enclaves.enclaves[].cid" style
 * for enclave fields. Never NULL. */
const char *cfg_field_key(enum cfg_field f);
const char *cfg_enclave_field_key(enum cfg_enclave_field f);

/* Borrowed pointer to the source of a top-level field. */
const struct cfg_src *cfg_source(const struct cfg *c, enum cfg_field f);

/* "default", "not set", "env KEYMELD_ENCLAVE_0_CID",
 * "file config/production.yaml:14" or "file config/p.yaml:9 via ${KMS_KEY_ARN}".
 * Returns out. */
char *cfg_src_describe(char *out, size_t outcap, const struct cfg *c, const struct cfg_src *s);

/* The database the gateway opens: database.url when set, else the SQLite
 * file database.path; and that URL for logs and reports, with a
 * PostgreSQL password replaced by "***". */
const char *cfg_database_url(const struct cfg *c);
char *cfg_database_describe(char *out, size_t outcap, const struct cfg *c);
enum cfg_field cfg_database_field(const struct cfg *c);

/* "KEYMELD_ENCLAVE_<id>_<suffix>" into out; returns out. */
char *cfg_enclave_env_name(char *out, size_t outcap, uint32_t id, const char *suffix);

/*
 * One line for logs and `config check`:
 *   vsock://16:8000  [cid 16 (env KEYMELD_ENCLAVE_0_CID), port 8000 (file
 *   config/production.yaml:31), transport vsock (default)]
 * Returns out (truncated to outcap).
 */
char *cfg_enclave_describe(char *out, size_t outcap, const struct cfg *c,
                           const struct cfg_enclave *e);

/*
 * Prints the `keymeld config check` report to out: the file and how it was
 * chosen, the environment and its source, server and database, every
 * enclave's effective address with sources, warnings, errors, and a final
 * "Configuration OK" or "Configuration invalid: N error(s)" line.
 */
void cfg_check_print(FILE *out, const struct cfg *c, const struct cfg_diag *d);

#endif /* KM_CONFIG_CONFIG_H */
