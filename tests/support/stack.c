#include "stack.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg_cluster.h"
#include "process_spawn.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "client/attest.h"
#include "client/rest.h"
#include "common/clock.h"
#include "common/secure.h"
#include "common/banned.h"

static void default_fail(const char *msg)
{
    fprintf(stderr, "stack: %s\n", msg);
    exit(1);
}

void (*stack_fail_hook)(const char *msg) = default_fail;

static void fail_msg_(const char *fmt, ...) KM_PRINTF(1, 2);
static void fail_msg_(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    stack_fail_hook(msg);
    exit(1); /* the hook must not return */
}

/* Prints the tail of a log (what the process said before failing). */
static void print_log(const struct stack *s, const char *log)
{
    char path[512], line[2048];
    stack_log_path(s, log, path, sizeof(path));
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return;
    fprintf(stderr, "---- %s ----\n", path);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fprintf(stderr, "----\n");
    fclose(f);
}

static void stack_fail(const struct stack *s, const char *log, const char *what)
{
    if (log != NULL)
        print_log(s, log);
    fail_msg_("%s", what);
}

void stack_log_path(const struct stack *s, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", s->dir, name);
}

bool stack_log_contains(const struct stack *s, const char *name, const char *text)
{
    char path[512];
    stack_log_path(s, name, path, sizeof(path));
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    char *buf = malloc(1 << 22);
    size_t n = fread(buf, 1, (1 << 22) - 1, f);
    fclose(f);
    buf[n] = '\0';
    bool found = strstr(buf, text) != NULL;
    free(buf);
    return found;
}

/* Our settings win over inherited KEYMELD_* / enclave variables; no AWS
 * credentials of the caller's reach a test stack. */
static const char *const stack_settings[] = {
    "KEYMELD_", "TRANSPORT_MODE=", "VSOCK_PORT=", "CONFIG_PATH=", "ATTESTATION",
    "SEALER",   "ENCLAVE_",        "KMS_",        "AWS_",         NULL};

/* Spawns bin with extra environment entries, stdout+stderr appended to
 * the named log. */
static pid_t spawn(const struct stack *s, const char *bin, char *const argv[], char *const extra[],
                   const char *log)
{
    char path[512], exe[600];
    stack_log_path(s, log, path, sizeof(path));
    snprintf(exe, sizeof(exe), "%s/%s", s->bin_dir, bin);
    pid_t pid = spawn_process(exe, argv, (const char *const *)extra, stack_settings, path, true);
    if (pid < 0)
        fail_msg_("cannot start %s (log %s): %s", exe, path, strerror(errno));
    return pid;
}

/* SIGTERM, then SIGKILL after 5 s. Returns true when the process exited
 * with status 0 (a graceful shutdown; a sanitizer report makes it fail). */
