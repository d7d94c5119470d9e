/*
 * db_pg.c - the PostgreSQL backend of db.h, through libpq.
 *
 * Statements: the store's ?N placeholders become $N (outside quoted
 * strings, quoted identifiers and comments) and each statement is a named
 * server-side prepared statement ("km_<n>", unique per connection), run
 * with text parameters and text results. The server infers parameter
 * types from the SQL, so a parameter whose type the context does not fix
 * (?1 + 60, SELECT ?1) needs a CAST in the store's SQL.
 *
 * Write transactions: BEGIN plus pg_advisory_xact_lock on one fixed key
 * (DB_PG_WRITER_LOCK), so every gateway on the database takes the same
 * lock, as SQLite's BEGIN IMMEDIATE does for the processes sharing a file.
 * lock_timeout is the options' busy_timeout_ms (5 s by default, as SQLite):
 * a writer stuck elsewhere turns into KM_ERR_TIMEOUT, not a hang. Unlike
 * SQLite, any error inside a transaction aborts all of it: the caller must
 * roll back.
 *
 * Lost connections (server restart, failover, network): the call that finds
 * the connection gone reports KM_ERR_CONNECT; the next db_begin, db_prepare,
 * statement or script resets it (PQreset) and statements are prepared again
 * on first use. Inside a transaction nothing is reconnected until the
 * caller's db_rollback: the transaction is gone and must not continue on a
 * new session. Two cases are retried at once on a fresh connection,
 * because sending them again cannot do anything twice: a BEGIN, and a
 * read-only statement outside a transaction.
 *
 * Messages (db_errmsg, open errors) never contain the URL, a password or a
 * bound value: server errors are reduced to their primary message and
 * SQLSTATE, and data exceptions (class 22, which quote the offending
 * value) to their SQLSTATE alone.
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "store/db_backend.h"
#include "common/banned.h"

#define LOG_COMP "store"

/* The key of the writers' advisory lock ("keymeld store writer"): the ASCII
 * bytes of "KMSTOREW" as a big-endian BIGINT. Fixed forever: gateways of
 * different versions on one database must agree on it. */
#define DB_PG_WRITER_LOCK INT64_C(0x4b4d53544f524557)

/* Highest ?N accepted (SQLite's default limit): bounds the arrays a
 * statement allocates; the store's largest statement has a dozen. */
#define DB_PG_MAX_PARAMS 32766

/* Defaults when neither the options nor the URL say otherwise. */
#define DB_PG_CONNECT_TIMEOUT_SECS 10
#define DB_PG_LOCK_TIMEOUT_MS      5000

struct pg_conn {
    struct db_conn base;
    PGconn *pg;
    uint32_t lock_timeout_ms;
    /* Incremented by every PQreset: a statement prepared under an older
     * generation no longer exists on the server. Starts at 1 (0 = never). */
    uint64_t generation;
    uint64_t next_stmt; /* for unique statement names */
    /* The server had a transaction open for us after the last exchange;
     * stays set when the connection is lost, until db_rollback / db_commit. */
    bool in_tx;
    char errmsg[512];
};

/* One parameter's storage; the statement's values[] points into it. */
struct pg_param {
    char *text;   /* an owned copy of bound text */
    char num[24]; /* a bound integer in decimal */
};

struct pg_stmt {
    struct db_stmt base;
    char name[32];
    char *sql; /* with $N: kept to prepare again after a reconnect */
    int nparams;
    bool readonly;
    uint64_t prepared_gen; /* the connection generation it was prepared in */
    struct pg_param *params;
    const char **values; /* nparams; NULL = SQL NULL (also when unbound) */
    PGresult *res;       /* of the last execution, or NULL */
    int row;             /* the current row; -1 before the first */
    bool executed;
    int64_t changes;
};

static struct pg_conn *conn_of(struct db_conn *c)
{
    return (struct pg_conn *)c;
}

static struct pg_stmt *stmt_of(struct db_stmt *st)
{
    return (struct pg_stmt *)st;
}

/* ---- messages ---------------------------------------------------------- */

/* Copies a libpq message on one line: newlines become "; ", trailing
 * whitespace goes. */
