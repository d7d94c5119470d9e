/*
 * test_openapi.c - docs/openapi.json (compiled in as gw_openapi_json) against
 * the route table gw_routes (src/gateway/api.c):
 *
 *   - it is one valid JSON object (no duplicate keys), OpenAPI 3.0.3, and
 *     is what GET /openapi.json serves;
 *   - every route (method + pattern) is an operation under "paths", and
 *     every operation under "paths" is a route (no stale entries); the
 *     OpenAPI path template syntax {name} is the route pattern syntax;
 *   - every {name} of a path is declared as a required path parameter of
 *     its operation, and nothing else is;
 *   - operationIds are unique; every operation documents a 2xx reply;
 *   - exactly the routes that check a request signature (docs/API.md
 *     "Authentication") declare the X-KeyMeld-* security schemes, with the
 *     header names of gateway/auth.h;
 *   - every local "$ref" resolves.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/api.h"
#include "gateway/gateway.h"
#include "common/banned.h"

static const char *const http_methods[] = {"get",  "put",     "post",  "delete",
                                           "head", "options", "patch", "trace"};

/* The routes that call gw_auth_check(), and the key they verify with. */
static const struct {
    const char *method;
    const char *pattern;
    const char *scheme;
} signed_routes[] = {
    {"POST", "/api/v1/keygen/{id}/initialize", "SessionSignature"},
    {"GET", "/api/v1/keygen/{id}/slots", "SessionSignature"},
    {"POST", "/api/v1/keygen/{id}/participants", "SessionSignature"},
    {"GET", "/api/v1/keygen/{id}/status", "SessionSignature"},
    {"DELETE", "/api/v1/keygen/{id}", "SessionSignature"},
    {"POST", "/api/v1/signing", "SessionSignature"},
    {"POST", "/api/v1/signing/{id}/approve/{user_id}", "ParticipantSignature"},
    {"GET", "/api/v1/signing/{id}/status/{user_id}", "ParticipantSignature"},
};

