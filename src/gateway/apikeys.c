/*
 * apikeys.c - operator API keys: checking a request's key, and the
 * operator routes that create, list and revoke keys (gateway/apikeys.h).
 */
#include "gateway/apikeys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hex.h"
#include "common/log.h"
#include "common/secure.h"
#include "crypto/ctx.h"
#include "gateway/api.h"
#include "gateway/audit_events.h"
#include "gateway/gateway.h"
#include "common/banned.h"

#define LOG_COMP "api"

static int refuse(struct http_response *resp)
{
    http_reply_error(resp, 401, "unauthorized",
                     "this route needs a valid API key: send \"Authorization: Bearer kmk_...\" "
                     "(an operator creates one with `keymeld apikey create`)");
    return KM_ERR_CRYPTO;
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* "kmk_<16 hex>_<64 hex>": the id is the first 20 characters. */
static bool token_well_formed(const char *t)
{
    return strlen(t) == GW_API_KEY_TOKEN_LEN && strncmp(t, "kmk_", 4) == 0 && is_hex(t + 4, 16) &&
           t[20] == '_' && is_hex(t + 21, 64);
}

static int token_hash(char out[65], const char *token)
{
    uint8_t d[32];
    if (crypto_sha256_digest(d, token, strlen(token)) != KM_OK)
        return KM_ERR_CRYPTO;
    hex_encode(out, 65, d, sizeof(d));
    return KM_OK;
}

int gw_api_key_check(struct gateway *gw, const struct http_request *req, struct store_api_key *out,
                     struct http_response *resp)
{
    const char *auth = http_header(req, "Authorization");
    const char *token = http_header(req, "X-KeyMeld-API-Key");
    memset(out, 0, sizeof(*out));
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
        token = auth + 7;
    if (token == NULL || !token_well_formed(token))
        return refuse(resp);
    char id[21], hash[65];
    memcpy(id, token, 20);
    id[20] = '\0';
    if (token_hash(hash, token) != KM_OK) {
        http_reply_error(resp, 500, "internal_error", "cannot hash the API key");
        return KM_ERR_CRYPTO;
    }
    int r = store_api_key_get(gw->store, id, out);
    if (r != KM_OK && r != KM_ERR_NOT_FOUND) {
        api_store_error(resp, r, "API key");
        return r;
    }
    /* Compared in constant time even for an unknown id. */
    char want[65];
    snprintf(want, sizeof(want), "%s", r == KM_OK ? out->secret_sha256 : hash);
    bool match = secure_memeq(want, hash, 64) == 1;
    if (r != KM_OK || !match || out->revoked_at != 0) {
        memset(out, 0, sizeof(*out));
        return refuse(resp);
    }
    return KM_OK;
}

/* ---- operator routes ---------------------------------------------------------- */

static bool operator_only(const struct http_request *req, struct http_response *resp)
{
    if (req->peer_loopback)
        return true;
    http_reply_error(resp, 403, "forbidden",
                     "operator routes answer connections from the gateway host only (127.0.0.1 "
                     "or ::1)");
    return false;
}

static json_t *key_json(const struct store_api_key *k)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:b}", "id", k->id, "name", k->name,
                     "keygens_per_hour", (json_int_t)k->keygens_per_hour, "live_keygens",
                     (json_int_t)k->live_keygens, "max_participants",
                     (json_int_t)k->max_participants, "created_at", (json_int_t)k->created_at,
                     "revoked", k->revoked_at != 0);
}

static uint32_t quota_field(const json_t *body, const char *name, uint32_t def, bool *bad)
{
    const json_t *v = json_object_get(body, name);
    if (v == NULL)
        return def;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000) {
        *bad = true;
        return 0;
    }
    return (uint32_t)json_integer_value(v);
}

void api_admin_api_key_create(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    if (!operator_only(req, resp))
        return;
    json_error_t jerr;
    json_t *body = req->body ? json_loadb((const char *)req->body, req->body_len,
                                          JSON_REJECT_DUPLICATES, &jerr)
                             : json_object();
    const char *name = json_string_value(json_object_get(body, "name"));
    bool bad = body == NULL || !json_is_object(body) || name == NULL || name[0] == '\0' ||
               strlen(name) > 63;
    struct store_api_key k = {0};
    k.keygens_per_hour = quota_field(body, "keygens_per_hour", 100, &bad);
    k.live_keygens = quota_field(body, "live_keygens", 50, &bad);
    k.max_participants = quota_field(body, "max_participants", 100, &bad);
    if (bad) {
        json_decref(body);
        http_reply_error(resp, 400, "bad_request",
                         "expected {\"name\": \"1-63 characters\", and optionally "
                         "\"keygens_per_hour\", \"live_keygens\", \"max_participants\": integers "
                         "0..1000000 (0 = no limit)}");
        return;
    }
    snprintf(k.name, sizeof(k.name), "%s", name);
    json_decref(body);
    uint8_t rnd[8 + 32];
    char token[GW_API_KEY_TOKEN_LEN + 1], idhex[17], secret[65];
    if (secure_random(rnd, sizeof(rnd)) != KM_OK) {
        http_reply_error(resp, 500, "internal_error", "no randomness");
        return;
    }
    hex_encode(idhex, sizeof(idhex), rnd, 8);
    hex_encode(secret, sizeof(secret), rnd + 8, 32);
    snprintf(token, sizeof(token), "kmk_%s_%s", idhex, secret);
    snprintf(k.id, sizeof(k.id), "kmk_%s", idhex);
    int r = token_hash(k.secret_sha256, token);
    if (r == KM_OK)
        r = store_api_key_create(gw->store, &k);
    secure_wipe(rnd, sizeof(rnd));
    secure_wipe(secret, sizeof(secret));
    if (r != KM_OK) {
        secure_wipe(token, sizeof(token));
        api_store_error(resp, r, "API key");
        return;
    }
    log_info(LOG_COMP, "API key %s (%s) created", k.id, k.name);
    gw_audit(gw, "api_key.create", "ok", req->request_id, NULL,
             json_pack("{s:s, s:s}", "api_key_id", k.id, "name", k.name), NULL);
    json_t *out = key_json(&k);
    json_object_set_new(out, "token", json_string(token));
    secure_wipe(token, sizeof(token));
    http_reply_json(resp, 201, out);
}

void api_admin_api_key_list(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    if (!operator_only(req, resp))
        return;
    struct store_api_key *keys = NULL;
    size_t n = 0;
    int r = store_api_key_list(gw->store, &keys, &n);
    if (r != KM_OK) {
        api_store_error(resp, r, "API keys");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, key_json(&keys[i]));
    free(keys);
    http_reply_json(resp, 200, json_pack("{s:o}", "api_keys", arr));
}

void api_admin_api_key_revoke(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    if (!operator_only(req, resp))
        return;
    const char *id = req->nparams > 0 ? req->params[0] : "";
    int r = strlen(id) == 20 ? store_api_key_revoke(gw->store, id) : KM_ERR_NOT_FOUND;
    if (r == KM_ERR_NOT_FOUND) {
        http_reply_error(resp, 404, "not_found", "no API key %.40s", id);
        return;
    }
    if (r != KM_OK) {
        api_store_error(resp, r, "API key");
        return;
    }
    log_info(LOG_COMP, "API key %s revoked", id);
    gw_audit(gw, "api_key.revoke", "ok", req->request_id, NULL,
             json_pack("{s:s}", "api_key_id", id), NULL);
    http_reply_json(resp, 200, json_pack("{s:s, s:b}", "id", id, "revoked", 1));
}
