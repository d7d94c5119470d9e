#include "gateway/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/secure.h"
#include "common/uuid.h"
#include "common/xmalloc.h"
#include "gateway/http_tls.h"
#include "gateway/ratelimit.h"
#include "common/banned.h"

#define LOG_COMP      "http"
#define HTTP_PATH_MAX 2048

/* CORS: the request headers a browser may send cross-origin (besides the
 * ones it always may): what the routes read, the API key (apikeys.c) and
 * the request signature (auth.h), so signed requests work from a page. The
 * reply headers its scripts may read: the request id to quote in a report,
 * and how long to wait after a 429 or 503. */
#define HTTP_CORS_ALLOW_HEADERS                                                                    \
    "Content-Type, Authorization, X-KeyMeld-API-Key, X-KeyMeld-Timestamp, X-KeyMeld-Nonce, "       \
    "X-KeyMeld-Signature"
#define HTTP_CORS_EXPOSE_HEADERS "X-Request-Id, Retry-After"

enum cors_mode {
    CORS_OFF = 0,
    CORS_ANY,  /* the list "*" */
    CORS_LIST, /* the origins in cors_origins */
};

struct http_server {
    struct MHD_Daemon *daemon;
    const struct http_route *routes;
    size_t nroutes;
    void *ud;
    size_t max_body;
    /* CORS (http_server_config.cors_origins), fixed once started. */
    enum cors_mode cors;
    size_t cors_n;
    char cors_origins[HTTP_CORS_MAX_ORIGINS][HTTP_CORS_ORIGIN_MAX + 1];
    uint16_t port;
    pthread_mutex_t lock;
    struct http_route_stats *stats; /* nroutes + 1 */
    struct rate_limiter *per_ip;    /* NULL: no request rate limit */
    /* Request deadlines (see "Request deadlines" below), and every open
     * connection for the reaper thread that enforces them. */
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    pthread_mutex_t conns_lock;
    pthread_cond_t reaper_wake;
    struct conn_state **conns; /* HTTP_CONN_BUCKETS lists, under conns_lock */
    bool stopping;             /* under conns_lock: the reaper exits */
    /* The connection notifier on_connection passes every notification on
     * to: the TLS layer's, which owns the socket context (http_tls.h);
     * NULL: none. */
    MHD_NotifyConnectionCallback notify_next;
    void *notify_next_cls;
    bool reaper_running;
    pthread_t reaper;
    /* HTTPS: the certificate and key new connections get, replaceable
     * while serving (http_server_tls_reload); NULL: plain HTTP. */
    struct http_tls *tls;
    /* The first message libmicrohttpd logs while the daemon starts (under
     * lock; capturing only during http_server_start), for the error. */
    bool capturing;
    char start_msg[256];
};

/* Connections the kernel queues for accept. A client that connects many
 * times at once (connections over its per-address cap are accepted and
 * closed) must not fill the queue, or everyone's connection attempts are
 * dropped and retried a second later; the kernel caps it at
 * net.core.somaxconn. */
#define HTTP_LISTEN_BACKLOG 4096u

/* Addresses the request-rate table remembers at once (fixed memory: 64
 * bytes each); more distinct addresses share or take over idle buckets. */
#define HTTP_RATE_SLOTS 16384

/* The reaper looks for connections past their deadline this often, and
 * names at most this many of them in the log per pass. */
#define HTTP_REAP_INTERVAL_MS 250
#define HTTP_REAP_LOG_MAX     8
/* Buckets of the open-connection table (keyed by the connection). */
#define HTTP_CONN_BUCKETS 1024

/* Per-request state across libmicrohttpd's callbacks (made by on_uri). */
struct req_ctx {
    struct buf body;
    bool too_large;
    bool started;  /* the headers are in: the access handler ran once */
    bool answered; /* refused from its headers already */
    size_t nquery; /* query parameters in the request line */
    uint64_t start_ns;
};

const char *http_header(const struct http_request *r, const char *name)
{
    return r->header ? r->header(r->ctx, name) : NULL;
}

const char *http_query(const struct http_request *r, const char *name)
{
    return r->query ? r->query(r->ctx, name) : NULL;
}

void http_reply_json(struct http_response *resp, unsigned status, json_t *json)
{
    resp->status = status;
    resp->content_type = "application/json";
    buf_reset(&resp->body);
    if (json == NULL)
        json = json_object();
    char *text = json_dumps(json, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL || buf_put_str(&resp->body, text) != KM_OK) {
        resp->status = 500;
        buf_reset(&resp->body);
        if (buf_put_str(&resp->body, "{\"error\":{\"type\":\"internal_error\",\"message\":"
                                     "\"response too large\",\"code\":500}}") != KM_OK)
            resp->content_type = "text/plain"; /* empty 500: nothing smaller exists */
    }
    free(text);
    json_decref(json);
}

