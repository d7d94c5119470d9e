/*
 * db.h - the store's database seam: one connection, prepared statements
 * with numbered ?N placeholders, and 64-bit integer, text and NULL values.
 * Everything SQL-engine specific lives behind it, in a backend:
 *
 *   store/sqlite/db_sqlite.c   the embedded default (a file path)
 *   store/pg/db_pg.c           PostgreSQL through libpq
 *
 * The store (the .c files of src/store) is written once against this header. Its SQL is
 * the common subset of both engines (BIGINT, TEXT, ON CONFLICT DO NOTHING,
 * ?N placeholders, which the PostgreSQL backend rewrites to $N); where the
 * engines differ the store picks a text by db_kind().
 *
 * Not thread-safe: one connection (and its statements) belongs to one
 * thread at a time; the store's pool hands them out.
 *
 * Return codes: DB_ROW / DB_DONE from db_step; otherwise KM_OK or a
 * negative KM_ERR_*: KM_ERR_EXISTS (a constraint refused the row),
 * KM_ERR_TIMEOUT (locked or busy: worth another try), KM_ERR_CONNECT (the
 * server is gone: the backend reconnects on the next db_begin or
 * statement), KM_ERR_IO (anything else; db_errmsg says what).
 */
#ifndef KM_STORE_DB_H
#define KM_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum db_kind {
    DB_SQLITE,
    DB_POSTGRES,
};

/* db_step results (the KM_ERR_* codes are negative). */
enum {
    DB_DONE = 0,
    DB_ROW = 1,
};

struct db_conn;
struct db_stmt;

struct db_open_options {
    /* SQLite: the busy timeout against other processes (a backup);
     * PostgreSQL: lock_timeout, how long a writer waits for another */
    uint32_t busy_timeout_ms;
    /* SQLite */
    bool wal;               /* journal_mode=WAL */
    bool fsync_each_commit; /* synchronous=FULL, else NORMAL */
    /* With wal and fsync_each_commit: commits run with synchronous=NORMAL
     * (the WAL is written, not synced) and the caller makes them durable
     * with db_sync_committed, so one sync can cover the commits of many
     * connections (group commit: the store does it, store.c). */
    bool group_commit;
    /* PostgreSQL */
    uint32_t connect_timeout_secs; /* 0 = 10 */
};

/*
 * Reads a database URL: "postgresql://..." or "postgres://..." (libpq's
 * URI form, passed on as is) is PostgreSQL; "sqlite:PATH" or a bare PATH
 * is SQLite. *target points into url (the path, or the whole URI).
 * KM_ERR_INVALID for an empty URL or an unknown scheme ("mysql://...").
 */
int db_parse_url(const char *url, enum db_kind *kind, const char **target,
                 struct km_error *err) KM_WUR;

/* Opens one connection. err says why not (the URL's password is never
 * part of a message). */
int db_open(struct db_conn **out, enum db_kind kind, const char *target,
            const struct db_open_options *o, struct km_error *err) KM_WUR;

/* Closes; with checkpoint, SQLite first truncates its WAL. NULL: no-op. */
void db_close(struct db_conn *c, bool checkpoint);

enum db_kind db_kind(const struct db_conn *c);

/* The last error of the connection (for logs: never contains a bound
 * value or a password). */
const char *db_errmsg(struct db_conn *c);

/* Runs a script of several statements without parameters (migrations). */
int db_exec_script(struct db_conn *c, const char *sql) KM_WUR;

/*
 * Write transactions. db_begin starts one that excludes every other
 * writer of the database until db_commit / db_rollback: BEGIN IMMEDIATE
 * in SQLite; in PostgreSQL BEGIN plus a transaction-scoped advisory lock
 * shared by every gateway on that database, so read-then-write logic
 * (quotas, compare-and-set steps) behaves as with SQLite's single writer.
 * db_rollback is harmless outside a transaction.
 */
int db_begin(struct db_conn *c) KM_WUR;
int db_commit(struct db_conn *c) KM_WUR;

/* Whether c was opened with group_commit in effect (SQLite, WAL, fsync on):
 * then a commit is durable only after a db_sync_committed that began after
 * it. Always false for PostgreSQL, whose commits are durable as they are. */
bool db_needs_sync(const struct db_conn *c);

/* Makes every transaction committed so far on c's database, by any
 * connection, durable: SQLite syncs its WAL file (fdatasync, and the
 * directory on the first call). Any connection of the database will do;
 * KM_OK at once where db_needs_sync is false. */
int db_sync_committed(struct db_conn *c) KM_WUR;
void db_rollback(struct db_conn *c);
bool db_in_transaction(struct db_conn *c);

/* The schema version recorded in the database (0 for a new one) and its
 * update (inside the migration's transaction): PRAGMA user_version in
 * SQLite, table keymeld_schema in PostgreSQL. */
int db_schema_version(struct db_conn *c, int *version) KM_WUR;
int db_set_schema_version(struct db_conn *c, int version) KM_WUR;

/* Prepares sql (one statement, ?1..?N placeholders). NULL on failure
 * (a bug in our SQL, or the connection is gone: db_errmsg). */
struct db_stmt *db_prepare(struct db_conn *c, const char *sql);
void db_stmt_free(struct db_stmt *st);

/* Ready for a new execution: results dropped, bindings cleared. */
void db_reset(struct db_stmt *st);

/* Binds parameter idx (1-based). Text is copied; NULL text binds NULL. */
int db_bind_int64(struct db_stmt *st, int idx, int64_t v) KM_WUR;
int db_bind_text(struct db_stmt *st, int idx, const char *v) KM_WUR;
int db_bind_null(struct db_stmt *st, int idx) KM_WUR;

/* Executes on the first call after a reset, then walks the rows: DB_ROW
 * while there is one, DB_DONE at the end, or an error (above). */
int db_step(struct db_stmt *st) KM_WUR;

/* Whether the statement only reads (a SELECT). */
bool db_stmt_readonly(struct db_stmt *st);

/* Rows changed by the last execution of an INSERT/UPDATE/DELETE. */
int64_t db_changes(struct db_stmt *st);

/* The highest placeholder number of the statement (?N). */
int db_param_count(struct db_stmt *st);

/* Columns of the current row (0-based). Text stays valid until the next
 * db_step or db_reset of the statement; NULL for SQL NULL. */
int64_t db_col_int64(struct db_stmt *st, int col);
const char *db_col_text(struct db_stmt *st, int col);
size_t db_col_bytes(struct db_stmt *st, int col);
bool db_col_is_null(struct db_stmt *st, int col);

/*
 * Change notices between processes on one database (PostgreSQL
 * LISTEN/NOTIFY: several gateways wake each other's long polls). SQLite
 * serves one gateway: db_notify is a no-op there and db_listen
 * KM_ERR_INVALID. channel is a plain identifier; payload at most
 * DB_NOTIFY_PAYLOAD_MAX bytes.
 */
#define DB_NOTIFY_PAYLOAD_MAX 512
int db_notify(struct db_conn *c, const char *channel, const char *payload) KM_WUR;
int db_listen(struct db_conn *c, const char *channel) KM_WUR;
/* Waits up to timeout_ms for a notice on a listening connection: KM_OK
 * with its payload, KM_ERR_TIMEOUT when none came, KM_ERR_CONNECT when the
 * connection was lost (notices may have been missed: call db_listen again
 * and treat everything as changed). */
int db_wait_notify(struct db_conn *c, uint32_t timeout_ms, char *payload, size_t cap) KM_WUR;

#endif /* KM_STORE_DB_H */
