/*
 * test_cors.c - CORS in the HTTP server (src/gateway/http.c, docs/API.md
 * "CORS"), over real connections to a server on an ephemeral 127.0.0.1
 * port with a few routes:
 *
 *   - a preflight (OPTIONS with Origin) for a routed path from an allowed
 *     origin gets 204 with the path's methods, the X-KeyMeld-* request
 *     headers and Max-Age, without running a handler, and is counted with
 *     the unmatched requests; from another origin 403 with the JSON error;
 *     for an unknown path 404; OPTIONS without Origin 204 with Allow only;
 *   - other replies carry Access-Control-Allow-Origin (the origin), Vary
 *     and Expose-Headers only for an allowed Origin, errors and 429s
 *     included; preflights are rate-limited like any request;
 *   - the list "*" answers every origin with "*";
 *   - CORS off: OPTIONS is 405 with Allow, no CORS header anywhere;
 *   - http_server_start refuses a list it cannot hold.
 */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "common/clock.h"
#include "gateway/http.h"
#include "common/banned.h"

static atomic_int handler_calls;

static void h_item(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)ud;
    atomic_fetch_add(&handler_calls, 1);
    http_reply_json(resp, 200, json_pack("{s:s}", "id", req->params[0]));
}

static void h_health(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)ud;
    (void)req;
    atomic_fetch_add(&handler_calls, 1);
    http_reply_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

enum { R_GET_ITEM = 0, R_DELETE_ITEM, R_POST_ITEMS, R_GET_HEALTH, R_COUNT };

static const struct http_route routes[R_COUNT] = {
    [R_GET_ITEM] = {"GET", "/items/{id}", h_item},
    [R_DELETE_ITEM] = {"DELETE", "/items/{id}", h_item},
    [R_POST_ITEMS] = {"POST", "/items", h_health},
    [R_GET_HEALTH] = {"GET", "/health", h_health},
};

#define WALLET "https://wallet.example.com"
#define DEV    "http://localhost:5173"
#define ALLOW_HEADERS                                                                              \
    "Content-Type, Authorization, X-KeyMeld-API-Key, X-KeyMeld-Timestamp, X-KeyMeld-Nonce, "       \
    "X-KeyMeld-Signature"

static struct http_server *start_rate(const char *origins, unsigned rate, unsigned burst)
{
    struct http_server_config cfg = {.host = "127.0.0.1",
                                     .port = 0,
                                     .max_body = 4096,
                                     .max_connections = 64,
                                     .max_per_ip = 16,
                                     .idle_timeout = 5,
                                     .per_ip_rate = rate,
                                     .per_ip_burst = burst,
                                     .cors_origins = origins};
    struct http_server *s = NULL;
    struct km_error err;
    if (http_server_start(&s, &cfg, routes, R_COUNT, NULL, &err) != KM_OK)
        fail_msg("http_server_start: %s", err.msg);
    return s;
}

static struct http_server *start(const char *origins)
{
    return start_rate(origins, 0, 0);
}

/* One reply: the status, the head (status line and headers) and the body. */
struct reply {
    unsigned status;
    char raw[16384];
    const char *body; /* into raw, after the head */
};

/* Sends "METHOD path" with an Origin (NULL: none) and extra header lines
 * ("Name: value\r\n"...), reads the reply until the server closes. */
static void request(struct http_server *s, const char *method, const char *path, const char *origin,
                    const char *extra, struct reply *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(http_server_port(s))};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    CHECK_EQ(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s%sConnection: "
                     "close\r\n\r\n",
                     method, path, origin ? "Origin: " : "", origin ? origin : "",
                     origin ? "\r\n" : "", extra ? extra : "");
    CHECK(n > 0 && (size_t)n < sizeof(req));
    CHECK_EQ(write(fd, req, (size_t)n), n);
    size_t len = 0;
    uint64_t until = clock_now_ms() + 5000;
    while (len + 1 < sizeof(out->raw) && clock_now_ms() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, out->raw + len, sizeof(out->raw) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    out->raw[len] = '\0';
    CHECK_EQ(strncmp(out->raw, "HTTP/1.1 ", 9), 0);
    out->status = (unsigned)strtoul(out->raw + 9, NULL, 10);
    char *end = strstr(out->raw, "\r\n\r\n");
    CHECK_NOT_NULL(end);
    end[2] = '\0'; /* the head keeps its last line's CRLF */
    out->body = end + 4;
}

/* The value of header name in the reply's head (case-insensitive name),
 * copied to a static buffer; NULL when absent. Fails on a repeated one. */
