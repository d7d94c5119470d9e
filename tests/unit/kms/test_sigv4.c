/*
 * test_sigv4.c - AWS Signature Version 4 (kms/sigv4.h) against AWS's own
 * test suite, committed in tests/data/sigv4 (README.md there): every case's
 * .req is parsed (request line, headers with folded continuation lines,
 * body), signed with the suite's parameters and compared with .creq, .sts,
 * .authz and .sreq byte for byte. Then the rules one at a time: key
 * derivation, path and query canonicalization, header checks, the added
 * X-Amz-Date / X-Amz-Security-Token, and the Authorization parser.
 */
#include "test.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/hex.h"
#include "kms/sigv4.h"
#include "common/banned.h"

#define SUITE_ACCESS_KEY "AKIDEXAMPLE"
#define SUITE_SECRET     "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_REGION     "us-east-1"
#define SUITE_SERVICE    "service"
#define SUITE_DATE       "20150830T123600Z"
#define SUITE_CASES      15
#define MAX_HEADERS      16

static const char *suite_path(const char *rel)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/sigv4/%s", KM_TEST_DATA_DIR, rel);
    return path;
}

static char *case_file(const char *name, const char *ext)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "%s/%s.%s", name, name, ext);
    return test_read_file(suite_path(rel), NULL);
}

/* The suite's session token: the last line of post-sts-token.readme.txt. */
static char *suite_token(void)
{
    char *text = test_read_file(suite_path("post-sts-token.readme.txt"), NULL);
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    char *nl = strrchr(text, '\n');
    char *tok = strdup(nl != NULL ? nl + 1 : text);
    free(text);
    CHECK(strlen(tok) > 100);
    return tok;
}

/* A parsed .req; strings point into text (modified in place). */
struct parsed_req {
    char *text;
    char *head; /* a copy of the lines before the body */
    char method[16];
    char *path;
    char *query;
    struct sigv4_header headers[MAX_HEADERS];
    char *values[MAX_HEADERS]; /* malloc'ed: folded lines joined with "\n" */
    size_t nheaders;
    const char *body;
    size_t body_len;
};

static void parse_req(struct parsed_req *r, const char *name)
{
    memset(r, 0, sizeof(*r));
    r->text = case_file(name, "req");
    char *sep = strstr(r->text, "\n\n");
    r->head = strdup(r->text);
    if (sep != NULL) {
        r->head[sep - r->text] = '\0';
        *sep = '\0';
        r->body = sep + 2;
        r->body_len = strlen(r->body);
    }
    /* Request line: METHOD SP URI SP HTTP/1.1 */
    char *line = r->text, *next = strchr(line, '\n');
    if (next != NULL)
        *next++ = '\0';
    char *sp1 = strchr(line, ' '), *sp2 = strrchr(line, ' ');
    CHECK(sp1 != NULL && sp2 != NULL && sp2 > sp1);
    CHECK_STR_EQ(sp2 + 1, "HTTP/1.1");
    *sp1 = '\0';
    *sp2 = '\0';
    snprintf(r->method, sizeof(r->method), "%s", line);
    r->path = sp1 + 1;
    r->query = strchr(r->path, '?');
    if (r->query != NULL)
        *r->query++ = '\0';
    /* Headers; a line starting with whitespace continues the previous one. */
    for (line = next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (line[0] == ' ' || line[0] == '\t') {
            CHECK(r->nheaders > 0);
            char **v = &r->values[r->nheaders - 1];
            size_t n = strlen(*v) + 1 + strlen(line) + 1;
            *v = realloc(*v, n);
            CHECK_NOT_NULL(*v);
            strncat(*v, "\n", n - strlen(*v) - 1);
            strncat(*v, line, n - strlen(*v) - 1);
            r->headers[r->nheaders - 1].value = *v;
            continue;
        }
        char *colon = strchr(line, ':');
        CHECK_NOT_NULL(colon);
        CHECK(r->nheaders < MAX_HEADERS);
        *colon = '\0';
        r->values[r->nheaders] = strdup(colon + 1);
        r->headers[r->nheaders].name = line;
        r->headers[r->nheaders].value = r->values[r->nheaders];
        r->nheaders++;
    }
}

