/*
 * rest.h - a client for the gateway's REST API (libcurl), used by the
 * `keymeld` CLI, the gateway tests and the end-to-end benchmark.
 *
 * One struct rest_client holds one libcurl handle (keep-alive connection
 * reuse) and is not thread-safe: give each thread its own.
 *
 * Signed requests: pass the signer's keypair and the client adds
 * X-KeyMeld-Timestamp, X-KeyMeld-Nonce (16 fresh random bytes) and
 * X-KeyMeld-Signature, a BIP-340 signature over crypto/auth.h's digest of
 * the method, the path with query, the timestamp, the nonce and the body
 * (docs/API.md "Authentication").
 */
#ifndef KM_CLIENT_REST_H
#define KM_CLIENT_REST_H

#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "crypto/keypair.h"

#define REST_MAX_RESPONSE (16u * 1024u * 1024u)

struct rest_client;

struct rest_response {
    long status;  /* HTTP status */
    json_t *body; /* parsed JSON (NULL if the body was not JSON) */
    char *text;   /* the raw body, NUL-terminated */
    char request_id[64];
};

/* base_url like "http://127.0.0.1:8090" or "https://gateway.example:443"
 * (no trailing slash needed); timeout_ms bounds each request (0 = 30 s).
 * https:// verifies the server's certificate and host name against the
 * system's CA store, or the file given to rest_client_set_ca_file. Never
 * NULL. */
struct rest_client *rest_client_new(const char *base_url, uint32_t timeout_ms);
void rest_client_free(struct rest_client *c);

/* Sends "Authorization: Bearer <token>" (an operator API key: docs/API.md
 * "API keys") with every later request; NULL or "" stops. KM_ERR_INVALID
 * for a token too long or with a line break. */
int rest_client_set_api_key(struct rest_client *c, const char *token) KM_WUR;

/* Trusts the CA certificates of the PEM file path (instead of the system
 * store) for https:// (CURLOPT_CAINFO), e.g. a private or test CA; NULL or
 * "" goes back to the system store. KM_ERR_IO (errno kept) with a message
 * naming the file in *err (may be NULL) when it cannot be opened; the
 * client is then unchanged. */
int rest_client_set_ca_file(struct rest_client *c, const char *path, struct km_error *err) KM_WUR;

/*
 * Sends METHOD base_url+path (path includes any query string) with body
 * (NULL = no body; borrowed) and, when signer is not NULL, the request
 * signature headers.
 * Returns: KM_OK with *out filled for any HTTP status (check out->status);
 *          KM_ERR_CONNECT (gateway unreachable, or a TLS handshake that
 *          failed for another reason), KM_ERR_TIMEOUT, KM_ERR_CRYPTO (https:
 *          the server's certificate did not verify against the trusted CAs
 *          or does not name the host), KM_ERR_TOO_LARGE (response over
 *          REST_MAX_RESPONSE) with a message naming the URL in *err.
 * Out: *out owned by the caller: rest_response_clear.
 */
int rest_call(struct rest_client *c, struct rest_response *out, const char *method,
              const char *path, const json_t *body, const struct keypair *signer,
              struct km_error *err) KM_WUR;

void rest_response_clear(struct rest_response *r);

/* The error message of an error body ({"error":{"message"}}), or the raw
 * text, for display. Borrowed from r. */
const char *rest_error_message(const struct rest_response *r);

#endif /* KM_CLIENT_REST_H */
