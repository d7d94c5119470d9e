/*
 * test_audit.c - the audit log (audit/audit.h): lines from several threads
 * form one intact chain; reopening continues it; every kind of tampering
 * (an edited character, a removed line, two lines swapped, a renumbered
 * tail, a truncated last line) is named at the first line whose check fails;
 * files that are not audit logs are refused by audit_open; a failed write
 * is rolled back.
 *
 * Decision tested here (and documented in audit.h): an edit of line K that
 * keeps it valid JSON is reported at line K+1, "prev does not match the hash
 * of line K", because K+1 is the first line whose check fails.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/hex.h"
#include "common/banned.h"

#define THREADS    4
#define PER_THREAD 50

struct fx {
    char dir[64];
    char path[96];
};

static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof(*f));
    CHECK_NOT_NULL(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/km_test_audit_XXXXXX");
    CHECK_NOT_NULL(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/audit.jsonl", f->dir);
    return f;
}

static void fx_free(struct fx *f)
{
    unlink(f->path);
    rmdir(f->dir);
    free(f);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    CHECK_NOT_NULL(fp);
    CHECK_EQ(fwrite(data, 1, len, fp), len);
    CHECK_EQ(fclose(fp), 0);
}

static void append_one(struct audit_log *a, const char *event, const char *outcome,
                       const char *detail, int n)
{
    json_t *subject = json_pack("{s:s, s:i}", "keygen_id", "0193a5b0-keygen", "enclave_id", n);
    struct audit_event ev = {
        .event = event,
        .outcome = outcome,
        .request_id = "req-1",
        .api_key_id = n % 2 ? "ak_test" : NULL,
        .subject = subject,
        .detail = detail,
    };
    struct km_error err;
    int r = audit_append(a, &ev, &err);
    json_decref(subject);
    if (r != KM_OK)
        fail_msg("audit_append: %s", err.msg);
}

/* A log of n lines at f->path. */
static void make_log(struct fx *f, int n)
{
    struct km_error err;
    struct audit_log *a = audit_open(f->path, &err);
    if (a == NULL)
        fail_msg("audit_open: %s", err.msg);
    for (int i = 0; i < n; i++)
        append_one(a, "signing.approve", "ok", "approval 1 of 2", i);
    audit_close(a);
}

/* Splits text into its lines (without "\n"); returns the count. */
static size_t split_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;
    for (char *p = text; *p != '\0' && n < max;) {
        char *nl = strchr(p, '\n');
        CHECK_NOT_NULL(nl);
        *nl = '\0';
        lines[n++] = p;
        p = nl + 1;
    }
    return n;
}

/* Writes lines (each followed by "\n") to path. */
static void join_lines(const char *path, char **lines, size_t n)
{
    FILE *fp = fopen(path, "wb");
    CHECK_NOT_NULL(fp);
    for (size_t i = 0; i < n; i++)
        fprintf(fp, "%s\n", lines[i]);
    CHECK_EQ(fclose(fp), 0);
}

/* Runs audit_verify over the file; returns its code. */
static int verify_file(const char *path, size_t *lines_ok, size_t *bad_line, char *why,
                       size_t whycap)
{
    size_t len;
    char *data = test_read_file(path, &len);
    int r = audit_verify((const uint8_t *)data, len, lines_ok, bad_line, why, whycap);
    free(data);
    return r;
}

static void expect_broken(const char *path, size_t line, const char *msg)
{
    size_t ok = 99, bad = 99;
    char why[512];
    CHECK_ERR(verify_file(path, &ok, &bad, why, sizeof(why)), KM_ERR_INVALID);
    if (bad != line || strcmp(why, msg) != 0)
        fail_msg("bad_line %zu (expected %zu), why \"%s\"\n  expected \"%s\"", bad, line, why, msg);
    CHECK_EQ(ok, line - 1);
}

static void expect_intact(const char *path, size_t lines)
{
    size_t ok = 0, bad = 99;
    char why[512];
    int r = verify_file(path, &ok, &bad, why, sizeof(why));
    if (r != KM_OK)
        fail_msg("verify: %s", why);
    CHECK_EQ(ok, lines);
    CHECK_EQ(bad, 0);
}