static json_t *load_doc(void)
{
    json_error_t jerr;
    json_t *doc = json_loads(gw_openapi_json, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        fail_msg("docs/openapi.json is not valid JSON: line %d column %d: %s", jerr.line,
                 jerr.column, jerr.text);
    CHECK(json_is_object(doc));
    return doc;
}

static void lower(char *out, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
    out[i] = '\0';
}

static bool is_http_method(const char *key)
{
    for (size_t i = 0; i < KM_ARRAY_LEN(http_methods); i++) {
        if (strcmp(http_methods[i], key) == 0)
            return true;
    }
    return false;
}

/* The route with this pattern and (lower-case) method, or NULL. */
static const struct http_route *find_route(const char *pattern, const char *method_lc)
{
    for (size_t i = 0; i < gw_routes_count; i++) {
        char m[16];
        lower(m, sizeof(m), gw_routes[i].method);
        if (strcmp(gw_routes[i].pattern, pattern) == 0 && strcmp(m, method_lc) == 0)
            return &gw_routes[i];
    }
    return NULL;
}

/* Resolves a local reference "#/a/b~1c" in doc (NULL if it does not). */
static json_t *resolve(json_t *doc, const char *ref)
{
    if (strncmp(ref, "#/", 2) != 0)
        return NULL;
    json_t *cur = doc;
    const char *p = ref + 2;
    while (cur != NULL && *p) {
        char key[256];
        size_t n = 0;
        for (; *p && *p != '/' && n + 1 < sizeof(key); p++) {
            if (p[0] == '~' && p[1] == '1') {
                key[n++] = '/';
                p++;
            } else if (p[0] == '~' && p[1] == '0') {
                key[n++] = '~';
                p++;
            } else {
                key[n++] = *p;
            }
        }
        key[n] = '\0';
        if (*p == '/')
            p++;
        cur = json_object_get(cur, key);
    }
    return cur;
}

static json_t *deref(json_t *doc, json_t *v)
{
    const char *ref = json_string_value(json_object_get(v, "$ref"));
    return ref ? resolve(doc, ref) : v;
}

static void test_valid_json_and_served(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    CHECK_STR_EQ(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
    CHECK(json_is_string(json_object_get(json_object_get(doc, "info"), "title")));
    CHECK(json_is_string(json_object_get(json_object_get(doc, "info"), "version")));
    CHECK(json_object_size(json_object_get(doc, "paths")) > 0);
    json_decref(doc);

    /* GET /openapi.json and /api/v1/openapi.json serve exactly this text. */
    struct http_request req;
    struct http_response resp;
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    buf_init(&resp.body, 1u << 24);
    api_openapi(NULL, &req, &resp);
    CHECK_EQ(resp.status, 200);
    CHECK_STR_EQ(resp.content_type, "application/json");
    CHECK_EQ(buf_len(&resp.body), strlen(gw_openapi_json));
    CHECK_MEM_EQ(buf_peek(&resp.body), gw_openapi_json, strlen(gw_openapi_json));
    buf_release(&resp.body);
}

static void test_every_route_is_documented(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    json_t *paths = json_object_get(doc, "paths");
    for (size_t i = 0; i < gw_routes_count; i++) {
        char m[16];
        lower(m, sizeof(m), gw_routes[i].method);
        json_t *item = json_object_get(paths, gw_routes[i].pattern);
        if (item == NULL)
            fail_msg("route %s %s is missing from docs/openapi.json \"paths\"", gw_routes[i].method,
                     gw_routes[i].pattern);
        if (!json_is_object(json_object_get(item, m)))
            fail_msg("docs/openapi.json: path %s has no \"%s\" operation (route %s %s)",
                     gw_routes[i].pattern, m, gw_routes[i].method, gw_routes[i].pattern);
    }
    json_decref(doc);
}

static void test_every_operation_is_a_route(void **state)
{
    (void)state;
    static const char *const path_item_fields[] = {"summary", "description", "servers",
                                                   "parameters"};
    json_t *doc = load_doc();
    const char *path, *key;
    json_t *item, *v;
    size_t ops = 0;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        CHECK(json_is_object(item));
        json_object_foreach(item, key, v)
        {
            if (is_http_method(key)) {
                if (find_route(path, key) == NULL)
                    fail_msg("docs/openapi.json documents %s %s, which is not in gw_routes "
                             "(stale entry?)",
                             key, path);
                ops++;
                continue;
            }
            bool known = strncmp(key, "x-", 2) == 0;
            for (size_t i = 0; i < KM_ARRAY_LEN(path_item_fields) && !known; i++)
                known = strcmp(key, path_item_fields[i]) == 0;
            if (!known)
                fail_msg("docs/openapi.json: path %s has unexpected field \"%s\"", path, key);
        }
    }
    /* Both directions hold and the table has no duplicates: same count. */
    CHECK_EQ(ops, gw_routes_count);
    json_decref(doc);
}

/* The parameters of an operation (its own, then its path item's) with
 * in == "path", each resolved. */
static size_t path_params(json_t *doc, json_t *item, json_t *op, json_t **out, size_t cap)
{
    size_t n = 0;
    json_t *lists[2] = {json_object_get(op, "parameters"), json_object_get(item, "parameters")};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *p;
        json_array_foreach(lists[l], i, p)
        {
            json_t *r = deref(doc, p);
            if (r == NULL)
                fail_msg("unresolvable parameter reference");
            const char *in = json_string_value(json_object_get(r, "in"));
            if (in != NULL && strcmp(in, "path") == 0 && n < cap)
                out[n++] = r;
        }
    }
    return n;
}

static void test_path_parameters(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    const char *path, *method;
    json_t *item, *op;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        json_object_foreach(item, method, op)
        {
            if (!is_http_method(method))
                continue;
            json_t *declared[8];
            size_t ndeclared = path_params(doc, item, op, declared, 8);
            size_t ntemplate = 0;
            for (const char *p = strchr(path, '{'); p != NULL; p = strchr(p + 1, '{')) {
                const char *end = strchr(p, '}');
                CHECK_NOT_NULL(end);
                char name[64];
                snprintf(name, sizeof(name), "%.*s", (int)(end - p - 1), p + 1);
                ntemplate++;
                bool found = false;
                for (size_t i = 0; i < ndeclared && !found; i++) {
                    const char *pn = json_string_value(json_object_get(declared[i], "name"));
                    found = pn != NULL && strcmp(pn, name) == 0 &&
                            json_is_true(json_object_get(declared[i], "required"));
                }
                if (!found)
                    fail_msg("%s %s: path parameter {%s} is not declared (in: path, "
                             "required: true)",
                             method, path, name);
            }
            if (ndeclared != ntemplate)
                fail_msg("%s %s declares %zu path parameters for %zu in the template", method, path,
                         ndeclared, ntemplate);
            CHECK(ntemplate <= HTTP_MAX_PARAMS);
        }
    }
    json_decref(doc);
}

static void test_operations_well_formed(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    json_t *ids = json_object();
    const char *path, *method, *code;
    json_t *item, *op, *r;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        json_object_foreach(item, method, op)
        {
            if (!is_http_method(method))
                continue;
            const char *id = json_string_value(json_object_get(op, "operationId"));
            if (id == NULL)
                fail_msg("%s %s has no operationId", method, path);
            if (json_object_get(ids, id) != NULL)
                fail_msg("operationId %s is used twice (%s %s)", id, method, path);
            json_object_set_new(ids, id, json_true());
            bool ok = false;
            json_object_foreach(json_object_get(op, "responses"), code, r)
            {
                ok = ok || code[0] == '2';
                CHECK_NOT_NULL(deref(doc, r));
                CHECK(json_is_string(json_object_get(deref(doc, r), "description")));
            }
            if (!ok)
                fail_msg("%s %s documents no 2xx reply", method, path);
        }
    }
    json_decref(ids);
    json_decref(doc);
}