/* Replaces every byte that is not part of a valid UTF-8 sequence with '?'
 * (a message may echo client bytes, or be cut inside a character), so the
 * JSON error body always carries the message. */
static void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80             ? 1
                   : (*p & 0xe0) == 0xc0 ? 2
                   : (*p & 0xf0) == 0xe0 ? 3
                   : (*p & 0xf8) == 0xf0 ? 4
                                         : 0;
        bool ok = n > 0 && !(n == 2 && *p < 0xc2) && !(n == 4 && *p > 0xf4);
        for (size_t i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (ok && n == 3)
            ok = !(p[0] == 0xe0 && p[1] < 0xa0) && !(p[0] == 0xed && p[1] >= 0xa0);
        if (ok && n == 4)
            ok = !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] >= 0x90);
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

void http_reply_error(struct http_response *resp, unsigned status, const char *type,
                      const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_sanitize(msg);
    http_reply_json(resp, status,
                    json_pack("{s:{s:s, s:s, s:i}}", "error", "type", type, "message", msg, "code",
                              (int)status));
}

void http_reply_text(struct http_response *resp, unsigned status, const char *content_type,
                     const char *text, size_t len)
{
    resp->status = status;
    resp->content_type = content_type;
    buf_reset(&resp->body);
    if (buf_put(&resp->body, text, len) != KM_OK)
        http_reply_error(resp, 500, "internal_error", "response too large");
}

/* Compares one pattern segment with one path segment. */
static bool segment_match(const char *pat, size_t plen, const char *seg, size_t slen)
{
    if (plen >= 2 && pat[0] == '{' && pat[plen - 1] == '}')
        return slen > 0;
    return plen == slen && memcmp(pat, seg, plen) == 0;
}

static bool pattern_match(const char *pattern, const char *path, struct http_request *req)
{
    size_t nparams = 0;
    const char *p = pattern, *q = path;
    while (*p == '/' && *q == '/') {
        p++;
        q++;
        size_t plen = strcspn(p, "/"), slen = strcspn(q, "/");
        if (!segment_match(p, plen, q, slen))
            return false;
        if (p[0] == '{') {
            if (nparams == HTTP_MAX_PARAMS)
                return false;
            if (req != NULL)
                req->params[nparams] = q;
            nparams++;
        }
        p += plen;
        q += slen;
    }
    if (*p != '\0' || *q != '\0')
        return false;
    if (req != NULL)
        req->nparams = nparams;
    return true;
}

int http_route_match(const struct http_route *routes, size_t n, const char *method, char *path,
                     struct http_request *req)
{
    bool path_seen = false;
    /* HEAD is GET without the body (RFC 9110 §9.3.2): libmicrohttpd sends
     * the headers of the reply and drops its body. */
    bool head = strcmp(method, "HEAD") == 0;
    for (size_t i = 0; i < n; i++) {
        if (!pattern_match(routes[i].pattern, path, NULL))
            continue;
        path_seen = true;
        if (strcmp(routes[i].method, method) == 0 ||
            (head && strcmp(routes[i].method, "GET") == 0)) {
            pattern_match(routes[i].pattern, path, req);
            /* Terminate each captured segment in place. */
            for (size_t j = 0; j < req->nparams; j++) {
                char *slash = strchr(path + (req->params[j] - path), '/');
                if (slash != NULL)
                    *slash = '\0';
            }
            return (int)i;
        }
    }
    return path_seen ? -405 : -404;
}

static const char *mhd_header(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static const char *mhd_query(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

/* The URL as sent, query included: libmicrohttpd hands us the path only,
 * so rebuild "?k=v&..." from the arguments in arrival order. */
struct url_builder {
    struct buf *b;
    bool first;
};

static enum MHD_Result append_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    struct url_builder *u = cls;
    int r =
        buf_putf(u->b, "%c%s%s%s", u->first ? '?' : '&', key, value ? "=" : "", value ? value : "");
    u->first = false;
    return r == KM_OK ? MHD_YES : MHD_NO;
}

static void count_status(struct http_server *s, int route, unsigned status)
{
    size_t i = route >= 0 ? (size_t)route : s->nroutes;
    pthread_mutex_lock(&s->lock);
    if (status >= 100 && status < 600) {
        s->stats[i].by_status[status / 100]++;
        s->stats[i].codes[status]++;
    }
    pthread_mutex_unlock(&s->lock);
}

void http_server_route_stats(struct http_server *s, size_t i, struct http_route_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats[i];
    pthread_mutex_unlock(&s->lock);
}

/* ---- CORS ------------------------------------------------------------- */

/* Splits list (see http_server_config.cors_origins) into s->cors_origins. */
static int cors_setup(struct http_server *s, const char *list, struct km_error *err)
{
    s->cors = CORS_OFF;
    if (list == NULL || list[0] == '\0')
        return KM_OK;
    s->cors = CORS_LIST;
    for (const char *p = list;; p++) {
        size_t skip = strcspn(p, ","), len = skip;
        const char *e = p;
        while (len > 0 && (*e == ' ' || *e == '\t')) {
            e++;
            len--;
        }
        while (len > 0 && (e[len - 1] == ' ' || e[len - 1] == '\t'))
            len--;
        if (len == 0)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "CORS origin list refused: entry %zu is empty", s->cors_n + 1);
        if (s->cors_n == HTTP_CORS_MAX_ORIGINS || len > HTTP_CORS_ORIGIN_MAX)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "CORS origin list refused: more than %d origins, or one longer "
                                "than %d bytes",
                                HTTP_CORS_MAX_ORIGINS, HTTP_CORS_ORIGIN_MAX);
        memcpy(s->cors_origins[s->cors_n], e, len);
        s->cors_origins[s->cors_n][len] = '\0';
        if (len == 1 && e[0] == '*')
            s->cors = CORS_ANY;
        s->cors_n++;
        p += skip;
        if (*p == '\0')
            break;
    }
    if (s->cors == CORS_ANY && s->cors_n > 1)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "CORS origin list refused: '*' (every origin) among other entries");
    return KM_OK;
}