static void copy_oneline(char *dst, size_t n, const char *src)
{
    size_t j = 0;
    for (size_t i = 0; src[i] != '\0' && j + 3 < n; i++) {
        if (src[i] != '\n') {
            dst[j++] = src[i];
        } else if (src[i + 1] != '\0') {
            dst[j++] = ';';
            dst[j++] = ' ';
        }
    }
    while (j > 0 && isspace((unsigned char)dst[j - 1]))
        j--;
    dst[j] = '\0';
}

static void set_errmsg(struct pg_conn *c, const char *fmt, ...) KM_PRINTF(2, 3);

static void set_errmsg(struct pg_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
    va_end(ap);
}

/* The connection's own error (no server result), on one line. */
static void set_conn_errmsg(struct pg_conn *c, const char *what)
{
    char line[400];
    copy_oneline(line, sizeof(line), PQerrorMessage(c->pg));
    set_errmsg(c, "%s: %s", what, line[0] ? line : "unknown libpq error");
}

/* SQLSTATE -> KM_*, following db.h. */
static int map_sqlstate(const char *state)
{
    if (strncmp(state, "23", 2) == 0) /* integrity constraint violation */
        return KM_ERR_EXISTS;
    if (strcmp(state, "40001") == 0 || /* serialization failure */
        strcmp(state, "40P01") == 0 || /* deadlock detected */
        strcmp(state, "55P03") == 0 || /* lock not available: lock_timeout */
        strcmp(state, "57014") == 0)   /* query canceled: statement_timeout */
        return KM_ERR_TIMEOUT;
    if (strncmp(state, "08", 2) == 0 || /* connection exception */
        strcmp(state, "57P01") == 0 ||  /* admin shutdown */
        strcmp(state, "57P02") == 0 ||  /* crash shutdown */
        strcmp(state, "57P03") == 0)    /* cannot connect now */
        return KM_ERR_CONNECT;
    return KM_ERR_IO;
}

/*
 * Records why res (NULL when libpq could not even produce one) failed,
 * clears it and returns the KM_* code. A connection found broken is
 * KM_ERR_CONNECT whatever the result says.
 */
static int fail_result(struct pg_conn *c, PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    int code;
    if (PQstatus(c->pg) != CONNECTION_OK) {
        set_conn_errmsg(c, what);
        code = KM_ERR_CONNECT;
    } else if (state == NULL || primary == NULL) {
        set_conn_errmsg(c, what);
        code = KM_ERR_IO;
    } else if (strncmp(state, "22", 2) == 0) {
        /* Data exceptions quote the value they refused: keep it out. */
        set_errmsg(c, "%s: invalid value for a parameter or column (SQLSTATE %s)", what, state);
        code = KM_ERR_IO;
    } else {
        char line[400];
        copy_oneline(line, sizeof(line), primary);
        set_errmsg(c, "%s: %s (SQLSTATE %s)", what, line, state);
        code = map_sqlstate(state);
    }
    PQclear(res);
    return code;
}

static bool result_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
}

/* Server warnings (client_min_messages = warning) go to the log, not to
 * stderr as libpq's default would. */
static void notice_to_log(void *arg, const PGresult *res)
{
    (void)arg;
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    log_warn(LOG_COMP, "PostgreSQL: %s (SQLSTATE %s)", primary ? primary : "?",
             state ? state : "?");
}

/* ---- the session ------------------------------------------------------- */

/* Tracks whether the server holds a transaction for us (after any exchange
 * on a live connection; a lost one keeps the last known state). */