static bool stop_pid(pid_t *pid)
{
    int status = 0;
    if (*pid <= 0)
        return true;
    kill(*pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(*pid, &status, WNOHANG) == *pid) {
            *pid = 0;
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        clock_sleep_ms(10);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
    return false;
}

/* Reads "TCP server listening on 127.0.0.1:PORT" from the enclave log. */
static uint16_t wait_enclave_port(struct stack *s, size_t i)
{
    char log[32], path[512];
    snprintf(log, sizeof(log), "enclave-%zu.log", i);
    stack_log_path(s, log, path, sizeof(path));
    uint64_t until = clock_now_ms() + 10000;
    while (clock_now_ms() < until) {
        FILE *f = fopen(path, "rb");
        char line[1024];
        unsigned port = 0;
        while (f && fgets(line, sizeof(line), f)) {
            const char *p = strstr(line, "TCP server listening on 127.0.0.1:");
            if (p != NULL)
                port =
                    (unsigned)strtoul(p + strlen("TCP server listening on 127.0.0.1:"), NULL, 10);
        }
        if (f)
            fclose(f);
        if (port > 0)
            return (uint16_t)port;
        if (waitpid(s->enclave_pid[i], NULL, WNOHANG) == s->enclave_pid[i])
            stack_fail(s, log, "enclave exited during start-up");
        clock_sleep_ms(10);
    }
    stack_fail(s, log, "enclave did not report its port within 10 s");
    return 0;
}

void stack_start_enclave(struct stack *s, size_t i)
{
    char id[32], port[32], log[32], level[64];
    snprintf(id, sizeof(id), "ENCLAVE_ID=%zu", i);
    snprintf(port, sizeof(port), "VSOCK_PORT=%u", s->enclave_port[i]);
    snprintf(log, sizeof(log), "enclave-%zu.log", i);
    /* Enclaves log at least at info: their start-up line says the port. */
    const char *lv =
        s->log_level && (strcmp(s->log_level, "debug") == 0 || strcmp(s->log_level, "trace") == 0)
            ? s->log_level
            : "info";
    snprintf(level, sizeof(level), "KEYMELD_LOG_LEVEL=%s", lv);
    char mode[] = "TRANSPORT_MODE=tcp", host[] = "TCP_HOST=127.0.0.1";
    char attest[64], ca[256], sealer[64], kek[256], maxs[64] = "ENCLAVE_WORKERS=8";
    snprintf(attest, sizeof(attest), "ATTESTATION=%s",
             s->enclave_attestation ? s->enclave_attestation : "development");
    snprintf(ca, sizeof(ca), "ATTESTATION_DEV_CA=%s/dev-ca", s->dir);
    snprintf(sealer, sizeof(sealer), "SEALER=%s", s->enclave_sealer ? s->enclave_sealer : "file");
    snprintf(kek, sizeof(kek), "SEALER_KEK_FILE=%s/kek", s->dir);
    if (s->enclave_max_sessions > 0)
        snprintf(maxs, sizeof(maxs), "ENCLAVE_MAX_SESSIONS=%u", s->enclave_max_sessions);
    char *extra[] = {mode,   host, port, id,   level, attest, ca,
                     sealer, kek,  maxs, NULL, NULL,  NULL,   NULL};
    char endpoint[128], key_id[] = "KMS_KEY_ID=" STACK_KMS_KEY_ID;
    char http[] = "KMS_ALLOW_HTTP=1", direct[] = "KMS_PROXY_PORT=0";
    if (s->kms_endpoint != NULL) {
        snprintf(sealer, sizeof(sealer), "SEALER=aws-kms");
        snprintf(endpoint, sizeof(endpoint), "KMS_ENDPOINT=%s", s->kms_endpoint);
        extra[8] = endpoint; /* instead of SEALER_KEK_FILE */
        extra[10] = key_id;
        extra[11] = http;
        extra[12] = direct;
    }
    char bin[] = "keymeld-enclave";
    char *argv[] = {bin, NULL};
    s->enclave_pid[i] = spawn(s, "keymeld-enclave", argv, extra, log);
    s->enclave_port[i] = wait_enclave_port(s, i);
}

void stack_kill_enclave(struct stack *s, size_t i)
{
    if (s->enclave_pid[i] > 0) {
        kill(s->enclave_pid[i], SIGKILL);
        waitpid(s->enclave_pid[i], NULL, 0);
        s->enclave_pid[i] = 0;
    }
}

void stack_stop_enclave(struct stack *s, size_t i)
{
    if (!stop_pid(&s->enclave_pid[i])) {
        char log[32];
        snprintf(log, sizeof(log), "enclave-%zu.log", i);
        stack_fail(s, log, "enclave did not shut down cleanly");
    }
}

/* The development CA the enclaves sign with and the PCR policy that pins
 * this build's keymeld-enclave. */
/* The file sealer's key-encryption key: 32 random bytes, 0600. */
static void make_kek(struct stack *s)
{
    char path[192];
    uint8_t kek[32];
    snprintf(path, sizeof(path), "%s/kek", s->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || secure_random(kek, sizeof(kek)) != KM_OK ||
        write(fd, kek, sizeof(kek)) != (ssize_t)sizeof(kek))
        fail_msg_("cannot write the key-encryption key %s", path);
    close(fd);
}

static void make_trust(struct stack *s)
{
    char ca[160], bin[600];
    struct km_error err;
    bool created;
    uint8_t pcr0[ATTEST_PCR_LEN], zero[ATTEST_PCR_LEN] = {0};
    snprintf(ca, sizeof(ca), "%s/dev-ca", s->dir);
    snprintf(bin, sizeof(bin), "%s/keymeld-enclave", s->bin_dir);
    snprintf(s->trust_root, sizeof(s->trust_root), "%s/%s", ca, ATTEST_DEV_ROOT_CERT);
    snprintf(s->pcrs_path, sizeof(s->pcrs_path), "%s/pcrs.json", s->dir);
    if (attest_dev_ca_init(ca, &created, &err) != KM_OK ||
        attest_dev_measure(pcr0, bin, &err) != KM_OK ||
        attest_pcr_policy_write(s->pcrs_path, pcr0, zero, zero, NULL, &err) != KM_OK)
        fail_msg_("attestation set-up: %s", err.msg);
}

void stack_client_trust(const struct stack *s, struct client_trust *t)
{
    struct km_error err;
    if (client_trust_load(t, s->trust_root, s->pcrs_path, &err) != KM_OK)
        fail_msg_("client trust: %s", err.msg);
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        fail_msg_("cannot find a free port");
    close(fd);
    return ntohs(sa.sin_port);
}

/* A gateway's configuration: port, audit log and (on PostgreSQL) the
 * shared database differ between the two gateways. */
static void write_config(struct stack *s, const char *path, uint16_t port, const char *audit)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        fail_msg_("cannot write %s", path);
    char database[320];
    if (s->db_url[0] != '\0')
        /* A PostgreSQL connection is a server process: a small pool, so
         * two gateways and the tests' own connections fit the cluster. */
        snprintf(database, sizeof(database), "database:\n  url: '%s'\n  max_connections: 16\n",
                 s->db_url);
    else
        snprintf(database, sizeof(database),
                 "database:\n  path: %s/data/keymeld.db\n  fsync_each_commit: %s\n", s->dir,
                 s->no_fsync ? "false" : "true");
    fprintf(f,
            "environment: development\n"
            "server:\n  host: 127.0.0.1\n  port: %u\n"
            /* Every test client (up to bench_e2e's 64 threads) is 127.0.0.1. */
            "  max_connections_per_ip: 1024\n"
            "  requests_per_sec_per_ip: 0\n"
            "  open_reserve: %s\n"
            "%s"
            "logging:\n  level: %s\n"
            "audit:\n  path: %s/%s\n  fsync: %s\n"
            "coordinator:\n  health_check_interval_secs: 1\n"
            "security:\n  enable_attestation: true\n  attestation_root: %s\n"
            "  attestation_pcrs: %s\n"
            "enclaves:\n  vsock_timeout_secs: %u\n  enclaves:\n",
            port, s->require_api_keys ? "false" : "true", database,
            s->log_level ? s->log_level : "info", s->dir, audit, s->audit_fsync ? "true" : "false",
            s->trust_root, s->pcrs_path, s->vsock_timeout_secs ? s->vsock_timeout_secs : 20);
    for (size_t i = 0; i < s->n; i++)
        fprintf(f,
                "    - id: %zu\n      transport: tcp\n      tcp_host: 127.0.0.1\n      port: %u\n",
                i, s->enclave_port[i]);
    fclose(f);
}

