/*
 * db_sqlite.c - the SQLite backend of db.h: the embedded default.
 *
 * Durability: WAL journal with synchronous=FULL unless fsync_each_commit
 * is off (NORMAL: survives a process crash, a power loss may undo the
 * last commits). With group_commit (db.h) a commit runs with NORMAL and
 * is made durable by sq_sync_committed, which syncs the WAL file: what
 * FULL does inside every commit, done once for all the commits written
 * before it. NORMAL still syncs the WAL before each checkpoint, the
 * database file after it and the WAL header when the WAL is reused, so a
 * commit a checkpoint moved out of the WAL is durable too.
 *
 * A write transaction is BEGIN IMMEDIATE; the busy timeout only matters
 * against other processes, since the store queues its own writers on a
 * mutex first.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/xmalloc.h"
#include "store/db_backend.h"
#include "common/banned.h"

struct sqlite_conn {
    struct db_conn base;
    sqlite3 *db;
    /* BEGIN IMMEDIATE and COMMIT, prepared once: every write runs both, and
     * sqlite3_exec would parse them again each time. */
    sqlite3_stmt *begin, *commit;
};

struct sqlite_stmt {
    struct db_stmt base;
    sqlite3_stmt *st;
    int64_t changes; /* of the last execution */
};

static sqlite3 *handle(struct db_conn *c)
{
    return ((struct sqlite_conn *)c)->db;
}

static struct sqlite_stmt *stmt_of(struct db_stmt *st)
{
    return (struct sqlite_stmt *)st;
}

/* SQLite result code -> KM_*. */
static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
        return KM_OK;
    case SQLITE_CONSTRAINT:
        return KM_ERR_EXISTS;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return KM_ERR_TIMEOUT;
    case SQLITE_NOMEM:
        return KM_ERR_NOMEM;
    default:
        return KM_ERR_IO;
    }
}