static void note_tx(struct pg_conn *c)
{
    if (PQstatus(c->pg) != CONNECTION_OK)
        return;
    PGTransactionStatusType t = PQtransactionStatus(c->pg);
    c->in_tx = t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* Runs sql (one or more statements) and keeps the last result in *out
 * when out is not NULL. */
static int run(struct pg_conn *c, const char *sql, const char *what, PGresult **out)
{
    PGresult *res = PQexec(c->pg, sql);
    note_tx(c);
    if (!result_ok(res))
        return fail_result(c, res, what);
    if (out != NULL)
        *out = res;
    else
        PQclear(res);
    return KM_OK;
}

/* Session settings, after every connect and reset (a reset starts a new
 * server session, which forgets them). */
static int session_setup(struct pg_conn *c)
{
    PQsetNoticeReceiver(c->pg, notice_to_log, NULL);
    char sql[128];
    snprintf(sql, sizeof(sql), "SET client_min_messages = warning; SET lock_timeout = %" PRIu32,
             c->lock_timeout_ms);
    return run(c, sql, "session setup", NULL);
}

/*
 * Before sending anything: a connection found lost is reset, unless the
 * server had a transaction open for us (it is gone with the session: the
 * caller learns it here and must roll back).
 */
static int ensure_connected(struct pg_conn *c)
{
    if (PQstatus(c->pg) == CONNECTION_OK)
        return KM_OK;
    if (c->in_tx) {
        set_errmsg(c, "the connection was lost inside a transaction (rolled back)");
        return KM_ERR_CONNECT;
    }
    PQreset(c->pg);
    c->generation++;
    if (PQstatus(c->pg) != CONNECTION_OK) {
        set_conn_errmsg(c, "cannot reconnect to PostgreSQL");
        return KM_ERR_CONNECT;
    }
    log_info(LOG_COMP, "reconnected to PostgreSQL");
    return session_setup(c);
}

static int pg_open(struct db_conn **out, const char *target, const struct db_open_options *o,
                   struct km_error *err)
{
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%" PRIu32,
             o->connect_timeout_secs ? o->connect_timeout_secs : DB_PG_CONNECT_TIMEOUT_SECS);
    /* Entries before "dbname" are defaults: the URL (expanded from dbname)
     * overrides them, so a URL's own connect_timeout wins. */
    const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *const values[] = {timeout, "keymeld-gateway", target, NULL};
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (pg == NULL)
        return km_error_set(err, KM_ERR_NOMEM, 0, "cannot connect to PostgreSQL: out of memory");

    struct pg_conn *c = xcalloc(1, sizeof(*c));
    c->pg = pg;
    c->generation = 1;
    c->lock_timeout_ms = o->busy_timeout_ms ? o->busy_timeout_ms : DB_PG_LOCK_TIMEOUT_MS;
    int r = PQstatus(pg) == CONNECTION_OK ? session_setup(c) : KM_ERR_CONNECT;
    if (r != KM_OK) {
        /* libpq's message names host and port, never the password; the URL
         * itself is not repeated. */
        if (PQstatus(pg) != CONNECTION_OK)
            set_conn_errmsg(c, "cannot connect to PostgreSQL");
        km_error_set(err, r, 0, "%s", c->errmsg);
        PQfinish(pg);
        free(c);
        return r;
    }
    *out = &c->base;
    return KM_OK;
}

static void pg_close(struct db_conn *c, bool checkpoint)
{
    (void)checkpoint; /* the server manages its WAL */
    PQfinish(conn_of(c)->pg);
    free(c);
}

static const char *pg_errmsg(struct db_conn *c)
{
    const char *m = conn_of(c)->errmsg;
    return m[0] ? m : "no error";
}

static int pg_exec_script(struct db_conn *db, const char *sql)
{
    struct pg_conn *c = conn_of(db);
    int r = ensure_connected(c);
    return r == KM_OK ? run(c, sql, "script", NULL) : r;
}

/* ---- transactions ------------------------------------------------------ */

static int try_begin(struct pg_conn *c)
{
    int r = ensure_connected(c);
    if (r != KM_OK)
        return r;
    if (c->in_tx) {
        set_errmsg(c, "BEGIN: a transaction is already open");
        return KM_ERR_IO;
    }
    char sql[96];
    snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%" PRId64 ")",
             DB_PG_WRITER_LOCK);
    r = run(c, sql, "BEGIN", NULL);
    if (r != KM_OK && r != KM_ERR_CONNECT && c->in_tx)
        (void)run(c, "ROLLBACK", "ROLLBACK", NULL); /* the lock timed out */
    return r;
}

static int pg_begin(struct db_conn *db)
{
    struct pg_conn *c = conn_of(db);
    bool was_up = PQstatus(c->pg) == CONNECTION_OK;
    int r = try_begin(c);
    /* Found the connection gone while sending BEGIN: nothing ran yet, so
     * the same BEGIN on a fresh connection is safe. */
    if (r == KM_ERR_CONNECT && was_up && !c->in_tx)
        r = try_begin(c);
    return r;
}