long stack_http_get(const struct stack *s, const char *path, char **body)
{
    struct rest_client *c = rest_client_new(s->base_url, 5000);
    struct rest_response r;
    struct km_error err;
    long status = 0;
    if (body)
        *body = NULL;
    if (rest_call(c, &r, "GET", path, NULL, NULL, &err) == KM_OK) {
        status = r.status;
        if (body)
            *body = strdup(r.text ? r.text : "");
        rest_response_clear(&r);
    }
    rest_client_free(c);
    return status;
}

bool stack_wait_ready(struct stack *s, uint32_t timeout_ms)
{
    uint64_t until = clock_now_ms() + timeout_ms;
    while (clock_now_ms() < until) {
        if (stack_http_get(s, "/health/ready", NULL) == 200)
            return true;
        clock_sleep_ms(20);
    }
    return false;
}

void stack_spawn_gateway(struct stack *s)
{
    char bin[] = "keymeld-gateway", flag[] = "--config";
    char *argv[] = {bin, flag, s->config_path, NULL};
    char ak[] = "AWS_ACCESS_KEY_ID=" STACK_AWS_ACCESS_KEY_ID;
    char sk[] = "AWS_SECRET_ACCESS_KEY=" STACK_AWS_SECRET_ACCESS_KEY;
    char tk[] = "AWS_SESSION_TOKEN=" STACK_AWS_SESSION_TOKEN;
    char *aws[] = {ak, sk, tk, NULL};
    s->gateway_pid =
        spawn(s, "keymeld-gateway", argv, s->kms_endpoint != NULL ? aws : NULL, "gateway.log");
}

