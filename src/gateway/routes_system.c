/*
 * routes_system.c - enclaves, health, version, metrics, OpenAPI.
 *
 *   /health        liveness: the process answers and its database does.
 *                  Never depends on enclaves, so a liveness probe cannot
 *                  restart the gateway because an enclave is down.
 *   /health/ready  readiness: every configured enclave answered its last
 *                  probe (the seed's "validate VSock connectivity in
 *                  readiness probes"); 503 names the ones that did not,
 *                  with the error and the seed's hint.
 *   /health/detail everything an operator needs to debug the links.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/clock.h"
#include "common/hex.h"
#include "common/xmalloc.h"
#include "gateway/api.h"
#include "gateway/rotation.h"
#include "common/banned.h"

static json_t *pcr_json(const char *hex)
{
    return hex[0] != '\0' ? json_string(hex) : json_null();
}

/* {"status","provider"[,"error"][,"module_id","timestamp_ms","pcrs"]} */
static json_t *attestation_json(const struct enclave_status *st, bool detail)
{
    json_t *o = json_pack("{s:s, s:s}", "status", st->attestation, "provider",
                          st->provider[0] ? st->provider : "unknown");
    if (strcmp(st->attestation, "failed") == 0)
        json_object_set_new(o, "error", json_string(st->attest_error));
    if (detail && strcmp(st->attestation, "verified") == 0) {
        const struct gw_attest_summary *a = &st->attested;
        json_object_set_new(o, "module_id", json_string(a->module_id));
        json_object_set_new(o, "timestamp_ms", json_integer((json_int_t)a->timestamp_ms));
        json_object_set_new(o, "pcrs",
                            json_pack("{s:o, s:o, s:o, s:o}", "0", pcr_json(a->pcr0), "1",
                                      pcr_json(a->pcr1), "2", pcr_json(a->pcr2), "8",
                                      pcr_json(a->pcr8)));
    }
    return o;
}

static json_t *enclave_json(const struct enclave_status *st, bool detail)
{
    json_t *o =
        json_pack("{s:I, s:s, s:s, s:b, s:s*, s:I}", "enclave_id", (json_int_t)st->id, "address",
                  st->address, "transport", st->transport, "healthy", st->healthy, "public_key",
                  st->key_known ? st->public_key : NULL, "key_epoch", (json_int_t)st->key_epoch);
    if (st->healthy) {
        json_object_set_new(o, "uptime_secs", json_integer((json_int_t)st->uptime_secs));
        json_object_set_new(o, "active_sessions",
                            json_pack("{s:I, s:I}", "keygen", (json_int_t)st->active_keygen,
                                      "signing", (json_int_t)st->active_signing));
    }
    if (!st->healthy) {
        json_object_set_new(o, "unresponsive", json_boolean(st->unresponsive));
        json_object_set_new(o, "last_error", json_string(st->last_error));
        if (st->hint[0])
            json_object_set_new(o, "hint", json_string(st->hint));
    }
    json_object_set_new(o, "attestation", attestation_json(st, detail));
    if (st->sealer[0])
        json_object_set_new(o, "identity_key",
                            json_pack("{s:s, s:s}", "sealer", st->sealer, "origin",
                                      st->key_origin[0] ? st->key_origin : "unknown"));
    if (detail) {
        json_object_set_new(o, "latency_ms", json_real((double)st->latency_us / 1000.0));
        json_object_set_new(o, "last_ok_ms", json_integer((json_int_t)st->last_ok_ms));
        json_object_set_new(
            o, "pool",
            json_pack("{s:i, s:i, s:I, s:I, s:I, s:I, s:I}", "connections_open",
                      (int)st->pool.connections_open, "in_flight", (int)st->pool.in_flight,
                      "requests", (json_int_t)st->pool.requests, "failures",
                      (json_int_t)st->pool.failures, "retries", (json_int_t)st->pool.retries,
                      "timeouts", (json_int_t)st->pool.timeouts, "connect_failures",
                      (json_int_t)st->pool.connect_failures));
    }
    return o;
}

