/*
 * api.c - request body schemas, parameter parsing, error mapping and the
 * route table.
 */
#include "gateway/api.h"
#include "gateway/apikeys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "protocol/schema_defs.h"
#include "common/banned.h"

static const struct proto_field subset_fields[] = {
    FUUID(api_subset, subset_id, 0),
    FUUIDS(api_subset, participants, n_participants, 2, PROTO_MAX_PARTICIPANTS, PF_F_DISTINCT),
};
PROTO_ELEM_SCHEMA(subset_schema, api_subset, subset_fields);

static int reserve_check(const void *obj, struct km_error *err)
{
    const struct api_reserve *r = obj;
    bool found = false;
    for (size_t i = 0; i < r->n_expected_participants && !found; i++)
        found = uuid_equal(&r->expected_participants[i], &r->coordinator_user_id);
    if (!found)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "coordinator_user_id must be one of expected_participants");
    for (size_t s = 0; s < r->n_subset_definitions; s++) {
        const struct api_subset *sub = &r->subset_definitions[s];
        for (size_t i = 0; i < sub->n_participants; i++) {
            bool member = false;
            for (size_t j = 0; j < r->n_expected_participants && !member; j++)
                member = uuid_equal(&sub->participants[i], &r->expected_participants[j]);
            if (!member)
                return km_error_set(err, KM_ERR_INVALID, 0,
                                    "subset_definitions[%zu].participants[%zu] is not an expected "
                                    "participant",
                                    s, i);
        }
    }
    return KM_OK;
}

static const struct proto_field reserve_fields[] = {
    FUUID(api_reserve, keygen_session_id, 0),
    FUUID(api_reserve, coordinator_user_id, 0),
    FUUIDS(api_reserve, expected_participants, n_expected_participants, PROTO_MIN_PARTICIPANTS,
           PROTO_MAX_PARTICIPANTS, PF_F_DISTINCT),
    FU32(api_reserve, timeout_secs, 1, PROTO_MAX_TIMEOUT_SECS, 0),
    FU32_P(api_reserve, max_signing_sessions, 1, API_MAX_SIGNING_SESSIONS,
           has_max_signing_sessions),
    FBLOB(api_reserve, "encrypted_taproot_tweak", encrypted_taproot_tweak, 1,
          PROTO_SEALED_SMALL_MAX, PF_F_OPTIONAL),
    FARR(api_reserve, subset_definitions, n_subset_definitions, &subset_schema, 0,
         PROTO_MAX_SUBSETS, PF_F_OPTIONAL | PF_F_DISTINCT),
    FHEX(api_reserve, session_public_key, PROTO_XONLY_LEN, 0),
};
const struct proto_schema api_reserve_schema = {
    .name = "reserve request",
    .size = sizeof(struct api_reserve),
    .fields = reserve_fields,
    .nfields = KM_ARRAY_LEN(reserve_fields),
    .check = reserve_check,
};

static const struct proto_field initialize_fields[] = {
    FHEX(api_initialize, session_public_key, PROTO_XONLY_LEN, 0),
    FBLOB(api_initialize, "encrypted_session_secret", encrypted_session_secret, 1, PROTO_ECIES_MAX,
          0),
    FBLOB(api_initialize, "coordinator_encrypted_private_key", coordinator_encrypted_private_key, 1,
          PROTO_ECIES_MAX, 0),
    FHEX(api_initialize, coordinator_auth_pubkey, PROTO_XONLY_LEN, 0),
    FBOOL(api_initialize, coordinator_require_signing_approval, PF_F_OPTIONAL),
    FHEX(api_initialize, enclave_public_key, PROTO_PUBKEY_LEN, 0),
};
const struct proto_schema api_initialize_schema = {
    .name = "initialize request",
    .size = sizeof(struct api_initialize),
    .fields = initialize_fields,
    .nfields = KM_ARRAY_LEN(initialize_fields),
};

static const struct proto_field register_fields[] = {
    FUUID(api_register, user_id, 0),
    FBLOB(api_register, "encrypted_private_key", encrypted_private_key, 1, PROTO_ECIES_MAX, 0),
    FHEX(api_register, auth_pubkey, PROTO_XONLY_LEN, 0),
    FBOOL(api_register, require_signing_approval, PF_F_OPTIONAL),
    FHEX(api_register, enclave_public_key, PROTO_PUBKEY_LEN, 0),
};
const struct proto_schema api_register_schema = {
    .name = "participant registration",
    .size = sizeof(struct api_register),
    .fields = register_fields,
    .nfields = KM_ARRAY_LEN(register_fields),
};

static const struct proto_field approve_fields[] = {
    FU64(api_approve, timestamp, 1, PROTO_U53_MAX, 0),
    FHEX(api_approve, signature, PROTO_SIG_LEN, 0),
};
const struct proto_schema api_approve_schema = {
    .name = "approval",
    .size = sizeof(struct api_approve),
    .fields = approve_fields,
    .nfields = KM_ARRAY_LEN(approve_fields),
};

int api_body(const struct proto_schema *schema, void *out, const struct http_request *req,
             struct http_response *resp)
{
    struct km_error err;
    if (req->body_len == 0) {
        memset(out, 0, schema->size);
        http_reply_error(resp, 400, "bad_request", "missing request body: send a JSON object");
        return KM_ERR_INVALID;
    }
    int r = proto_decode_bytes(schema, out, req->body, req->body_len, &err);
    if (r != KM_OK)
        http_reply_error(resp, 400, "bad_request", "invalid request body: %s", err.msg);
    return r;
}

