/*
 * gateway.h - the gateway process: configuration, database, enclave pools,
 * coordinator and HTTP API wired together.
 *
 *   gateway_start()  opens the audit log (when audit.path is set) and the
 *                    store, creates a pool per enclave and starts probing
 *                    them, resumes unfinished sessions, and serves HTTP
 *                    (DESIGN.md §8, docs/API.md)
 *   gateway_wait()   waits for SIGINT/SIGTERM, reloading the TLS
 *                    certificate on each SIGHUP (gateway_reload_tls)
 *   gateway_stop()   stops accepting requests, lets running handlers and
 *                    coordinator steps finish, checkpoints the WAL, closes
 *                    the audit log
 */
#ifndef KM_GATEWAY_GATEWAY_H
#define KM_GATEWAY_GATEWAY_H

#include <signal.h>
#include <stdint.h>

#include "config/config.h"
#include "gateway/coordinator.h"
#include "gateway/enclaves.h"
#include "gateway/http.h"
#include "store/store.h"

/* Request signatures older or newer than this are refused (seconds). */
#define GW_AUTH_WINDOW_SECS 300
/* The approval freshness the enclaves enforce (docs/PROTOCOL.md): the
 * gateway refuses approvals outside it at once. All approvals of one
 * signing must therefore arrive within about five minutes. */
#define GW_APPROVAL_MAX_AGE_SECS   300
#define GW_APPROVAL_MAX_AHEAD_SECS 60
/* Longest long poll a status request may ask for (?wait_ms=). */
#define GW_MAX_WAIT_MS 30000

struct audit_log;
struct gw_replay;

struct gateway {
    const struct cfg *cfg;
    struct store *store;
    struct gw_replay *replay; /* request nonces seen (auth.c) */
    struct enclave_mgr *enclaves;
    struct coord *coord;
    struct http_server *http;
    struct audit_log *audit;               /* NULL: audit.path is "" (gw_audit in audit_events.h) */
    struct rate_limiter *reserves_per_key; /* NULL: server.reserves_per_sec_per_api_key 0 */
    uint64_t started_wall_ms;
};

/* The route table (api.c); gw_routes_count entries. */
extern const struct http_route gw_routes[];
extern const size_t gw_routes_count;

int gateway_start(struct gateway *gw, const struct cfg *cfg, struct km_error *err) KM_WUR;
void gateway_stop(struct gateway *gw);

/*
 * Re-reads server.tls_cert_file and server.tls_key_file (the paths the
 * gateway started with; the configuration file is not read again) and
 * serves the new pair to connections accepted from now on: open
 * connections keep theirs and the listener stays open. Logs INFO "TLS
 * certificate reloaded from FILE: subject ..., serial ..., expires ..."
 * (WARN when it has expired), or, for a pair that cannot be read or is
 * refused (not PEM, encrypted key, key of another certificate), ERROR "TLS
 * certificate not reloaded: ...; still serving the previous certificate
 * (...)" and returns the error with the old pair still in use. A plain
 * HTTP gateway logs that there is nothing to reload (KM_ERR_STATE). err
 * may be NULL. What SIGHUP does; thread-safe.
 */
int gateway_reload_tls(struct gateway *gw, struct km_error *err);

/* The signals of gateway_wait: SIGINT, SIGTERM (stop) and SIGHUP. */
void gateway_signals(sigset_t *set);

/*
 * Waits (sigwait) for SIGINT or SIGTERM and returns it, calling
 * gateway_reload_tls for every SIGHUP before that. The caller blocks
 * gateway_signals() in every thread (pthread_sigmask before any thread
 * starts), so only this call receives them.
 */
int gateway_wait(struct gateway *gw);

/* Renders the Prometheus text exposition (metrics.c). */
int gateway_metrics(struct gateway *gw, struct buf *out) KM_WUR;

/* The OpenAPI document served at /openapi.json (generated from
 * docs/openapi.json at build time). */
extern const char gw_openapi_json[];

#endif /* KM_GATEWAY_GATEWAY_H */