/* mkdir -p for the database's directory. */
static int make_parent_dirs(const char *path, struct km_error *err)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int r = KM_OK;
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; r == KM_OK; p++) {
            if (*p != '/' && *p != '\0')
                continue;
            char c = *p;
            *p = '\0';
            if (mkdir(dir, 0750) != 0 && errno != EEXIST)
                r = km_error_set(err, KM_ERR_IO, errno, "cannot create directory '%s': %s", dir,
                                 strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    free(dir);
    return r;
}

static int sq_open(struct db_conn **out, const char *path, const struct db_open_options *o,
                   struct km_error *err)
{
    int r = make_parent_dirs(path, err);
    if (r != KM_OK)
        return r;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        km_error_set(err, KM_ERR_IO, 0, "cannot open database '%s': %s", path,
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return KM_ERR_IO;
    }
    sqlite3_busy_timeout(db, (int)(o->busy_timeout_ms ? o->busy_timeout_ms : 5000));
    bool group_commit = o->wal && o->fsync_each_commit && o->group_commit;
    char pragmas[256];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA journal_mode=%s; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;"
             "PRAGMA temp_store=MEMORY;",
             o->wal ? "WAL" : "DELETE", o->fsync_each_commit && !group_commit ? "FULL" : "NORMAL");
    char *msg = NULL;
    if (sqlite3_exec(db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        km_error_set(err, KM_ERR_IO, 0, "cannot configure database '%s': %s", path,
                     msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(db);
        return KM_ERR_IO;
    }
    struct sqlite_conn *c = xcalloc(1, sizeof(*c));
    c->db = db;
    c->base.needs_sync = group_commit;
    *out = &c->base;
    return KM_OK;
}

/* Syncs the WAL through SQLite's own handle of it (in WAL mode the
 * "journal" file control names the WAL), so SQLite's unix VFS also syncs
 * the directory the first time, as it does for its own syncs. Linux
 * flushes a file whichever descriptor asks, so this covers the commits
 * of every connection. */
static sqlite3_file *wal_file(sqlite3 *db)
{
    sqlite3_file *wal = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK ||
        wal == NULL || wal->pMethods == NULL)
        return NULL;
    return wal;
}

static int sq_sync_committed(struct db_conn *c)
{
    sqlite3_file *wal = wal_file(handle(c));
    if (wal == NULL) {
        /* A connection that has not read yet has no WAL open: a read opens it. */
        (void)sqlite3_exec(handle(c), "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL);
        wal = wal_file(handle(c));
    }
    if (wal == NULL)
        return KM_ERR_STATE;
    return map_rc(wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL));
}

static void sq_close(struct db_conn *c, bool checkpoint)
{
    sqlite3 *db = handle(c);
    struct sqlite_conn *sc = (struct sqlite_conn *)c;
    sqlite3_finalize(sc->begin);
    sqlite3_finalize(sc->commit);
    if (checkpoint) {
        int busy, logged;
        (void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &logged, &busy);
    }
    sqlite3_close(db);
    free(c);
}

static const char *sq_errmsg(struct db_conn *c)
{
    return sqlite3_errmsg(handle(c));
}

static int sq_exec_script(struct db_conn *c, const char *sql)
{
    return map_rc(sqlite3_exec(handle(c), sql, NULL, NULL, NULL));
}

/* Runs one of the connection's prepared control statements. */
static int run_control(struct db_conn *c, sqlite3_stmt **st, const char *sql)
{
    if (*st == NULL &&
        sqlite3_prepare_v3(handle(c), sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        int r = map_rc(sqlite3_errcode(handle(c)));
        return r != KM_OK ? r : KM_ERR_IO;
    }
    int rc = sqlite3_step(*st);
    sqlite3_reset(*st);
    return rc == SQLITE_DONE ? KM_OK : map_rc(rc);
}

static int sq_begin(struct db_conn *c)
{
    return run_control(c, &((struct sqlite_conn *)c)->begin, "BEGIN IMMEDIATE");
}

static int sq_commit(struct db_conn *c)
{
    return run_control(c, &((struct sqlite_conn *)c)->commit, "COMMIT");
}

static void sq_rollback(struct db_conn *c)
{
    if (!sqlite3_get_autocommit(handle(c)))
        (void)sq_exec_script(c, "ROLLBACK");
}

static bool sq_in_transaction(struct db_conn *c)
{
    return !sqlite3_get_autocommit(handle(c));
}

static int sq_schema_version(struct db_conn *c, int *version)
{
    sqlite3_stmt *st = NULL;
    int r = KM_ERR_IO;
    if (sqlite3_prepare_v2(handle(c), "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
        r = KM_OK;
    }
    sqlite3_finalize(st);
    return r;
}

static int sq_set_schema_version(struct db_conn *c, int version)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
    return sq_exec_script(c, sql);
}

static struct db_stmt *sq_prepare(struct db_conn *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(handle(c), sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    struct sqlite_stmt *s = xcalloc(1, sizeof(*s));
    s->st = st;
    return &s->base;
}

static void sq_stmt_free(struct db_stmt *st)
{
    sqlite3_finalize(stmt_of(st)->st);
    free(st);
}

static void sq_reset(struct db_stmt *st)
{
    sqlite3_reset(stmt_of(st)->st);
    sqlite3_clear_bindings(stmt_of(st)->st);
}

static int sq_bind_int64(struct db_stmt *st, int idx, int64_t v)
{
    return map_rc(sqlite3_bind_int64(stmt_of(st)->st, idx, v));
}

static int sq_bind_text(struct db_stmt *st, int idx, const char *v)
{
    sqlite3_stmt *s = stmt_of(st)->st;
    return map_rc(v ? sqlite3_bind_text(s, idx, v, -1, SQLITE_TRANSIENT)
                    : sqlite3_bind_null(s, idx));
}

static int sq_bind_null(struct db_stmt *st, int idx)
{
    return map_rc(sqlite3_bind_null(stmt_of(st)->st, idx));
}

static int sq_step(struct db_stmt *st)
{
    struct sqlite_stmt *s = stmt_of(st);
    int rc = sqlite3_step(s->st);
    if (rc == SQLITE_ROW)
        return DB_ROW;
    if (rc == SQLITE_DONE) {
        s->changes = sqlite3_changes(sqlite3_db_handle(s->st));
        return DB_DONE;
    }
    return map_rc(rc);
}

static bool sq_stmt_readonly(struct db_stmt *st)
{
    return sqlite3_stmt_readonly(stmt_of(st)->st) != 0;
}

static int64_t sq_changes(struct db_stmt *st)
{
    return stmt_of(st)->changes;
}

static int sq_param_count(struct db_stmt *st)
{
    return sqlite3_bind_parameter_count(stmt_of(st)->st);
}

static int64_t sq_col_int64(struct db_stmt *st, int col)
{
    return sqlite3_column_int64(stmt_of(st)->st, col);
}

static const char *sq_col_text(struct db_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(stmt_of(st)->st, col);
}

static size_t sq_col_bytes(struct db_stmt *st, int col)
{
    return (size_t)sqlite3_column_bytes(stmt_of(st)->st, col);
}

static bool sq_col_is_null(struct db_stmt *st, int col)
{
    return sqlite3_column_type(stmt_of(st)->st, col) == SQLITE_NULL;
}

/* One gateway per SQLite file: nobody else to tell. */
static int sq_notify(struct db_conn *c, const char *channel, const char *payload)
{
    (void)c;
    (void)channel;
    (void)payload;
    return KM_OK;
}

static int sq_listen(struct db_conn *c, const char *channel)
{
    (void)c;
    (void)channel;
    return KM_ERR_INVALID;
}

static int sq_wait_notify(struct db_conn *c, uint32_t timeout_ms, char *payload, size_t cap)
{
    (void)c;
    (void)timeout_ms;
    (void)payload;
    (void)cap;
    return KM_ERR_INVALID;
}

const struct db_ops db_sqlite_ops = {
    .open = sq_open,
    .close = sq_close,
    .errmsg = sq_errmsg,
    .exec_script = sq_exec_script,
    .begin = sq_begin,
    .commit = sq_commit,
    .sync_committed = sq_sync_committed,
    .rollback = sq_rollback,
    .in_transaction = sq_in_transaction,
    .schema_version = sq_schema_version,
    .set_schema_version = sq_set_schema_version,
    .prepare = sq_prepare,
    .stmt_free = sq_stmt_free,
    .reset = sq_reset,
    .bind_int64 = sq_bind_int64,
    .bind_text = sq_bind_text,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .stmt_readonly = sq_stmt_readonly,
    .changes = sq_changes,
    .param_count = sq_param_count,
    .col_int64 = sq_col_int64,
    .col_text = sq_col_text,
    .col_bytes = sq_col_bytes,
    .col_is_null = sq_col_is_null,
    .notify = sq_notify,
    .listen = sq_listen,
    .wait_notify = sq_wait_notify,
};