static const char *signed_scheme(const char *pattern, const char *method_lc)
{
    for (size_t i = 0; i < KM_ARRAY_LEN(signed_routes); i++) {
        char m[16];
        lower(m, sizeof(m), signed_routes[i].method);
        if (strcmp(signed_routes[i].pattern, pattern) == 0 && strcmp(m, method_lc) == 0)
            return signed_routes[i].scheme;
    }
    return NULL;
}

static void check_header_scheme(json_t *schemes, const char *name, const char *header)
{
    json_t *s = json_object_get(schemes, name);
    if (s == NULL)
        fail_msg("securitySchemes.%s is missing", name);
    CHECK_STR_EQ(json_string_value(json_object_get(s, "type")), "apiKey");
    CHECK_STR_EQ(json_string_value(json_object_get(s, "in")), "header");
    CHECK_STR_EQ(json_string_value(json_object_get(s, "name")), header);
}

static void test_security(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    json_t *schemes = json_object_get(json_object_get(doc, "components"), "securitySchemes");
    check_header_scheme(schemes, "KeyMeldTimestamp", GW_HDR_TIMESTAMP);
    check_header_scheme(schemes, "KeyMeldNonce", GW_HDR_NONCE);
    check_header_scheme(schemes, "SessionSignature", GW_HDR_SIGNATURE);
    check_header_scheme(schemes, "ParticipantSignature", GW_HDR_SIGNATURE);
    /* No document-wide requirement: each operation says. */
    CHECK_NULL(json_object_get(doc, "security"));

    for (size_t i = 0; i < KM_ARRAY_LEN(signed_routes); i++) {
        char m[16];
        lower(m, sizeof(m), signed_routes[i].method);
        if (find_route(signed_routes[i].pattern, m) == NULL)
            fail_msg("test table names %s %s, which is not a route", signed_routes[i].method,
                     signed_routes[i].pattern);
    }

    const char *path, *method;
    json_t *item, *op;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        json_object_foreach(item, method, op)
        {
            if (!is_http_method(method))
                continue;
            json_t *sec = json_object_get(op, "security");
            const char *want = signed_scheme(path, method);
            /* reserve: an operator API key, not a signature. */
            if (strcmp(path, "/api/v1/keygen/reserve") == 0 && strcmp(method, "post") == 0) {
                json_t *req0 = json_array_get(sec, 0);
                if (json_array_size(sec) != 1 || json_object_size(req0) != 1 ||
                    json_object_get(req0, "ApiKey") == NULL)
                    fail_msg("post /api/v1/keygen/reserve must require ApiKey");
                continue;
            }
            if (want == NULL) {
                if (json_array_size(sec) != 0)
                    fail_msg("%s %s takes no signature but declares security", method, path);
                continue;
            }
            json_t *req = json_array_get(sec, 0);
            if (json_array_size(sec) != 1 || json_object_size(req) != 3 ||
                json_object_get(req, "KeyMeldTimestamp") == NULL ||
                json_object_get(req, "KeyMeldNonce") == NULL || json_object_get(req, want) == NULL)
                fail_msg("%s %s must require KeyMeldTimestamp, KeyMeldNonce and %s", method, path,
                         want);
        }
    }
    json_decref(doc);
}

static void check_refs(json_t *doc, json_t *v)
{
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child)
        {
            if (strcmp(key, "$ref") == 0 && json_is_string(child)) {
                if (resolve(doc, json_string_value(child)) == NULL)
                    fail_msg("docs/openapi.json: \"$ref\": \"%s\" does not resolve",
                             json_string_value(child));
            } else {
                check_refs(doc, child);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            check_refs(doc, child);
        }
    }
}

static void test_refs_resolve(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    check_refs(doc, doc);
    CHECK_NULL(resolve(doc, "#/components/schemas/NoSuchSchema"));
    CHECK_NOT_NULL(resolve(doc, "#/paths/~1api~1v1~1signing"));
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_valid_json_and_served),
        TEST(test_every_route_is_documented),
        TEST(test_every_operation_is_a_route),
        TEST(test_path_parameters),
        TEST(test_operations_well_formed),
        TEST(test_security),
        TEST(test_refs_resolve),
    };
    return RUN_TESTS("gateway.openapi", tests);
}