void stack_start_gateway(struct stack *s)
{
    stack_spawn_gateway(s);
    if (!stack_wait_ready(s, 20000))
        stack_fail(s, "gateway.log", "gateway not ready within 20 s");
}

void stack_start_gateway2(struct stack *s)
{
    if (s->db_url[0] == '\0')
        fail_msg_("a second gateway needs the PostgreSQL stack (s->postgres)");
    if (s->gateway2_port == 0) {
        s->gateway2_port = free_port();
        snprintf(s->base_url2, sizeof(s->base_url2), "http://127.0.0.1:%u", s->gateway2_port);
        snprintf(s->config2_path, sizeof(s->config2_path), "%s/gateway-2.yaml", s->dir);
        write_config(s, s->config2_path, s->gateway2_port, "audit-2.jsonl");
    }
    char bin[] = "keymeld-gateway", flag[] = "--config";
    char *argv[] = {bin, flag, s->config2_path, NULL};
    s->gateway2_pid = spawn(s, "keymeld-gateway", argv, NULL, "gateway-2.log");
    uint64_t until = clock_now_ms() + 20000;
    char url[96];
    snprintf(url, sizeof(url), "%s/health/ready", s->base_url2);
    while (clock_now_ms() < until) {
        struct rest_client *c = rest_client_new(s->base_url2, 2000);
        struct rest_response r;
        struct km_error err;
        long status = 0;
        if (rest_call(c, &r, "GET", "/health/ready", NULL, NULL, &err) == KM_OK) {
            status = r.status;
            rest_response_clear(&r);
        }
        rest_client_free(c);
        if (status == 200)
            return;
        clock_sleep_ms(20);
    }
    stack_fail(s, "gateway-2.log", "the second gateway was not ready within 20 s");
}

void stack_kill_gateway2(struct stack *s)
{
    if (s->gateway2_pid > 0) {
        kill(s->gateway2_pid, SIGKILL);
        waitpid(s->gateway2_pid, NULL, 0);
        s->gateway2_pid = 0;
    }
}

void stack_kill_gateway(struct stack *s)
{
    if (s->gateway_pid > 0) {
        kill(s->gateway_pid, SIGKILL);
        waitpid(s->gateway_pid, NULL, 0);
        s->gateway_pid = 0;
    }
}

