/*
 * test_http.c - the parts of src/gateway/http.c that need no server: the
 * router (http_route_match) and the reply helpers (the error body every
 * route uses, JSON and text replies, header/query lookups).
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/gateway.h"
#include "gateway/http.h"
#include "common/banned.h"

static void h_any(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)ud;
    (void)req;
    (void)resp;
}

enum {
    R_GET_AB = 0,
    R_POST_AB,
    R_GET_STATIC,
    R_DELETE_A,
    R_GET_ROOT,
    R_GET_FOUR,
    R_GET_FIVE,
    R_COUNT
};

static const struct http_route routes[R_COUNT] = {
    [R_GET_AB] = {"GET", "/a/{x}/b/{y}", h_any},
    [R_POST_AB] = {"POST", "/a/{x}/b/{y}", h_any},
    [R_GET_STATIC] = {"GET", "/a/static", h_any},
    [R_DELETE_A] = {"DELETE", "/a/{x}", h_any},
    [R_GET_ROOT] = {"GET", "/", h_any},
    [R_GET_FOUR] = {"GET", "/four/{a}/{b}/{c}/{d}", h_any},
    /* One parameter more than HTTP_MAX_PARAMS. */
    [R_GET_FIVE] = {"GET", "/five/{a}/{b}/{c}/{d}/{e}", h_any},
};

static int match(const char *method, char *path, struct http_request *req)
{
    memset(req, 0, sizeof(*req));
    return http_route_match(routes, R_COUNT, method, path, req);
}

static void test_params_captured_in_place(void **state)
{
    (void)state;
    struct http_request req;
    char path[] = "/a/one/b/two";
    CHECK_EQ(match("GET", path, &req), R_GET_AB);
    CHECK_EQ(req.nparams, 2);
    /* Pointers into the caller's buffer, each segment terminated there. */
    CHECK(req.params[0] == path + 3);
    CHECK(req.params[1] == path + 9);
    CHECK_STR_EQ(req.params[0], "one");
    CHECK_STR_EQ(req.params[1], "two");
    CHECK_EQ(path[6], '\0');
    CHECK_EQ(path[2], '/');

    char last[] = "/a/xyz";
    CHECK_EQ(match("DELETE", last, &req), R_DELETE_A);
    CHECK_EQ(req.nparams, 1);
    CHECK_STR_EQ(req.params[0], "xyz");

    /* A parameter may hold anything but a slash. */
    char odd[] = "/a/%2F..%00{x}/b/\xff";
    CHECK_EQ(match("POST", odd, &req), R_POST_AB);
    CHECK_STR_EQ(req.params[0], "%2F..%00{x}");
    CHECK_STR_EQ(req.params[1], "\xff");

    char four[] = "/four/1/2/3/4";
    CHECK_EQ(match("GET", four, &req), R_GET_FOUR);
    CHECK_EQ(req.nparams, HTTP_MAX_PARAMS);
    CHECK_STR_EQ(req.params[0], "1");
    CHECK_STR_EQ(req.params[3], "4");
}

static void test_method_selects_route(void **state)
{
    (void)state;
    struct http_request req;
    char p1[] = "/a/one/b/two";
    CHECK_EQ(match("POST", p1, &req), R_POST_AB);
    /* A literal segment and a parameter at the same place: the method
     * decides, table order breaks ties. */
    char p2[] = "/a/static";
    CHECK_EQ(match("GET", p2, &req), R_GET_STATIC);
    CHECK_EQ(req.nparams, 0);
    char p3[] = "/a/static";
    CHECK_EQ(match("DELETE", p3, &req), R_DELETE_A);
    CHECK_STR_EQ(req.params[0], "static");
    char p4[] = "/";
    CHECK_EQ(match("GET", p4, &req), R_GET_ROOT);
}

