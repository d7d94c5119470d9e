/*
 * store.c - opening the database (any db.h backend), the connection pool,
 * transactions and the helpers every query uses; enclaves and the auth
 * replay cache.
 */
#include "store/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "store/internal.h"
#include "common/banned.h"

#define LOG_COMP "store"
/* Completed keygens cached (store_kcache_get): a deployment signs with a
 * few hot keygens at a time; a miss costs one read. */
#define KCACHE_SLOTS 64

struct kcache_slot {
    bool used;
    uint64_t gen;     /* the keygen generation it was loaded at */
    uint64_t used_at; /* kcache_tick of the last hit: the oldest is replaced */
    struct store_keygen k;
};

/* Group commit's shared state (store_make_durable). */
struct store_durability {
    pthread_mutex_t lock;
    pthread_cond_t synced_cond;
    _Atomic uint64_t committed; /* commits numbered so far */
    uint64_t synced;            /* every commit up to this number is durable */
    bool syncing;               /* a leader is syncing */
    uint64_t syncs;             /* syncs done */
};

struct store {
    struct store_conn *conns;
    bool *busy;
    unsigned nconns;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    pthread_mutex_t write_lock;
    enum db_kind kind;
    /* To open connections beside the pool (the change listener). */
    char *target;
    struct db_open_options dbo;
    struct store_listener *listener; /* notify.c; NULL when not listening */
    /* The keygen cache (internal.h); slots NULL with PostgreSQL. */
    _Atomic uint64_t keygen_gen;
    pthread_mutex_t kcache_lock;
    struct kcache_slot *kcache;
    uint64_t kcache_tick;
    struct store_durability durability;
};

void store_options_default(struct store_options *o, const char *url)
{
    memset(o, 0, sizeof(*o));
    o->url = url;
    o->connections = 4;
    o->busy_timeout_ms = 5000;
    o->wal = true;
    o->fsync_each_commit = true;
}

int64_t store_now(void)
{
    return (int64_t)time(NULL);
}

static int conn_open(struct store *s, struct store_conn *c, struct km_error *err)
{
    memset(c, 0, sizeof(*c));
    c->write_lock = &s->write_lock;
    c->keygen_gen = &s->keygen_gen;
    c->durability = &s->durability;
    return db_open(&c->db, s->kind, s->target, &s->dbo, err);
}

int store_open_conn(struct store *s, struct db_conn **out, struct km_error *err)
{
    return db_open(out, s->kind, s->target, &s->dbo, err);
}

bool store_shared(const struct store *s)
{
    return s->kind == DB_POSTGRES;
}

struct store_listener **store_listener_slot(struct store *s)
{
    return &s->listener;
}

static void conn_close(struct store_conn *c, bool checkpoint)
{
    for (size_t i = 0; i < c->ncache; i++)
        db_stmt_free(c->cache[i].stmt);
    db_close(c->db, checkpoint);
    memset(c, 0, sizeof(*c));
}

/* A PostgreSQL URL's host[:port] part, found as libpq finds it (after
 * the user info, which ends at the first '@' before any '/'): the only
 * part of the URL worth logging, since the rest may carry a password. */
static void pg_url_host(const char *url, const char **host, int *len)
{
    const char *h = strstr(url, "://");
    h = h != NULL ? h + 3 : url;
    size_t info = strcspn(h, "@/");
    if (h[info] == '@')
        h += info + 1;
    *host = h;
    *len = (int)strcspn(h, "/?#");
    if (*len == 0) { /* postgresql:///db?host=/run/postgresql */
        *host = "the local socket";
        *len = (int)strlen(*host);
    }
}

/* Logs where the database is: the SQLite file, or the PostgreSQL host. */
static void log_ready(const struct store *s, const struct store_options *o, const char *target)
{
    if (s->kind == DB_SQLITE) {
        log_info(LOG_COMP, "database ready at %s (SQLite, schema version %d, %u connections, %s)",
                 target, STORE_SCHEMA_VERSION, s->nconns,
                 !o->wal                ? "rollback journal"
                 : o->fsync_each_commit ? "WAL, fsync on every commit"
                                        : "WAL, fsync at checkpoints");
        return;
    }
    const char *host;
    int len;
    pg_url_host(target, &host, &len);
    log_info(LOG_COMP, "database ready on PostgreSQL at %.*s (schema version %d, %u connections)",
             len, host, STORE_SCHEMA_VERSION, s->nconns);
}