static json_t *enclaves_json(struct gateway *gw, bool detail, size_t *healthy)
{
    json_t *arr = json_array();
    *healthy = 0;
    size_t n = enclave_mgr_count(gw->enclaves);
    for (size_t i = 0; i < n; i++) {
        struct enclave_status st;
        enclave_mgr_status(gw->enclaves, i, &st);
        *healthy += st.healthy;
        json_array_append_new(arr, enclave_json(&st, detail));
    }
    return arr;
}

void api_enclaves(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct gateway *gw = ud;
    size_t healthy;
    json_t *list = enclaves_json(gw, false, &healthy);
    http_reply_json(resp, 200,
                    json_pack("{s:o, s:i, s:i}", "enclaves", list, "total_enclaves",
                              (int)json_array_size(list), "healthy_enclaves", (int)healthy));
}

/* The {id} of /api/v1/enclaves/{id}/...; false after a 400 reply. */
static bool enclave_id_param(const struct http_request *req, struct http_response *resp,
                             uint32_t *id)
{
    const char *p = req->nparams > 0 ? req->params[0] : "";
    char *end = NULL;
    unsigned long v = strtoul(p, &end, 10);
    if (p[0] < '0' || p[0] > '9' || *end != '\0' || v > UINT32_MAX) {
        http_reply_error(resp, 400, "bad_request", "enclave id '%.32s' is not a number", p);
        return false;
    }
    *id = (uint32_t)v;
    return true;
}

static json_t *base64_json(const uint8_t *p, size_t len)
{
    char *b = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b, p, (int)len);
    json_t *s = json_string(b);
    free(b);
    return s;
}

static void reply_document(struct http_response *resp, uint32_t id, const char *provider,
                           const char *key, uint64_t epoch, const uint8_t *doc, size_t doc_len,
                           bool fresh)
{
    http_reply_json(resp, 200,
                    json_pack("{s:I, s:s, s:s, s:I, s:o, s:b}", "enclave_id", (json_int_t)id,
                              "attestation", provider, "public_key", key, "key_epoch",
                              (json_int_t)epoch, "document", base64_json(doc, doc_len), "fresh",
                              fresh));
}

/* A document with the caller's nonce (nonce_hex NULL: none), relayed from
 * the enclave and never cached: the gateway cannot forge or replay it. */
static void relay_fresh(struct gateway *gw, struct http_response *resp, uint32_t id,
                        const char *nonce_hex)
{
    uint8_t nonce[PROTO_ATTEST_NONCE_MAX];
    size_t nonce_len = 0;
    size_t hl = nonce_hex != NULL ? strlen(nonce_hex) : 0;
    if (nonce_hex != NULL &&
        (hl == 0 || hl > 2 * sizeof(nonce) ||
         hex_decode(nonce, sizeof(nonce), &nonce_len, nonce_hex, hl) != KM_OK)) {
        http_reply_error(resp, 400, "bad_request", "nonce must be 1 to %d bytes of hex",
                         PROTO_ATTEST_NONCE_MAX);
        return;
    }
    struct pool *pool = enclave_mgr_pool(gw->enclaves, id);
    if (pool == NULL) {
        http_reply_error(resp, 404, "not_found", "no enclave %u is configured", id);
        return;
    }
    struct proto_attestation_result res;
    struct km_error err;
    int r = gw_attest_fetch(pool, nonce_hex != NULL ? nonce : NULL, nonce_len, &res, &err);
    if (r != KM_OK) {
        /* A transport failure tells the health loop at once, as a failed
         * step does; an error reply (ATTESTATION=none) is no outage. */
        if (r != KM_ERR_REMOTE)
            enclave_mgr_report_failure(gw->enclaves, id, &err);
        char desc[1024];
        enclave_mgr_describe_error(gw->enclaves, id, &err, desc, sizeof(desc));
        http_reply_error(resp, 503, "service_unavailable", "enclave %u gave no attestation: %s", id,
                         desc);
        return;
    }
    char key[2 * PROTO_PUBKEY_LEN + 1];
    hex_encode(key, sizeof(key), res.public_key, PROTO_PUBKEY_LEN);
    reply_document(resp, id, res.attestation, key, res.key_epoch, res.document.p, res.document.len,
                   true);
    proto_attestation_result_clear(&res);
}