/* The Access-Control-Allow-Origin value for a request with this Origin
 * header (NULL: none sent), or NULL when CORS does not allow it. The value
 * is the server's copy, never the client's bytes. */
static const char *cors_allowed(const struct http_server *s, const char *origin)
{
    if (s->cors == CORS_OFF || origin == NULL)
        return NULL;
    if (s->cors == CORS_ANY)
        return "*";
    for (size_t i = 0; i < s->cors_n; i++) {
        if (strcmp(s->cors_origins[i], origin) == 0)
            return s->cors_origins[i];
    }
    return NULL;
}

/*
 * The CORS headers of a reply to a request from an allowed origin;
 * methods non-NULL: a preflight's 204, which also says what the browser
 * may send and how long it may remember that. Vary is only sent with the
 * other headers: every reply is Cache-Control: no-store, so no cache could
 * serve one origin's reply to another.
 */
static void cors_headers(const struct http_server *s, struct MHD_Connection *conn,
                         struct MHD_Response *r, const char *methods)
{
    const char *allow =
        cors_allowed(s, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"));
    if (allow == NULL)
        return;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", allow);
    MHD_add_response_header(r, "Vary", "Origin");
    MHD_add_response_header(r, "Access-Control-Expose-Headers", HTTP_CORS_EXPOSE_HEADERS);
    if (methods == NULL)
        return;
    MHD_add_response_header(r, "Access-Control-Allow-Methods", methods);
    MHD_add_response_header(r, "Access-Control-Allow-Headers", HTTP_CORS_ALLOW_HEADERS);
    char age[16];
    snprintf(age, sizeof(age), "%d", HTTP_CORS_MAX_AGE);
    MHD_add_response_header(r, "Access-Control-Max-Age", age);
}

/* preflight: the reply answers OPTIONS with CORS on (cors_preflight). */
static enum MHD_Result send_response(const struct http_server *s, struct MHD_Connection *conn,
                                     struct http_response *resp, const char *request_id,
                                     bool preflight)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        buf_len(&resp->body), (void *)(uintptr_t)buf_peek(&resp->body), MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    if (resp->status != 204) /* no content, no type */
        MHD_add_response_header(r, "Content-Type", resp->content_type);
    MHD_add_response_header(r, "X-Request-Id", request_id);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (resp->allow[0] != '\0')
        MHD_add_response_header(r, "Allow", resp->allow);
    if (resp->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", resp->retry_after);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    cors_headers(s, conn, r, preflight && resp->status == 204 ? resp->allow : NULL);
    enum MHD_Result ret = MHD_queue_response(conn, resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* "GET, POST": the methods routed for path (the Allow header of a 405). */
static void allowed_methods(const struct http_server *s, const char *path, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->nroutes; i++) {
        if (pattern_match(s->routes[i].pattern, path, NULL) && len + 24 < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s%s%s", len ? ", " : "",
                                    s->routes[i].method,
                                    strcmp(s->routes[i].method, "GET") == 0 ? ", HEAD" : "");
    }
}

/*
 * OPTIONS with CORS on: a browser's preflight, which it sends before a
 * cross-origin request a plain HTML form could not make (JSON bodies,
 * X-KeyMeld-* headers: nearly every API call). Browsers send it without
 * credentials, so it needs no authentication and runs no handler. Without
 * an Origin header it is a plain OPTIONS: 204 with Allow, no CORS headers.
 */
static void cors_preflight(const struct http_server *s, struct MHD_Connection *conn,
                           const char *path, struct http_response *resp)
{
    char methods[sizeof(resp->allow) - sizeof(", OPTIONS") + 1];
    if (strlen(path) > HTTP_PATH_MAX) {
        http_reply_error(resp, 414, "uri_too_long", "path longer than %d bytes", HTTP_PATH_MAX);
        return;
    }
    allowed_methods(s, path, methods, sizeof(methods));
    if (methods[0] == '\0') {
        http_reply_error(resp, 404, "not_found", "no route for %.200s", path);
        return;
    }
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (origin != NULL && cors_allowed(s, origin) == NULL) {
        http_reply_error(resp, 403, "forbidden",
                         "origin '%.200s' is not allowed: add it to server.cors_allowed_origins",
                         origin);
        return;
    }
    snprintf(resp->allow, sizeof(resp->allow), "%s, OPTIONS", methods);
    http_reply_text(resp, 204, "text/plain", "", 0);
}

static void dispatch(struct http_server *s, struct MHD_Connection *conn, const char *method,
                     const char *url, struct req_ctx *rc, struct http_response *resp,
                     struct http_request *req, int *route_out)
{
    char path[HTTP_PATH_MAX + 1];
    size_t plen = strlen(url);
    if (plen > HTTP_PATH_MAX) {
        http_reply_error(resp, 414, "uri_too_long", "path longer than %d bytes", HTTP_PATH_MAX);
        return;
    }
    memcpy(path, url, plen + 1);
    int route = http_route_match(s->routes, s->nroutes, method, path, req);
    *route_out = route;
    if (route == -404) {
        http_reply_error(resp, 404, "not_found", "no route for %.200s", path);
        return;
    }
    if (route == -405) {
        http_reply_error(resp, 405, "method_not_allowed", "%s is not allowed on %.200s", method,
                         path);
        allowed_methods(s, url, resp->allow, sizeof(resp->allow));
        return;
    }
    if (rc->too_large) {
        http_reply_error(resp, 413, "payload_too_large", "request body larger than %zu bytes",
                         s->max_body);
        return;
    }
    struct buf full;
    buf_init(&full, HTTP_PATH_MAX * 4);
    struct url_builder ub = {&full, true};
    if (buf_put_str(&full, url) != KM_OK ||
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, append_arg, &ub) < 0 ||
        buf_cstr(&full) == NULL) {
        buf_release(&full);
        http_reply_error(resp, 414, "uri_too_long", "request URL too long");
        return;
    }
    req->method = method;
    req->url = buf_cstr(&full);
    req->path = url;
    req->body = buf_len(&rc->body) ? buf_peek(&rc->body) : NULL;
    req->body_len = buf_len(&rc->body);
    req->header = mhd_header;
    req->query = mhd_query;
    req->ctx = conn;
    s->routes[route].handler(s->ud, req, resp);
    buf_release(&full);
}

static bool peer_is_loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

/* The client's address as text; false when it has none (a Unix socket). */
static bool peer_address(struct MHD_Connection *conn, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    const void *a = NULL;
    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    return a != NULL && inet_ntop(sa->sa_family, a, out, (socklen_t)cap) != NULL;
}

/*
 * Request deadlines. libmicrohttpd's connection timeout (idle_timeout)
 * restarts with every byte, so a client trickling its headers a byte at a
 * time would hold a connection, and with it a thread, forever. Each
 * connection therefore carries a deadline for the phase it is in: its
 * request's headers complete within header_timeout of the connection's
 * accept or of the end of its previous request, the body within
 * body_timeout of the headers, none while a handler runs or the reply is
 * sent. The reaper thread shuts down the socket of a connection past its
 * deadline; libmicrohttpd then reads end-of-file and closes it like any
 * connection the client closed. The socket is only closed after the CLOSED
 * notification took the entry out of the table (under conns_lock), so the
 * reaper never shuts down a number that was reused. The table is ours, not
 * the connection's socket context: the TLS layer holds that.
 */
enum conn_phase { CONN_HEADERS, CONN_BODY, CONN_HANDLER };

/* One open connection, from accept to close. */
struct conn_state {
    struct conn_state *prev, *next; /* in its bucket of s->conns */
    const struct MHD_Connection *conn;
    MHD_socket fd;
    enum conn_phase phase;
    uint64_t deadline_ms;        /* clock_now_ms() time the phase must end; 0 = none */
    bool shut;                   /* the reaper shut the socket down */
    char addr[INET6_ADDRSTRLEN]; /* the client's address, "?" if none */
};

static size_t conn_bucket(const struct MHD_Connection *conn)
{
    return (size_t)(((uintptr_t)conn >> 4) % HTTP_CONN_BUCKETS);
}

/* The state of conn (conns_lock held); NULL if it has none. */
static struct conn_state *conn_find(struct http_server *s, const struct MHD_Connection *conn)
{
    struct conn_state *cs = s->conns[conn_bucket(conn)];
    while (cs != NULL && cs->conn != conn)
        cs = cs->next;
    return cs;
}

/* Puts the connection of a request into phase, with that phase's deadline. */
static void conn_enter(struct http_server *s, struct MHD_Connection *conn, enum conn_phase phase)
{
    uint64_t now = clock_now_ms();
    pthread_mutex_lock(&s->conns_lock);
    struct conn_state *cs = conn_find(s, conn);
    if (cs != NULL) {
        cs->phase = phase;
        cs->deadline_ms = phase == CONN_HEADERS ? now + s->header_timeout_ms
                          : phase == CONN_BODY  ? now + s->body_timeout_ms
                                                : 0;
    }
    pthread_mutex_unlock(&s->conns_lock);
}

static void conn_add(struct http_server *s, struct MHD_Connection *conn)
{
    struct conn_state *cs = xcalloc(1, sizeof(*cs));
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    cs->conn = conn;
    cs->fd = ci != NULL ? ci->connect_fd : MHD_INVALID_SOCKET;
    if (!peer_address(conn, cs->addr, sizeof(cs->addr)))
        snprintf(cs->addr, sizeof(cs->addr), "?");
    cs->phase = CONN_HEADERS;
    cs->deadline_ms = clock_now_ms() + s->header_timeout_ms;
    size_t b = conn_bucket(conn);
    pthread_mutex_lock(&s->conns_lock);
    cs->next = s->conns[b];
    if (cs->next != NULL)
        cs->next->prev = cs;
    s->conns[b] = cs;
    pthread_mutex_unlock(&s->conns_lock);
}

static void conn_remove(struct http_server *s, const struct MHD_Connection *conn)
{
    pthread_mutex_lock(&s->conns_lock);
    struct conn_state *cs = conn_find(s, conn);
    if (cs != NULL) {
        if (cs->prev != NULL)
            cs->prev->next = cs->next;
        else
            s->conns[conn_bucket(conn)] = cs->next;
        if (cs->next != NULL)
            cs->next->prev = cs->prev;
    }
    pthread_mutex_unlock(&s->conns_lock);
    free(cs);
}

/* libmicrohttpd's connection notifications: a connection was accepted
 * (its headers' deadline starts) or is about to be closed (its socket is
 * still open). Each is passed on to notify_next. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        conn_add(s, conn);
    else
        conn_remove(s, conn);
    if (s->notify_next != NULL)
        s->notify_next(s->notify_next_cls, conn, socket_context, code);
}

/* Shuts down every connection past its deadline (conns_lock held). An
 * attack can expire thousands at once: the log names the first few of each
 * pass and counts the rest. */
static void reap_expired(struct http_server *s, uint64_t now)
{
    unsigned n = 0;
    for (size_t b = 0; b < HTTP_CONN_BUCKETS; b++) {
        for (struct conn_state *cs = s->conns[b]; cs != NULL; cs = cs->next) {
            if (cs->shut || cs->deadline_ms == 0 || now < cs->deadline_ms ||
                cs->fd == MHD_INVALID_SOCKET)
                continue;
            (void)shutdown(cs->fd, SHUT_RDWR);
            cs->shut = true;
            bool headers = cs->phase == CONN_HEADERS;
            uint64_t ms = headers ? s->header_timeout_ms : s->body_timeout_ms;
            if (n++ < HTTP_REAP_LOG_MAX)
                log_warn(LOG_COMP,
                         "closing the connection from %s: request %s not complete within %llu s",
                         cs->addr, headers ? "headers" : "body", (unsigned long long)(ms / 1000u));
        }
    }
    if (n > HTTP_REAP_LOG_MAX)
        log_warn(LOG_COMP, "closed %u more connections past their request deadline",
                 n - HTTP_REAP_LOG_MAX);
}

static void *reaper_main(void *arg)
{
    struct http_server *s = arg;
    pthread_mutex_lock(&s->conns_lock);
    while (!s->stopping) {
        reap_expired(s, clock_now_ms());
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += HTTP_REAP_INTERVAL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&s->reaper_wake, &s->conns_lock, &until);
    }
    pthread_mutex_unlock(&s->conns_lock);
    return NULL;
}