static const char *header(const struct reply *r, const char *name)
{
    static char value[512];
    const char *found = NULL;
    size_t nlen = strlen(name);
    for (const char *line = strstr(r->raw, "\r\n"); line != NULL && line[2] != '\0';
         line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, nlen) != 0 || h[nlen] != ':')
            continue;
        if (found != NULL)
            fail_msg("header %s sent twice:\n%s", name, r->raw);
        found = h + nlen + 1;
    }
    if (found == NULL)
        return NULL;
    while (*found == ' ')
        found++;
    size_t vlen = strcspn(found, "\r");
    snprintf(value, sizeof(value), "%.*s", (int)vlen, found);
    return value;
}

#define CHECK_HEADER(r, name, want)                                                                \
    do {                                                                                           \
        const char *got_ = header(r, name);                                                        \
        if (got_ == NULL || strcmp(got_, want) != 0)                                               \
            fail_msg("%s: expected '%s', got '%s' in\n%s", name, want, got_ ? got_ : "(none)",     \
                     (r)->raw);                                                                    \
    } while (0)

#define CHECK_NO_HEADER(r, name)                                                                   \
    do {                                                                                           \
        if (header(r, name) != NULL)                                                               \
            fail_msg("unexpected %s in\n%s", name, (r)->raw);                                      \
    } while (0)

/* No CORS header of any kind. */
static void check_no_cors(const struct reply *r)
{
    CHECK_NO_HEADER(r, "Access-Control-Allow-Origin");
    CHECK_NO_HEADER(r, "Access-Control-Allow-Methods");
    CHECK_NO_HEADER(r, "Access-Control-Allow-Headers");
    CHECK_NO_HEADER(r, "Access-Control-Expose-Headers");
    CHECK_NO_HEADER(r, "Access-Control-Max-Age");
    CHECK_NO_HEADER(r, "Vary");
}

