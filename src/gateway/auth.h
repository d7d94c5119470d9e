/*
 * auth.h - request authentication for the REST API (DESIGN.md §8).
 *
 * A signed request carries
 *   X-KeyMeld-Timestamp: <unix seconds>
 *   X-KeyMeld-Nonce:     <32 hex: 16 random bytes>
 *   X-KeyMeld-Signature: <128 hex: BIP-340 signature>
 * over crypto/auth.h's digest of (method, path with query, timestamp,
 * nonce, SHA-256(body)), by the key the route names: the keygen session's
 * auth key (session_public_key) or a participant's auth_pubkey.
 *
 * Checks, in order: headers present and well-formed; timestamp within
 * GW_AUTH_WINDOW_SECS of the gateway's clock; signature valid; then the
 * (key, nonce) pair is claimed in the replay cache (replay.h, kept in the
 * database), so a replay is refused even across a gateway restart. The
 * nonce is burned only after the signature verified, so a forged request
 * cannot spend a client's nonce.
 */
#ifndef KM_GATEWAY_AUTH_H
#define KM_GATEWAY_AUTH_H

#include <stdint.h>

#include "gateway/gateway.h"
#include "gateway/http.h"

#define GW_HDR_TIMESTAMP "X-KeyMeld-Timestamp"
#define GW_HDR_NONCE     "X-KeyMeld-Nonce"
#define GW_HDR_SIGNATURE "X-KeyMeld-Signature"

/* Verifies req against the x-only key pubkey_hex (64 hex). Returns KM_OK,
 * or an error with a 401 already set in resp (a 500 if the database
 * fails). who names the key in messages ("the session key"). */
int gw_auth_check(struct gateway *gw, const struct http_request *req, const char *pubkey_hex,
                  const char *who, struct http_response *resp) KM_WUR;

/*
 * For an id that does not exist: answers exactly as gw_auth_check answers a
 * request for an existing one signed by the wrong key (401, same message,
 * same checks), so an authenticated route does not tell a caller who cannot
 * sign for an id whether the id exists. Always fails.
 */
int gw_auth_hide_unknown(struct gateway *gw, const struct http_request *req, const char *who,
                         struct http_response *resp);

#endif /* KM_GATEWAY_AUTH_H */