static void free_req(struct parsed_req *r)
{
    for (size_t i = 0; i < r->nheaders; i++)
        free(r->values[i]);
    free(r->head);
    free(r->text);
}

static struct sigv4_request suite_request(const struct parsed_req *p)
{
    struct sigv4_request q = {
        .method = p->method,
        .path = p->path,
        .query = p->query,
        .headers = p->headers,
        .nheaders = p->nheaders,
        .body = (const uint8_t *)p->body,
        .body_len = p->body_len,
        .region = SUITE_REGION,
        .service = SUITE_SERVICE,
        .amz_date = SUITE_DATE,
    };
    return q;
}

/* Signs one case and compares every artefact. */
static void run_case(const char *name, const char *token)
{
    struct parsed_req p;
    struct sigv4_signature sig;
    struct km_error err;
    bool after = strcmp(name, "post-sts-header-after") == 0;
    bool before = strcmp(name, "post-sts-header-before") == 0;

    parse_req(&p, name);
    struct sigv4_request q = suite_request(&p);
    /* "before": the token is signed (and already in the .req); "after": it
     * is added to the request once signed. */
    struct sigv4_credentials cred = {SUITE_ACCESS_KEY, SUITE_SECRET, before ? token : NULL};
    km_error_clear(&err);
    if (sigv4_sign(&sig, &q, &cred, &err) != KM_OK)
        fail_msg("%s: %s", name, err.msg);

    char *creq = case_file(name, "creq");
    char *sts = case_file(name, "sts");
    char *authz = case_file(name, "authz");
    char *sreq = case_file(name, "sreq");
    if (strcmp(sig.canonical_request, creq) != 0)
        fail_msg("%s: canonical request\n--- got\n%s\n--- want\n%s", name, sig.canonical_request,
                 creq);
    if (strcmp(sig.string_to_sign, sts) != 0)
        fail_msg("%s: string to sign\n--- got\n%s\n--- want\n%s", name, sig.string_to_sign, sts);
    if (strcmp(sig.authorization, authz) != 0)
        fail_msg("%s: authorization\n--- got\n%s\n--- want\n%s", name, sig.authorization, authz);

    /* The signed request: the .req's head, the token when added after
     * signing, the Authorization header, then the body. */
    size_t cap = strlen(p.head) + strlen(token) + strlen(authz) + p.body_len + 128;
    char *built = malloc(cap);
    CHECK_NOT_NULL(built);
    snprintf(built, cap, "%s%s%s\nAuthorization: %s%s%s", p.head,
             after ? "\nX-Amz-Security-Token:" : "", after ? token : "", sig.authorization,
             p.body != NULL ? "\n\n" : "", p.body != NULL ? p.body : "");
    if (strcmp(built, sreq) != 0)
        fail_msg("%s: signed request\n--- got\n%s\n--- want\n%s", name, built, sreq);

    /* A verifier parses what was signed back. */
    struct sigv4_authorization a;
    CHECK_OK(sigv4_parse_authorization(&a, sig.authorization, &err));
    CHECK_STR_EQ(a.access_key_id, SUITE_ACCESS_KEY);
    CHECK_STR_EQ(a.date8, "20150830");
    CHECK_STR_EQ(a.region, SUITE_REGION);
    CHECK_STR_EQ(a.service, SUITE_SERVICE);
    CHECK_STR_EQ(a.signature, sig.signature);
    CHECK(a.nsigned >= 2);

    free(built);
    free(creq);
    free(sts);
    free(authz);
    free(sreq);
    sigv4_signature_clear(&sig);
    free_req(&p);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_suite(void **state)
{
    (void)state;
    char *names[64];
    size_t n = 0;
    DIR *d = opendir(suite_path(""));
    if (d == NULL)
        fail_msg("no SigV4 suite at %s (committed in tests/data/sigv4)", suite_path(""));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.' || stat(suite_path(e->d_name), &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        CHECK(n < KM_ARRAY_LEN(names));
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), name_cmp);
    CHECK_EQ(n, SUITE_CASES);

    char *token = suite_token();
    /* The token of the readme is the one in the "before" request. */
    struct parsed_req p;
    parse_req(&p, "post-sts-header-before");
    bool found = false;
    for (size_t i = 0; i < p.nheaders; i++)
        if (strcmp(p.headers[i].name, "X-Amz-Security-Token") == 0)
            found = strcmp(p.headers[i].value, token) == 0;
    CHECK(found);
    free_req(&p);

    for (size_t i = 0; i < n; i++) {
        run_case(names[i], token);
        print_message("sigv4 suite: %s ok\n", names[i]);
        free(names[i]);
    }
    free(token);
}