/* ---- writing ---------------------------------------------------------------- */

struct worker {
    struct audit_log *a;
    int id;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++)
        append_one(w->a, i % 3 == 0 ? "keygen.reserve" : "signing.approve",
                   i % 5 == 0 ? "refused" : "ok", i % 2 ? NULL : "thread line", w->id * 1000 + i);
    return NULL;
}

/* THREADS threads append PER_THREAD lines each to a, then a is closed. */
static void append_from_threads(struct audit_log *a)
{
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){a, i};
        CHECK_EQ(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK_EQ(audit_last_seq(a), THREADS * PER_THREAD);
    audit_close(a);
}

static void test_threads_one_chain(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct km_error err;
    struct audit_log *a = audit_open(f->path, &err);
    CHECK_NOT_NULL(a);
    CHECK_EQ(audit_last_seq(a), 0);
    audit_set_fsync(a, false); /* one thread below keeps nothing waiting */
    append_from_threads(a);

    struct stat st;
    CHECK_EQ(stat(f->path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    expect_intact(f->path, THREADS * PER_THREAD);
    fx_free(f);
}

/* The same with every line synced (the default): the syncs run outside the
 * log's lock and are shared; every append still returns after its line is
 * on disk, and the chain is whole. */
static void test_threads_synced(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct km_error err;
    struct audit_log *a = audit_open(f->path, &err);
    CHECK_NOT_NULL(a);
    append_from_threads(a);
    expect_intact(f->path, THREADS * PER_THREAD);

    a = audit_open(f->path, &err); /* reopened: continues, synced from there */
    CHECK_NOT_NULL(a);
    append_one(a, "keygen.reserve", "ok", NULL, 1);
    CHECK_EQ(audit_last_seq(a), THREADS * PER_THREAD + 1);
    audit_close(a);
    expect_intact(f->path, THREADS * PER_THREAD + 1);
    fx_free(f);
}

static void test_line_format(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct km_error err;
    struct audit_log *a = audit_open(f->path, &err);
    CHECK_NOT_NULL(a);
    json_t *subject =
        json_pack("{s:s, s:s, s:i}", "keygen_id", "k-1", "user_id", "u\x01x", "enclave_id", 2);
    struct audit_event ev = {.event = "keygen.delete",
                             .outcome = "failed",
                             .request_id = "r-9",
                             .subject = subject,
                             .detail = "line\nbreak \"quoted\" \xc3\xa9"};
    CHECK_OK(audit_append(a, &ev, &err));
    json_decref(subject);
    struct audit_event bare = {.event = "enclave.key_rotated", .outcome = "ok"};
    CHECK_OK(audit_append(a, &bare, &err));
    audit_close(a);

    size_t len;
    char *text = test_read_file(f->path, &len);
    char *lines[4];
    CHECK_EQ(split_lines(text, lines, 4), 2);
    /* Member order, compact, nulls, sanitized strings (control and
     * non-ASCII bytes become '?'), the first prev. */
    const char *p = lines[0];
    CHECK(strncmp(p, "{\"seq\":1,\"time\":\"", 17) == 0);
    CHECK_CONTAINS(p,
                   "Z\",\"event\":\"keygen.delete\",\"outcome\":\"failed\",\"request_id\":\"r-9\","
                   "\"api_key_id\":null,\"subject\":{\"keygen_id\":\"k-1\",\"user_id\":\"u?x\","
                   "\"enclave_id\":2},\"detail\":\"line?break \\\"quoted\\\" ??\",\"prev\":\"");
    CHECK_CONTAINS(p, "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000"
                      "\"}");
    CHECK_CONTAINS(lines[1], "\"seq\":2,");
    CHECK_CONTAINS(lines[1], "\"request_id\":null,\"api_key_id\":null,\"subject\":{},"
                             "\"detail\":null,");
    /* prev of line 2 is SHA-256 of line 1's bytes, computed independently. */
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)lines[0], strlen(lines[0]), h);
    char hex[65], want[80];
    snprintf(want, sizeof(want), "\"prev\":\"%s\"}", hex_encode(hex, sizeof(hex), h, sizeof(h)));
    CHECK_CONTAINS(lines[1], want);
    free(text);
    expect_intact(f->path, 2);
    fx_free(f);
}