/* The headers every reply to an allowed origin carries. */
static void check_cors(const struct reply *r, const char *allow_origin)
{
    CHECK_HEADER(r, "Access-Control-Allow-Origin", allow_origin);
    CHECK_HEADER(r, "Vary", "Origin");
    CHECK_HEADER(r, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
}

/* The error body's type and message. */
static void check_error(const struct reply *r, unsigned status, const char *type,
                        const char *message)
{
    CHECK_EQ(r->status, status);
    CHECK_HEADER(r, "Content-Type", "application/json");
    json_error_t jerr;
    json_t *doc = json_loads(r->body, 0, &jerr);
    CHECK_NOT_NULL(doc);
    const char *t = NULL, *m = NULL;
    json_int_t code = 0;
    CHECK_EQ(
        json_unpack(doc, "{s:{s:s, s:s, s:I}}", "error", "type", &t, "message", &m, "code", &code),
        0);
    CHECK_STR_EQ(t, type);
    CHECK_STR_EQ(m, message);
    CHECK_EQ(code, (json_int_t)status);
    json_decref(doc);
}

static uint64_t unmatched(struct http_server *s, unsigned status)
{
    struct http_route_stats st;
    http_server_route_stats(s, R_COUNT, &st);
    return st.codes[status];
}

static void test_preflight_allowed(void **state)
{
    (void)state;
    struct http_server *s = start(WALLET "," DEV);
    atomic_store(&handler_calls, 0);
    struct reply r;
    request(s, "OPTIONS", "/items/abc", DEV,
            "Access-Control-Request-Method: DELETE\r\n"
            "Access-Control-Request-Headers: x-keymeld-timestamp, x-keymeld-nonce, "
            "x-keymeld-signature\r\n",
            &r);
    CHECK_EQ(r.status, 204);
    check_cors(&r, DEV);
    CHECK_HEADER(&r, "Access-Control-Allow-Methods", "GET, HEAD, DELETE, OPTIONS");
    CHECK_HEADER(&r, "Access-Control-Allow-Headers", ALLOW_HEADERS);
    CHECK_HEADER(&r, "Access-Control-Max-Age", "600");
    CHECK_HEADER(&r, "Allow", "GET, HEAD, DELETE, OPTIONS");
    CHECK_NOT_NULL(header(&r, "X-Request-Id"));
    CHECK_NO_HEADER(&r, "Content-Type");
    CHECK_STR_EQ(r.body, "");

    /* Another path, the other origin. */
    request(s, "OPTIONS", "/items", WALLET, "Access-Control-Request-Method: POST\r\n", &r);
    CHECK_EQ(r.status, 204);
    check_cors(&r, WALLET);
    CHECK_HEADER(&r, "Access-Control-Allow-Methods", "POST, OPTIONS");

    /* No handler ran; both are counted with the unmatched requests. */
    CHECK_EQ(atomic_load(&handler_calls), 0);
    CHECK_EQ(unmatched(s, 204), 2);

    /* OPTIONS without Origin is no preflight: Allow, no CORS headers. */
    request(s, "OPTIONS", "/health", NULL, NULL, &r);
    CHECK_EQ(r.status, 204);
    CHECK_HEADER(&r, "Allow", "GET, HEAD, OPTIONS");
    check_no_cors(&r);
    http_server_stop(s);
}

static void test_preflight_denied_origin(void **state)
{
    (void)state;
    struct http_server *s = start(WALLET "," DEV);
    /* Origins are compared byte for byte with the list. */
    static const char *const denied[] = {
        "https://evil.example",
        "https://Wallet.example.com",
        WALLET "/",
        WALLET ":443",
        "http://wallet.example.com",
        "null",
        "https://wallet.example.com.evil.example",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(denied); i++) {
        struct reply r;
        request(s, "OPTIONS", "/items/abc", denied[i], "Access-Control-Request-Method: GET\r\n",
                &r);
        char want[256];
        snprintf(want, sizeof(want),
                 "origin '%s' is not allowed: add it to server.cors_allowed_origins", denied[i]);
        check_error(&r, 403, "forbidden", want);
        check_no_cors(&r);
        CHECK_NO_HEADER(&r, "Allow");
    }
    CHECK_EQ(unmatched(s, 403), KM_ARRAY_LEN(denied));
    http_server_stop(s);
}

static void test_preflight_unknown_path(void **state)
{
    (void)state;
    struct http_server *s = start(WALLET);
    struct reply r;
    request(s, "OPTIONS", "/nope", WALLET, "Access-Control-Request-Method: GET\r\n", &r);
    check_error(&r, 404, "not_found", "no route for /nope");
    check_cors(&r, WALLET); /* the page may read why */
    CHECK_NO_HEADER(&r, "Access-Control-Allow-Methods");
    request(s, "OPTIONS", "/items/", WALLET, NULL, &r);
    CHECK_EQ(r.status, 404);
    http_server_stop(s);
}

/* Replies to other methods: the CORS headers for an allowed Origin only. */
static void test_simple_requests(void **state)
{
    (void)state;
    struct http_server *s = start(WALLET "," DEV);
    struct reply r;
    request(s, "GET", "/items/x1", WALLET, NULL, &r);
    CHECK_EQ(r.status, 200);
    check_cors(&r, WALLET);
    CHECK_NO_HEADER(&r, "Access-Control-Allow-Methods");
    CHECK_NO_HEADER(&r, "Access-Control-Max-Age");
    CHECK_HEADER(&r, "Content-Type", "application/json");
    CHECK_STR_EQ(r.body, "{\"id\":\"x1\"}");

    request(s, "GET", "/items/x1", NULL, NULL, &r);
    CHECK_EQ(r.status, 200);
    check_no_cors(&r);
    CHECK_STR_EQ(r.body, "{\"id\":\"x1\"}");

    request(s, "GET", "/items/x1", "https://evil.example", NULL, &r);
    CHECK_EQ(r.status, 200); /* the browser withholds it from the page */
    check_no_cors(&r);

    /* Errors carry them too, so the page can read the error body. */
    request(s, "POST", "/health", DEV, NULL, &r);
    CHECK_EQ(r.status, 405);
    check_cors(&r, DEV);
    CHECK_HEADER(&r, "Allow", "GET, HEAD");
    request(s, "GET", "/nope", DEV, NULL, &r);
    CHECK_EQ(r.status, 404);
    check_cors(&r, DEV);
    http_server_stop(s);
}

/* Refused from the headers (429 here): CORS headers as well, so the page
 * can read Retry-After; a preflight counts against the rate like any
 * request. */
static void test_rate_limited(void **state)
{
    (void)state;
    struct http_server *s = start_rate(WALLET, 1, 1);
    struct reply r;
    request(s, "OPTIONS", "/items/x", WALLET, "Access-Control-Request-Method: GET\r\n", &r);
    CHECK_EQ(r.status, 204);
    request(s, "GET", "/items/x", WALLET, NULL, &r);
    CHECK_EQ(r.status, 429);
    check_cors(&r, WALLET);
    CHECK_NOT_NULL(header(&r, "Retry-After"));
    request(s, "OPTIONS", "/items/x", WALLET, "Access-Control-Request-Method: GET\r\n", &r);
    CHECK_EQ(r.status, 429);
    http_server_stop(s);
}

static void test_any_origin(void **state)
{
    (void)state;
    struct http_server *s = start("*");
    struct reply r;
    request(s, "GET", "/health", "https://anything.example", NULL, &r);
    CHECK_EQ(r.status, 200);
    check_cors(&r, "*");
    request(s, "OPTIONS", "/items/1", "null", "Access-Control-Request-Method: DELETE\r\n", &r);
    CHECK_EQ(r.status, 204);
    check_cors(&r, "*");
    CHECK_HEADER(&r, "Access-Control-Allow-Methods", "GET, HEAD, DELETE, OPTIONS");
    CHECK_HEADER(&r, "Access-Control-Allow-Headers", ALLOW_HEADERS);
    /* Without Origin: no CORS headers even here. */
    request(s, "GET", "/health", NULL, NULL, &r);
    CHECK_EQ(r.status, 200);
    check_no_cors(&r);
    http_server_stop(s);
}

static void test_cors_off(void **state)
{
    (void)state;
    static const char *const off[] = {NULL, ""};
    for (size_t i = 0; i < KM_ARRAY_LEN(off); i++) {
        struct http_server *s = start(off[i]);
        struct reply r;
        request(s, "OPTIONS", "/items/abc", WALLET, "Access-Control-Request-Method: GET\r\n", &r);
        check_error(&r, 405, "method_not_allowed", "OPTIONS is not allowed on /items/abc");
        CHECK_HEADER(&r, "Allow", "GET, HEAD, DELETE");
        check_no_cors(&r);
        request(s, "GET", "/health", WALLET, NULL, &r);
        CHECK_EQ(r.status, 200);
        check_no_cors(&r);
        http_server_stop(s);
    }
}

/* Spaces around entries are ignored; lists the server cannot hold are
 * refused before it listens. */
static void test_lists(void **state)
{
    (void)state;
    struct http_server *s = start(" " WALLET " ,\t" DEV "\t");
    struct reply r;
    request(s, "GET", "/health", DEV, NULL, &r);
    check_cors(&r, DEV);
    request(s, "GET", "/health", WALLET, NULL, &r);
    check_cors(&r, WALLET);
    http_server_stop(s);

    char *many = malloc(64 * (HTTP_CORS_MAX_ORIGINS + 1));
    CHECK_NOT_NULL(many);
    size_t n = 0;
    for (int i = 0; i <= HTTP_CORS_MAX_ORIGINS; i++)
        n += (size_t)snprintf(many + n, 64, "%shttp://h%d.example", i ? "," : "", i);
    char *longest = malloc(HTTP_CORS_ORIGIN_MAX + 2);
    CHECK_NOT_NULL(longest);
    memset(longest, 'a', HTTP_CORS_ORIGIN_MAX + 1);
    longest[HTTP_CORS_ORIGIN_MAX + 1] = '\0';
    const struct {
        const char *list, *msg;
    } bad[] = {
        {WALLET ",," DEV, "entry 2 is empty"},
        {WALLET ",", "entry 2 is empty"},
        {" ", "entry 1 is empty"},
        {"*," WALLET, "'*' (every origin) among other entries"},
        {many, "more than 32 origins"},
        {longest, "longer than 300 bytes"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        struct http_server_config cfg = {.host = "127.0.0.1", .cors_origins = bad[i].list};
        struct km_error err;
        s = (struct http_server *)&err; /* must be reset */
        CHECK_ERR(http_server_start(&s, &cfg, routes, R_COUNT, NULL, &err), KM_ERR_INVALID);
        CHECK_NULL(s);
        CHECK_CONTAINS(err.msg, "CORS origin list refused");
        CHECK_CONTAINS(err.msg, bad[i].msg);
    }
    /* Exactly at the limits. */
    many[strlen(many) - strlen(",http://h32.example")] = '\0';
    longest[HTTP_CORS_ORIGIN_MAX] = '\0';
    const char *fit[] = {many, longest};
    for (size_t i = 0; i < KM_ARRAY_LEN(fit); i++) {
        struct http_server_config cfg = {.host = "127.0.0.1", .cors_origins = fit[i]};
        struct km_error err;
        CHECK_OK(http_server_start(&s, &cfg, routes, R_COUNT, NULL, &err));
        http_server_stop(s);
    }
    free(many);
    free(longest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_preflight_allowed),
        TEST(test_preflight_denied_origin),
        TEST(test_preflight_unknown_path),
        TEST(test_simple_requests),
        TEST(test_rate_limited),
        TEST(test_any_origin),
        TEST(test_cors_off),
        TEST(test_lists),
    };
    return RUN_TESTS("unit.gateway.cors", tests);
}
