/*
 * cmd_db.c - `keymeld db migrate --from URL --to URL`: copies the gateway's
 * database into a new one (from SQLite to PostgreSQL, typically) and
 * checks the copy (store_copy; docs/OPERATIONS.md "Moving from SQLite to
 * PostgreSQL"). Runs on the gateway host with the gateway stopped.
 */
#include "cmd/cmd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/opts.h"
#include "store/store.h"
#include "common/banned.h"

#define PROG "keymeld db migrate"

/* Appends s[0..n) to out (cap bytes, *len used), truncating. */
static void put(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + 1 >= cap)
        return;
    if (n > cap - 1 - *len)
        n = cap - 1 - *len;
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
}

/*
 * url for the terminal: a PostgreSQL password, in the user info
 * ("postgresql://user:secret@host") or a parameter ("?password=secret"),
 * becomes "***". Other URLs (SQLite paths) are shown as they are.
 */
static const char *describe_url(char *out, size_t cap, const char *url)
{
    size_t len = 0;
    out[0] = '\0';
    const char *scheme = strstr(url, "://");
    if (scheme == NULL) {
        put(out, cap, &len, url, strlen(url));
        return out;
    }
    const char *p = url, *info = scheme + 3;
    size_t n = strcspn(info, "@/?#");
    const char *colon = info[n] == '@' ? memchr(info, ':', n) : NULL;
    if (colon != NULL) {
        put(out, cap, &len, p, (size_t)(colon + 1 - p));
        put(out, cap, &len, "***", 3);
        p = info + n;
    }
    static const char key[] = "password=";
    for (const char *q; (q = strstr(p, key)) != NULL;) {
        bool param = q > url && (q[-1] == '?' || q[-1] == '&');
        q += strlen(key);
        put(out, cap, &len, p, (size_t)(q - p));
        p = q;
        if (param) {
            put(out, cap, &len, "***", 3);
            p += strcspn(p, "&#");
        }
    }
    put(out, cap, &len, p, strlen(p));
    return out;
}

static void migrate_usage(FILE *out)
{
    fprintf(out, "usage: " PROG " --from URL [--to URL]\n"
                 "\n"
                 "Copies every table of the gateway's database (--from) into a new, empty one\n"
                 "(--to, default $KEYMELD_DATABASE_URL) in one transaction, then checks the copy:\n"
                 "the row count and a SHA-256 digest of the contents of every table must match,\n"
                 "or nothing is committed. Stop the gateway first. The source is not changed.\n"
                 "\n"
                 "  --from URL   sqlite:PATH (or a file path) or postgresql://...\n"
                 "  --to URL     postgresql://... (or sqlite:PATH); created or migrated to the\n"
                 "               current schema, and it must hold no rows\n"
                 "\n"
                 "Keep a password out of the command line (other users see it in ps): leave it\n"
                 "out of the URL and set PGPASSWORD or use ~/.pgpass, which libpq reads.\n"
                 "Exit status: 0 when the copy is complete and checked, 1 when it failed (see\n"
                 "the message), 2 for a usage error.\n");
}

static void print_report(const struct store_copy_report *rep)
{
    int64_t total = 0;
    for (size_t i = 0; i < rep->ntables; i++) {
        const struct store_copy_table *t = &rep->tables[i];
        printf("%s: %lld rows copied, checked\n", t->name, (long long)t->rows);
        total += t->rows;
    }
    printf("done: %zu tables, %lld rows copied and checked (row counts and SHA-256 digests of "
           "every table match the source)\n",
           rep->ntables, (long long)total);
}

static int db_migrate(int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    const char *from = NULL, *to = getenv("KEYMELD_DATABASE_URL");
    opts_init(&o, PROG, argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND)
            bad = fprintf(stderr, PROG ": unexpected operand '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            migrate_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--from", &bad))
            from = o.value;
        else if (opts_value(&o, "--to", &bad))
            to = o.value;
        else
            bad = fprintf(stderr, PROG ": unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad && (from == NULL || from[0] == '\0'))
        bad = fprintf(stderr, PROG ": --from is required\n") > 0;
    if (!bad && (to == NULL || to[0] == '\0'))
        bad = fprintf(stderr, PROG ": --to is required (or set KEYMELD_DATABASE_URL)\n") > 0;
    if (bad) {
        fputc('\n', stderr);
        migrate_usage(stderr);
        return CMD_EXIT_USAGE;
    }

    char from_s[512], to_s[512];
    printf("copying %s\n   into %s (schema version %d)\n",
           describe_url(from_s, sizeof(from_s), from), describe_url(to_s, sizeof(to_s), to),
           STORE_SCHEMA_VERSION);
    fflush(stdout);
    struct store_copy_report rep;
    struct km_error err;
    if (store_copy(from, to, &rep, &err) != KM_OK) {
        fprintf(stderr, PROG ": %s\n", err.msg);
        fprintf(stderr,
                PROG ": the copy failed%s; the source is unchanged: keep the gateway "
                     "on it\n",
                rep.rolled_back ? " and was rolled back (the target holds no copied row)" : "");
        return CMD_EXIT_FAIL;
    }
    print_report(&rep);
    return CMD_EXIT_OK;
}

int cmd_db(int argc, char **argv)
{
    static const struct cmd_entry sub[] = {
        {"migrate", "--from URL --to URL", "copy the database into a new one and check it",
         db_migrate},
    };
    return cmd_dispatch("keymeld db", sub, KM_ARRAY_LEN(sub), argc, argv);
}
