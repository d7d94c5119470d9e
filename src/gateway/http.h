/*
 * http.h - the gateway's HTTP server: libmicrohttpd underneath, a route
 * table on top, JSON replies, the error body, a request id per request and
 * per-route counters for /metrics.
 *
 * Threads: one thread per connection (libmicrohttpd). A handler may block
 * (the status endpoints' long poll waits on a condition variable), so
 * handlers must be thread-safe.
 *
 * Bodies: at most max_body bytes are accepted; a larger Content-Length or
 * upload is answered 413 before the handler runs.
 *
 * Deadlines: a request's headers must be complete within header_timeout of
 * the connection's accept (or of the end of the previous request on it),
 * its body within body_timeout of the headers; past that the connection is
 * closed without a reply (a WARN names the client's address). The idle
 * timeout alone restarts with every byte, so it cannot stop a client that
 * trickles its request.
 *
 * CORS (docs/API.md "CORS"), when http_server_config.cors_origins is set:
 * a reply to a request whose Origin header the list allows carries
 * Access-Control-Allow-Origin (that origin, or "*" for the list "*"),
 * Vary: Origin and Access-Control-Expose-Headers: X-Request-Id,
 * Retry-After; other requests get none of them. OPTIONS is answered here,
 * before any handler and without authentication: 204 with
 * Access-Control-Allow-Methods (the path's methods and OPTIONS),
 * -Allow-Headers (Content-Type, Authorization and the X-KeyMeld-* request
 * headers) and -Max-Age for a path some route serves, 403 for an Origin the
 * list does not allow, 404 for an unknown path; it is counted with the
 * unmatched requests. Without CORS, OPTIONS is 405 like any unrouted method.
 *
 * Handlers do not depend on libmicrohttpd: a struct http_request carries
 * everything they read (headers through a lookup callback), so the fuzz
 * target and unit tests call them directly.
 */
#ifndef KM_GATEWAY_HTTP_H
#define KM_GATEWAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"

#define HTTP_MAX_PARAMS       4
#define HTTP_MAX_QUERY_PARAMS 256            /* in one request line; more are answered 414 */
#define HTTP_HEADER_MEMORY    (256u * 1024u) /* request line + headers of one request */
#define HTTP_REQUEST_ID_LEN   36

/* CORS: origins in http_server_config.cors_origins, bytes of one; seconds
 * a browser may cache a preflight's answer (Access-Control-Max-Age). */
#define HTTP_CORS_MAX_ORIGINS 32
#define HTTP_CORS_ORIGIN_MAX  300
#define HTTP_CORS_MAX_AGE     600

struct http_request {
    const char *method;  /* "GET", "POST", ... */
    const char *url;     /* path and query as sent: what request signatures cover */
    const char *path;    /* path without the query */
    const uint8_t *body; /* NULL when empty; not NUL-terminated */
    size_t body_len;
    char request_id[HTTP_REQUEST_ID_LEN + 1];
    const char *params[HTTP_MAX_PARAMS]; /* {name} segments of the route, in order */
    size_t nparams;
    /* Header and query lookups (case-insensitive header names). */
    const char *(*header)(void *ctx, const char *name);
    const char *(*query)(void *ctx, const char *name);
    void *ctx;
    /* The client connected from 127.0.0.0/8 or ::1: operator routes
     * (/api/v1/admin/...) answer only such callers. */
    bool peer_loopback;
};

const char *http_header(const struct http_request *r, const char *name);
const char *http_query(const struct http_request *r, const char *name);

struct http_response {
    unsigned status;
    const char *content_type; /* static string */
    struct buf body;
    char allow[64];       /* Allow header of a 405 or an OPTIONS 204, "" otherwise */
    unsigned retry_after; /* seconds: a Retry-After header (429, 503); 0 = none */
};

/* Sets a JSON reply; takes ownership of json (NULL = {}). */
void http_reply_json(struct http_response *resp, unsigned status, json_t *json);

/*
 * Sets the error body {"error":{"type":...,"message":...,"code":status}}.
 * type is a snake_case class (bad_request, unauthorized, not_found,
 * method_not_allowed, conflict, payload_too_large, uri_too_long,
 * service_unavailable, internal_error). Bytes of the message that are not
 * valid UTF-8 are replaced with '?'.
 */
void http_reply_error(struct http_response *resp, unsigned status, const char *type,
                      const char *fmt, ...) KM_PRINTF(4, 5);

/* Sets a plain reply with the given content type (copied). */
void http_reply_text(struct http_response *resp, unsigned status, const char *content_type,
                     const char *text, size_t len);

typedef void (*http_handler_fn)(void *ud, const struct http_request *req,
                                struct http_response *resp);

/* A route: METHOD and a path pattern whose "{name}" segments match one
 * non-empty path segment each. The pattern is also the metrics label. */
