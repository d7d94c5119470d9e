/*
 * stack.h - runs a local KeyMeld stack for integration tests: N enclave
 * processes on TCP 127.0.0.1 (ephemeral ports) and a gateway process with
 * a generated configuration and its own database, all logging to files in
 * a fresh directory. Processes are started with posix_spawn, found ready by
 * their start-up log line / readiness endpoint (never a blind sleep), and
 * stopped by pid.
 */
#ifndef KM_TESTS_STACK_H
#define KM_TESTS_STACK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define STACK_MAX_ENCLAVES 8

/* With kms_endpoint: the KMS key the enclaves name and the credentials
 * the gateway hands them (a KMS stand-in must know the same). */
#define STACK_KMS_KEY_ID            "alias/keymeld-stack"
#define STACK_AWS_ACCESS_KEY_ID     "AKIDKEYMELDSTACK"
#define STACK_AWS_SECRET_ACCESS_KEY "keymeld/stack+secret/0123456789abcdefghij"
#define STACK_AWS_SESSION_TOKEN     "FwoGZXIvYXdzEXAMPLE//stack+token=="

struct client_trust;
struct pg_cluster;

struct stack {
    char dir[128];     /* working directory: logs, config, database */
    char bin_dir[512]; /* where keymeld-enclave and keymeld-gateway live: set
                          before stack_start, else $KEYMELD_TEST_BUILD_DIR/src/cmd */
    size_t n;
    pid_t enclave_pid[STACK_MAX_ENCLAVES];
    uint16_t enclave_port[STACK_MAX_ENCLAVES];
    pid_t gateway_pid;
    uint16_t gateway_port;
    char base_url[64];
    char config_path[192];
    const char *log_level; /* gateway's level, "info" unless set before
                               stack_start; enclaves use it if more verbose */
    bool no_fsync;         /* database.fsync_each_commit: false (benchmarks) */
    bool audit_fsync;      /* audit.fsync: true, the production default (benchmarks) */
    /* Attestation: enclaves run ATTESTATION=development with a CA in
     * dir/dev-ca; the gateway verifies them (security.enable_attestation)
     * against trust_root and pcrs_path (PCR0 = SHA-384 of keymeld-enclave). */
    char trust_root[192];
    char pcrs_path[192];
    const char *enclave_attestation; /* ATTESTATION of enclaves started from
                                        now on; NULL = "development" */
    const char *enclave_sealer;      /* SEALER of enclaves started from now on;
                                        NULL = "file" (a KEK in dir/kek) */
    uint32_t enclave_max_sessions;   /* ENCLAVE_MAX_SESSIONS; 0 = default */
    bool require_api_keys;           /* server.open_reserve: false (reserve needs a key) */
    bool keep_dir;                   /* leave the directory after a clean stop too */
    uint32_t vsock_timeout_secs;     /* enclaves.vsock_timeout_secs; 0 = 20 */
    /* PostgreSQL: stack_start starts a throwaway cluster (pg_cluster.h) and
     * gives the gateway database.url = db_url. Also when the environment
     * says KEYMELD_TEST_DB=postgres (CTest's <name>.pg runs). */
    bool postgres;
    struct pg_cluster *pg; /* out: the cluster, owned; NULL on SQLite */
    char db_url[192];      /* out: the gateway's database.url ("" = SQLite) */
    /* A second gateway on the same database (PostgreSQL only): started by
     * stack_start_gateway2, its own config (gateway-2.yaml), port, log
     * (gateway-2.log) and audit log; stopped by stack_stop. */
    pid_t gateway2_pid;
    uint16_t gateway2_port;
    char base_url2[64];
    char config2_path[192];
    /* A KMS (stand-in) at this http://127.0.0.1:PORT: enclaves started from
     * now on run SEALER=aws-kms against it (KMS_KEY_ID=STACK_KMS_KEY_ID,
     * KMS_ALLOW_HTTP=1, KMS_PROXY_PORT=0) instead of the file sealer, and the
     * gateway gets STACK_AWS_* as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
     * AWS_SESSION_TOKEN. Borrowed. */
    const char *kms_endpoint;
    /* Called by stack_start once dir, the development CA (trust_root) and
     * pcrs_path exist, before any process starts (e.g. to start a KMS
     * stand-in that trusts them and set kms_endpoint). */
    void (*before_start)(struct stack *s, void *ctx);
    void *before_start_ctx;
};

/* Called on any failure with a message (after the relevant log was printed
 * to stderr); must not return. Default: print and exit(1). Tests set it to
 * cmocka's fail. */
extern void (*stack_fail_hook)(const char *msg);

/* Starts n enclaves and a gateway; waits until the gateway is ready (every
 * enclave reachable). Calls stack_fail_hook on any problem. */
void stack_start(struct stack *s, size_t n);

/* Stops everything (SIGTERM, then SIGKILL after 5 s); a process that does
 * not exit with status 0 (crash, sanitizer report, hang) fails and leaves
 * the directory for inspection. After a clean stop the directory is
 * removed, unless KEYMELD_TEST_KEEP_DIRS is set or s->keep_dir. */
void stack_stop(struct stack *s);

/* Gateway control. kill uses SIGKILL (a crash); start reuses the config
 * and database; wait_ready polls /health/ready until 200 or timeout. */
void stack_kill_gateway(struct stack *s);
/* The second gateway (see gateway2_pid): start waits for its readiness. */
void stack_start_gateway2(struct stack *s);
void stack_kill_gateway2(struct stack *s);
void stack_start_gateway(struct stack *s);
/* Starts the gateway without waiting for readiness (tests of a gateway
 * that must not become ready). */
void stack_spawn_gateway(struct stack *s);
bool stack_wait_ready(struct stack *s, uint32_t timeout_ms);

/* Enclave control. A restarted enclave keeps its port (the gateway's
 * configuration names it) and, with a sealer, its identity key (the gateway
 * hands it back sealed); with SEALER=none it gets a new one. Stopping checks the exit
 * status like stack_stop. */
void stack_stop_enclave(struct stack *s, size_t i);
void stack_start_enclave(struct stack *s, size_t i);
/* kill -9 (a crash, nothing wiped or flushed). */
void stack_kill_enclave(struct stack *s, size_t i);

/* Loads the trust a client of this stack pins (its development root and
 * PCR policy) into *t; calls stack_fail_hook on failure. */
void stack_client_trust(const struct stack *s, struct client_trust *t);

/* GET base_url+path: returns the HTTP status (0 if unreachable) and, if
 * body is not NULL, a malloc'd copy of the response body. */
long stack_http_get(const struct stack *s, const char *path, char **body);

/* Path of a log file in the stack directory ("gateway.log",
 * "enclave-0.log"), and whether it contains text. */
void stack_log_path(const struct stack *s, const char *name, char *out, size_t cap);
bool stack_log_contains(const struct stack *s, const char *name, const char *text);

#endif /* KM_TESTS_STACK_H */