/* The deadlines of cfg, the connection list and its lock (before the
 * daemon starts: connections are announced as soon as it runs). */
static void reaper_init(struct http_server *s, const struct http_server_config *cfg)
{
    s->header_timeout_ms = 1000u * (uint64_t)(cfg->header_timeout ? cfg->header_timeout : 10u);
    s->body_timeout_ms = 1000u * (uint64_t)(cfg->body_timeout ? cfg->body_timeout : 30u);
    s->conns = XALLOC_ARRAY(struct conn_state *, HTTP_CONN_BUCKETS);
    pthread_mutex_init(&s->conns_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->reaper_wake, &attr);
    pthread_condattr_destroy(&attr);
}

static void reaper_start(struct http_server *s)
{
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0)
        KM_BUG("cannot start the HTTP request deadline thread");
    s->reaper_running = true;
}

/* Stops the thread (if it runs); the daemon may still announce closes. */
static void reaper_stop(struct http_server *s)
{
    if (!s->reaper_running)
        return;
    pthread_mutex_lock(&s->conns_lock);
    s->stopping = true;
    pthread_cond_signal(&s->reaper_wake);
    pthread_mutex_unlock(&s->conns_lock);
    pthread_join(s->reaper, NULL);
    s->reaper_running = false;
}

/* After the daemon stopped: every connection announced its close. */
static void reaper_release(struct http_server *s)
{
    pthread_cond_destroy(&s->reaper_wake);
    pthread_mutex_destroy(&s->conns_lock);
    free(s->conns);
    s->conns = NULL;
}