static void test_signing_key(void **state)
{
    (void)state;
    uint8_t key[SIGV4_KEY_LEN];
    char hex[2 * SIGV4_KEY_LEN + 1];
    CHECK_OK(sigv4_signing_key(key, SUITE_SECRET, "20150830", SUITE_REGION, SUITE_SERVICE));
    hex_encode(hex, sizeof(hex), key, sizeof(key));
    CHECK_STR_EQ(hex, "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75");
    char long_secret[SIGV4_SECRET_MAX + 2];
    memset(long_secret, 'a', sizeof(long_secret) - 1);
    long_secret[sizeof(long_secret) - 1] = '\0';
    CHECK_ERR(sigv4_signing_key(key, long_secret, "20150830", SUITE_REGION, SUITE_SERVICE),
              KM_ERR_TOO_LARGE);
}

/* Signs GET path?query with only a Host header; returns the canonical
 * request's second and third lines in uri / query. */
static int canon(char *uri, size_t ucap, char *query, size_t qcap, const char *path, const char *q)
{
    struct sigv4_header h[] = {{"Host", "example.amazonaws.com"}};
    struct sigv4_request req = {"GET", path, q, h, 1, NULL, 0, SUITE_REGION, "kms", SUITE_DATE};
    struct sigv4_credentials cred = {SUITE_ACCESS_KEY, SUITE_SECRET, NULL};
    struct sigv4_signature sig;
    struct km_error err;
    int r = sigv4_sign(&sig, &req, &cred, &err);
    if (r != KM_OK)
        return r;
    char *l1 = strchr(sig.canonical_request, '\n') + 1;
    char *l2 = strchr(l1, '\n') + 1;
    char *l3 = strchr(l2, '\n');
    snprintf(uri, ucap, "%.*s", (int)(l2 - l1 - 1), l1);
    snprintf(query, qcap, "%.*s", (int)(l3 - l2), l2);
    sigv4_signature_clear(&sig);
    return KM_OK;
}

