/*
 * api.h - shared by the route files: request bodies (strict schemas, the
 * same engine as the enclave protocol), path parameters, error mapping.
 * Not a public API.
 */
#ifndef KM_GATEWAY_API_H
#define KM_GATEWAY_API_H

#include <stdbool.h>
#include <stdint.h>

#include "common/uuid.h"
#include "gateway/auth.h"
#include "gateway/gateway.h"
#include "protocol/commands.h"

#define API_MAX_SIGNING_SESSIONS         100000
#define API_DEFAULT_MAX_SIGNING_SESSIONS 100

/* POST /keygen/reserve */
struct api_subset {
    struct uuid subset_id;
    size_t n_participants;
    struct uuid *participants;
};
struct api_reserve {
    struct uuid keygen_session_id;
    struct uuid coordinator_user_id;
    size_t n_expected_participants;
    struct uuid *expected_participants;
    uint32_t timeout_secs;
    bool has_max_signing_sessions;
    uint32_t max_signing_sessions;
    struct proto_blob encrypted_taproot_tweak; /* optional */
    size_t n_subset_definitions;               /* optional */
    struct api_subset *subset_definitions;
    /* The coordinator's session key (x-only): initialize must be signed with
     * it and name it, so only whoever reserved can initialize. */
    uint8_t session_public_key[PROTO_XONLY_LEN];
};
extern const struct proto_schema api_reserve_schema;

/* POST /keygen/{id}/initialize */
struct api_initialize {
    uint8_t session_public_key[PROTO_XONLY_LEN];
    struct proto_blob encrypted_session_secret;
    struct proto_blob coordinator_encrypted_private_key;
    uint8_t coordinator_auth_pubkey[PROTO_XONLY_LEN];
    bool coordinator_require_signing_approval; /* optional */
    uint8_t enclave_public_key[PROTO_PUBKEY_LEN];
};
extern const struct proto_schema api_initialize_schema;

/* POST /keygen/{id}/participants */
struct api_register {
    struct uuid user_id;
    struct proto_blob encrypted_private_key;
    uint8_t auth_pubkey[PROTO_XONLY_LEN];
    bool require_signing_approval; /* optional */
    uint8_t enclave_public_key[PROTO_PUBKEY_LEN];
};
extern const struct proto_schema api_register_schema;

/* POST /signing/{id}/approve/{user} */
struct api_approve {
    uint64_t timestamp;
    uint8_t signature[PROTO_SIG_LEN];
};
extern const struct proto_schema api_approve_schema;

/* Parses the body with schema into out. On failure sets a 400 reply with
 * the field path and returns an error. */
int api_body(const struct proto_schema *schema, void *out, const struct http_request *req,
             struct http_response *resp) KM_WUR;

/* Path parameter i as a UUID (400 "<what> is not a UUID" otherwise). The
 * canonical lower-case text is written to text. */
int api_param_uuid(const struct http_request *req, size_t i, const char *what, struct uuid *out,
                   char text[UUID_STR_LEN + 1], struct http_response *resp) KM_WUR;

/* ?wait_ms=N (0..GW_MAX_WAIT_MS; absent = 0). 400 otherwise. */
int api_wait_ms(const struct http_request *req, uint32_t *out, struct http_response *resp) KM_WUR;

/* Lower-case hex of p[0..n) into a static-size buffer (2n+1). */
void api_hex(char *out, size_t outcap, const uint8_t *p, size_t n);

/* Maps a store error to a reply: NOT_FOUND 404, EXISTS/STATE/LIMIT 409,
 * CONNECT/TIMEOUT (database down or busy) 503 with Retry-After, anything
 * else 500. what names the object ("keygen session 0190..."). */
void api_store_error(struct http_response *resp, int r, const char *what);

/* The public names of session states. */
const char *api_keygen_state_name(enum store_keygen_status st);

/* Route handlers (routes_*.c). */
void api_keygen_reserve(void *ud, const struct http_request *req, struct http_response *resp);
void api_keygen_initialize(void *ud, const struct http_request *req, struct http_response *resp);
void api_keygen_slots(void *ud, const struct http_request *req, struct http_response *resp);
void api_keygen_register(void *ud, const struct http_request *req, struct http_response *resp);
void api_keygen_status(void *ud, const struct http_request *req, struct http_response *resp);
void api_keygen_delete(void *ud, const struct http_request *req, struct http_response *resp);
void api_signing_create(void *ud, const struct http_request *req, struct http_response *resp);
void api_signing_approve(void *ud, const struct http_request *req, struct http_response *resp);
void api_signing_status(void *ud, const struct http_request *req, struct http_response *resp);
void api_enclaves(void *ud, const struct http_request *req, struct http_response *resp);
void api_enclave_public_key(void *ud, const struct http_request *req, struct http_response *resp);
void api_enclave_attestation(void *ud, const struct http_request *req, struct http_response *resp);
void api_admin_rotate_key(void *ud, const struct http_request *req, struct http_response *resp);
void api_health(void *ud, const struct http_request *req, struct http_response *resp);
void api_health_ready(void *ud, const struct http_request *req, struct http_response *resp);
void api_health_detail(void *ud, const struct http_request *req, struct http_response *resp);
void api_version(void *ud, const struct http_request *req, struct http_response *resp);
void api_metrics(void *ud, const struct http_request *req, struct http_response *resp);
void api_openapi(void *ud, const struct http_request *req, struct http_response *resp);

#endif /* KM_GATEWAY_API_H */