int store_open(struct store **out, const struct store_options *opts, struct km_error *err)
{
    struct store_options o = *opts;
    *out = NULL;
    if (o.connections == 0)
        o.connections = 4;
    if (o.busy_timeout_ms == 0)
        o.busy_timeout_ms = 5000;
    enum db_kind kind;
    const char *target;
    int r = db_parse_url(o.url, &kind, &target, err);
    if (r != KM_OK)
        return r;

    struct store *s = xcalloc(1, sizeof(*s));
    s->conns = XALLOC_ARRAY(struct store_conn, o.connections);
    s->busy = XALLOC_ARRAY(bool, o.connections);
    s->kind = kind;
    s->target = xstrdup(target);
    s->dbo = (struct db_open_options){
        .busy_timeout_ms = o.busy_timeout_ms,
        .wal = o.wal,
        .fsync_each_commit = o.fsync_each_commit,
        .group_commit = true,
    };
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->durability.lock, NULL);
    pthread_cond_init(&s->durability.synced_cond, NULL);
    pthread_cond_init(&s->freed, NULL);
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->kcache_lock, NULL);
    if (kind == DB_SQLITE)
        s->kcache = XALLOC_ARRAY(struct kcache_slot, KCACHE_SLOTS);
    /* The first connection migrates before the others exist. */
    r = conn_open(s, &s->conns[0], err);
    if (r == KM_OK) {
        s->nconns = 1;
        r = store_migrate(s->conns[0].db, err);
        if (r == KM_OK && db_sync_committed(s->conns[0].db) != KM_OK)
            r = km_error_set(err, KM_ERR_IO, 0, "cannot sync the database after migrating: %s",
                             db_errmsg(s->conns[0].db));
    }
    for (unsigned i = 1; r == KM_OK && i < o.connections; i++) {
        r = conn_open(s, &s->conns[i], err);
        if (r == KM_OK)
            s->nconns++;
    }
    if (r != KM_OK) {
        store_close(s);
        return r;
    }
    log_ready(s, &o, target);
    *out = s;
    return KM_OK;
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    store_listen_stop(s);
    /* The first connection checkpoints (SQLite truncates its WAL) while
     * the others are still open, as a checkpoint at any time may. */
    for (unsigned i = 0; i < s->nconns; i++)
        conn_close(&s->conns[i], i == 0);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->write_lock);
    pthread_mutex_destroy(&s->durability.lock);
    pthread_cond_destroy(&s->durability.synced_cond);
    for (size_t i = 0; s->kcache != NULL && i < KCACHE_SLOTS; i++)
        store_keygen_clear(&s->kcache[i].k);
    free(s->kcache);
    pthread_mutex_destroy(&s->kcache_lock);
    free(s->conns);
    free(s->busy);
    secure_free(s->target, strlen(s->target) + 1); /* may hold a password */
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

/* A keygen write taken on c has ended (committed, rolled back, or never
 * run): move the generation on again (internal.h). */
static void keygen_write_ended(struct store_conn *c)
{
    if (c->keygen_dirty) {
        c->keygen_dirty = false;
        atomic_fetch_add(c->keygen_gen, 1);
    }
}