static void test_path_and_query(void **state)
{
    (void)state;
    static const char *const paths[][2] = {
        {"", "/"},
        {"/", "/"},
        {"/a/./b/../c", "/a/c"},
        {"/a/b/..", "/a/"},
        {"/a/b/.", "/a/b/"},
        {"/../..", "/"},
        {"//a//b//", "/a/b/"},
        {"/a b", "/a%20b"},
        {"/%2F", "/%252F"}, /* non-S3: encoded twice */
        {"/~-._x", "/~-._x"},
        {"/\xe1\x88\xb4", "/%E1%88%B4"},
    };
    char uri[128], query[256];
    for (size_t i = 0; i < KM_ARRAY_LEN(paths); i++) {
        CHECK_OK(canon(uri, sizeof(uri), query, sizeof(query), paths[i][0], NULL));
        if (strcmp(uri, paths[i][1]) != 0)
            fail_msg("path \"%s\": got \"%s\", want \"%s\"", paths[i][0], uri, paths[i][1]);
        CHECK_STR_EQ(query, "");
    }
    static const char *const queries[][2] = {
        {"b=2&a=1&a=0", "a=0&a=1&b=2"}, {"k", "k="},
        {"a=%20b+", "a=%20b%2B"},       {"a=%7e&&b=", "a=~&b="},
        {"x=1&X=2", "X=2&x=1"},         {"v=%C3%A9", "v=%C3%A9"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(queries); i++) {
        CHECK_OK(canon(uri, sizeof(uri), query, sizeof(query), "/", queries[i][0]));
        if (strcmp(query, queries[i][1]) != 0)
            fail_msg("query \"%s\": got \"%s\", want \"%s\"", queries[i][0], query, queries[i][1]);
    }
    CHECK_ERR(canon(uri, sizeof(uri), query, sizeof(query), "/", "a=%zz"), KM_ERR_INVALID);
    CHECK_ERR(canon(uri, sizeof(uri), query, sizeof(query), "/", "a=%4"), KM_ERR_INVALID);
}

static int sign_with(struct sigv4_signature *sig, const struct sigv4_header *h, size_t n,
                     const char *date, const struct sigv4_credentials *cred, struct km_error *err)
{
    struct sigv4_request req = {"POST", "/",         NULL,  h,   n, (const uint8_t *)"{}",
                                2,      "us-east-1", "kms", date};
    return sigv4_sign(sig, &req, cred, err);
}

static void test_headers(void **state)
{
    (void)state;
    struct sigv4_credentials cred = {"AKID", "secret", NULL};
    struct sigv4_signature sig;
    struct km_error err;

    /* X-Amz-Date and the session token are added (and signed) when the
     * list lacks them. */
    struct sigv4_header host[] = {{"Host", "kms.us-east-1.amazonaws.com"}};
    struct sigv4_credentials tcred = {"AKID", "secret", "TOKEN/+="};
    CHECK_OK(sign_with(&sig, host, 1, SUITE_DATE, &tcred, &err));
    CHECK_STR_EQ(sig.signed_headers, "host;x-amz-date;x-amz-security-token");
    CHECK_CONTAINS(sig.canonical_request, "\nx-amz-date:" SUITE_DATE "\n");
    CHECK_CONTAINS(sig.canonical_request, "\nx-amz-security-token:TOKEN/+=\n");
    CHECK(strstr(sig.canonical_request, "secret") == NULL);
    CHECK(strstr(sig.string_to_sign, "secret") == NULL);
    CHECK(strstr(sig.authorization, "secret") == NULL);
    CHECK_CONTAINS(sig.authorization, "Credential=AKID/20150830/us-east-1/kms/aws4_request, ");
    sigv4_signature_clear(&sig);

    /* Repeated names merge in order; values trimmed and collapsed. */
    struct sigv4_header rep[] = {{"Host", "h"}, {"X-B", " 1  2 "}, {"x-a", "z"}, {"X-b", "3"}};
    CHECK_OK(sign_with(&sig, rep, 4, SUITE_DATE, &cred, &err));
    CHECK_STR_EQ(sig.signed_headers, "host;x-a;x-amz-date;x-b");
    CHECK_CONTAINS(sig.canonical_request, "\nx-a:z\nx-amz-date:" SUITE_DATE "\nx-b:1 2,3\n");
    sigv4_signature_clear(&sig);

    /* Refusals, each with its message. */
    struct sigv4_header nohost[] = {{"X-Amz-Target", "TrentService.Decrypt"}};
    CHECK_ERR(sign_with(&sig, nohost, 1, SUITE_DATE, &cred, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "Host");
    CHECK_NULL(sig.authorization);
    struct sigv4_header inject[] = {{"Host", "h"}, {"X-A", "v\r\nX-Evil: 1"}};
    CHECK_ERR(sign_with(&sig, inject, 2, SUITE_DATE, &cred, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "X-A");
    struct sigv4_header badname[] = {{"Host", "h"}, {"X A", "v"}};
    CHECK_ERR(sign_with(&sig, badname, 2, SUITE_DATE, &cred, &err), KM_ERR_INVALID);
    struct sigv4_header otherdate[] = {{"Host", "h"}, {"X-Amz-Date", "20150830T123601Z"}};
    CHECK_ERR(sign_with(&sig, otherdate, 2, SUITE_DATE, &cred, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "X-Amz-Date");
    struct sigv4_header othertok[] = {{"Host", "h"}, {"X-Amz-Security-Token", "other"}};
    CHECK_ERR(sign_with(&sig, othertok, 2, SUITE_DATE, &tcred, &err), KM_ERR_INVALID);
    CHECK_ERR(sign_with(&sig, host, 1, "2015-08-30T12:36:00Z", &cred, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "YYYYMMDDTHHMMSSZ");
    struct sigv4_header many[SIGV4_MAX_HEADERS + 1];
    for (size_t i = 0; i < KM_ARRAY_LEN(many); i++)
        many[i] = (struct sigv4_header){"Host", "h"};
    CHECK_ERR(sign_with(&sig, many, KM_ARRAY_LEN(many), SUITE_DATE, &cred, &err), KM_ERR_LIMIT);
    struct sigv4_credentials badak = {"AK/ID", "secret", NULL};
    CHECK_ERR(sign_with(&sig, host, 1, SUITE_DATE, &badak, &err), KM_ERR_INVALID);
    struct sigv4_credentials nosecret = {"AKID", "", NULL};
    CHECK_ERR(sign_with(&sig, host, 1, SUITE_DATE, &nosecret, &err), KM_ERR_INVALID);
    CHECK(strstr(err.msg, "secret") != NULL);
}

static void test_authorization_parser(void **state)
{
    (void)state;
    struct sigv4_authorization a;
    struct km_error err;
    char *authz = case_file("post-sts-header-before", "authz");
    CHECK_OK(sigv4_parse_authorization(&a, authz, &err));
    CHECK_EQ(a.nsigned, 3);
    CHECK_STR_EQ(a.signed_headers[0], "host");
    CHECK_STR_EQ(a.signed_headers[2], "x-amz-security-token");
    CHECK_STR_EQ(a.signature, "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
    free(authz);

    static const char *const bad[] = {
        "",
        "AWS4-HMAC-SHA1 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=A/2015083/r/s/aws4_request, SignedHeaders=host, "
        "Signature=0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws5_request, SignedHeaders=host, "
        "Signature=0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=Host, "
        "Signature=0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host;;x, "
        "Signature=0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, "
        "Signature=00, Signature=00",
        "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/x/aws4_request, SignedHeaders=host, "
        "Signature=0000000000000000000000000000000000000000000000000000000000000000",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        km_error_clear(&err);
        if (sigv4_parse_authorization(&a, bad[i], &err) != KM_ERR_INVALID)
            fail_msg("accepted: %s", bad[i]);
        CHECK(err.msg[0] != '\0');
    }
}

static void test_dates(void **state)
{
    (void)state;
    char s[SIGV4_DATE_LEN + 1];
    time_t t = 0;
    sigv4_format_date(s, 1440938160); /* 2015-08-30T12:36:00Z */
    CHECK_STR_EQ(s, SUITE_DATE);
    CHECK_OK(sigv4_parse_date(&t, SUITE_DATE));
    CHECK_EQ(t, 1440938160);
    CHECK_ERR(sigv4_parse_date(&t, "20151330T123600Z"), KM_ERR_INVALID);
    CHECK_ERR(sigv4_parse_date(&t, "20150830 123600Z"), KM_ERR_INVALID);
    CHECK_ERR(sigv4_parse_date(&t, "20150830T123600"), KM_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_suite),   TEST(test_signing_key),          TEST(test_path_and_query),
        TEST(test_headers), TEST(test_authorization_parser), TEST(test_dates),
    };
    return RUN_TESTS("unit.kms.sigv4", tests);
}
