#include "gateway/gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "gateway/ratelimit.h"
#include "gateway/replay.h"
#include "gateway/rotation.h"
#include "common/banned.h"

#define LOG_COMP "gateway"

/* API keys whose reserve rate is tracked at once (the table is fixed). */
#define GW_API_KEY_RATE_SLOTS 4096

/* Largest TLS certificate chain or key file read (PEM). */
#define GW_TLS_FILE_MAX (1u << 20)

/* Every list the configuration accepts fits the HTTP server. */
_Static_assert(CFG_CORS_MAX_ORIGINS <= HTTP_CORS_MAX_ORIGINS, "CORS origin count");
_Static_assert(CFG_CORS_ORIGIN_MAX <= HTTP_CORS_ORIGIN_MAX, "CORS origin length");

/* The origins CORS allows: server.cors_allowed_origins, else "*" when the
 * older server.enable_cors is true, else none. */
static const char *cors_origins(const struct cfg *cfg)
{
    if (cfg->server.cors_allowed_origins[0] != '\0')
        return cfg->server.cors_allowed_origins;
    return cfg->server.enable_cors ? "*" : NULL;
}

/*
 * Reads a PEM file (server.tls_cert_file / server.tls_key_file, named by
 * key in messages) into a NUL-terminated heap buffer of *cap bytes. The
 * caller frees it (secure_free for a key). Refuses a file that is not
 * regular, larger than GW_TLS_FILE_MAX or holds a NUL byte.
 */
