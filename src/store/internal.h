/*
 * internal.h - shared between the store's source files; not an API.
 */
#ifndef KM_STORE_INTERNAL_H
#define KM_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>

#include "store/store.h"

/* Every distinct SQL text a connection prepares stays cached (a statement
 * may be in use while another is prepared, so none can be evicted): this
 * must exceed the number of SQL_* statements in src/store (64 today);
 * tests/unit/store checks it. */
#define STORE_STMT_CACHE 160

/* One pooled connection with its prepared statements, keyed by the
 * address of the SQL text (every query is a static string). */
struct store_conn {
    sqlite3 *db;
    /* The store's writer lock, held from store_begin to commit/rollback:
     * in-process writers queue on a mutex instead of meeting SQLITE_BUSY
     * and sleeping in SQLite's busy handler (milliseconds each). */
    pthread_mutex_t *write_lock;
    bool writing;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[STORE_STMT_CACHE];
    size_t ncache;
};

/* Brings db to STORE_SCHEMA_VERSION (schema.c). */
int store_migrate(sqlite3 *db, struct km_error *err) KM_WUR;

/* Borrows a connection (blocks while all are in use) and gives it back. */
struct store_conn *store_conn_acquire(struct store *s);
void store_conn_release(struct store *s, struct store_conn *c);

/* The cached statement for sql, reset and with bindings cleared. NULL on a
 * prepare failure (a bug in our SQL: logged). */
sqlite3_stmt *store_stmt(struct store_conn *c, const char *sql);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. store_begin takes the writer lock;
 * a successful commit or the rollback releases it (a failed commit leaves
 * it for the rollback; releasing the connection rolls back at the latest). */
int store_begin(struct store_conn *c) KM_WUR;
int store_commit(struct store_conn *c) KM_WUR;
void store_rollback(struct store_conn *c);

/* Ends a write begun with store_begin on c, taken from s: commits when r
 * is KM_OK, rolls back otherwise (also when the commit fails), releases
 * c. Returns r, or the commit's error. */
int store_end(struct store *s, struct store_conn *c, int r) KM_WUR;

/* sqlite3_step, except that a write outside store_begin (autocommit)
 * holds the writer lock for its duration. Every query of the store steps
 * through this. */
int store_step(struct store_conn *c, sqlite3_stmt *st);

/* Maps an SQLite result code to KM_*, logging unexpected ones. */
int store_sqlite_err(struct store_conn *c, int rc, const char *what);

/* Binds: text (NULL binds NULL), JSON (serialized; NULL binds NULL). */
int store_bind_text(sqlite3_stmt *st, int idx, const char *v) KM_WUR;
int store_bind_json(sqlite3_stmt *st, int idx, const json_t *v) KM_WUR;

/* Column readers: a heap copy (NULL for SQL NULL), a copy into a fixed
 * buffer (truncating), and parsed JSON (NULL for SQL NULL or bad JSON). */
char *store_col_strdup(sqlite3_stmt *st, int col);
void store_col_copy(char *dst, size_t cap, sqlite3_stmt *st, int col);
json_t *store_col_json(sqlite3_stmt *st, int col);

int64_t store_now(void);

/* Runs a single-row "SELECT id FROM ... WHERE ..." style listing with one
 * int64 parameter (or none when param < 0). */
int store_list_ids(struct store *s, const char *sql, int64_t param, char (**ids)[37],
                   size_t *n) KM_WUR;

#endif /* KM_STORE_INTERNAL_H */
