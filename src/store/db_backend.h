/*
 * db_backend.h - what a database backend implements (store/sqlite,
 * store/pg); db.c dispatches db.h's calls through it. Not an API.
 *
 * A backend's connection and statement structs begin with struct db_conn /
 * struct db_stmt, so db.c reaches the operations from either.
 */
#ifndef KM_STORE_DB_BACKEND_H
#define KM_STORE_DB_BACKEND_H

#include "store/db.h"

struct db_ops {
    int (*open)(struct db_conn **out, const char *target, const struct db_open_options *o,
                struct km_error *err);
    void (*close)(struct db_conn *c, bool checkpoint);
    const char *(*errmsg)(struct db_conn *c);
    int (*exec_script)(struct db_conn *c, const char *sql);
    int (*begin)(struct db_conn *c);
    int (*commit)(struct db_conn *c);
    int (*sync_committed)(struct db_conn *c); /* NULL: commits are durable */
    void (*rollback)(struct db_conn *c);
    bool (*in_transaction)(struct db_conn *c);
    int (*schema_version)(struct db_conn *c, int *version);
    int (*set_schema_version)(struct db_conn *c, int version);
    struct db_stmt *(*prepare)(struct db_conn *c, const char *sql);
    void (*stmt_free)(struct db_stmt *st);
    void (*reset)(struct db_stmt *st);
    int (*bind_int64)(struct db_stmt *st, int idx, int64_t v);
    int (*bind_text)(struct db_stmt *st, int idx, const char *v);
    int (*bind_null)(struct db_stmt *st, int idx);
    int (*step)(struct db_stmt *st);
    bool (*stmt_readonly)(struct db_stmt *st);
    int64_t (*changes)(struct db_stmt *st);
    int (*param_count)(struct db_stmt *st);
    int64_t (*col_int64)(struct db_stmt *st, int col);
    const char *(*col_text)(struct db_stmt *st, int col);
    size_t (*col_bytes)(struct db_stmt *st, int col);
    bool (*col_is_null)(struct db_stmt *st, int col);
    int (*notify)(struct db_conn *c, const char *channel, const char *payload);
    int (*listen)(struct db_conn *c, const char *channel);
    int (*wait_notify)(struct db_conn *c, uint32_t timeout_ms, char *payload, size_t cap);
};

struct db_conn {
    const struct db_ops *ops;
    enum db_kind kind;
    bool needs_sync; /* set by open: db_needs_sync */
};

struct db_stmt {
    struct db_conn *conn;
};

extern const struct db_ops db_sqlite_ops;
extern const struct db_ops db_pg_ops;

#endif /* KM_STORE_DB_BACKEND_H */