static void test_hash_is_plain_sha256(void **state)
{
    (void)state;
    uint8_t h[AUDIT_HASH_LEN];
    char hex[65];
    audit_hash_line(h, (const uint8_t *)"abc", 3);
    CHECK_STR_EQ(hex_encode(hex, sizeof(hex), h, sizeof(h)),
                 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_reopen_continues_chain(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_log(f, 3);
    struct km_error err;
    struct audit_log *a = audit_open(f->path, &err);
    CHECK_NOT_NULL(a);
    CHECK_EQ(audit_last_seq(a), 3);
    append_one(a, "keygen.reserve", "ok", NULL, 7);
    append_one(a, "keygen.reserve", "ok", NULL, 8);
    CHECK_EQ(audit_last_seq(a), 5);
    audit_close(a);
    expect_intact(f->path, 5);
    fx_free(f);
}

static void test_second_writer_refused(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct km_error err;
    struct audit_log *a = audit_open(f->path, &err);
    CHECK_NOT_NULL(a);
    CHECK_NULL(audit_open(f->path, &err));
    CHECK_EQ(err.code, KM_ERR_EXISTS);
    CHECK_CONTAINS(err.msg, "another process has the audit log open");
    audit_close(a);
    a = audit_open(f->path, &err);
    CHECK_NOT_NULL(a);
    audit_close(a);
    fx_free(f);
}

static void test_bad_events_write_nothing(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct km_error err;
    struct audit_log *a = audit_open(f->path, &err);
    CHECK_NOT_NULL(a);
    json_t *arr = json_array();
    json_t *nested = json_pack("{s:{s:i}}", "keygen_id", "x", 1);
    json_t *neg = json_pack("{s:i}", "enclave_id", -1);
    json_t *bad_key = json_pack("{s:s}", "Keygen", "x");
    json_t *flt = json_pack("{s:f}", "enclave_id", 1.5);
    json_t *many = json_object();
    for (int i = 0; i < AUDIT_MAX_SUBJECT_KEYS + 1; i++) {
        char k[16];
        snprintf(k, sizeof(k), "id_%d", i);
        json_object_set_new(many, k, json_integer(i));
    }
    const struct audit_event cases[] = {
        {.event = "keygen.reserve", .outcome = "maybe"},
        {.event = "keygen.reserve", .outcome = NULL},
        {.event = "Keygen Reserve", .outcome = "ok"},
        {.event = "", .outcome = "ok"},
        {.event = NULL, .outcome = "ok"},
        {.event = "x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         .outcome = "ok"},
        {.event = "keygen.reserve", .outcome = "ok", .subject = arr},
        {.event = "keygen.reserve", .outcome = "ok", .subject = nested},
        {.event = "keygen.reserve", .outcome = "ok", .subject = neg},
        {.event = "keygen.reserve", .outcome = "ok", .subject = bad_key},
        {.event = "keygen.reserve", .outcome = "ok", .subject = flt},
        {.event = "keygen.reserve", .outcome = "ok", .subject = many},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        if (audit_append(a, &cases[i], &err) != KM_ERR_INVALID)
            fail_msg("case %zu accepted", i);
        CHECK(err.msg[0] != '\0');
    }
    CHECK_EQ(audit_last_seq(a), 0);
    json_decref(arr);
    json_decref(nested);
    json_decref(neg);
    json_decref(bad_key);
    json_decref(flt);
    json_decref(many);
    /* Over-long strings are cut to their limits, not refused. */
    char big[1000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct audit_event longs = {
        .event = "keygen.reserve", .outcome = "ok", .request_id = big, .detail = big};
    CHECK_OK(audit_append(a, &longs, &err));
    audit_close(a);
    size_t len;
    char *text = test_read_file(f->path, &len);
    CHECK(len < 2 * AUDIT_MAX_ID + AUDIT_MAX_DETAIL + 300);
    free(text);
    expect_intact(f->path, 1);
    fx_free(f);
}

/* A write cut short (here by RLIMIT_FSIZE) is undone, and the next line
 * continues an intact chain. */
static void test_failed_write_rolled_back(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_log(f, 2);
    struct stat st;
    CHECK_EQ(stat(f->path, &st), 0);
    struct km_error err;
    struct audit_log *a = audit_open(f->path, &err);
    CHECK_NOT_NULL(a);

    void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit saved, lim;
    CHECK_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
    lim = saved;
    lim.rlim_cur = (rlim_t)st.st_size + 40;
    CHECK_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
    struct audit_event ev = {.event = "keygen.reserve", .outcome = "ok", .detail = "cut short"};
    int r = audit_append(a, &ev, &err);
    CHECK_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old);
    CHECK_ERR(r, KM_ERR_IO);
    CHECK_CONTAINS(err.msg, "audit write failed");

    struct stat after;
    CHECK_EQ(stat(f->path, &after), 0);
    CHECK_EQ(after.st_size, st.st_size);
    CHECK_EQ(audit_last_seq(a), 2);
    CHECK_OK(audit_append(a, &ev, &err));
    audit_close(a);
    expect_intact(f->path, 3);
    fx_free(f);
}

/* ---- tampering ----------------------------------------------------------------- */

static void test_edited_line_named(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_log(f, 10);
    size_t len;
    char *text = test_read_file(f->path, &len);
    char *lines[16];
    CHECK_EQ(split_lines(text, lines, 16), 10);
    /* "approval 1 of 2" -> "approval 2 of 2" in line 4. */
    char *d = strstr(lines[3], "approval 1");
    CHECK_NOT_NULL(d);
    d[9] = '2';
    join_lines(f->path, lines, 10);
    expect_broken(f->path, 5,
                  "line 5: prev does not match the hash of line 4 (edited, removed or reordered?)");

    /* An edit of the seq itself is named at the line. */
    d[9] = '1';
    char *s = strstr(lines[3], "\"seq\":4");
    CHECK_NOT_NULL(s);
    s[6] = '9';
    join_lines(f->path, lines, 10);
    expect_broken(f->path, 4,
                  "line 4: seq is 9, expected 4 (a line removed, inserted or reordered?)");
    s[6] = '4';
    join_lines(f->path, lines, 10);
    expect_intact(f->path, 10);

    /* So is an edit that breaks the JSON or a type. */
    lines[6][strlen(lines[6]) - 1] = ' ';
    join_lines(f->path, lines, 10);
    expect_broken(f->path, 7, "line 7: not a JSON object on one line");
    free(text);
    fx_free(f);
}

static void test_removed_line_named(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_log(f, 10);
    size_t len;
    char *text = test_read_file(f->path, &len);
    char *lines[16];
    CHECK_EQ(split_lines(text, lines, 16), 10);
    memmove(&lines[3], &lines[4], 6 * sizeof(lines[0]));
    join_lines(f->path, lines, 9);
    expect_broken(f->path, 4,
                  "line 4: seq is 5, expected 4 (a line removed, inserted or reordered?)");
    free(text);

    /* Removed and the rest renumbered: the hash still tells. */
    text = test_read_file(f->path, &len);
    CHECK_EQ(split_lines(text, lines, 16), 9);
    char *renumbered[9];
    for (size_t i = 0; i < 9; i++) {
        const char *rest = strchr(lines[i], ',');
        CHECK_NOT_NULL(rest);
        renumbered[i] = malloc(strlen(lines[i]) + 8);
        CHECK_NOT_NULL(renumbered[i]);
        snprintf(renumbered[i], strlen(lines[i]) + 8, "{\"seq\":%zu%s", i + 1, rest);
    }
    join_lines(f->path, renumbered, 9);
    expect_broken(f->path, 4,
                  "line 4: prev does not match the hash of line 3 (edited, removed or reordered?)");
    for (size_t i = 0; i < 9; i++)
        free(renumbered[i]);

    /* The first line removed. */
    join_lines(f->path, lines + 1, 8);
    expect_broken(f->path, 1, "line 1: seq is 2, expected 1 (lines removed from the start?)");
    free(text);
    fx_free(f);
}

static void test_reordered_lines_named(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_log(f, 10);
    size_t len;
    char *text = test_read_file(f->path, &len);
    char *lines[16];
    CHECK_EQ(split_lines(text, lines, 16), 10);
    char *t = lines[5];
    lines[5] = lines[6];
    lines[6] = t;
    join_lines(f->path, lines, 10);
    expect_broken(f->path, 6,
                  "line 6: seq is 7, expected 6 (a line removed, inserted or reordered?)");
    free(text);
    fx_free(f);
}

static void test_truncated_last_line(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_log(f, 5);
    size_t len;
    char *text = test_read_file(f->path, &len);
    write_file(f->path, text, len - 10);
    expect_broken(f->path, 5,
                  "line 5: incomplete last line (no \"\\n\" at its end: truncated, or a write in "
                  "progress)");
    /* The writer refuses to continue it, and leaves it as it was. */
    struct km_error err;
    CHECK_NULL(audit_open(f->path, &err));
    CHECK_EQ(err.code, KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "the last line of the audit log is incomplete");
    size_t len2;
    char *again = test_read_file(f->path, &len2);
    CHECK_EQ(len2, len - 10);
    free(again);

    /* Cut at a line end, the rest is an intact (shorter) chain: only the
     * head recorded elsewhere reveals it. */
    const char *cut = text + len - 1;
    while (cut[-1] != '\n')
        cut--;
    write_file(f->path, text, (size_t)(cut - text));
    expect_intact(f->path, 4);
    free(text);
    fx_free(f);
}

static void test_non_audit_files_refused(void **state)
{
    (void)state;
    static const struct {
        const char *content, *needle;
    } cases[] = {
        {"hello world\n", "the last line is not an audit line (not a JSON object on one line)"},
        {"{\"a\":1}\n", "the last line is not an audit line (unexpected member 'a')"},
        {"\n", "not an audit line (empty line)"},
        {"{\"seq\":1}\n", "missing member 'time'"},
        {"no newline", "incomplete"},
    };
    struct fx *f = fx_new();
    struct km_error err;
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        write_file(f->path, cases[i].content, strlen(cases[i].content));
        CHECK_NULL(audit_open(f->path, &err));
        CHECK_CONTAINS(err.msg, f->path);
        CHECK_CONTAINS(err.msg, cases[i].needle);
        size_t len;
        char *text = test_read_file(f->path, &len);
        CHECK_EQ(len, strlen(cases[i].content));
        free(text);
    }
    /* A directory, and a last line over the limit. */
    CHECK_NULL(audit_open(f->dir, &err));
    char *big = malloc(AUDIT_MAX_LINE + 100);
    CHECK_NOT_NULL(big);
    memset(big, 'x', AUDIT_MAX_LINE + 99);
    big[AUDIT_MAX_LINE + 99] = '\n';
    write_file(f->path, big, AUDIT_MAX_LINE + 100);
    free(big);
    CHECK_NULL(audit_open(f->path, &err));
    CHECK_EQ(err.code, KM_ERR_TOO_LARGE);
    CHECK_NULL(audit_open("", &err));
    fx_free(f);
}

/* ---- the verifier on crafted input ----------------------------------------- */

static void test_verify_shapes(void **state)
{
    (void)state;
    size_t ok, bad;
    char why[512];
    CHECK_OK(audit_verify(NULL, 0, &ok, &bad, why, sizeof(why)));
    CHECK_EQ(ok, 0);
    CHECK_EQ(bad, 0);

    struct fx *f = fx_new();
    make_log(f, 1);
    size_t len;
    char *text = test_read_file(f->path, &len);
    text[len - 1] = '\0'; /* the line, without "\n" */
    static const struct {
        const char *from, *to, *why;
    } cases[] = {
        {"\"outcome\":\"ok\"", "\"outcome\":\"OK\"",
         "line 1: outcome is not ok, refused or failed"},
        {"\"seq\":1,", "\"seq\":1,\"extra\":1,", "line 1: unexpected member 'extra'"},
        {"\"seq\":1,", "\"seq\":1,\"seq\":1,", "line 1: not valid JSON: duplicate object key"},
        {"\"seq\":1,", "\"seq\":\"1\",", "line 1: seq is not a positive integer"},
        {"\"prev\":\"0", "\"prev\":\"A", "line 1: prev is not 64 lower-case hex digits"},
        {"\"prev\":\"0", "\"prev\":\"1",
         "line 1: prev is not 64 zeros, as the first line's must be"},
        {"\"api_key_id\":", "\"api_key_id\":5,\"x\":", "line 1: unexpected member 'x'"},
        {"\"request_id\":\"req-1\"", "\"request_id\":7",
         "line 1: request_id is not a string or null"},
        {"\"subject\":{", "\"subject\":{\"bad key\":1,",
         "line 1: subject has a member named 'bad key'"},
        {"\"event\":\"signing.approve\"", "\"event\":\"\"", "line 1: event is not a name"},
        {"\"time\":\"", "\"time\":\"x", "line 1: time is not an RFC 3339 UTC time"},
        {"0\"}", "0\"}\r", "line 1: not a JSON object on one line (it ends with a carriage return"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        const char *at = strstr(text, cases[i].from);
        CHECK_NOT_NULL(at);
        char line[4096];
        int n = snprintf(line, sizeof(line), "%.*s%s%s\n", (int)(at - text), text, cases[i].to,
                         at + strlen(cases[i].from));
        CHECK(n > 0 && (size_t)n < sizeof(line));
        int r = audit_verify((const uint8_t *)line, (size_t)n, &ok, &bad, why, sizeof(why));
        if (r != KM_ERR_INVALID || bad != 1 || strncmp(why, cases[i].why, strlen(cases[i].why)))
            fail_msg("case %zu: r %d bad %zu why \"%s\"", i, r, bad, why);
    }
    /* Control bytes in the input never reach the message. */
    static const char ctl[] = "{\x1b[31m}\n";
    CHECK_ERR(audit_verify((const uint8_t *)ctl, sizeof(ctl) - 1, &ok, &bad, why, sizeof(why)),
              KM_ERR_INVALID);
    for (const char *p = why; *p; p++)
        CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
    /* An over-long line, with and without its newline. */
    char *big = malloc(AUDIT_MAX_LINE + 2);
    CHECK_NOT_NULL(big);
    memset(big, ' ', AUDIT_MAX_LINE + 2);
    big[AUDIT_MAX_LINE + 1] = '\n';
    CHECK_ERR(audit_verify((uint8_t *)big, AUDIT_MAX_LINE + 2, &ok, &bad, why, sizeof(why)),
              KM_ERR_INVALID);
    CHECK_STR_EQ(why, "line 1: longer than 65536 bytes");
    CHECK_ERR(audit_verify((uint8_t *)big, AUDIT_MAX_LINE + 1, &ok, &bad, why, sizeof(why)),
              KM_ERR_INVALID);
    CHECK_STR_EQ(why, "line 1: longer than 65536 bytes");
    free(big);
    /* A tiny why buffer is still terminated. */
    CHECK_ERR(audit_verify((const uint8_t *)"\n", 1, &ok, &bad, why, 4), KM_ERR_INVALID);
    CHECK_STR_EQ(why, "lin");
    CHECK_ERR(audit_verify((const uint8_t *)"\n", 1, &ok, &bad, NULL, 0), KM_ERR_INVALID);
    CHECK_EQ(bad, 1);
    free(text);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_threads_one_chain),
        TEST(test_threads_synced),
        TEST(test_line_format),
        TEST(test_hash_is_plain_sha256),
        TEST(test_reopen_continues_chain),
        TEST(test_second_writer_refused),
        TEST(test_bad_events_write_nothing),
        TEST(test_failed_write_rolled_back),
        TEST(test_edited_line_named),
        TEST(test_removed_line_named),
        TEST(test_reordered_lines_named),
        TEST(test_truncated_last_line),
        TEST(test_non_audit_files_refused),
        TEST(test_verify_shapes),
    };
    return RUN_TESTS("unit.audit.audit", tests);
}
