/*
 * db.c - db.h's calls, dispatched to the connection's backend, and the
 * database URL.
 */
#include "store/db.h"

#include <string.h>

#include "store/db_backend.h"
#include "common/banned.h"

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int db_parse_url(const char *url, enum db_kind *kind, const char **target, struct km_error *err)
{
    if (url == NULL || url[0] == '\0')
        return km_error_set(err, KM_ERR_INVALID, 0, "database URL is empty");
    if (has_prefix(url, "postgresql://") || has_prefix(url, "postgres://")) {
        *kind = DB_POSTGRES;
        *target = url;
        return KM_OK;
    }
    if (has_prefix(url, "sqlite:")) {
        *kind = DB_SQLITE;
        *target = url + strlen("sqlite:");
        if (has_prefix(*target, "//")) /* sqlite:///abs/path */
            *target += 2;
        if ((*target)[0] == '\0')
            return km_error_set(err, KM_ERR_INVALID, 0, "database URL 'sqlite:' names no file");
        return KM_OK;
    }
    const char *colon = strstr(url, "://");
    if (colon != NULL)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "database URL scheme '%.*s' is not supported: use a file path, "
                            "sqlite:PATH or postgresql://...",
                            (int)(colon - url > 32 ? 32 : colon - url), url);
    *kind = DB_SQLITE;
    *target = url;
    return KM_OK;
}

int db_open(struct db_conn **out, enum db_kind kind, const char *target,
            const struct db_open_options *o, struct km_error *err)
{
    const struct db_ops *ops = kind == DB_POSTGRES ? &db_pg_ops : &db_sqlite_ops;
    *out = NULL;
    int r = ops->open(out, target, o, err);
    if (r == KM_OK) {
        (*out)->ops = ops;
        (*out)->kind = kind;
    }
    return r;
}

void db_close(struct db_conn *c, bool checkpoint)
{
    if (c != NULL)
        c->ops->close(c, checkpoint);
}

enum db_kind db_kind(const struct db_conn *c)
{
    return c->kind;
}

const char *db_errmsg(struct db_conn *c)
{
    return c->ops->errmsg(c);
}

int db_exec_script(struct db_conn *c, const char *sql)
{
    return c->ops->exec_script(c, sql);
}

int db_begin(struct db_conn *c)
{
    return c->ops->begin(c);
}

int db_commit(struct db_conn *c)
{
    return c->ops->commit(c);
}

bool db_needs_sync(const struct db_conn *c)
{
    return c->needs_sync;
}

int db_sync_committed(struct db_conn *c)
{
    if (!c->needs_sync || c->ops->sync_committed == NULL)
        return KM_OK;
    return c->ops->sync_committed(c);
}

void db_rollback(struct db_conn *c)
{
    c->ops->rollback(c);
}

bool db_in_transaction(struct db_conn *c)
{
    return c->ops->in_transaction(c);
}

int db_schema_version(struct db_conn *c, int *version)
{
    return c->ops->schema_version(c, version);
}

int db_set_schema_version(struct db_conn *c, int version)
{
    return c->ops->set_schema_version(c, version);
}

struct db_stmt *db_prepare(struct db_conn *c, const char *sql)
{
    struct db_stmt *st = c->ops->prepare(c, sql);
    if (st != NULL)
        st->conn = c;
    return st;
}

void db_stmt_free(struct db_stmt *st)
{
    if (st != NULL)
        st->conn->ops->stmt_free(st);
}

void db_reset(struct db_stmt *st)
{
    st->conn->ops->reset(st);
}

int db_bind_int64(struct db_stmt *st, int idx, int64_t v)
{
    return st->conn->ops->bind_int64(st, idx, v);
}

int db_bind_text(struct db_stmt *st, int idx, const char *v)
{
    return st->conn->ops->bind_text(st, idx, v);
}

int db_bind_null(struct db_stmt *st, int idx)
{
    return st->conn->ops->bind_null(st, idx);
}

int db_step(struct db_stmt *st)
{
    return st->conn->ops->step(st);
}

bool db_stmt_readonly(struct db_stmt *st)
{
    return st->conn->ops->stmt_readonly(st);
}

int64_t db_changes(struct db_stmt *st)
{
    return st->conn->ops->changes(st);
}

int db_param_count(struct db_stmt *st)
{
    return st->conn->ops->param_count(st);
}

int64_t db_col_int64(struct db_stmt *st, int col)
{
    return st->conn->ops->col_int64(st, col);
}

const char *db_col_text(struct db_stmt *st, int col)
{
    return st->conn->ops->col_text(st, col);
}

size_t db_col_bytes(struct db_stmt *st, int col)
{
    return st->conn->ops->col_bytes(st, col);
}

bool db_col_is_null(struct db_stmt *st, int col)
{
    return st->conn->ops->col_is_null(st, col);
}

int db_notify(struct db_conn *c, const char *channel, const char *payload)
{
    return c->ops->notify(c, channel, payload);
}

int db_listen(struct db_conn *c, const char *channel)
{
    return c->ops->listen(c, channel);
}

int db_wait_notify(struct db_conn *c, uint32_t timeout_ms, char *payload, size_t cap)
{
    return c->ops->wait_notify(c, timeout_ms, payload, cap);
}