void store_conn_release(struct store *s, struct store_conn *c)
{
    if (c->writing) {
        log_error(LOG_COMP, "a transaction was left open: rolled back");
        store_rollback(c);
    }
    keygen_write_ended(c);
    if (c->sync_pending) {
        c->sync_pending = false;
        store_make_durable(c);
    }
    pthread_mutex_lock(&s->lock);
    s->busy[c - s->conns] = false;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

const char *store_sql(const struct store_conn *c, const char *sqlite_sql, const char *pg_sql)
{
    return db_kind(c->db) == DB_POSTGRES ? pg_sql : sqlite_sql;
}

/* Whether sql may change a loaded keygen: it is not a SELECT and names a
 * keygen table ("keygen_session_id" of other tables does not match). The
 * signing quota counter, bumped by every signing's creation, is left out
 * when the statement sets nothing else (no comma): store_keygen does not
 * carry it. */
static bool sql_writes_keygen(const char *sql)
{
    while (*sql == ' ' || *sql == '\n')
        sql++;
    if (strncmp(sql, "SELECT", 6) == 0)
        return false;
    if (strstr(sql, "SET signing_sessions_created = signing_sessions_created + 1") != NULL &&
        strchr(sql, ',') == NULL)
        return false;
    return strstr(sql, "keygen_sessions") != NULL || strstr(sql, "keygen_participants") != NULL;
}

uint64_t store_kcache_gen(struct store *s)
{
    return atomic_load(&s->keygen_gen);
}

bool store_kcache_get(struct store *s, const char *id, struct store_keygen *out)
{
    bool hit = false;
    if (s->kcache == NULL)
        return false;
    pthread_mutex_lock(&s->kcache_lock);
    uint64_t gen = atomic_load(&s->keygen_gen);
    for (size_t i = 0; i < KCACHE_SLOTS && !hit; i++) {
        struct kcache_slot *e = &s->kcache[i];
        if (e->used && e->gen == gen && strcmp(e->k.id, id) == 0) {
            store_keygen_copy(out, &e->k);
            e->used_at = ++s->kcache_tick;
            hit = true;
        }
    }
    pthread_mutex_unlock(&s->kcache_lock);
    return hit;
}

void store_kcache_put(struct store *s, uint64_t gen, const struct store_keygen *k)
{
    if (s->kcache == NULL || k->status != STORE_KEYGEN_COMPLETED)
        return;
    pthread_mutex_lock(&s->kcache_lock);
    if (atomic_load(&s->keygen_gen) == gen) {
        /* A stale slot first (its generation is gone), else the least
         * recently used. */
        struct kcache_slot *victim = &s->kcache[0];
        for (size_t i = 0; i < KCACHE_SLOTS; i++) {
            struct kcache_slot *e = &s->kcache[i];
            if (!e->used || e->gen != gen || strcmp(e->k.id, k->id) == 0) {
                victim = e;
                break;
            }
            if (e->used_at < victim->used_at)
                victim = e;
        }
        store_keygen_clear(&victim->k);
        store_keygen_copy(&victim->k, k);
        victim->used = true;
        victim->gen = gen;
        victim->used_at = ++s->kcache_tick;
    }
    pthread_mutex_unlock(&s->kcache_lock);
}

/* Hands out cache entry i, moving the keygen generation on first if the
 * statement writes keygens (internal.h). */
static struct db_stmt *stmt_taken(struct store_conn *c, size_t i)
{
    if (c->cache[i].writes_keygen) {
        c->keygen_dirty = true;
        atomic_fetch_add(c->keygen_gen, 1);
    }
    return c->cache[i].stmt;
}

struct db_stmt *store_stmt(struct store_conn *c, const char *sql)
{
    for (size_t i = 0; i < c->ncache; i++) {
        if (c->cache[i].sql == sql) {
            db_reset(c->cache[i].stmt);
            return stmt_taken(c, i);
        }
    }
    struct db_stmt *st = db_prepare(c->db, sql);
    if (st == NULL) {
        log_error(LOG_COMP, "prepare failed: %s: %.120s", db_errmsg(c->db), sql);
        return NULL;
    }
    if (c->ncache == STORE_STMT_CACHE)
        KM_BUG("statement cache too small: raise STORE_STMT_CACHE");
    c->cache[c->ncache].sql = sql;
    c->cache[c->ncache].stmt = st;
    c->cache[c->ncache].writes_keygen = sql_writes_keygen(sql);
    return stmt_taken(c, c->ncache++);
}

int store_db_err(struct store_conn *c, int rc, const char *what)
{
    if (rc == KM_ERR_EXISTS)
        return rc;
    log_error(LOG_COMP, "%s: %s", what, db_errmsg(c->db));
    return rc < 0 ? rc : KM_ERR_IO;
}

int store_step(struct store_conn *c, struct db_stmt *st)
{
    if (c->writing || db_stmt_readonly(st))
        return db_step(st);
    pthread_mutex_lock(c->write_lock);
    int rc = db_step(st);
    pthread_mutex_unlock(c->write_lock);
    /* Committed by itself once done; a statement that returns rows
     * commits when it is reset, and the release moves the generation on
     * and waits for the sync. */
    if (rc == DB_ROW) {
        c->sync_pending = true;
    } else {
        keygen_write_ended(c);
        if (rc == DB_DONE)
            store_make_durable(c);
    }
    return rc;
}

/* Waits until every commit up to seq is durable, syncing through db when
 * no sync that covers it has begun. */
static void durable_wait(struct store_durability *d, uint64_t seq, struct db_conn *db)
{
    pthread_mutex_lock(&d->lock);
    while (d->synced < seq) {
        if (d->syncing) {
            pthread_cond_wait(&d->synced_cond, &d->lock);
            continue;
        }
        /* Lead: every commit numbered by now was written before the sync. */
        d->syncing = true;
        uint64_t target = atomic_load(&d->committed);
        pthread_mutex_unlock(&d->lock);
        int r = db_sync_committed(db);
        if (r != KM_OK) {
            log_error(LOG_COMP,
                      "cannot sync the database's WAL (%s): %s; stopping so that no "
                      "commit is reported durable that is not",
                      km_errname(r), db_errmsg(db));
            abort();
        }
        pthread_mutex_lock(&d->lock);
        d->syncing = false;
        d->synced = target;
        d->syncs++;
        pthread_cond_broadcast(&d->synced_cond);
    }
    pthread_mutex_unlock(&d->lock);
}

uint64_t store_commit_number(struct store_conn *c)
{
    if (!db_needs_sync(c->db))
        return 0;
    return atomic_fetch_add(&c->durability->committed, 1) + 1;
}

void store_make_durable(struct store_conn *c)
{
    uint64_t seq = store_commit_number(c);
    if (seq != 0)
        durable_wait(c->durability, seq, c->db);
}

void store_wait_durable(struct store *s, uint64_t ticket)
{
    if (ticket == 0)
        return;
    pthread_mutex_lock(&s->durability.lock);
    bool done = s->durability.synced >= ticket;
    pthread_mutex_unlock(&s->durability.lock);
    if (done)
        return;
    struct store_conn *c = store_conn_acquire(s);
    durable_wait(&s->durability, ticket, c->db);
    store_conn_release(s, c);
}

/* Transaction control: store_begin/commit/rollback manage the writer lock. */
int store_begin(struct store_conn *c)
{
    pthread_mutex_lock(c->write_lock);
    int r = db_begin(c->db);
    if (r != KM_OK) {
        r = store_db_err(c, r, "begin transaction");
        pthread_mutex_unlock(c->write_lock);
    }
    c->writing = r == KM_OK;
    return r;
}

static void end_write(struct store_conn *c)
{
    if (c->writing) {
        c->writing = false;
        pthread_mutex_unlock(c->write_lock);
    }
    keygen_write_ended(c);
}

int store_commit(struct store_conn *c)
{
    int r = db_commit(c->db);
    if (r == KM_OK) {
        end_write(c);
        store_make_durable(c);
    } else {
        r = store_db_err(c, r, "commit");
    }
    return r;
}

int store_commit_deferred(struct store_conn *c, uint64_t *ticket)
{
    *ticket = 0;
    int r = db_commit(c->db);
    if (r != KM_OK)
        return store_db_err(c, r, "commit");
    end_write(c);
    *ticket = store_commit_number(c);
    return KM_OK;
}

void store_rollback(struct store_conn *c)
{
    if (db_in_transaction(c->db))
        db_rollback(c->db);
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

int store_bind_text(struct db_stmt *st, int idx, const char *v)
{
    return db_bind_text(st, idx, v);
}

char *store_col_strdup(struct db_stmt *st, int col)
{
    const char *t = db_col_text(st, col);
    return t ? xstrdup(t) : NULL;
}

void store_col_copy(char *dst, size_t cap, struct db_stmt *st, int col)
{
    const char *t = db_col_text(st, col);
    snprintf(dst, cap, "%s", t ? t : "");
}

int store_list_ids(struct store *s, const char *sql, int64_t param, char (**ids)[37], size_t *n)
{
    *ids = NULL;
    *n = 0;
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, sql);
    int r = KM_OK;
    if (st == NULL) {
        r = KM_ERR_INTERNAL;
        goto out;
    }
    if (param >= 0)
        r = db_bind_int64(st, 1, param);
    size_t cap = 0;
    int rc = r;
    while (r == KM_OK && (rc = store_step(c, st)) == DB_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *ids = xrealloc(*ids, cap * sizeof(**ids));
        }
        store_col_copy((*ids)[*n], 37, st, 0);
        (*n)++;
    }
    if (r == KM_OK && rc != DB_DONE)
        r = store_db_err(c, rc, "list ids");
    db_reset(st);
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
    struct db_stmt *st = store_stmt(c, SQL_PING);
    int r = KM_OK;
    if (st == NULL || store_step(c, st) != DB_ROW)
        r = km_error_set(err, KM_ERR_IO, 0, "database not answering: %s", db_errmsg(c->db));
    if (st)
        db_reset(st);
    store_conn_release(s, c);
    return r;
}