static int pg_commit(struct db_conn *db)
{
    struct pg_conn *c = conn_of(db);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        c->in_tx = false;
        set_errmsg(c, "COMMIT: the connection was lost (the transaction was rolled back)");
        return KM_ERR_CONNECT;
    }
    note_tx(c);
    if (!c->in_tx) {
        set_errmsg(c, "COMMIT: no transaction is open");
        return KM_ERR_IO;
    }
    PGresult *res = NULL;
    int r = run(c, "COMMIT", "COMMIT", &res);
    if (PQstatus(c->pg) != CONNECTION_OK)
        c->in_tx = false; /* outcome unknown; the session is gone either way */
    if (r != KM_OK)
        return r;
    /* COMMIT of a transaction an error had aborted answers "ROLLBACK". */
    bool rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
    PQclear(res);
    if (rolled_back) {
        set_errmsg(c, "COMMIT: the transaction had failed and was rolled back");
        return KM_ERR_IO;
    }
    return KM_OK;
}

static void pg_rollback(struct db_conn *db)
{
    struct pg_conn *c = conn_of(db);
    if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        (void)run(c, "ROLLBACK", "ROLLBACK", NULL);
    c->in_tx = false;
}

static bool pg_in_transaction(struct db_conn *db)
{
    struct pg_conn *c = conn_of(db);
    note_tx(c);
    return c->in_tx;
}

/* ---- schema version ---------------------------------------------------- */

/*
 * Runs "<lock>; <create keymeld_schema with its one row>; tail" and keeps
 * the last result. Under the writers' lock so gateways starting together
 * cannot both create the table or its row; outside a transaction the
 * script is one implicit transaction, inside one the lock is already held
 * (advisory locks nest).
 */
static int run_schema(struct pg_conn *c, const char *tail, PGresult **out)
{
    int r = ensure_connected(c);
    if (r != KM_OK)
        return r;
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT pg_advisory_xact_lock(%" PRId64 ");"
             "CREATE TABLE IF NOT EXISTS keymeld_schema (version INTEGER NOT NULL);"
             "INSERT INTO keymeld_schema (version) SELECT 0"
             "  WHERE NOT EXISTS (SELECT 1 FROM keymeld_schema);"
             "%s",
             DB_PG_WRITER_LOCK, tail);
    return run(c, sql, "schema version", out);
}

static int pg_schema_version(struct db_conn *db, int *version)
{
    struct pg_conn *c = conn_of(db);
    PGresult *res = NULL;
    int r = run_schema(c, "SELECT version FROM keymeld_schema", &res);
    if (r != KM_OK)
        return r;
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        set_errmsg(c, "schema version: keymeld_schema must hold exactly one row");
        PQclear(res);
        return KM_ERR_IO;
    }
    *version = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return KM_OK;
}

static int pg_set_schema_version(struct db_conn *db, int version)
{
    char tail[64];
    snprintf(tail, sizeof(tail), "UPDATE keymeld_schema SET version = %d", version);
    return run_schema(conn_of(db), tail, NULL);
}

/* ---- statements -------------------------------------------------------- */

static bool is_ident_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_';
}

/* Where a quoted string ("'"), quoted identifier ('"') or comment that
 * starts at p ends (just past it, or at the NUL when unterminated);
 * p itself when none starts there. A doubled quote inside ('it''s') reads
 * as two adjacent strings, which is the same for our purpose. Dollar
 * quoting and E'' escapes are not recognised: the store uses neither. */
static const char *skip_quoted(const char *p)
{
    const char *end = NULL;
    if (*p == '\'' || *p == '"') {
        end = strchr(p + 1, *p);
    } else if (p[0] == '-' && p[1] == '-') {
        end = strchr(p, '\n');
    } else if (p[0] == '/' && p[1] == '*') {
        end = strstr(p + 2, "*/");
        if (end != NULL)
            end++;
    } else {
        return p;
    }
    return end != NULL ? end + 1 : p + strlen(p);
}

/*
 * Copies sql with each ?N placeholder rewritten to $N (same length) and
 * stores the highest N. A bare "?" or an N out of 1..DB_PG_MAX_PARAMS is
 * refused (KM_ERR_INVALID, message in c).
 */