struct http_route {
    const char *method;
    const char *pattern;
    http_handler_fn handler;
};

/*
 * Finds the route for (method, path) and fills req->params with pointers
 * into path, each segment NUL-terminated in place (path is modified).
 * Returns the route index, or -404 (no such path) / -405 (the path exists
 * with other methods).
 */
int http_route_match(const struct http_route *routes, size_t n, const char *method, char *path,
                     struct http_request *req);

struct http_server_config {
    const char *host;         /* bind address (name or literal) */
    uint16_t port;            /* 0 = ephemeral (http_server_port tells) */
    size_t max_body;          /* bytes; 0 = 1 MiB */
    unsigned max_connections; /* 0 = 1024 */
    unsigned max_per_ip;      /* connections from one address; 0 = 64 */
    unsigned idle_timeout;    /* seconds without a byte before closing; 0 = 15 */
    unsigned header_timeout;  /* seconds for a request's headers (see above); 0 = 10 */
    unsigned body_timeout;    /* seconds for its body after the headers; 0 = 30 */
    unsigned per_ip_rate;     /* requests per second from one address; 0 = no limit */
    unsigned per_ip_burst;    /* requests at once from one address (per_ip_rate > 0) */
    /* CORS (see above): the origins whose pages may call the server from
     * a browser, comma-separated ("https://wallet.example.com,
     * http://localhost:5173"; spaces around an entry are ignored), each
     * compared byte for byte with the Origin header, or "*" for every
     * origin. NULL or "" = CORS off. The entries' syntax is the
     * configuration's to check (src/config/validate.c); the server refuses
     * only a list it cannot hold: an empty entry, "*" among others, more
     * than HTTP_CORS_MAX_ORIGINS entries or one over HTTP_CORS_ORIGIN_MAX
     * bytes. Copied: the string need not outlive http_server_start. */
    const char *cors_origins;
    /* HTTPS: the certificate chain (PEM, leaf first) and its private key
     * (PEM), NUL-terminated contents, not paths. Both NULL = plain HTTP;
     * one without the other is refused. The server parses them into its
     * own GnuTLS objects (the key wiped when no connection uses it any
     * more), so the caller may wipe and free its buffers once
     * http_server_start returned. TLS 1.2 and 1.3 only. */
    const char *tls_cert_pem;
    const char *tls_key_pem;
};

struct http_server;

/* Per-route counters: requests by status class and by exact status. */
struct http_route_stats {
    uint64_t by_status[6]; /* index = status / 100 (1xx..5xx); [0] unused */
    uint64_t codes[600];   /* exact status counts (100..599) */
};

/* Binds and starts serving. routes must outlive the server. *out is set
 * before the first request can arrive (handlers may read it). Returns KM_OK
 * or KM_ERR_IO with "cannot listen on HOST:PORT: cause" in *err (*out
 * NULL); KM_ERR_INVALID for a cors_origins list it cannot hold; with TLS
 * also KM_ERR_INVALID (only one of cert and key, or text
 * that is no PEM certificate / private key), KM_ERR_CRYPTO (the TLS library
 * refused the pair, e.g. a key that does not belong to the certificate)
 * or KM_ERR_UNSUPPORTED (libmicrohttpd built without TLS). */
int http_server_start(struct http_server **out, const struct http_server_config *cfg,
                      const struct http_route *routes, size_t nroutes, void *ud,
                      struct km_error *err) KM_WUR;

uint16_t http_server_port(const struct http_server *s);

/* true when the server speaks HTTPS. */
bool http_server_tls(const struct http_server *s);

/*
 * Replaces the HTTPS certificate chain and key (PEM contents, as
 * tls_cert_pem / tls_key_pem) without closing the listener: connections
 * accepted from now on get the new pair, those already open keep the one
 * they have. A refused pair changes nothing; the errors are those of
 * http_server_start for TLS, the message starting "TLS certificate not
 * reloaded: ...", and KM_ERR_STATE for a plain HTTP server. Thread-safe.
 */
int http_server_tls_reload(struct http_server *s, const char *cert_pem, const char *key_pem,
                           struct km_error *err) KM_WUR;

/* The certificate new connections get: "subject CN=..., serial 0a1b...,
 * expires 2027-03-01T12:00:00Z" (" (EXPIRED)" after that); "" for plain
 * HTTP. */
void http_server_tls_describe(const struct http_server *s, char *out, size_t cap);

/* Copies the counters of route i (i == nroutes: unmatched requests). */
void http_server_route_stats(struct http_server *s, size_t i, struct http_route_stats *out);

/* Stops accepting, waits for running handlers to finish, frees. */
void http_server_stop(struct http_server *s);

#endif /* KM_GATEWAY_HTTP_H */
