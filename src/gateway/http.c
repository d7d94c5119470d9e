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
#include "gateway/ratelimit.h"
#include "common/banned.h"

#define LOG_COMP      "http"
#define HTTP_PATH_MAX 2048

struct http_server {
    struct MHD_Daemon *daemon;
    const struct http_route *routes;
    size_t nroutes;
    void *ud;
    size_t max_body;
    bool cors;
    uint16_t port;
    pthread_mutex_t lock;
    struct http_route_stats *stats; /* nroutes + 1 */
    struct rate_limiter *per_ip;    /* NULL: no request rate limit */
    /* HTTPS: our copies of the PEM texts (NULL: plain HTTP). The key is
     * wiped when the server stops. */
    char *tls_cert;
    char *tls_key;
    size_t tls_key_len;
    /* The first message libmicrohttpd logs while the daemon starts (under
     * lock; capturing only during http_server_start), for the error. */
    bool capturing;
    char start_msg[256];
};

/* GnuTLS priorities of the HTTPS server: its defaults without TLS 1.0/1.1
 * and DTLS. */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* Addresses the request-rate table remembers at once (fixed memory: 64
 * bytes each); more distinct addresses share or take over idle buckets. */
#define HTTP_RATE_SLOTS 16384

/* Per-request state across libmicrohttpd's callbacks. */
struct req_ctx {
    struct buf body;
    bool too_large;
    bool answered; /* refused from its headers already */
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

static enum MHD_Result send_response(struct MHD_Connection *conn, struct http_response *resp,
                                     const char *request_id, bool cors)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        buf_len(&resp->body), (void *)(uintptr_t)buf_peek(&resp->body), MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
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
    if (cors)
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
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

/* Answers at once a request whose headers already condemn it: a client
 * over its request rate (429), a Content-Length over the limit (413), a
 * transfer coding other than chunked (501). Returns true when it
 * answered. */
static bool refuse_early(struct http_server *s, struct MHD_Connection *conn)
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
    } else if (cl != NULL && strtoull(cl, NULL, 10) > s->max_body)
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
        (void)send_response(conn, &resp, rid, s->cors);
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
    struct req_ctx *rc = *con_cls;
    if (rc == NULL) {
        rc = xcalloc(1, sizeof(*rc));
        buf_init(&rc->body, s->max_body);
        rc->start_ns = clock_now_ns();
        *con_cls = rc;
        /* Decided from the headers, before any body byte is accepted (and
         * before "100 Continue" is sent): no body is read only to be
         * refused. */
        rc->answered = refuse_early(s, conn);
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

    struct http_request req = {.peer_loopback = peer_is_loopback(conn)};
    struct http_response resp = {.status = 500, .content_type = "application/json"};
    buf_init(&resp.body, 64u << 20);
    struct uuid rid;
    if (uuid_v7_new(&rid) == KM_OK)
        uuid_format(req.request_id, &rid);
    log_context_set("request_id", req.request_id);
    int route = -1;
    dispatch(s, conn, method, url, rc, &resp, &req, &route);
    enum MHD_Result ret = send_response(conn, &resp, req.request_id, s->cors);
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
    (void)cls;
    (void)conn;
    (void)toe;
    struct req_ctx *rc = *con_cls;
    if (rc != NULL) {
        buf_release(&rc->body);
        free(rc);
        *con_cls = NULL;
    }
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
    free(s->tls_cert);
    s->tls_cert = NULL;
    secure_free(s->tls_key, s->tls_key_len);
    s->tls_key = NULL;
    s->tls_key_len = 0;
}

/* Checks the TLS part of cfg and copies the PEM texts into s. */
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
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0,
                            "cannot serve HTTPS on %s:%u: this libmicrohttpd was built without "
                            "TLS support (install one built with GnuTLS, or terminate TLS in "
                            "a proxy and set server.allow_plain_http)",
                            cfg->host, cfg->port);
    if (strstr(cfg->tls_cert_pem, "-----BEGIN CERTIFICATE-----") == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "cannot serve HTTPS on %s:%u: the TLS certificate is not PEM (no "
                            "-----BEGIN CERTIFICATE----- line)",
                            cfg->host, cfg->port);
    if (strstr(cfg->tls_key_pem, "-----BEGIN ") == NULL ||
        strstr(cfg->tls_key_pem, "PRIVATE KEY-----") == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "cannot serve HTTPS on %s:%u: the TLS private key is not PEM (no "
                            "-----BEGIN ... PRIVATE KEY----- line)",
                            cfg->host, cfg->port);
    if (strstr(cfg->tls_key_pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL ||
        strstr(cfg->tls_key_pem, "Proc-Type: 4,ENCRYPTED") != NULL)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "cannot serve HTTPS on %s:%u: the TLS private key is encrypted: "
                            "give the key without a passphrase (readable only by the gateway's "
                            "user)",
                            cfg->host, cfg->port);
    s->tls_cert = xstrdup(cfg->tls_cert_pem);
    s->tls_key_len = strlen(cfg->tls_key_pem) + 1;
    s->tls_key = xmalloc(s->tls_key_len);
    memcpy(s->tls_key, cfg->tls_key_pem, s->tls_key_len);
    return KM_OK;
}

/* The error for a daemon that did not start; msg is what libmicrohttpd
 * said first ("" if nothing). */
static int start_error(const struct http_server *s, const struct http_server_config *cfg,
                       const char *msg, struct km_error *err)
{
    bool tls_msg = strstr(msg, "TLS") != NULL || strstr(msg, "certificate") != NULL ||
                   strstr(msg, "key") != NULL || strstr(msg, "priorit") != NULL;
    if (s->tls_cert != NULL && tls_msg)
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
    int r = tls_setup(s, cfg, err);
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
    s->cors = cfg->cors;
    if (cfg->per_ip_rate > 0)
        s->per_ip = rate_limiter_new(cfg->per_ip_rate, cfg->per_ip_burst ? cfg->per_ip_burst : 1,
                                     HTTP_RATE_SLOTS);
    /* Handlers may look at the server (metrics) as soon as it accepts. */
    *out = s;
    s->stats = XALLOC_ARRAY(struct http_route_stats, nroutes + 1);
    pthread_mutex_init(&s->lock, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)(uintptr_t)HTTP_TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL},
    };
    if (s->tls_cert != NULL)
        flags |= MHD_USE_TLS;
    else
        tls_opts[0].option = MHD_OPTION_END;
    s->capturing = true;
    /* The logger goes first: MHD reports options it parses before it. */
    s->daemon = MHD_start_daemon(
        flags, cfg->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections ? cfg->max_connections : 1024u,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_per_ip ? cfg->max_per_ip : 64u,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout ? cfg->idle_timeout : 15u,
        /* Request line and headers must fit: longer ones get 414 / 431. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_HEADER_MEMORY,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 256u, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
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
        free(s);
        return r;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    return KM_OK;
}

uint16_t http_server_port(const struct http_server *s)
{
    return s->port;
}

bool http_server_tls(const struct http_server *s)
{
    return s->tls_cert != NULL;
}

void http_server_stop(struct http_server *s)
{
    if (s == NULL)
        return;
    /* Thread-per-connection: stopping waits for every handler to return. */
    MHD_stop_daemon(s->daemon);
    pthread_mutex_destroy(&s->lock);
    rate_limiter_free(s->per_ip);
    free(s->stats);
    tls_free(s);
    free(s);
}