static int translate(struct pg_conn *c, const char *sql, char **out, int *nparams)
{
    char *t = xstrdup(sql);
    int max = 0;
    for (char *p = t; *p != '\0';) {
        const char *q = skip_quoted(p);
        if (q != p) {
            p = t + (q - t);
            continue;
        }
        if (*p != '?') {
            p++;
            continue;
        }
        long n = 0;
        char *d = p + 1;
        for (; isdigit((unsigned char)*d) && n <= DB_PG_MAX_PARAMS; d++)
            n = n * 10 + (*d - '0');
        if (n < 1 || n > DB_PG_MAX_PARAMS) {
            set_errmsg(c, "prepare: placeholder at offset %td must be ?1..?%d", p - t,
                       DB_PG_MAX_PARAMS);
            free(t);
            return KM_ERR_INVALID;
        }
        *p = '$';
        max = n > max ? (int)n : max;
        p = d;
    }
    *out = t;
    *nparams = max;
    return KM_OK;
}

/* Whether sql starts (after whitespace) with the keyword kw. */
static bool starts_with_keyword(const char *sql, const char *kw)
{
    while (isspace((unsigned char)*sql) || *sql == '(')
        sql++;
    size_t n = strlen(kw);
    return strncasecmp(sql, kw, n) == 0 && !is_ident_char(sql[n]);
}

/* Prepares s on the server if this session does not have it yet. */
static int ensure_prepared(struct pg_conn *c, struct pg_stmt *s)
{
    if (s->prepared_gen == c->generation)
        return KM_OK;
    PGresult *res = PQprepare(c->pg, s->name, s->sql, 0, NULL);
    note_tx(c);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return fail_result(c, res, "prepare");
    PQclear(res);
    s->prepared_gen = c->generation;
    return KM_OK;
}

static void free_stmt_memory(struct pg_stmt *s)
{
    PQclear(s->res);
    for (int i = 0; i < s->nparams; i++)
        free(s->params[i].text);
    free(s->params);
    free(s->values);
    free(s->sql);
    free(s);
}

static struct db_stmt *pg_prepare(struct db_conn *db, const char *sql)
{
    struct pg_conn *c = conn_of(db);
    struct pg_stmt *s = xcalloc(1, sizeof(*s));
    s->base.conn = db;
    s->row = -1;
    if (translate(c, sql, &s->sql, &s->nparams) != KM_OK) {
        free(s);
        return NULL;
    }
    snprintf(s->name, sizeof(s->name), "km_%" PRIu64, ++c->next_stmt);
    s->readonly = starts_with_keyword(sql, "SELECT") || starts_with_keyword(sql, "WITH");
    /* One spare slot: no zero-size allocation for a statement without
     * parameters. */
    s->params = XALLOC_ARRAY(struct pg_param, (size_t)s->nparams + 1);
    s->values = XALLOC_ARRAY(const char *, (size_t)s->nparams + 1);
    /* Prepared now, so a mistake in our SQL shows here, as with SQLite.
     * With the server unreachable it is prepared at its first execution
     * instead, which then reports the lost connection (KM_ERR_CONNECT)
     * rather than a statement that does not exist. */
    int r = ensure_connected(c);
    if (r == KM_ERR_CONNECT)
        return &s->base;
    if (r != KM_OK || ensure_prepared(c, s) != KM_OK) {
        if (PQstatus(c->pg) != CONNECTION_OK)
            return &s->base;
        free_stmt_memory(s);
        return NULL;
    }
    return &s->base;
}

/* Statements must be freed before their connection is closed. */
static void pg_stmt_free(struct db_stmt *st)
{
    struct pg_stmt *s = stmt_of(st);
    struct pg_conn *c = conn_of(st->conn);
    /* DEALLOCATE is not transactional and cannot run in an aborted
     * transaction; there the name stays until the session ends (names are
     * never reused, so it is only a little server memory). */
    PGTransactionStatusType t = PQtransactionStatus(c->pg);
    if (s->prepared_gen == c->generation && PQstatus(c->pg) == CONNECTION_OK &&
        (t == PQTRANS_IDLE || t == PQTRANS_INTRANS)) {
        char sql[64];
        snprintf(sql, sizeof(sql), "DEALLOCATE %s", s->name);
        (void)run(c, sql, "DEALLOCATE", NULL);
    }
    free_stmt_memory(s);
}

