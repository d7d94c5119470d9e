/*
 * metrics.c - Prometheus text exposition (version 0.0.4) for /metrics:
 * HTTP requests by route and status, session outcomes and coordinator
 * steps, per-enclave health, pool connections, request latency histograms
 * and failures, database size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "common/banned.h"

static int http_metrics(struct gateway *gw, struct buf *out)
{
    int r = buf_put_str(out, "# HELP keymeld_http_requests_total HTTP requests by route and "
                             "status.\n# TYPE keymeld_http_requests_total counter\n");
    if (gw->http == NULL) /* not serving (yet): no requests to count */
        return r;
    for (size_t i = 0; i <= gw_routes_count && r == KM_OK; i++) {
        struct http_route_stats st;
        http_server_route_stats(gw->http, i, &st);
        const char *route = i < gw_routes_count ? gw_routes[i].pattern : "unmatched";
        const char *method = i < gw_routes_count ? gw_routes[i].method : "any";
        for (unsigned code = 100; code < 600 && r == KM_OK; code++) {
            if (st.codes[code] > 0)
                r = buf_putf(
                    out,
                    "keymeld_http_requests_total{route=\"%s\",method=\"%s\",status=\"%u\"} "
                    "%llu\n",
                    route, method, code, (unsigned long long)st.codes[code]);
        }
    }
    return r;
}

static int coordinator_metrics(struct gateway *gw, struct buf *out)
{
    struct coord_stats cs;
    coord_stats(gw->coord, &cs);
    static const char *const kinds[] = {"keygen", "signing"};
    int r = buf_put_str(out, "# HELP keymeld_sessions_finished_total Sessions that reached a "
                             "final state.\n# TYPE keymeld_sessions_finished_total counter\n");
    for (int k = 0; k < 2 && r == KM_OK; k++)
        r = buf_putf(out,
                     "keymeld_sessions_finished_total{kind=\"%s\",outcome=\"completed\"} %llu\n"
                     "keymeld_sessions_finished_total{kind=\"%s\",outcome=\"failed\"} %llu\n"
                     "keymeld_sessions_finished_total{kind=\"%s\",outcome=\"expired\"} %llu\n",
                     kinds[k], (unsigned long long)cs.sessions_completed[k], kinds[k],
                     (unsigned long long)cs.sessions_failed[k], kinds[k],
                     (unsigned long long)cs.sessions_expired[k]);
    if (r == KM_OK)
        r = buf_putf(out,
                     "# HELP keymeld_coordinator_steps_total Coordinator step attempts.\n"
                     "# TYPE keymeld_coordinator_steps_total counter\n"
                     "keymeld_coordinator_steps_total{result=\"ok\"} %llu\n"
                     "keymeld_coordinator_steps_total{result=\"retried\"} %llu\n"
                     "# HELP keymeld_coordinator_sessions Sessions queued or running now.\n"
                     "# TYPE keymeld_coordinator_sessions gauge\n"
                     "keymeld_coordinator_sessions{state=\"queued\"} %u\n"
                     "keymeld_coordinator_sessions{state=\"running\"} %u\n",
                     (unsigned long long)cs.steps_ok, (unsigned long long)cs.steps_retried,
                     cs.queued, cs.running);
    if (r == KM_OK)
        r = buf_putf(out,
                     "# HELP keymeld_nonce_pool_signings_total Plain signings by nonce source: "
                     "pool entries (two rounds) or fresh (too little stock, three rounds).\n"
                     "# TYPE keymeld_nonce_pool_signings_total counter\n"
                     "keymeld_nonce_pool_signings_total{source=\"pool\"} %llu\n"
                     "keymeld_nonce_pool_signings_total{source=\"fresh\"} %llu\n"
                     "# HELP keymeld_nonce_pool_entries_filled_total Pool entries received from "
                     "nonce_pool_fill.\n"
                     "# TYPE keymeld_nonce_pool_entries_filled_total counter\n"
                     "keymeld_nonce_pool_entries_filled_total %llu\n"
                     "# HELP keymeld_nonce_pool_drops_total Stocks dropped after an enclave "
                     "answered nonce_unavailable.\n"
                     "# TYPE keymeld_nonce_pool_drops_total counter\n"
                     "keymeld_nonce_pool_drops_total %llu\n",
                     (unsigned long long)cs.pool_signings, (unsigned long long)cs.pool_misses,
                     (unsigned long long)cs.pool_filled, (unsigned long long)cs.pool_drops);
    return r;
}

/* One Prometheus family per metric: all enclaves' samples of a family are
 * written together (text format 0.0.4 requires it). */