/* Takes over a connection notifier among opts (the TLS layer's) for
 * on_connection to pass notifications on to: libmicrohttpd keeps only the
 * last one it is given, which must be on_connection. */
static void chain_notifier(struct http_server *s, const struct MHD_OptionItem *opts)
{
    for (size_t i = 0; opts[i].option != MHD_OPTION_END; i++) {
        if (opts[i].option != MHD_OPTION_NOTIFY_CONNECTION)
            continue;
        s->notify_next = (MHD_NotifyConnectionCallback)(uintptr_t)opts[i].value;
        s->notify_next_cls = opts[i].ptr_value;
    }
}

/*
 * Query parameters: libmicrohttpd stores each one in the connection's
 * memory (HTTP_HEADER_MEMORY, shared with the request line), and 0.9.75,
 * when that runs out while it stores them, closes the connection without
 * the reply it meant to send (it queues a 431 and then overwrites the
 * state). So the query is counted here, before libmicrohttpd parses it,
 * and one with more than HTTP_MAX_QUERY_PARAMS parameters is cut off
 * (libmicrohttpd documents this callback as the place to process the URI
 * before it is parsed; the string is its writable read buffer): the
 * request goes on without a query and is answered 414 from its headers.
 */
static struct req_ctx *req_ctx_new(const struct http_server *s)
{
    struct req_ctx *rc = xcalloc(1, sizeof(*rc));
    buf_init(&rc->body, s->max_body);
    rc->start_ns = clock_now_ns();
    return rc;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    struct req_ctx *rc = req_ctx_new(cls);
    const char *q = uri != NULL ? strchr(uri, '?') : NULL;
    if (q == NULL || q[1] == '\0')
        return rc;
    rc->nquery = 1;
    for (const char *p = q + 1; *p != '\0'; p++)
        rc->nquery += *p == '&';
    if (rc->nquery > HTTP_MAX_QUERY_PARAMS)
        ((char *)(uintptr_t)q)[1] = '\0';
    return rc;
}