static void pg_reset(struct db_stmt *st)
{
    struct pg_stmt *s = stmt_of(st);
    PQclear(s->res);
    s->res = NULL;
    s->executed = false;
    s->row = -1;
    for (int i = 0; i < s->nparams; i++) {
        free(s->params[i].text);
        s->params[i].text = NULL;
        s->values[i] = NULL;
    }
}

/* The storage of parameter idx, or NULL (with the message) when out of
 * range. */
static struct pg_param *param_at(struct pg_stmt *s, int idx)
{
    if (idx < 1 || idx > s->nparams) {
        set_errmsg(conn_of(s->base.conn), "bind: parameter %d of a statement with %d", idx,
                   s->nparams);
        return NULL;
    }
    struct pg_param *p = &s->params[idx - 1];
    free(p->text);
    p->text = NULL;
    s->values[idx - 1] = NULL;
    return p;
}

static int pg_bind_int64(struct db_stmt *st, int idx, int64_t v)
{
    struct pg_stmt *s = stmt_of(st);
    struct pg_param *p = param_at(s, idx);
    if (p == NULL)
        return KM_ERR_RANGE;
    snprintf(p->num, sizeof(p->num), "%" PRId64, v);
    s->values[idx - 1] = p->num;
    return KM_OK;
}

static int pg_bind_text(struct db_stmt *st, int idx, const char *v)
{
    struct pg_stmt *s = stmt_of(st);
    struct pg_param *p = param_at(s, idx);
    if (p == NULL)
        return KM_ERR_RANGE;
    if (v != NULL) {
        p->text = xstrdup(v);
        s->values[idx - 1] = p->text;
    }
    return KM_OK;
}

static int pg_bind_null(struct db_stmt *st, int idx)
{
    return param_at(stmt_of(st), idx) != NULL ? KM_OK : KM_ERR_RANGE;
}

/* One execution: reconnect and prepare as needed, then run. */
static int try_execute(struct pg_conn *c, struct pg_stmt *s)
{
    int r = ensure_connected(c);
    if (r == KM_OK)
        r = ensure_prepared(c, s);
    if (r != KM_OK)
        return r;
    PGresult *res = PQexecPrepared(c->pg, s->name, s->nparams, s->values, NULL, NULL, 0);
    note_tx(c);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        return fail_result(c, res, "statement");
    s->res = res;
    s->changes = s->readonly ? 0 : strtoll(PQcmdTuples(res), NULL, 10);
    return KM_OK;
}

static int execute(struct pg_stmt *s)
{
    struct pg_conn *c = conn_of(s->base.conn);
    bool was_up = PQstatus(c->pg) == CONNECTION_OK;
    int r = try_execute(c, s);
    /* This read found the connection gone: outside a transaction it is
     * safe to send it once more on a fresh one. */
    if (r == KM_ERR_CONNECT && was_up && s->readonly && !c->in_tx)
        r = try_execute(c, s);
    return r;
}

static int pg_step(struct db_stmt *st)
{
    struct pg_stmt *s = stmt_of(st);
    if (!s->executed) {
        int r = execute(s);
        if (r != KM_OK)
            return r;
        s->executed = true;
    }
    if (s->row + 1 < PQntuples(s->res)) {
        s->row++;
        return DB_ROW;
    }
    s->row = PQntuples(s->res);
    return DB_DONE;
}

static bool pg_stmt_readonly(struct db_stmt *st)
{
    return stmt_of(st)->readonly;
}

static int64_t pg_changes(struct db_stmt *st)
{
    return stmt_of(st)->changes;
}

static int pg_param_count(struct db_stmt *st)
{
    return stmt_of(st)->nparams;
}

/* Whether (current row, col) is a cell of the result. */
static bool have_cell(struct pg_stmt *s, int col)
{
    return s->res != NULL && s->row >= 0 && s->row < PQntuples(s->res) && col >= 0 &&
           col < PQnfields(s->res);
}

static const char *pg_col_text(struct db_stmt *st, int col)
{
    struct pg_stmt *s = stmt_of(st);
    if (!have_cell(s, col) || PQgetisnull(s->res, s->row, col))
        return NULL;
    return PQgetvalue(s->res, s->row, col);
}

static int64_t pg_col_int64(struct db_stmt *st, int col)
{
    const char *v = pg_col_text(st, col);
    if (v == NULL)
        return 0;
    /* A comparison or EXISTS is a boolean in PostgreSQL, 0/1 in SQLite. */
    if (strcmp(v, "t") == 0)
        return 1;
    return strtoll(v, NULL, 10); /* "f" reads as 0 */
}

