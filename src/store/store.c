#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "store/internal.h"
#include "common/banned.h"

#define LOG_COMP "store"

struct store {
    struct store_conn *conns;
    bool *busy;
    unsigned nconns;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    pthread_mutex_t write_lock;
    char *path;
};

void store_options_default(struct store_options *o, const char *path)
{
    memset(o, 0, sizeof(*o));
    o->path = path;
    o->connections = 4;
    o->busy_timeout_ms = 5000;
    o->wal = true;
    o->fsync_each_commit = true;
}

int64_t store_now(void)
{
    return (int64_t)time(NULL);
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

static int conn_open(struct store_conn *c, const struct store_options *o,
                     pthread_mutex_t *write_lock, struct km_error *err)
{
    memset(c, 0, sizeof(*c));
    c->write_lock = write_lock;
    int rc = sqlite3_open_v2(
        o->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        km_error_set(err, KM_ERR_IO, 0, "cannot open database '%s': %s", o->path,
                     c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite3_close(c->db);
        c->db = NULL;
        return KM_ERR_IO;
    }
    sqlite3_busy_timeout(c->db, (int)o->busy_timeout_ms);
    char pragmas[256];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA journal_mode=%s; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;"
             "PRAGMA temp_store=MEMORY;",
             o->wal ? "WAL" : "DELETE", o->fsync_each_commit ? "FULL" : "NORMAL");
    char *msg = NULL;
    if (sqlite3_exec(c->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        km_error_set(err, KM_ERR_IO, 0, "cannot configure database '%s': %s", o->path,
                     msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(c->db);
        c->db = NULL;
        return KM_ERR_IO;
    }
    return KM_OK;
}

static void conn_close(struct store_conn *c)
{
    for (size_t i = 0; i < c->ncache; i++)
        sqlite3_finalize(c->cache[i].stmt);
    sqlite3_close(c->db);
    memset(c, 0, sizeof(*c));
}

int store_open(struct store **out, const struct store_options *opts, struct km_error *err)
{
    struct store_options o = *opts;
    *out = NULL;
    if (o.connections == 0)
        o.connections = 4;
    if (o.busy_timeout_ms == 0)
        o.busy_timeout_ms = 5000;
    if (o.path == NULL || o.path[0] == '\0')
        return km_error_set(err, KM_ERR_IO, 0, "database path is empty");
    int r = make_parent_dirs(o.path, err);
    if (r != KM_OK)
        return r;

    struct store *s = xcalloc(1, sizeof(*s));
    s->conns = XALLOC_ARRAY(struct store_conn, o.connections);
    s->busy = XALLOC_ARRAY(bool, o.connections);
    s->path = xstrdup(o.path);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, NULL);
    pthread_mutex_init(&s->write_lock, NULL);
    /* The first connection migrates before the others exist. */
    r = conn_open(&s->conns[0], &o, &s->write_lock, err);
    if (r == KM_OK) {
        s->nconns = 1;
        r = store_migrate(s->conns[0].db, err);
    }
    for (unsigned i = 1; r == KM_OK && i < o.connections; i++) {
        r = conn_open(&s->conns[i], &o, &s->write_lock, err);
        if (r == KM_OK)
            s->nconns++;
    }
    if (r != KM_OK) {
        store_close(s);
        return r;
    }
    log_info(LOG_COMP, "database ready at %s (schema version %d, %u connections, %s)", s->path,
             STORE_SCHEMA_VERSION, s->nconns,
             !o.wal                ? "rollback journal"
             : o.fsync_each_commit ? "WAL, fsync on every commit"
                                   : "WAL, fsync at checkpoints");
    *out = s;
    return KM_OK;
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    if (s->nconns > 0) {
        int busy, logged;
        int rc = sqlite3_wal_checkpoint_v2(s->conns[0].db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                           &logged, &busy);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn(LOG_COMP, "WAL checkpoint failed: %s", sqlite3_errmsg(s->conns[0].db));
    }
    for (unsigned i = 0; i < s->nconns; i++)
        conn_close(&s->conns[i]);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->write_lock);
    free(s->conns);
    free(s->busy);
    free(s->path);
    free(s);
}

struct store_conn *store_conn_acquire(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    for (;;) {
        for (unsigned i = 0; i < s->nconns; i++) {
            if (!s->busy[i]) {
                s->busy[i] = true;
                pthread_mutex_unlock(&s->lock);
                return &s->conns[i];
            }
        }
        pthread_cond_wait(&s->freed, &s->lock);
    }
}

void store_conn_release(struct store *s, struct store_conn *c)
{
    if (c->writing) {
        log_error(LOG_COMP, "a transaction was left open: rolled back");
        store_rollback(c);
    }
    pthread_mutex_lock(&s->lock);
    s->busy[c - s->conns] = false;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

sqlite3_stmt *store_stmt(struct store_conn *c, const char *sql)
{
    for (size_t i = 0; i < c->ncache; i++) {
        if (c->cache[i].sql == sql) {
            sqlite3_reset(c->cache[i].stmt);
            sqlite3_clear_bindings(c->cache[i].stmt);
            return c->cache[i].stmt;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error(LOG_COMP, "prepare failed: %s: %.120s", sqlite3_errmsg(c->db), sql);
        return NULL;
    }
    if (c->ncache == STORE_STMT_CACHE)
        KM_BUG("statement cache too small: raise STORE_STMT_CACHE");
    c->cache[c->ncache].sql = sql;
    c->cache[c->ncache].stmt = st;
    c->ncache++;
    return st;
}

int store_sqlite_err(struct store_conn *c, int rc, const char *what)
{
    int base = rc & 0xff;
    if (base == SQLITE_CONSTRAINT)
        return KM_ERR_EXISTS;
    log_error(LOG_COMP, "%s: %s", what, sqlite3_errmsg(c->db));
    return base == SQLITE_BUSY ? KM_ERR_TIMEOUT : KM_ERR_IO;
}

int store_step(struct store_conn *c, sqlite3_stmt *st)
{
    if (c->writing || sqlite3_stmt_readonly(st))
        return sqlite3_step(st);
    pthread_mutex_lock(c->write_lock);
    int rc = sqlite3_step(st);
    pthread_mutex_unlock(c->write_lock);
    return rc;
}

/* Transaction control: store_begin/commit/rollback manage the writer lock. */
static int exec_simple(struct store_conn *c, const char *sql)
{
    sqlite3_stmt *st = store_stmt(c, sql);
    if (st == NULL)
        return KM_ERR_INTERNAL;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? KM_OK : store_sqlite_err(c, rc, sql);
}

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

int store_begin(struct store_conn *c)
{
    pthread_mutex_lock(c->write_lock);
    int r = exec_simple(c, SQL_BEGIN);
    if (r != KM_OK)
        pthread_mutex_unlock(c->write_lock);
    c->writing = r == KM_OK;
    return r;
}

static void end_write(struct store_conn *c)
{
    if (c->writing) {
        c->writing = false;
        pthread_mutex_unlock(c->write_lock);
    }
}

int store_commit(struct store_conn *c)
{
    int r = exec_simple(c, SQL_COMMIT);
    if (r == KM_OK)
        end_write(c);
    return r;
}

void store_rollback(struct store_conn *c)
{
    if (!sqlite3_get_autocommit(c->db))
        (void)exec_simple(c, SQL_ROLLBACK);
    end_write(c);
}

int store_end(struct store *s, struct store_conn *c, int r)
{
    if (r == KM_OK)
        r = store_commit(c);
    if (r != KM_OK)
        store_rollback(c);
    store_conn_release(s, c);
    return r;
}

int store_bind_text(sqlite3_stmt *st, int idx, const char *v)
{
    int rc = v ? sqlite3_bind_text(st, idx, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, idx);
    return rc == SQLITE_OK ? KM_OK : KM_ERR_NOMEM;
}

int store_bind_json(sqlite3_stmt *st, int idx, const json_t *v)
{
    if (v == NULL)
        return sqlite3_bind_null(st, idx) == SQLITE_OK ? KM_OK : KM_ERR_NOMEM;
    char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return KM_ERR_NOMEM;
    /* SQLite frees the text when done with it. */
    int rc = sqlite3_bind_text(st, idx, text, -1, free);
    return rc == SQLITE_OK ? KM_OK : KM_ERR_NOMEM;
}

char *store_col_strdup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? xstrdup((const char *)t) : NULL;
}

void store_col_copy(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

json_t *store_col_json(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    if (t == NULL)
        return NULL;
    return json_loadb((const char *)t, (size_t)sqlite3_column_bytes(st, col), 0, NULL);
}

int store_list_ids(struct store *s, const char *sql, int64_t param, char (**ids)[37], size_t *n)
{
    *ids = NULL;
    *n = 0;
    struct store_conn *c = store_conn_acquire(s);
    sqlite3_stmt *st = store_stmt(c, sql);
    int r = KM_OK;
    if (st == NULL) {
        r = KM_ERR_INTERNAL;
        goto out;
    }
    if (param >= 0)
        sqlite3_bind_int64(st, 1, param);
    size_t cap = 0;
    int rc;
    while ((rc = store_step(c, st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *ids = xrealloc(*ids, cap * sizeof(**ids));
        }
        store_col_copy((*ids)[*n], 37, st, 0);
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        r = store_sqlite_err(c, rc, "list ids");
    sqlite3_reset(st);
out:
    store_conn_release(s, c);
    if (r != KM_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return r;
}

static const char SQL_PING[] = "SELECT 1";

int store_ping(struct store *s, struct km_error *err)
{
    struct store_conn *c = store_conn_acquire(s);
    sqlite3_stmt *st = store_stmt(c, SQL_PING);
    int r = KM_OK;
    if (st == NULL || store_step(c, st) != SQLITE_ROW)
        r = km_error_set(err, KM_ERR_IO, 0, "database not answering: %s", sqlite3_errmsg(c->db));
    if (st)
        sqlite3_reset(st);
    store_conn_release(s, c);
    return r;
}

static const char SQL_VERSION[] = "PRAGMA user_version";

int store_schema_version(struct store *s, int *version)
{
    struct store_conn *c = store_conn_acquire(s);
    sqlite3_stmt *st = store_stmt(c, SQL_VERSION);
    int r = KM_ERR_IO;
    if (st != NULL && store_step(c, st) == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
        r = KM_OK;
    }
    if (st)
        sqlite3_reset(st);
    store_conn_release(s, c);
    return r;
}

static const char SQL_STATS[] =
    "SELECT (SELECT count(*) FROM keygen_sessions),"
    " (SELECT count(*) FROM keygen_sessions WHERE status IN ('reserved','collecting','running')),"
    " (SELECT count(*) FROM signing_sessions),"
    " (SELECT count(*) FROM signing_sessions WHERE status IN ('awaiting_approvals','running')),"
    " (SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size())";

int store_stats(struct store *s, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    struct store_conn *c = store_conn_acquire(s);
    sqlite3_stmt *st = store_stmt(c, SQL_STATS);
    int r = KM_ERR_INTERNAL;
    if (st != NULL) {
        int rc = store_step(c, st);
        if (rc == SQLITE_ROW) {
            out->keygen_total = sqlite3_column_int64(st, 0);
            out->keygen_active = sqlite3_column_int64(st, 1);
            out->signing_total = sqlite3_column_int64(st, 2);
            out->signing_active = sqlite3_column_int64(st, 3);
            out->db_size_bytes = sqlite3_column_int64(st, 4);
            r = KM_OK;
        } else {
            r = store_sqlite_err(c, rc, "stats");
        }
        sqlite3_reset(st);
    }
    store_conn_release(s, c);
    return r;
}

/* ---- enclaves ---- */

static const char SQL_ENCLAVE_GET[] =
    "SELECT public_key, key_epoch FROM enclaves WHERE enclave_id = ?1";
static const char SQL_ENCLAVE_INSERT[] =
    "INSERT INTO enclaves (enclave_id, public_key, key_epoch, first_seen_at, updated_at)"
    " VALUES (?1, ?2, 1, ?3, ?3)";
static const char SQL_ENCLAVE_UPDATE[] =
    "UPDATE enclaves SET public_key = ?2, key_epoch = key_epoch + 1, updated_at = ?3"
    " WHERE enclave_id = ?1";

int store_enclave_observe_key(struct store *s, uint32_t enclave_id, const char *public_key_hex,
                              char *old_key, size_t old_cap, bool *changed, bool *first,
                              int64_t *epoch)
{
    *changed = *first = false;
    if (old_cap > 0)
        old_key[0] = '\0';
    *epoch = 0;
    struct store_conn *c = store_conn_acquire(s);
    int r = store_begin(c);
    if (r != KM_OK)
        goto out;
    sqlite3_stmt *st = store_stmt(c, SQL_ENCLAVE_GET);
    if (st == NULL) {
        r = KM_ERR_INTERNAL;
        goto out;
    }
    sqlite3_bind_int64(st, 1, enclave_id);
    int rc = store_step(c, st);
    const char *sql = NULL;
    if (rc == SQLITE_ROW) {
        const char *old = (const char *)sqlite3_column_text(st, 0);
        *epoch = sqlite3_column_int64(st, 1);
        if (old == NULL || strcmp(old, public_key_hex) != 0) {
            *changed = true;
            if (old != NULL && old_cap > 0)
                snprintf(old_key, old_cap, "%s", old);
            (*epoch)++;
            sql = SQL_ENCLAVE_UPDATE;
        }
    } else if (rc == SQLITE_DONE) {
        *first = true;
        *epoch = 1;
        sql = SQL_ENCLAVE_INSERT;
    } else {
        r = store_sqlite_err(c, rc, "read enclave");
    }
    sqlite3_reset(st);
    if (r == KM_OK && sql != NULL) {
        st = store_stmt(c, sql);
        if (st == NULL) {
            r = KM_ERR_INTERNAL;
            goto out;
        }
        sqlite3_bind_int64(st, 1, enclave_id);
        r = store_bind_text(st, 2, public_key_hex);
        sqlite3_bind_int64(st, 3, store_now());
        if (r == KM_OK && (rc = store_step(c, st)) != SQLITE_DONE)
            r = store_sqlite_err(c, rc, "record enclave key");
        sqlite3_reset(st);
    }
    if (r == KM_OK)
        r = store_commit(c);
out:
    if (r != KM_OK)
        store_rollback(c);
    store_conn_release(s, c);
    return r;
}

/* ---- auth replay cache ---- */

static const char SQL_NONCE_SEEN[] = "SELECT 1 FROM auth_nonces WHERE key = ?1 AND nonce = ?2";
static const char SQL_NONCE_ADD[] =
    "INSERT OR IGNORE INTO auth_nonces (key, nonce, expires_at) VALUES (?1, ?2, ?3)";
static const char SQL_NONCE_PRUNE[] = "DELETE FROM auth_nonces WHERE expires_at < ?1";

int store_auth_nonce_seen(struct store *s, const char *key_hex, const char *nonce_hex, bool *seen)
{
    *seen = false;
    struct store_conn *c = store_conn_acquire(s);
    sqlite3_stmt *st = store_stmt(c, SQL_NONCE_SEEN);
    int r = KM_ERR_INTERNAL;
    if (st != NULL) {
        r = store_bind_text(st, 1, key_hex);
        if (r == KM_OK)
            r = store_bind_text(st, 2, nonce_hex);
        int rc = r == KM_OK ? store_step(c, st) : SQLITE_MISUSE;
        if (rc == SQLITE_ROW)
            *seen = true;
        else if (r == KM_OK && rc != SQLITE_DONE)
            r = store_sqlite_err(c, rc, "look up auth nonce");
        sqlite3_reset(st);
    }
    store_conn_release(s, c);
    return r;
}

int store_auth_nonces_add(struct store *s, const struct store_auth_nonce *v, size_t n)
{
    struct store_conn *c = store_conn_acquire(s);
    int r = store_begin(c);
    sqlite3_stmt *st = r == KM_OK ? store_stmt(c, SQL_NONCE_ADD) : NULL;
    if (r == KM_OK && st == NULL)
        r = KM_ERR_INTERNAL;
    for (size_t i = 0; r == KM_OK && i < n; i++) {
        r = store_bind_text(st, 1, v[i].key);
        if (r == KM_OK)
            r = store_bind_text(st, 2, v[i].nonce);
        sqlite3_bind_int64(st, 3, v[i].expires_at);
        int rc = r == KM_OK ? store_step(c, st) : SQLITE_MISUSE;
        if (r == KM_OK && rc != SQLITE_DONE)
            r = store_sqlite_err(c, rc, "record auth nonces");
        sqlite3_reset(st);
    }
    return store_end(s, c, r);
}

int store_auth_nonce_prune(struct store *s, int64_t now)
{
    struct store_conn *c = store_conn_acquire(s);
    sqlite3_stmt *st = store_stmt(c, SQL_NONCE_PRUNE);
    int r = KM_ERR_INTERNAL;
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, now);
        int rc = store_step(c, st);
        r = rc == SQLITE_DONE ? KM_OK : store_sqlite_err(c, rc, "prune auth nonces");
        sqlite3_reset(st);
    }
    store_conn_release(s, c);
    return r;
}
