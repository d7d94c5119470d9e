/*
 * test_audit.c - `keymeld audit verify FILE [--json]`, run as a process
 * ($KEYMELD_TEST_BUILD_DIR/src/cmd/keymeld) on logs written with
 * audit_append: exit 0 and "ok: N lines, chain intact" for an intact log,
 * exit 1 and "line K: ..." naming the first broken line, exit 2 for usage
 * errors; the --json object; stdin as "-".
 */
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/hex.h"
#include "cmd_test_support.h"
#include "common/banned.h"

#define MAX_ARGS 8

/* Runs keymeld here, stdin from in_path (NULL: /dev/null), with only the
 * sanitizer options in its environment (see cmd_run). */
static struct run run_in(const char *const *args, const char *in_path)
{
    return cmd_run(args, NULL, in_path, false);
}

/* run_in with stdin from /dev/null. */
static struct run run_keymeld(const char *const *args)
{
    return run_in(args, NULL);
}

/* Exit status, then each needle unless NULL: out_needle in stdout,
 * err_needle in stderr. */
static void expect(struct run *r, int status, const char *out_needle, const char *err_needle)
{
    cmd_expect(r, status, out_needle, err_needle);
}

struct fx {
    char dir[64];
    char path[96];
};

/* A log of n lines written by audit_append. */
static struct fx *fx_log(int n)
{
    struct fx *f = calloc(1, sizeof(*f));
    CHECK_NOT_NULL(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/km_test_audit_cmd_XXXXXX");
    CHECK_NOT_NULL(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/audit.jsonl", f->dir);
    struct km_error err;
    struct audit_log *a = audit_open(f->path, &err);
    if (a == NULL)
        fail_msg("audit_open: %s", err.msg);
    audit_set_fsync(a, false);
    for (int i = 0; i < n; i++) {
        json_t *subject = json_pack("{s:s, s:i}", "signing_id", "s-1", "enclave_id", i);
        struct audit_event ev = {.event = "signing.approve",
                                 .outcome = i % 3 ? "ok" : "refused",
                                 .request_id = "r-1",
                                 .api_key_id = "ak_1",
                                 .subject = subject,
                                 .detail = "approval"};
        CHECK_OK(audit_append(a, &ev, &err));
        json_decref(subject);
    }
    audit_close(a);
    return f;
}

static void fx_free(struct fx *f)
{
    unlink(f->path);
    rmdir(f->dir);
    free(f);
}

/* Rewrites line k (1-based) of the file through edit(line). */
static void edit_line(const char *path, size_t k, void (*edit)(char *line))
{
    size_t len;
    char *text = test_read_file(path, &len);
    char *p = text;
    for (size_t i = 1; i < k; i++) {
        p = strchr(p, '\n');
        CHECK_NOT_NULL(p);
        p++;
    }
    char *nl = strchr(p, '\n');
    CHECK_NOT_NULL(nl);
    *nl = '\0';
    edit(p);
    *nl = '\n';
    FILE *fp = fopen(path, "wb");
    CHECK_NOT_NULL(fp);
    CHECK_EQ(fwrite(text, 1, len, fp), len);
    CHECK_EQ(fclose(fp), 0);
    free(text);
}

static void change_detail(char *line)
{
    char *d = strstr(line, "\"approval\"");
    CHECK_NOT_NULL(d);
    d[1] = 'A';
}

static void test_intact(void **state)
{
    (void)state;
    struct fx *f = fx_log(12);
    const char *args[] = {"audit", "verify", f->path, NULL};
    struct run r = run_keymeld(args);
    expect(&r, 0, "ok: 12 lines, chain intact\nhead: ", NULL);
    run_free(&r);

    /* The head is the SHA-256 of the last line. */
    size_t len;
    char *text = test_read_file(f->path, &len);
    text[len - 1] = '\0';
    const char *last = strrchr(text, '\n') + 1;
    uint8_t h[AUDIT_HASH_LEN];
    char hex[AUDIT_HASH_HEX_LEN + 1];
    audit_hash_line(h, (const uint8_t *)last, strlen(last));
    hex_encode(hex, sizeof(hex), h, sizeof(h));
    free(text);

    const char *json_args[] = {"audit", "verify", "--json", f->path, NULL};
    r = run_keymeld(json_args);
    expect(&r, 0, NULL, NULL);
    json_error_t jerr;
    json_t *o = json_loads(r.out, 0, &jerr);
    CHECK_NOT_NULL(o);
    CHECK(json_is_true(json_object_get(o, "ok")));
    CHECK_EQ(json_integer_value(json_object_get(o, "lines_ok")), 12);
    CHECK(json_is_null(json_object_get(o, "bad_line")));
    CHECK(json_is_null(json_object_get(o, "error")));
    CHECK_STR_EQ(json_string_value(json_object_get(o, "head")), hex);
    json_decref(o);
    run_free(&r);

    /* stdin */
    const char *stdin_args[] = {"audit", "verify", "-", NULL};
    r = run_in(stdin_args, f->path);
    expect(&r, 0, "ok: 12 lines, chain intact", NULL);
    run_free(&r);

    /* An empty log is an intact, empty chain. */
    FILE *fp = fopen(f->path, "wb");
    CHECK_NOT_NULL(fp);
    CHECK_EQ(fclose(fp), 0);
    r = run_keymeld(args);
    expect(&r, 0, "ok: 0 lines, chain intact", NULL);
    run_free(&r);
    fx_free(f);
}

static void test_broken_names_the_line(void **state)
{
    (void)state;
    struct fx *f = fx_log(12);
    edit_line(f->path, 7, change_detail);
    const char *args[] = {"audit", "verify", f->path, NULL};
    struct run r = run_keymeld(args);
    expect(&r, 1,
           "line 8: prev does not match the hash of line 7 (edited, removed or reordered?)\n",
           NULL);
    CHECK(strstr(r.out, "ok:") == NULL);
    run_free(&r);

    const char *json_args[] = {"audit", "verify", f->path, "--json", NULL};
    r = run_keymeld(json_args);
    expect(&r, 1, NULL, NULL);
    json_error_t jerr;
    json_t *o = json_loads(r.out, 0, &jerr);
    CHECK_NOT_NULL(o);
    CHECK(json_is_false(json_object_get(o, "ok")));
    CHECK_EQ(json_integer_value(json_object_get(o, "lines_ok")), 7);
    CHECK_EQ(json_integer_value(json_object_get(o, "bad_line")), 8);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "error")),
                 "line 8: prev does not match the hash of line 7 (edited, removed or reordered?)");
    CHECK(json_is_null(json_object_get(o, "head")));
    json_decref(o);
    run_free(&r);

    /* A truncated last line. */
    size_t len;
    char *text = test_read_file(f->path, &len);
    FILE *fp = fopen(f->path, "wb");
    CHECK_NOT_NULL(fp);
    CHECK_EQ(fwrite(text, 1, len - 5, fp), len - 5);
    CHECK_EQ(fclose(fp), 0);
    free(text);
    r = run_keymeld(args);
    expect(&r, 1, "line 8: prev does not match", NULL);
    run_free(&r);
    fx_free(f);

    /* The same truncation on an otherwise intact log. */
    f = fx_log(3);
    text = test_read_file(f->path, &len);
    fp = fopen(f->path, "wb");
    CHECK_NOT_NULL(fp);
    CHECK_EQ(fwrite(text, 1, len - 5, fp), len - 5);
    CHECK_EQ(fclose(fp), 0);
    free(text);
    const char *args3[] = {"audit", "verify", f->path, NULL};
    r = run_keymeld(args3);
    expect(&r, 1, "line 3: incomplete last line", NULL);
    run_free(&r);
    fx_free(f);
}