/* Answers at once a request whose headers already condemn it: a client
 * over its request rate (429), too many query parameters (414), a
 * Content-Length over the limit (413), a transfer coding other than chunked
 * (501). Returns true when it answered. */
static bool refuse_early(struct http_server *s, struct MHD_Connection *conn,
                         const struct req_ctx *rc)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    struct http_response resp = {.status = 500, .content_type = "application/json"};
    buf_init(&resp.body, 4096);
    bool refuse = true;
    char addr[INET6_ADDRSTRLEN];
    uint32_t wait_secs = 0;
    if (s->per_ip != NULL && peer_address(conn, addr, sizeof(addr)) &&
        !rate_limiter_take(s->per_ip, addr, clock_now_ms(), &wait_secs)) {
        resp.retry_after = wait_secs;
        http_reply_error(&resp, 429, "too_many_requests",
                         "too many requests from %s: retry in %u s", addr, wait_secs);
    } else if (rc->nquery > HTTP_MAX_QUERY_PARAMS)
        http_reply_error(&resp, 414, "uri_too_long",
                         "request URL has %zu query parameters, more than the limit of %d",
                         rc->nquery, HTTP_MAX_QUERY_PARAMS);
    else if (cl != NULL && strtoull(cl, NULL, 10) > s->max_body)
        http_reply_error(&resp, 413, "payload_too_large",
                         "request body of %.20s bytes exceeds the limit of %zu bytes", cl,
                         s->max_body);
    else if (te != NULL && strcasecmp(te, "chunked") != 0)
        http_reply_error(&resp, 501, "not_implemented",
                         "Transfer-Encoding '%.40s' is not supported: send the body with "
                         "Content-Length or Transfer-Encoding: chunked",
                         te);
    else
        refuse = false;
    if (refuse) {
        char rid[HTTP_REQUEST_ID_LEN + 1] = "";
        struct uuid u;
        if (uuid_v7_new(&u) == KM_OK)
            uuid_format(rid, &u);
        (void)send_response(s, conn, &resp, rid, false);
        count_status(s, -1, resp.status);
    }
    buf_release(&resp.body);
    return refuse;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct http_server *s = cls;
    struct req_ctx *rc = *con_cls; /* made by on_uri, which runs first */
    if (rc == NULL)
        *con_cls = rc = req_ctx_new(s);
    if (!rc->started) {
        rc->started = true;
        conn_enter(s, conn, CONN_BODY);
        /* Decided from the headers, before any body byte is accepted (and
         * before "100 Continue" is sent): no body is read only to be
         * refused. */
        rc->answered = refuse_early(s, conn, rc);
        return MHD_YES;
    }
    if (rc->answered)
        return MHD_YES;
    if (*upload_size > 0) {
        if (!rc->too_large && buf_put(&rc->body, upload_data, *upload_size) != KM_OK)
            rc->too_large = true; /* keep draining; answer 413 at the end */
        *upload_size = 0;
        return MHD_YES;
    }
    conn_enter(s, conn, CONN_HANDLER);

    struct http_request req = {.peer_loopback = peer_is_loopback(conn)};
    struct http_response resp = {.status = 500, .content_type = "application/json"};
    buf_init(&resp.body, 64u << 20);
    struct uuid rid;
    if (uuid_v7_new(&rid) == KM_OK)
        uuid_format(req.request_id, &rid);
    log_context_set("request_id", req.request_id);
    int route = -1; /* a preflight is counted with the unmatched requests */
    bool preflight = s->cors != CORS_OFF && strcmp(method, "OPTIONS") == 0;
    if (preflight)
        cors_preflight(s, conn, url, &resp);
    else
        dispatch(s, conn, method, url, rc, &resp, &req, &route);
    enum MHD_Result ret = send_response(s, conn, &resp, req.request_id, preflight);
    count_status(s, route, resp.status);
    uint64_t us = (clock_now_ns() - rc->start_ns) / 1000u;
    log_debug(LOG_COMP, "%s %.200s -> %u (%llu us)", method, url, resp.status,
              (unsigned long long)us);
    log_context_set("request_id", NULL);
    buf_release(&resp.body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    struct req_ctx *rc = *con_cls;
    if (rc != NULL) {
        buf_release(&rc->body);
        free(rc);
        *con_cls = NULL;
    }
    /* The next request on this connection gets header_timeout from now. */
    conn_enter(cls, conn, CONN_HEADERS);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) KM_PRINTF(2, 0);
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_debug(LOG_COMP, "libmicrohttpd: %s", msg);
    pthread_mutex_lock(&s->lock);
    if (s->capturing && s->start_msg[0] == '\0')
        snprintf(s->start_msg, sizeof(s->start_msg), "%s", msg);
    pthread_mutex_unlock(&s->lock);
}