void api_enclave_attestation(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    uint32_t id;
    if (!enclave_id_param(req, resp, &id))
        return;
    const char *nonce = http_query(req, "nonce");
    if (nonce != NULL) {
        relay_fresh(gw, resp, id, nonce);
        return;
    }
    /* Without a nonce: the document the gateway verified for the current
     * key (one per key epoch), or a fresh one when it keeps none. */
    uint8_t *doc = NULL;
    size_t doc_len = 0;
    char key[ENCLAVE_PUBKEY_HEX_LEN + 1];
    int r = enclave_mgr_attestation(gw->enclaves, id, &doc, &doc_len, key);
    if (r == KM_ERR_NOT_FOUND) {
        http_reply_error(resp, 404, "not_found", "no enclave %u is configured", id);
        return;
    }
    if (r != KM_OK) {
        relay_fresh(gw, resp, id, NULL);
        return;
    }
    size_t n = enclave_mgr_count(gw->enclaves);
    for (size_t i = 0; i < n; i++) {
        struct enclave_status st;
        enclave_mgr_status(gw->enclaves, i, &st);
        if (st.id == id)
            reply_document(resp, id, st.attested.provider, key, st.attested.key_epoch, doc, doc_len,
                           false);
    }
    free(doc);
}

void api_enclave_public_key(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    uint32_t id;
    if (!enclave_id_param(req, resp, &id))
        return;
    size_t n = enclave_mgr_count(gw->enclaves);
    for (size_t i = 0; i < n; i++) {
        struct enclave_status st;
        enclave_mgr_status(gw->enclaves, i, &st);
        if (st.id != id)
            continue;
        if (!st.key_known) {
            http_reply_error(resp, 503, "service_unavailable",
                             "enclave %u has not been reached yet: %s%s%s", id, st.last_error,
                             st.hint[0] ? "; " : "", st.hint);
            return;
        }
        if (strcmp(st.attestation, "failed") == 0) {
            http_reply_error(resp, 503, "service_unavailable", "enclave %u is not used: %s", id,
                             st.attest_error);
            return;
        }
        http_reply_json(resp, 200,
                        json_pack("{s:I, s:s, s:I, s:b}", "enclave_id", (json_int_t)st.id,
                                  "public_key", st.public_key, "key_epoch",
                                  (json_int_t)st.key_epoch, "healthy", st.healthy));
        return;
    }
    http_reply_error(resp, 404, "not_found", "no enclave %u is configured", id);
}