static void test_404_vs_405(void **state)
{
    (void)state;
    struct http_request req;
    /* The path exists with other methods: 405. */
    char p1[] = "/a/one/b/two";
    CHECK_EQ(match("PUT", p1, &req), -405);
    char p2[] = "/a/static";
    CHECK_EQ(match("POST", p2, &req), -405);
    char p3[] = "/a/one";
    CHECK_EQ(match("HEAD", p3, &req), -405); /* HEAD goes with GET routes only */
    char p5[] = "/";
    CHECK_EQ(match("HEAD", p5, &req), R_GET_ROOT);
    char p6[] = "/a/static";
    CHECK_EQ(match("HEAD", p6, &req), R_GET_STATIC);
    char p4[] = "/a/one/b/two";
    CHECK_EQ(match("get", p4, &req), -405); /* methods are case-sensitive */

    /* No route has the path: 404, whatever the method. */
    static const char *const missing[] = {
        "/a/one/c/two",
        "/a/one/b/two/",
        "/a//b/two",
        "/a/one/b/",
        "/a",
        "/a/",
        "/a/one/b",
        "",
        "a/static",
        "//",
        "/nope",
        "/four/1/2/3",
        "/four/1/2/3/4/5",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(missing); i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", missing[i]);
        if (match("GET", buf, &req) != -404)
            fail_msg("GET '%s' should be 404", missing[i]);
        snprintf(buf, sizeof(buf), "%s", missing[i]);
        if (match("DELETE", buf, &req) != -404)
            fail_msg("DELETE '%s' should be 404", missing[i]);
    }
}

/* A pattern with more parameters than struct http_request can hold can
 * never be served correctly: it must not match (rather than match with
 * parameters missing), and must not write past params[]. */
static void test_too_many_params(void **state)
{
    (void)state;
    struct http_request req;
    char path[] = "/five/1/2/3/4/5";
    int r = match("GET", path, &req);
    CHECK(req.nparams <= HTTP_MAX_PARAMS);
    if (r >= 0)
        fail_msg("a route with %d parameters matched (nparams %zu): it cannot be served",
                 HTTP_MAX_PARAMS + 1, req.nparams);
    CHECK_EQ(r, -404);
}

/* The gateway's own table: valid patterns, no duplicates, and every route
 * reachable (no earlier route shadows it). */
static void test_gateway_routes_reachable(void **state)
{
    (void)state;
    for (size_t i = 0; i < gw_routes_count; i++) {
        const struct http_route *rt = &gw_routes[i];
        CHECK(rt->pattern[0] == '/');
        CHECK_NOT_NULL(rt->handler);
        char path[256];
        size_t o = 0, n = 0;
        for (const char *p = rt->pattern; *p;) {
            if (*p == '{') {
                o += (size_t)snprintf(path + o, sizeof(path) - o, "p%zu", n++);
                p = strchr(p, '}');
                CHECK_NOT_NULL(p);
                p++;
            } else {
                path[o++] = *p++;
            }
            CHECK(o < sizeof(path));
        }
        path[o] = '\0';
        CHECK(n <= HTTP_MAX_PARAMS);
        struct http_request req;
        memset(&req, 0, sizeof(req));
        int r = http_route_match(gw_routes, gw_routes_count, rt->method, path, &req);
        if (r != (int)i)
            fail_msg("%s %s resolves to route %d, not %zu", rt->method, rt->pattern, r, i);
        CHECK_EQ(req.nparams, n);
        for (size_t j = i + 1; j < gw_routes_count; j++) {
            if (strcmp(rt->method, gw_routes[j].method) == 0 &&
                strcmp(rt->pattern, gw_routes[j].pattern) == 0)
                fail_msg("route %s %s is listed twice", rt->method, rt->pattern);
        }
    }
}

/* ---- replies --------------------------------------------------------------- */

static void resp_init(struct http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    buf_init(&resp->body, 1u << 20);
}

static char *body_str(struct http_response *resp)
{
    const char *s = buf_cstr(&resp->body);
    CHECK_NOT_NULL(s);
    return (char *)(uintptr_t)s;
}

static json_t *body_json(struct http_response *resp)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)buf_peek(&resp->body), buf_len(&resp->body),
                           JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        fail_msg("reply is not JSON: %s", jerr.text);
    return j;
}