static void test_usage_and_io_errors(void **state)
{
    (void)state;
    static const struct {
        const char *args[MAX_ARGS];
        int status;
        const char *err;
    } cases[] = {
        {{"audit", "verify", NULL}, 2, "FILE is required"},
        {{"audit", "verify", "a", "b", NULL}, 2, "one FILE only"},
        {{"audit", "verify", "a", "--bogus", NULL}, 2, "unknown option '--bogus'"},
        {{"audit", NULL}, 2, "usage: keymeld audit <command>"},
        {{"audit", "frobnicate", NULL}, 2, "unknown command 'frobnicate'"},
        {{"audit", "verify", "/nonexistent/audit.jsonl", NULL}, 1, "cannot open"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        struct run r = run_keymeld(cases[i].args);
        expect(&r, cases[i].status, NULL, cases[i].err);
        run_free(&r);
    }
    const char *help[] = {"audit", "verify", "--help", NULL};
    struct run r = run_keymeld(help);
    expect(&r, 0, "usage: keymeld audit verify FILE [--json]", NULL);
    run_free(&r);
    const char *listing[] = {"--help", NULL};
    r = run_keymeld(listing);
    expect(&r, 0, "audit verify FILE [--json]", NULL);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_intact),
        TEST(test_broken_names_the_line),
        TEST(test_usage_and_io_errors),
    };
    return RUN_TESTS("unit.cmd.audit", tests);
}