static int read_pem(const char *path, const char *key, char **out, size_t *cap,
                    struct km_error *err)
{
    *out = NULL;
    *cap = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return km_error_set(err, KM_ERR_IO, errno, "%s '%s' cannot be read: %s", key, path,
                            strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return km_error_set(err, KM_ERR_INVALID, 0, "%s '%s' is not a regular file", key, path);
    }
    if (st.st_size <= 0 || (uint64_t)st.st_size > GW_TLS_FILE_MAX) {
        close(fd);
        return km_error_set(err, KM_ERR_TOO_LARGE, 0,
                            "%s '%s' is %s: a PEM file of at most %u bytes is expected", key, path,
                            st.st_size <= 0 ? "empty" : "too large", GW_TLS_FILE_MAX);
    }
    size_t want = (size_t)st.st_size, n = 0;
    char *buf = xmalloc(want + 1);
    int r = KM_OK;
    while (n < want) {
        ssize_t got = read(fd, buf + n, want - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            r = km_error_set(err, KM_ERR_IO, got < 0 ? errno : 0, "%s '%s': read failed%s%s", key,
                             path, got < 0 ? ": " : " (file shrank)",
                             got < 0 ? strerror(errno) : "");
            break;
        }
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    if (r == KM_OK && memchr(buf, '\0', n) != NULL)
        r = km_error_set(err, KM_ERR_INVALID, 0, "%s '%s' holds a NUL byte: not a PEM file", key,
                         path);
    if (r != KM_OK) {
        secure_free(buf, want + 1);
        return r;
    }
    *out = buf;
    *cap = want + 1;
    return KM_OK;
}

/* Reads server.tls_cert_file and server.tls_key_file; the caller frees
 * both (secure_free for the key) whatever the result. */
static int read_tls_files(const struct cfg *cfg, char **cert, size_t *cert_cap, char **key,
                          size_t *key_cap, struct km_error *err)
{
    *key = NULL;
    *key_cap = 0;
    int r = read_pem(cfg->server.tls_cert_file, "server.tls_cert_file", cert, cert_cap, err);
    if (r == KM_OK)
        r = read_pem(cfg->server.tls_key_file, "server.tls_key_file", key, key_cap, err);
    return r;
}

static void on_enclave_restart(void *ud, uint32_t enclave_id)
{
    struct gateway *gw = ud;
    if (gw->coord != NULL)
        coord_enclave_restarted(gw->coord, enclave_id);
}

int gateway_start(struct gateway *gw, const struct cfg *cfg, struct km_error *err)
{
    memset(gw, 0, sizeof(*gw));
    gw->cfg = cfg;
    gw->started_wall_ms = clock_wall_ms();

    struct store_options so;
    store_options_default(&so, cfg_database_url(cfg));
    so.wal = cfg->database.enable_wal_mode;
    so.fsync_each_commit = cfg->database.fsync_each_commit;
    /* database.max_connections sizes the pool (each is a SQLite handle;
     * writers still take turns); connection_timeout_secs is how long one
     * waits for a busy database. */
    so.connections = cfg->database.max_connections > 64 ? 64 : cfg->database.max_connections;
    so.busy_timeout_ms = cfg->database.connection_timeout_secs * 1000u;
    /* The trust configuration first: a missing PCR policy stops the start
     * before anything is opened. */
    struct gw_attest *attest = NULL;
    int r = gw_attest_new(&attest, &cfg->security, err);
    if (r != KM_OK)
        return r;
    /* The audit log next: a gateway that cannot record what it does does
     * not start. */
    if (cfg->audit.path[0] != '\0') {
        gw->audit = audit_open(cfg->audit.path, err);
        if (gw->audit == NULL) {
            gw_attest_free(attest);
            return err != NULL && err->code != KM_OK ? err->code : KM_ERR_IO;
        }
        audit_set_fsync(gw->audit, cfg->audit.fsync);
    }
    r = store_open(&gw->store, &so, err);
    if (r != KM_OK) {
        gw_attest_free(attest);
        audit_close(gw->audit);
        gw->audit = NULL;
        return r;
    }
    gw->replay = gw_replay_new(gw->store);
    gw->enclaves = enclave_mgr_new(cfg, gw->store, attest, on_enclave_restart, gw);
    gw->coord = coord_new(cfg, gw->store, gw->enclaves);
    enclave_mgr_start(gw->enclaves);
    coord_start(gw->coord);
    gw_rotation_resume_start(gw);

    if (cfg->server.reserves_per_sec_per_api_key > 0)
        gw->reserves_per_key =
            rate_limiter_new(cfg->server.reserves_per_sec_per_api_key,
                             4.0 * cfg->server.reserves_per_sec_per_api_key, GW_API_KEY_RATE_SLOTS);
    struct http_server_config hc = {
        .host = cfg->server.host,
        .port = (uint16_t)cfg->server.port,
        .max_body = cfg->server.max_request_size_bytes,
        .max_connections = cfg->server.max_connections,
        .max_per_ip = cfg->server.max_connections_per_ip,
        .idle_timeout = cfg->server.idle_timeout_secs,
        .header_timeout = cfg->server.header_timeout_secs,
        .body_timeout = cfg->server.body_timeout_secs,
        .per_ip_rate = cfg->server.requests_per_sec_per_ip,
        .per_ip_burst = cfg->server.request_burst_per_ip,
        .cors_origins = cors_origins(cfg),
    };
    /* HTTPS: the server keeps its own copies, so the key read here is
     * wiped as soon as it started (or failed to). */
    char *cert = NULL, *key = NULL;
    size_t cert_cap = 0, key_cap = 0;
    if (cfg->server.tls_cert_file[0] != '\0' || cfg->server.tls_key_file[0] != '\0') {
        r = read_tls_files(cfg, &cert, &cert_cap, &key, &key_cap, err);
        if (r != KM_OK) {
            free(cert);
            secure_free(key, key_cap);
            gateway_stop(gw);
            return r;
        }
        hc.tls_cert_pem = cert;
        hc.tls_key_pem = key;
    }
    r = http_server_start(&gw->http, &hc, gw_routes, gw_routes_count, gw, err);
    free(cert);
    secure_free(key, key_cap);
    if (r != KM_OK) {
        gateway_stop(gw);
        return r;
    }
    bool v6 = strchr(cfg->server.host, ':') != NULL;
    log_info(LOG_COMP,
             "HTTP server listening on %s://%s%s%s:%u (API under /api/v1, OpenAPI at "
             "/api/v1/openapi.json)",
             http_server_tls(gw->http) ? "https" : "http", v6 ? "[" : "", cfg->server.host,
             v6 ? "]" : "", http_server_port(gw->http));
    if (http_server_tls(gw->http)) {
        char desc[400];
        http_server_tls_describe(gw->http, desc, sizeof(desc));
        log_info(LOG_COMP, "TLS certificate from %s: %s (SIGHUP reloads it)",
                 cfg->server.tls_cert_file, desc);
    }
    if (!http_server_tls(gw->http) && cfg->server.allow_plain_http)
        log_info(LOG_COMP, "plain HTTP (server.allow_plain_http): TLS must be terminated in "
                           "front of the gateway");
    return KM_OK;
}

int gateway_reload_tls(struct gateway *gw, struct km_error *err)
{
    struct km_error local;
    if (err == NULL)
        err = &local;
    if (gw->http == NULL || !http_server_tls(gw->http)) {
        log_info(LOG_COMP, "no TLS certificate to reload: the gateway serves plain HTTP (no "
                           "server.tls_cert_file)");
        return km_error_set(err, KM_ERR_STATE, 0, "the gateway serves plain HTTP");
    }
    char *cert = NULL, *key = NULL;
    size_t cert_cap = 0, key_cap = 0;
    int r = read_tls_files(gw->cfg, &cert, &cert_cap, &key, &key_cap, err);
    if (r != KM_OK)
        km_error_prefix(err, "TLS certificate not reloaded");
    else
        r = http_server_tls_reload(gw->http, cert, key, err);
    free(cert);
    secure_free(key, key_cap);
    char desc[400];
    http_server_tls_describe(gw->http, desc, sizeof(desc));
    if (r != KM_OK) {
        log_error(LOG_COMP, "%s; still serving the previous certificate (%s)", err->msg, desc);
        return r;
    }
    /* An expired certificate is served (as at start), but said loudly. */
    if (strstr(desc, "(EXPIRED)") != NULL)
        log_warn(LOG_COMP, "TLS certificate reloaded from %s, but it has expired: %s",
                 gw->cfg->server.tls_cert_file, desc);
    else
        log_info(LOG_COMP,
                 "TLS certificate reloaded from %s: %s; new connections get it, open ones keep "
                 "the previous one",
                 gw->cfg->server.tls_cert_file, desc);
    return KM_OK;
}

void gateway_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}