int store_schema_version(struct store *s, int *version)
{
    struct store_conn *c = store_conn_acquire(s);
    int r = db_schema_version(c->db, version);
    if (r != KM_OK)
        r = store_db_err(c, r, "read schema version");
    store_conn_release(s, c);
    return r;
}

/* The database's size is engine specific: SQLite's pages, PostgreSQL's
 * pg_database_size. The counts are common SQL. */
#define SQL_STATS_COUNTS                                                                           \
    "SELECT (SELECT count(*) FROM keygen_sessions),"                                               \
    " (SELECT count(*) FROM keygen_sessions WHERE status IN ('reserved','collecting','running'))," \
    " (SELECT count(*) FROM signing_sessions),"                                                    \
    " (SELECT count(*) FROM signing_sessions WHERE status IN ('awaiting_approvals','running')),"
static const char SQL_STATS_SQLITE[] = SQL_STATS_COUNTS
    " (SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size())";
static const char SQL_STATS_PG[] = SQL_STATS_COUNTS " pg_database_size(current_database())";

int store_stats(struct store *s, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, store_sql(c, SQL_STATS_SQLITE, SQL_STATS_PG));
    int r = KM_ERR_INTERNAL;
    if (st != NULL) {
        int rc = store_step(c, st);
        if (rc == DB_ROW) {
            out->keygen_total = db_col_int64(st, 0);
            out->keygen_active = db_col_int64(st, 1);
            out->signing_total = db_col_int64(st, 2);
            out->signing_active = db_col_int64(st, 3);
            out->db_size_bytes = db_col_int64(st, 4);
            r = KM_OK;
            pthread_mutex_lock(&s->durability.lock);
            out->group_commits = s->durability.synced;
            out->group_syncs = s->durability.syncs;
            pthread_mutex_unlock(&s->durability.lock);
        } else {
            r = store_db_err(c, rc, "stats");
        }
        db_reset(st);
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

/* Inside observe_key's transaction: records public_key_hex with sql
 * (SQL_ENCLAVE_INSERT or SQL_ENCLAVE_UPDATE). */
static int enclave_write(struct store_conn *c, const char *sql, uint32_t enclave_id,
                         const char *public_key_hex)
{
    struct db_stmt *st = store_stmt(c, sql);
    if (st == NULL)
        return KM_ERR_INTERNAL;
    int r = db_bind_int64(st, 1, enclave_id);
    if (r == KM_OK)
        r = store_bind_text(st, 2, public_key_hex);
    if (r == KM_OK)
        r = db_bind_int64(st, 3, store_now());
    int rc = r == KM_OK ? store_step(c, st) : r;
    if (r == KM_OK && rc != DB_DONE)
        r = store_db_err(c, rc, "record enclave key");
    db_reset(st);
    return r;
}

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
    struct db_stmt *st = store_stmt(c, SQL_ENCLAVE_GET);
    if (st == NULL) {
        r = KM_ERR_INTERNAL;
        goto out;
    }
    r = db_bind_int64(st, 1, enclave_id);
    int rc = r == KM_OK ? store_step(c, st) : r;
    const char *sql = NULL;
    if (rc == DB_ROW) {
        const char *old = db_col_text(st, 0);
        *epoch = db_col_int64(st, 1);
        if (old == NULL || strcmp(old, public_key_hex) != 0) {
            *changed = true;
            if (old != NULL && old_cap > 0)
                snprintf(old_key, old_cap, "%s", old);
            (*epoch)++;
            sql = SQL_ENCLAVE_UPDATE;
        }
    } else if (rc == DB_DONE) {
        *first = true;
        *epoch = 1;
        sql = SQL_ENCLAVE_INSERT;
    } else if (r == KM_OK) {
        r = store_db_err(c, rc, "read enclave");
    }
    db_reset(st);
    if (r == KM_OK && sql != NULL)
        r = enclave_write(c, sql, enclave_id, public_key_hex);
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
static const char SQL_NONCE_ADD[] = "INSERT INTO auth_nonces (key, nonce, expires_at)"
                                    " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
static const char SQL_NONCE_PRUNE[] = "DELETE FROM auth_nonces WHERE expires_at < ?1";

int store_auth_nonce_seen(struct store *s, const char *key_hex, const char *nonce_hex, bool *seen)
{
    *seen = false;
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, SQL_NONCE_SEEN);
    int r = KM_ERR_INTERNAL;
    if (st != NULL) {
        r = store_bind_text(st, 1, key_hex);
        if (r == KM_OK)
            r = store_bind_text(st, 2, nonce_hex);
        int rc = r == KM_OK ? store_step(c, st) : r;
        if (rc == DB_ROW)
            *seen = true;
        else if (r == KM_OK && rc != DB_DONE)
            r = store_db_err(c, rc, "look up auth nonce");
        db_reset(st);
    }
    store_conn_release(s, c);
    return r;
}

