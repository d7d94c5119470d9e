/*
 * cmd_audit.c - the audit log on the command line (audit/audit.h):
 *
 *   keymeld audit verify FILE [--json]
 *       checks every line of the gateway's audit log and its hash chain:
 *       "ok: N lines, chain intact" (exit 0) or the first broken line,
 *       "line K: <why>" (exit 1). Also prints the head, the hash of the last
 *       line, to be kept elsewhere: the chain alone cannot reveal a changed
 *       last line or a truncated tail.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "cmd/opts.h"
#include "common/hex.h"
#include "common/xmalloc.h"
#include "common/banned.h"

#define VPROG     "keymeld audit verify"
#define INPUT_MAX ((size_t)1 << 30) /* 1 GiB of audit log */

static void verify_usage(FILE *out)
{
    fprintf(out, "usage: keymeld audit verify FILE [--json]\n"
                 "\n"
                 "Checks the gateway's audit log (audit.path): every line is an audit record,\n"
                 "seq counts up from 1, and each line's prev is the SHA-256 of the line before\n"
                 "it (64 zeros on line 1). Prints \"ok: N lines, chain intact\" and the head\n"
                 "(the hash of the last line: keep it elsewhere, since a changed last line or a\n"
                 "truncated tail leaves the chain intact), or the first broken line and why.\n"
                 "An edited line K is named by line K+1, whose prev no longer matches it.\n"
                 "FILE - reads stdin; at most 1 GiB.\n"
                 "\n"
                 "  --json      {\"ok\", \"lines_ok\", \"bad_line\", \"error\", \"head\"}\n"
                 "  -h, --help  this text\n"
                 "\n"
                 "Exit status: 0 intact, 1 broken (or unreadable), 2 usage error.\n");
}

/* Reads path ("-" = stdin), at most INPUT_MAX bytes; *out malloc'ed. */
static int read_all(uint8_t **out, size_t *len, const char *path, struct km_error *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "stdin" : path;
    *out = NULL;
    *len = 0;
    int fd = is_stdin ? 0 : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return km_error_set(err, KM_ERR_IO, errno, "%.200s: cannot open: %s", name,
                            strerror(errno));
    struct stat st;
    size_t cap = 64 * 1024;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > INPUT_MAX) {
            if (!is_stdin)
                close(fd);
            return km_error_set(err, KM_ERR_TOO_LARGE, 0,
                                "%.200s: %lld bytes, more than the 1 GiB this command reads", name,
                                (long long)st.st_size);
        }
        cap = (size_t)st.st_size + 1; /* + 1: notice growth while reading */
    }
    uint8_t *p = xmalloc(cap);
    size_t n = 0;
    int r = KM_OK;
    for (;;) {
        if (n == cap) {
            if (cap > INPUT_MAX) {
                r = km_error_set(err, KM_ERR_TOO_LARGE, 0,
                                 "%.200s: more than the 1 GiB this command reads", name);
                break;
            }
            cap = cap > INPUT_MAX / 2 ? INPUT_MAX + 1 : st_mult(cap, 2);
            p = xrealloc(p, cap);
        }
        ssize_t got = read(fd, p + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r = km_error_set(err, KM_ERR_IO, errno, "%.200s: read error: %s", name,
                             strerror(errno));
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (!is_stdin)
        close(fd);
    if (r != KM_OK) {
        free(p);
        return r;
    }
    *out = p;
    *len = n;
    return KM_OK;
}

/* The chain hash of the last line of an intact log (which ends in "\n"). */
static void head_hash(char hex[AUDIT_HASH_HEX_LEN + 1], const uint8_t *data, size_t len)
{
    size_t end = len - 1, start = end;
    while (start > 0 && data[start - 1] != '\n')
        start--;
    uint8_t h[AUDIT_HASH_LEN];
    audit_hash_line(h, data + start, end - start);
    hex_encode(hex, AUDIT_HASH_HEX_LEN + 1, h, sizeof(h));
}

static void print_json(bool ok, size_t lines_ok, size_t bad_line, const char *error,
                       const char *head)
{
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_boolean(ok));
    json_object_set_new(o, "lines_ok", json_integer((json_int_t)lines_ok));
    json_object_set_new(o, "bad_line", bad_line ? json_integer((json_int_t)bad_line) : json_null());
    json_object_set_new(o, "error", error ? json_string(error) : json_null());
    json_object_set_new(o, "head", head ? json_string(head) : json_null());
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s\n", s ? s : "{}");
    free(s);
    json_decref(o);
}

static int audit_verify_cmd(int argc, char **argv)
{
    struct opts o;
    const char *file = NULL;
    bool json = false, bad = false;
    opts_init(&o, VPROG, argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND && file == NULL)
            file = o.operand;
        else if (r == OPT_OPERAND)
            bad = fprintf(stderr, VPROG ": one FILE only, not also '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            verify_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_flag(&o, "--json", NULL))
            json = true;
        else
            bad = fprintf(stderr, VPROG ": unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad && file == NULL)
        bad = fprintf(stderr, VPROG ": FILE is required (- for stdin)\n") > 0;
    if (bad) {
        fputc('\n', stderr);
        verify_usage(stderr);
        return CMD_EXIT_USAGE;
    }

    struct km_error err;
    uint8_t *data = NULL;
    size_t len = 0;
    if (read_all(&data, &len, file, &err) != KM_OK) {
        if (json)
            print_json(false, 0, 0, err.msg, NULL);
        fprintf(stderr, VPROG ": %s\n", err.msg);
        return CMD_EXIT_FAIL;
    }
    size_t lines_ok = 0, bad_line = 0;
    char why[512];
    int r = audit_verify(data, len, &lines_ok, &bad_line, why, sizeof(why));
    char head[AUDIT_HASH_HEX_LEN + 1];
    if (r == KM_OK && lines_ok > 0)
        head_hash(head, data, len);
    free(data);

    if (json) {
        print_json(r == KM_OK, lines_ok, bad_line, r == KM_OK ? NULL : why,
                   r == KM_OK && lines_ok > 0 ? head : NULL);
    } else if (r == KM_OK) {
        printf("ok: %zu line%s, chain intact\n", lines_ok, lines_ok == 1 ? "" : "s");
        if (lines_ok > 0)
            printf("head: %s (SHA-256 of line %zu; keep it elsewhere to detect a changed last "
                   "line or a truncated tail)\n",
                   head, lines_ok);
    } else {
        printf("%s\n", why);
    }
    return r == KM_OK ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}

int cmd_audit(int argc, char **argv)
{
    static const struct cmd_entry sub[] = {
        {"verify", "FILE [--json]", "check the audit log's lines and hash chain", audit_verify_cmd},
    };
    return cmd_dispatch("keymeld audit", sub, KM_ARRAY_LEN(sub), argc, argv);
}