static void tls_free(struct http_server *s)
{
    http_tls_free(s->tls); /* GnuTLS wipes the key */
    s->tls = NULL;
}

/* Checks the TLS part of cfg and parses the pair into s->tls. */
static int tls_setup(struct http_server *s, const struct http_server_config *cfg,
                     struct km_error *err)
{
    if (cfg->tls_cert_pem == NULL && cfg->tls_key_pem == NULL)
        return KM_OK;
    if (cfg->tls_cert_pem == NULL || cfg->tls_key_pem == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "cannot serve HTTPS on %s:%u: a TLS %s was given without its %s",
                            cfg->host, cfg->port, cfg->tls_cert_pem ? "certificate" : "key",
                            cfg->tls_cert_pem ? "private key" : "certificate");
    char what[300];
    snprintf(what, sizeof(what), "cannot serve HTTPS on %s:%u", cfg->host, cfg->port);
    return http_tls_new(&s->tls, cfg->tls_cert_pem, cfg->tls_key_pem, what, err);
}

/* The error for a daemon that did not start; msg is what libmicrohttpd
 * said first ("" if nothing). */
static int start_error(const struct http_server *s, const struct http_server_config *cfg,
                       const char *msg, struct km_error *err)
{
    bool tls_msg = strstr(msg, "TLS") != NULL || strstr(msg, "certificate") != NULL ||
                   strstr(msg, "key") != NULL || strstr(msg, "priorit") != NULL;
    if (s->tls != NULL && tls_msg)
        return km_error_set(err, KM_ERR_CRYPTO, 0,
                            "cannot serve HTTPS on %s:%u: the TLS library refused the "
                            "certificate or key (%s): check that server.tls_cert_file holds the "
                            "certificate (PEM, leaf first) and server.tls_key_file its own "
                            "private key",
                            cfg->host, cfg->port, msg);
    if (msg[0] != '\0')
        return km_error_set(err, KM_ERR_IO, 0,
                            "cannot listen on %s:%u (%s); set server.port or KEYMELD_PORT to a "
                            "free port",
                            cfg->host, cfg->port, msg);
    return km_error_set(err, KM_ERR_IO, 0,
                        "cannot listen on %s:%u (address in use or not available); "
                        "set server.port or KEYMELD_PORT to a free port",
                        cfg->host, cfg->port);
}