void stack_start(struct stack *s, size_t n)
{
    char bin_dir[sizeof(s->bin_dir)];
    const char *build = getenv("KEYMELD_TEST_BUILD_DIR");
    if (s->bin_dir[0] != '\0')
        memcpy(bin_dir, s->bin_dir, sizeof(bin_dir));
    else if (build != NULL)
        snprintf(bin_dir, sizeof(bin_dir), "%s/src/cmd", build);
    else
        fail_msg_("KEYMELD_TEST_BUILD_DIR is not set (run through ctest)");
    if (n > STACK_MAX_ENCLAVES)
        fail_msg_("too many enclaves");
    const char *level = s->log_level;
    bool no_fsync = s->no_fsync, audit_fsync = s->audit_fsync, keep_dir = s->keep_dir;
    const char *sealer = s->enclave_sealer;
    bool require_api_keys = s->require_api_keys;
    uint32_t max_sessions = s->enclave_max_sessions;
    uint32_t vsock_timeout_secs = s->vsock_timeout_secs;
    const char *db_env = getenv("KEYMELD_TEST_DB");
    bool postgres = s->postgres || (db_env != NULL && strcmp(db_env, "postgres") == 0);
    const char *kms_endpoint = s->kms_endpoint;
    void (*before_start)(struct stack *, void *) = s->before_start;
    void *before_start_ctx = s->before_start_ctx;
    memset(s, 0, sizeof(*s));
    s->kms_endpoint = kms_endpoint;
    s->before_start = before_start;
    s->before_start_ctx = before_start_ctx;
    s->log_level = level;
    s->no_fsync = no_fsync;
    s->audit_fsync = audit_fsync;
    s->keep_dir = keep_dir;
    s->enclave_sealer = sealer;
    s->require_api_keys = require_api_keys;
    s->enclave_max_sessions = max_sessions;
    s->vsock_timeout_secs = vsock_timeout_secs;
    s->postgres = postgres;
    memcpy(s->bin_dir, bin_dir, sizeof(bin_dir));
    snprintf(s->dir, sizeof(s->dir), "/tmp/km-stack-XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        fail_msg_("mkdtemp failed");
    s->n = n;
    make_trust(s);
    make_kek(s);
    if (s->before_start != NULL)
        s->before_start(s, s->before_start_ctx);
    for (size_t i = 0; i < n; i++)
        stack_start_enclave(s, i);
    if (s->postgres) {
        s->pg = calloc(1, sizeof(*s->pg));
        if (s->pg == NULL || pg_cluster_start(s->pg) != 0)
            fail_msg_("cannot start a PostgreSQL cluster for the gateway");
        snprintf(s->db_url, sizeof(s->db_url), "%s", s->pg->url);
    }
    s->gateway_port = free_port();
    snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%u", s->gateway_port);
    snprintf(s->config_path, sizeof(s->config_path), "%s/gateway.yaml", s->dir);
    write_config(s, s->config_path, s->gateway_port, "audit.jsonl");
    stack_start_gateway(s);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

void stack_stop(struct stack *s)
{
    bool gw_ok = stop_pid(&s->gateway_pid);
    bool gw2_ok = stop_pid(&s->gateway2_pid);
    for (size_t i = 0; i < s->n; i++)
        stack_stop_enclave(s, i);
    if (!gw_ok)
        stack_fail(s, "gateway.log", "gateway did not shut down cleanly");
    if (!gw2_ok)
        stack_fail(s, "gateway-2.log", "the second gateway did not shut down cleanly");
    if (s->pg != NULL) {
        pg_cluster_destroy(s->pg);
        free(s->pg);
        s->pg = NULL;
    }
    const char *keep = getenv("KEYMELD_TEST_KEEP_DIRS");
    if (s->keep_dir)
        fprintf(stderr, "stack: logs and database kept in %s\n", s->dir);
    else if ((keep == NULL || keep[0] == '\0') &&
             nftw(s->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "stack: cannot remove %s: %s\n", s->dir, strerror(errno));
}