int store_auth_nonces_add(struct store *s, const struct store_auth_nonce *v, size_t n)
{
    struct store_conn *c = store_conn_acquire(s);
    int r = store_begin(c);
    struct db_stmt *st = r == KM_OK ? store_stmt(c, SQL_NONCE_ADD) : NULL;
    if (r == KM_OK && st == NULL)
        r = KM_ERR_INTERNAL;
    for (size_t i = 0; r == KM_OK && i < n; i++) {
        r = store_bind_text(st, 1, v[i].key);
        if (r == KM_OK)
            r = store_bind_text(st, 2, v[i].nonce);
        if (r == KM_OK)
            r = db_bind_int64(st, 3, v[i].expires_at);
        int rc = r == KM_OK ? store_step(c, st) : r;
        if (r == KM_OK && rc != DB_DONE)
            r = store_db_err(c, rc, "record auth nonces");
        db_reset(st);
    }
    return store_end(s, c, r);
}

int store_auth_nonce_claim(struct store *s, const struct store_auth_nonce *v)
{
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, SQL_NONCE_ADD);
    int r = st == NULL ? KM_ERR_INTERNAL : store_bind_text(st, 1, v->key);
    if (r == KM_OK)
        r = store_bind_text(st, 2, v->nonce);
    if (r == KM_OK)
        r = db_bind_int64(st, 3, v->expires_at);
    if (r == KM_OK) {
        /* One statement, atomic on its own: of two gateways inserting the
         * same pair, exactly one changes a row. */
        int rc = store_step(c, st);
        if (rc != DB_DONE)
            r = store_db_err(c, rc, "claim an auth nonce");
        else if (db_changes(st) != 1)
            r = KM_ERR_EXISTS;
    }
    if (st != NULL)
        db_reset(st);
    store_conn_release(s, c);
    return r;
}

int store_auth_nonce_prune(struct store *s, int64_t now)
{
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, SQL_NONCE_PRUNE);
    int r = KM_ERR_INTERNAL;
    if (st != NULL) {
        r = db_bind_int64(st, 1, now);
        int rc = r == KM_OK ? store_step(c, st) : r;
        if (r == KM_OK)
            r = rc == DB_DONE ? KM_OK : store_db_err(c, rc, "prune auth nonces");
        db_reset(st);
    }
    store_conn_release(s, c);
    return r;
}