static int enclave_metrics(struct gateway *gw, struct buf *out)
{
    size_t n = enclave_mgr_count(gw->enclaves);
    struct enclave_status *st = calloc(n ? n : 1, sizeof(*st));
    if (st == NULL)
        return KM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        enclave_mgr_status(gw->enclaves, i, &st[i]);

    int r = buf_put_str(out, "# HELP keymeld_enclave_up 1 if the enclave answered its last probe.\n"
                             "# TYPE keymeld_enclave_up gauge\n");
    for (size_t i = 0; i < n && r == KM_OK; i++)
        r = buf_putf(out, "keymeld_enclave_up{enclave_id=\"%u\"} %d\n", st[i].id,
                     st[i].healthy ? 1 : 0);
    if (r == KM_OK)
        r = buf_put_str(out, "# HELP keymeld_enclave_connections Open pool connections.\n"
                             "# TYPE keymeld_enclave_connections gauge\n");
    for (size_t i = 0; i < n && r == KM_OK; i++)
        r = buf_putf(out, "keymeld_enclave_connections{enclave_id=\"%u\"} %u\n", st[i].id,
                     st[i].pool.connections_open);
    if (r == KM_OK)
        r = buf_put_str(out, "# HELP keymeld_enclave_requests_total Requests sent (attempts).\n"
                             "# TYPE keymeld_enclave_requests_total counter\n");
    for (size_t i = 0; i < n && r == KM_OK; i++)
        r = buf_putf(out, "keymeld_enclave_requests_total{enclave_id=\"%u\"} %llu\n", st[i].id,
                     (unsigned long long)st[i].pool.requests);
    if (r == KM_OK)
        r = buf_put_str(out, "# HELP keymeld_enclave_errors_total Enclave request failures.\n"
                             "# TYPE keymeld_enclave_errors_total counter\n");
    for (size_t i = 0; i < n && r == KM_OK; i++) {
        const struct pool_stats *p = &st[i].pool;
        r = buf_putf(out,
                     "keymeld_enclave_errors_total{enclave_id=\"%u\",kind=\"error_reply\"} %llu\n"
                     "keymeld_enclave_errors_total{enclave_id=\"%u\",kind=\"no_reply\"} %llu\n"
                     "keymeld_enclave_errors_total{enclave_id=\"%u\",kind=\"timeout\"} %llu\n"
                     "keymeld_enclave_errors_total{enclave_id=\"%u\",kind=\"connect\"} %llu\n",
                     st[i].id, (unsigned long long)p->replies_error, st[i].id,
                     (unsigned long long)p->failures, st[i].id, (unsigned long long)p->timeouts,
                     st[i].id, (unsigned long long)p->connect_failures);
    }
    if (r == KM_OK)
        r = buf_put_str(out, "# HELP keymeld_enclave_request_duration_seconds Enclave round "
                             "trips.\n# TYPE keymeld_enclave_request_duration_seconds histogram\n");
    for (size_t i = 0; i < n && r == KM_OK; i++) {
        const struct pool_stats *p = &st[i].pool;
        uint64_t cum = 0;
        for (size_t b = 0; b < POOL_LATENCY_BUCKETS && r == KM_OK; b++) {
            cum += p->latency_buckets[b];
            char le[32];
            if (b < POOL_LATENCY_BUCKETS - 1)
                snprintf(le, sizeof(le), "%g", (double)pool_latency_bounds_us[b] / 1e6);
            else
                snprintf(le, sizeof(le), "+Inf");
            r = buf_putf(out,
                         "keymeld_enclave_request_duration_seconds_bucket{enclave_id=\"%u\","
                         "le=\"%s\"} %llu\n",
                         st[i].id, le, (unsigned long long)cum);
        }
        if (r == KM_OK)
            r = buf_putf(out,
                         "keymeld_enclave_request_duration_seconds_sum{enclave_id=\"%u\"} %.6f\n"
                         "keymeld_enclave_request_duration_seconds_count{enclave_id=\"%u\"} "
                         "%llu\n",
                         st[i].id, (double)p->latency_sum_us / 1e6, st[i].id,
                         (unsigned long long)p->latency_count);
    }
    free(st);
    return r;
}

static int store_metrics(struct gateway *gw, struct buf *out)
{
    struct store_stats ss;
    if (store_stats(gw->store, &ss) != KM_OK)
        return KM_OK; /* the health endpoint reports database trouble */
    return buf_putf(out,
                    "# HELP keymeld_sessions Sessions in the database.\n"
                    "# TYPE keymeld_sessions gauge\n"
                    "keymeld_sessions{kind=\"keygen\",state=\"all\"} %lld\n"
                    "keymeld_sessions{kind=\"keygen\",state=\"active\"} %lld\n"
                    "keymeld_sessions{kind=\"signing\",state=\"all\"} %lld\n"
                    "keymeld_sessions{kind=\"signing\",state=\"active\"} %lld\n"
                    "# HELP keymeld_database_size_bytes Size of the SQLite database.\n"
                    "# TYPE keymeld_database_size_bytes gauge\n"
                    "keymeld_database_size_bytes %lld\n"
                    "# HELP keymeld_database_group_commits_total Commits made durable by the "
                    "group commit (SQLite, fsync on).\n"
                    "# TYPE keymeld_database_group_commits_total counter\n"
                    "keymeld_database_group_commits_total %llu\n"
                    "# HELP keymeld_database_group_syncs_total WAL syncs that made them durable.\n"
                    "# TYPE keymeld_database_group_syncs_total counter\n"
                    "keymeld_database_group_syncs_total %llu\n",
                    (long long)ss.keygen_total, (long long)ss.keygen_active,
                    (long long)ss.signing_total, (long long)ss.signing_active,
                    (long long)ss.db_size_bytes, (unsigned long long)ss.group_commits,
                    (unsigned long long)ss.group_syncs);
}

int gateway_metrics(struct gateway *gw, struct buf *out)
{
    int r = http_metrics(gw, out);
    if (r == KM_OK)
        r = coordinator_metrics(gw, out);
    if (r == KM_OK)
        r = enclave_metrics(gw, out);
    if (r == KM_OK)
        r = store_metrics(gw, out);
    return r;
}