int gateway_wait(struct gateway *gw)
{
    sigset_t set;
    gateway_signals(&set);
    for (;;) {
        int sig = 0;
        /* sigwait fails only for a bad set: stop rather than spin. */
        if (sigwait(&set, &sig) != 0)
            return SIGTERM;
        if (sig != SIGHUP)
            return sig;
        log_info(LOG_COMP, "received SIGHUP: reloading the TLS certificate");
        (void)gateway_reload_tls(gw, NULL);
    }
}

void gateway_stop(struct gateway *gw)
{
    /* Order: no new requests, then no new steps, then the links, then the
     * database (its close checkpoints the WAL). */
    http_server_stop(gw->http);
    gw->http = NULL;
    gw_rotation_resume_stop(gw);
    gw_replay_free(gw->replay); /* records the nonces still pending */
    gw->replay = NULL;
    coord_free(gw->coord);
    gw->coord = NULL;
    enclave_mgr_free(gw->enclaves);
    gw->enclaves = NULL;
    store_close(gw->store);
    gw->store = NULL;
    /* Last: the coordinator and the enclave manager may record events
     * until they are freed. */
    audit_close(gw->audit);
    gw->audit = NULL;
    rate_limiter_free(gw->reserves_per_key);
    gw->reserves_per_key = NULL;
    log_info(LOG_COMP, "gateway stopped; database checkpointed");
}