int http_server_start(struct http_server **out, const struct http_server_config *cfg,
                      const struct http_route *routes, size_t nroutes, void *ud,
                      struct km_error *err)
{
    *out = NULL;
    struct addrinfo hints = {0}, *ai = NULL;
    char port[8];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai != 0)
        return km_error_set(err, KM_ERR_IO, 0, "cannot listen on %s:%u: %s", cfg->host, cfg->port,
                            gai_strerror(gai));

    struct http_server *s = xcalloc(1, sizeof(*s));
    int r = cors_setup(s, cfg->cors_origins, err);
    if (r == KM_OK)
        r = tls_setup(s, cfg, err);
    if (r != KM_OK) {
        tls_free(s);
        free(s);
        freeaddrinfo(ai);
        return r;
    }
    s->routes = routes;
    s->nroutes = nroutes;
    s->ud = ud;
    s->max_body = cfg->max_body ? cfg->max_body : (1u << 20);
    if (cfg->per_ip_rate > 0)
        s->per_ip = rate_limiter_new(cfg->per_ip_rate, cfg->per_ip_burst ? cfg->per_ip_burst : 1,
                                     HTTP_RATE_SLOTS);
    /* Handlers may look at the server (metrics) as soon as it accepts. */
    *out = s;
    s->stats = XALLOC_ARRAY(struct http_route_stats, nroutes + 1);
    pthread_mutex_init(&s->lock, NULL);
    reaper_init(s, cfg);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* HTTPS: the certificate callback and the connection notifier of
     * http_tls.c, which owns the connections' socket context; on_connection
     * passes every notification on to that notifier (chain_notifier). */
    struct MHD_OptionItem tls_opts[HTTP_TLS_MHD_OPTIONS + 1] = {{MHD_OPTION_END, 0, NULL}};
    if (s->tls != NULL) {
        flags |= MHD_USE_TLS;
        http_tls_mhd_options(s->tls, tls_opts);
    }
    chain_notifier(s, tls_opts);
    s->capturing = true;
    /* The logger goes first: MHD reports options it parses before it. */
    s->daemon = MHD_start_daemon(
        flags, cfg->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_CONNECTION_LIMIT,
        cfg->max_connections ? cfg->max_connections : 1024u, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        cfg->max_per_ip ? cfg->max_per_ip : 64u, MHD_OPTION_CONNECTION_TIMEOUT,
        cfg->idle_timeout ? cfg->idle_timeout : 15u,
        /* Request line and headers must fit: longer ones get 414 / 431. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_HEADER_MEMORY,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, HTTP_LISTEN_BACKLOG, MHD_OPTION_ARRAY, tls_opts,
        /* After the array: this notifier replaces one there (chain_notifier). */
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
    freeaddrinfo(ai);
    pthread_mutex_lock(&s->lock);
    s->capturing = false;
    char msg[sizeof(s->start_msg)];
    snprintf(msg, sizeof(msg), "%s", s->start_msg);
    pthread_mutex_unlock(&s->lock);
    if (s->daemon == NULL) {
        *out = NULL;
        r = start_error(s, cfg, msg, err);
        rate_limiter_free(s->per_ip);
        free(s->stats);
        tls_free(s);
        pthread_mutex_destroy(&s->lock);
        reaper_release(s);
        free(s);
        return r;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    reaper_start(s);
    return KM_OK;
}

uint16_t http_server_port(const struct http_server *s)
{
    return s->port;
}

bool http_server_tls(const struct http_server *s)
{
    return s->tls != NULL;
}

int http_server_tls_reload(struct http_server *s, const char *cert_pem, const char *key_pem,
                           struct km_error *err)
{
    if (s->tls == NULL)
        return km_error_set(err, KM_ERR_STATE, 0,
                            "TLS certificate not reloaded: the server speaks plain HTTP");
    return http_tls_replace(s->tls, cert_pem, key_pem, "TLS certificate not reloaded", err);
}

void http_server_tls_describe(const struct http_server *s, char *out, size_t cap)
{
    if (s->tls == NULL)
        snprintf(out, cap, "%s", "");
    else
        http_tls_describe(s->tls, out, cap);
}

void http_server_stop(struct http_server *s)
{
    if (s == NULL)
        return;
    reaper_stop(s);
    /* Thread-per-connection: stopping waits for every handler to return. */
    MHD_stop_daemon(s->daemon);
    reaper_release(s);
    pthread_mutex_destroy(&s->lock);
    rate_limiter_free(s->per_ip);
    free(s->stats);
    tls_free(s);
    free(s);
}
