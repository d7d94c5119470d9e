/*
 * apikeys.h - operator API keys (docs/API.md "API keys"): only a holder of
 * a key may reserve keygens (unless server.open_reserve, development only),
 * within the key's quotas.
 *
 * Token: "kmk_" + 16 hex (the key id, public) + "_" + 64 hex (the secret),
 * sent as "Authorization: Bearer <token>" (or X-KeyMeld-API-Key). The
 * gateway stores the id and SHA-256(token) (hex), never the token; it is
 * shown once, when the key is created.
 */
#ifndef KM_GATEWAY_APIKEYS_H
#define KM_GATEWAY_APIKEYS_H

#include "gateway/http.h"
#include "store/store.h"

#define GW_API_KEY_TOKEN_LEN (4 + 16 + 1 + 64)

struct gateway;

/*
 * The request's API key: KM_OK with *out, or an error reply already set:
 * 401 (none, malformed, unknown, wrong secret, revoked: one message, so a
 * caller learns nothing about which).
 */
int gw_api_key_check(struct gateway *gw, const struct http_request *req, struct store_api_key *out,
                     struct http_response *resp) KM_WUR;

/* Operator routes (loopback only): create, list, revoke. */
void api_admin_api_key_create(void *ud, const struct http_request *req, struct http_response *resp);
void api_admin_api_key_list(void *ud, const struct http_request *req, struct http_response *resp);
void api_admin_api_key_revoke(void *ud, const struct http_request *req, struct http_response *resp);

#endif /* KM_GATEWAY_APIKEYS_H */