void api_health(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct gateway *gw = ud;
    struct km_error err;
    if (store_ping(gw->store, &err) != KM_OK) {
        http_reply_json(resp, 503, json_pack("{s:s, s:s}", "status", "error", "error", err.msg));
        return;
    }
    http_reply_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

void api_health_ready(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct gateway *gw = ud;
    struct km_error err;
    /* Without its database a gateway can only answer 503: not ready, so a
     * load balancer sends clients to another gateway meanwhile. */
    if (store_ping(gw->store, &err) != KM_OK) {
        http_reply_json(resp, 503,
                        json_pack("{s:s, s:s}", "status", "not_ready", "database", err.msg));
        return;
    }
    size_t n = enclave_mgr_count(gw->enclaves), healthy = 0;
    json_t *down = json_array();
    for (size_t i = 0; i < n; i++) {
        struct enclave_status st;
        enclave_mgr_status(gw->enclaves, i, &st);
        if (st.healthy) {
            healthy++;
            continue;
        }
        json_array_append_new(down, json_pack("{s:I, s:s, s:s, s:s}", "enclave_id",
                                              (json_int_t)st.id, "address", st.address, "error",
                                              st.last_error, "hint", st.hint));
    }
    if (healthy == n) {
        json_decref(down);
        http_reply_json(resp, 200, json_pack("{s:s, s:i}", "status", "ready", "enclaves", (int)n));
        return;
    }
    http_reply_json(resp, 503,
                    json_pack("{s:s, s:i, s:i, s:o}", "status", "not_ready", "healthy_enclaves",
                              (int)healthy, "total_enclaves", (int)n, "unavailable", down));
}

void api_health_detail(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct gateway *gw = ud;
    struct km_error err;
    struct store_stats ss;
    struct coord_stats cs;
    bool db_ok = store_ping(gw->store, &err) == KM_OK && store_stats(gw->store, &ss) == KM_OK;
    coord_stats(gw->coord, &cs);
    size_t healthy;
    json_t *list = enclaves_json(gw, true, &healthy);
    size_t total = json_array_size(list);
    json_t *db = db_ok ? json_pack("{s:b, s:I, s:I, s:I, s:I, s:I}", "ok", 1, "size_bytes",
                                   (json_int_t)ss.db_size_bytes, "keygen_sessions",
                                   (json_int_t)ss.keygen_total, "keygen_active",
                                   (json_int_t)ss.keygen_active, "signing_sessions",
                                   (json_int_t)ss.signing_total, "signing_active",
                                   (json_int_t)ss.signing_active)
                       : json_pack("{s:b, s:s}", "ok", 0, "error", err.msg);
    http_reply_json(
        resp, db_ok ? 200 : 503,
        json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:i, s:i, s:{s:i, s:i, s:I, s:I}}", "status",
                  !db_ok             ? "error"
                  : healthy == total ? "ok"
                                     : "degraded",
                  "version", KM_VERSION, "environment",
                  gw->cfg->environment == CFG_PRODUCTION ? "production" : "development",
                  "uptime_secs", (json_int_t)((clock_wall_ms() - gw->started_wall_ms) / 1000u),
                  "database", db, "enclaves", list, "healthy_enclaves", (int)healthy,
                  "total_enclaves", (int)total, "coordinator", "queued", (int)cs.queued, "running",
                  (int)cs.running, "steps_ok", (json_int_t)cs.steps_ok, "steps_retried",
                  (json_int_t)cs.steps_retried));
}

void api_version(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)ud;
    (void)req;
    http_reply_json(resp, 200,
                    json_pack("{s:s, s:s, s:s, s:i}", "service", "keymeld-gateway", "version",
                              KM_VERSION, "api_version", "v1", "enclave_protocol_version", 1));
}

void api_metrics(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct gateway *gw = ud;
    struct buf out;
    buf_init(&out, 8u << 20);
    if (gateway_metrics(gw, &out) != KM_OK)
        http_reply_error(resp, 500, "internal_error", "cannot render metrics");
    else
        http_reply_text(resp, 200, "text/plain; version=0.0.4", (const char *)buf_peek(&out),
                        buf_len(&out));
    buf_release(&out);
}

void api_openapi(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)ud;
    (void)req;
    http_reply_text(resp, 200, "application/json", gw_openapi_json, strlen(gw_openapi_json));
}

void api_admin_rotate_key(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    uint32_t id;
    if (!req->peer_loopback) {
        http_reply_error(resp, 403, "forbidden",
                         "operator routes answer connections from the gateway host only "
                         "(127.0.0.1 or ::1)");
        return;
    }
    if (!enclave_id_param(req, resp, &id))
        return;
    struct gw_rotation_report rep;
    struct km_error err;
    int r = gw_rotate_key(gw, id, &rep, &err);
    if (r != KM_OK) {
        unsigned status = r == KM_ERR_NOT_FOUND ? 404 : r == KM_ERR_STATE ? 409 : 503;
        http_reply_error(resp, status,
                         status == 404   ? "not_found"
                         : status == 409 ? "conflict"
                                         : "service_unavailable",
                         "%s", err.msg);
        return;
    }
    http_reply_json(resp, 200,
                    json_pack("{s:I, s:I, s:I, s:s, s:I, s:b}", "enclave_id", (json_int_t)id,
                              "old_key_epoch", (json_int_t)rep.old_epoch, "key_epoch",
                              (json_int_t)rep.new_epoch, "public_key", rep.public_key,
                              "keygens_reencrypted", (json_int_t)rep.keygens, "resumed",
                              rep.resumed));
}