static void test_error_body(void **state)
{
    (void)state;
    struct http_response resp;
    resp_init(&resp);
    http_reply_error(&resp, 409, "conflict", "keygen session %s is %s", "0190f5e2", "running");
    CHECK_EQ(resp.status, 409);
    CHECK_STR_EQ(resp.content_type, "application/json");
    CHECK_STR_EQ(body_str(&resp), "{\"error\":{\"type\":\"conflict\",\"message\":\"keygen session "
                                  "0190f5e2 is running\",\"code\":409}}");

    /* A second reply replaces the first; quotes and control characters are
     * escaped. */
    http_reply_error(&resp, 400, "bad_request", "unknown key \"%s\"\n", "a\tb");
    CHECK_EQ(resp.status, 400);
    json_t *j = body_json(&resp);
    CHECK_EQ(json_object_size(j), 1);
    json_t *e = json_object_get(j, "error");
    CHECK_EQ(json_object_size(e), 3);
    CHECK_STR_EQ(json_string_value(json_object_get(e, "type")), "bad_request");
    CHECK_STR_EQ(json_string_value(json_object_get(e, "message")), "unknown key \"a\tb\"\n");
    CHECK_EQ(json_integer_value(json_object_get(e, "code")), 400);
    json_decref(j);

    /* A message that is not UTF-8 (a path parameter echoed back) still
     * gives a well-formed body with the same type and code, and keeps its
     * context: only the bad bytes are replaced. */
    http_reply_error(&resp, 400, "bad_request", "id '%s' is not a UUID", "\xff\xfe");
    j = body_json(&resp);
    e = json_object_get(j, "error");
    CHECK_STR_EQ(json_string_value(json_object_get(e, "type")), "bad_request");
    CHECK_EQ(json_integer_value(json_object_get(e, "code")), 400);
    CHECK_STR_EQ(json_string_value(json_object_get(e, "message")), "id '?"
                                                                   "?' is not a UUID");
    json_decref(j);

    /* Long messages are cut, never overflow. */
    char *big = malloc(5000);
    CHECK_NOT_NULL(big);
    memset(big, 'm', 4999);
    big[4999] = '\0';
    http_reply_error(&resp, 503, "service_unavailable", "%s", big);
    free(big);
    CHECK_EQ(resp.status, 503);
    j = body_json(&resp);
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    CHECK_NOT_NULL(msg);
    CHECK(strlen(msg) > 0 && strlen(msg) < 4999);
    json_decref(j);
    buf_release(&resp.body);
}

static void test_json_and_text_replies(void **state)
{
    (void)state;
    struct http_response resp;
    resp_init(&resp);
    http_reply_json(&resp, 200, json_pack("{s:s, s:i}", "b", "x", "a", 1));
    CHECK_EQ(resp.status, 200);
    CHECK_STR_EQ(resp.content_type, "application/json");
    CHECK_STR_EQ(body_str(&resp), "{\"b\":\"x\",\"a\":1}"); /* compact, order kept */

    http_reply_json(&resp, 201, NULL);
    CHECK_EQ(resp.status, 201);
    CHECK_STR_EQ(body_str(&resp), "{}");

    http_reply_text(&resp, 200, "text/plain; version=0.0.4", "a 1\n", 4);
    CHECK_STR_EQ(resp.content_type, "text/plain; version=0.0.4");
    CHECK_EQ(buf_len(&resp.body), 4);
    CHECK_MEM_EQ(buf_peek(&resp.body), "a 1\n", 4);
    buf_release(&resp.body);

    /* A reply that does not fit the response buffer becomes a 500 with the
     * error body, not a truncated 200. */
    memset(&resp, 0, sizeof(resp));
    buf_init(&resp.body, 128);
    char text[200];
    memset(text, 't', sizeof(text));
    http_reply_text(&resp, 200, "text/plain", text, sizeof(text));
    CHECK_EQ(resp.status, 500);
    json_t *j = body_json(&resp);
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                 "internal_error");
    json_decref(j);
    buf_release(&resp.body);
}

static const char *fake_header(void *ctx, const char *name)
{
    return strcmp(name, "X-Test") == 0 ? (const char *)ctx : NULL;
}

static const char *fake_query(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "wait_ms") == 0 ? "5" : NULL;
}

static void test_lookups(void **state)
{
    (void)state;
    struct http_request req;
    memset(&req, 0, sizeof(req));
    CHECK_NULL(http_header(&req, "X-Test")); /* no callbacks: nothing */
    CHECK_NULL(http_query(&req, "wait_ms"));
    req.header = fake_header;
    req.query = fake_query;
    static char value[] = "v";
    req.ctx = value;
    CHECK_STR_EQ(http_header(&req, "X-Test"), "v");
    CHECK_NULL(http_header(&req, "X-Other"));
    CHECK_STR_EQ(http_query(&req, "wait_ms"), "5");
    CHECK_NULL(http_query(&req, "other"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_params_captured_in_place),
        TEST(test_method_selects_route),
        TEST(test_404_vs_405),
        TEST(test_too_many_params),
        TEST(test_gateway_routes_reachable),
        TEST(test_error_body),
        TEST(test_json_and_text_replies),
        TEST(test_lookups),
    };
    return RUN_TESTS("gateway.http", tests);
}