static size_t pg_col_bytes(struct db_stmt *st, int col)
{
    struct pg_stmt *s = stmt_of(st);
    return have_cell(s, col) ? (size_t)PQgetlength(s->res, s->row, col) : 0;
}

static bool pg_col_is_null(struct db_stmt *st, int col)
{
    return pg_col_text(st, col) == NULL;
}

/* ---- LISTEN / NOTIFY ---- */

/* A channel is a plain lower-case identifier: it goes into LISTEN's text. */
static bool channel_ok(const char *channel)
{
    if (channel == NULL || channel[0] == '\0' || strlen(channel) > 63 ||
        !(islower((unsigned char)channel[0]) || channel[0] == '_'))
        return false;
    for (const char *p = channel; *p; p++) {
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return false;
    }
    return true;
}

static int pg_notify(struct db_conn *db, const char *channel, const char *payload)
{
    struct pg_conn *c = conn_of(db);
    if (!channel_ok(channel) || strlen(payload) > DB_NOTIFY_PAYLOAD_MAX)
        return KM_ERR_INVALID;
    int r = ensure_connected(c);
    if (r != KM_OK)
        return r;
    const char *values[2] = {channel, payload};
    PGresult *res = PQexecParams(c->pg, "SELECT pg_notify($1, $2)", 2, NULL, values, NULL, NULL, 0);
    note_tx(c);
    if (!result_ok(res))
        return fail_result(c, res, "notify");
    PQclear(res);
    return KM_OK;
}

static int pg_listen(struct db_conn *db, const char *channel)
{
    struct pg_conn *c = conn_of(db);
    if (!channel_ok(channel))
        return KM_ERR_INVALID;
    int r = ensure_connected(c);
    if (r != KM_OK)
        return r;
    char sql[96];
    snprintf(sql, sizeof(sql), "LISTEN %s", channel);
    return run(c, sql, "listen", NULL);
}

/* The next queued notice, if any. */
static bool take_notice(struct pg_conn *c, char *payload, size_t cap)
{
    PGnotify *n = PQnotifies(c->pg);
    if (n == NULL)
        return false;
    snprintf(payload, cap, "%s", n->extra ? n->extra : "");
    PQfreemem(n);
    return true;
}

static int pg_wait_notify(struct db_conn *db, uint32_t timeout_ms, char *payload, size_t cap)
{
    struct pg_conn *c = conn_of(db);
    if (PQstatus(c->pg) != CONNECTION_OK || PQconsumeInput(c->pg) == 0) {
        set_conn_errmsg(c, "listening connection lost");
        return KM_ERR_CONNECT;
    }
    if (take_notice(c, payload, cap))
        return KM_OK;
    struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN};
    int n = poll(&pfd, 1, (int)timeout_ms);
    if (n < 0 && errno != EINTR) {
        set_errmsg(c, "poll: %s", strerror(errno));
        return KM_ERR_IO;
    }
    if (n <= 0)
        return KM_ERR_TIMEOUT;
    if (PQconsumeInput(c->pg) == 0) {
        set_conn_errmsg(c, "listening connection lost");
        return KM_ERR_CONNECT;
    }
    return take_notice(c, payload, cap) ? KM_OK : KM_ERR_TIMEOUT;
}

const struct db_ops db_pg_ops = {
    .open = pg_open,
    .close = pg_close,
    .errmsg = pg_errmsg,
    .exec_script = pg_exec_script,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .in_transaction = pg_in_transaction,
    .schema_version = pg_schema_version,
    .set_schema_version = pg_set_schema_version,
    .prepare = pg_prepare,
    .stmt_free = pg_stmt_free,
    .reset = pg_reset,
    .bind_int64 = pg_bind_int64,
    .bind_text = pg_bind_text,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .stmt_readonly = pg_stmt_readonly,
    .changes = pg_changes,
    .param_count = pg_param_count,
    .col_int64 = pg_col_int64,
    .col_text = pg_col_text,
    .col_bytes = pg_col_bytes,
    .col_is_null = pg_col_is_null,
    .notify = pg_notify,
    .listen = pg_listen,
    .wait_notify = pg_wait_notify,
};