int api_param_uuid(const struct http_request *req, size_t i, const char *what, struct uuid *out,
                   char text[UUID_STR_LEN + 1], struct http_response *resp)
{
    const char *p = i < req->nparams ? req->params[i] : "";
    if (uuid_parse(out, p, strlen(p)) != KM_OK || uuid_is_nil(out)) {
        http_reply_error(resp, 400, "bad_request", "%s '%.64s' is not a UUID", what, p);
        return KM_ERR_INVALID;
    }
    uuid_format(text, out);
    return KM_OK;
}

int api_wait_ms(const struct http_request *req, uint32_t *out, struct http_response *resp)
{
    *out = 0;
    const char *v = http_query(req, "wait_ms");
    if (v == NULL)
        return KM_OK;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || n > GW_MAX_WAIT_MS) {
        http_reply_error(resp, 400, "bad_request", "wait_ms must be a whole number 0..%d",
                         GW_MAX_WAIT_MS);
        return KM_ERR_INVALID;
    }
    *out = (uint32_t)n;
    return KM_OK;
}

void api_hex(char *out, size_t outcap, const uint8_t *p, size_t n)
{
    hex_encode(out, outcap, p, n);
}

void api_store_error(struct http_response *resp, int r, const char *what)
{
    switch (r) {
    case KM_ERR_NOT_FOUND:
        http_reply_error(resp, 404, "not_found", "%s not found", what);
        break;
    case KM_ERR_EXISTS:
        http_reply_error(resp, 409, "conflict", "%s already exists", what);
        break;
    case KM_ERR_STATE:
        http_reply_error(resp, 409, "conflict", "%s is not in a state that allows this", what);
        break;
    case KM_ERR_LIMIT:
        http_reply_error(resp, 409, "conflict", "%s: quota exceeded", what);
        break;
    case KM_ERR_CONNECT:
    case KM_ERR_TIMEOUT:
        /* The database is down or a writer holds it: nothing was changed,
         * the same request can be sent again. */
        http_reply_error(resp, 503, "service_unavailable",
                         "the database is unavailable (%s): nothing was changed, retry shortly",
                         km_strerror(r));
        resp->retry_after = 2;
        break;
    default:
        http_reply_error(resp, 500, "internal_error", "database error (%s)", km_strerror(r));
        break;
    }
}

const char *api_keygen_state_name(enum store_keygen_status st)
{
    switch (st) {
    case STORE_KEYGEN_RESERVED:
        return "reserved";
    case STORE_KEYGEN_COLLECTING:
        return "collecting_participants";
    case STORE_KEYGEN_RUNNING:
        return "running";
    case STORE_KEYGEN_COMPLETED:
        return "completed";
    case STORE_KEYGEN_FAILED:
        return "failed";
    }
    return "?";
}

/* Every route, once under /api/v1; operational ones also at the root,
 * where probes and scrapers look for them (the original served /health
 * only under /api/v1 and its probes hit 404). */
const struct http_route gw_routes[] = {
    {"POST", "/api/v1/keygen/reserve", api_keygen_reserve},
    {"POST", "/api/v1/keygen/{id}/initialize", api_keygen_initialize},
    {"GET", "/api/v1/keygen/{id}/slots", api_keygen_slots},
    {"POST", "/api/v1/keygen/{id}/participants", api_keygen_register},
    {"GET", "/api/v1/keygen/{id}/status", api_keygen_status},
    {"DELETE", "/api/v1/keygen/{id}", api_keygen_delete},
    {"POST", "/api/v1/signing", api_signing_create},
    {"POST", "/api/v1/signing/{id}/approve/{user_id}", api_signing_approve},
    {"GET", "/api/v1/signing/{id}/status/{user_id}", api_signing_status},
    {"GET", "/api/v1/enclaves", api_enclaves},
    {"GET", "/api/v1/enclaves/{id}/public-key", api_enclave_public_key},
    {"GET", "/api/v1/enclaves/{id}/attestation", api_enclave_attestation},
    {"POST", "/api/v1/admin/enclaves/{id}/rotate-key", api_admin_rotate_key},
    {"POST", "/api/v1/admin/api-keys", api_admin_api_key_create},
    {"GET", "/api/v1/admin/api-keys", api_admin_api_key_list},
    {"DELETE", "/api/v1/admin/api-keys/{id}", api_admin_api_key_revoke},
    {"GET", "/api/v1/health", api_health},
    {"GET", "/api/v1/health/ready", api_health_ready},
    {"GET", "/api/v1/health/detail", api_health_detail},
    {"GET", "/api/v1/version", api_version},
    {"GET", "/api/v1/metrics", api_metrics},
    {"GET", "/api/v1/openapi.json", api_openapi},
    {"GET", "/health", api_health},
    {"GET", "/health/ready", api_health_ready},
    {"GET", "/health/detail", api_health_detail},
    {"GET", "/version", api_version},
    {"GET", "/metrics", api_metrics},
    {"GET", "/openapi.json", api_openapi},
};
const size_t gw_routes_count = KM_ARRAY_LEN(gw_routes);
