/*
 * internal.h - shared between the store's source files; not an API.
 *
 * Every query goes through the db.h seam (never an engine's own API), so
 * the same code runs on SQLite and PostgreSQL. A statement is stepped with
 * store_step, which returns DB_ROW / DB_DONE or a negative KM_ERR_*.
 */
#ifndef KM_STORE_INTERNAL_H
#define KM_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "store/db.h"
#include "store/store.h"

/* Every distinct SQL text a connection prepares stays cached (a statement
 * may be in use while another is prepared, so none can be evicted): this
 * must exceed the number of SQL_* statements in src/store (74 today,
 * counting both texts of a query that differs per engine);
 * tests/unit/store checks it. */
#define STORE_STMT_CACHE 160

/* One pooled connection with its prepared statements, keyed by the
 * address of the SQL text (every query is a static string). */
struct store_conn {
    struct db_conn *db;
    /* The store's keygen generation (store_kcache_*), and whether this
     * connection ran a statement that writes the keygen tables and has not
     * moved it on again since the statement ended. */
    _Atomic uint64_t *keygen_gen;
    bool keygen_dirty;
    /* The store's writer lock, held from store_begin to commit/rollback:
     * in-process writers queue on a mutex instead of meeting a busy
     * database and sleeping in the engine's busy handler or lock wait. */
    pthread_mutex_t *write_lock;
    bool writing;
    /* Group commit (store_make_durable): the store's shared state, and
     * whether an autocommit write that returned rows (it commits when
     * reset) still waits for its sync, which the release then does. */
    struct store_durability *durability;
    bool sync_pending;
    struct {
        const char *sql;
        struct db_stmt *stmt;
        bool writes_keygen; /* see store_kcache_get */
    } cache[STORE_STMT_CACHE];
    size_t ncache;
};

/*
 * The cache of completed keygens behind store_keygen_get (read twice per
 * signing: by the route and by the coordinator). SQLite only: the gateway
 * is then its database's only writer (keymeld db migrate runs with it
 * stopped), so every change to a keygen goes through store_stmt here. With
 * PostgreSQL other gateways write too, and nothing is cached.
 *
 * Invalidation: every statement that writes keygen_sessions or
 * keygen_participants (all but the signing quota counter, which a loaded
 * keygen does not carry) moves the store's keygen generation on when it is
 * taken (store_stmt) and again once it is committed or rolled back. An
 * entry serves only at the generation it was loaded at, and a load during
 * which the generation moved is not cached, so no entry can hold data older
 * than the last committed keygen write.
 */
uint64_t store_kcache_gen(struct store *s);
/* A deep copy of src into dst (keygen.c). */
void store_keygen_copy(struct store_keygen *dst, const struct store_keygen *src);
/* A copy of the cached keygen id into *out (store_keygen_clear it). */
bool store_kcache_get(struct store *s, const char *id, struct store_keygen *out);
/* Caches a copy of k, loaded at generation gen, if k is completed and gen
 * is still current. */
void store_kcache_put(struct store *s, uint64_t gen, const struct store_keygen *k);

/* Brings db to STORE_SCHEMA_VERSION with the migrations of its engine
 * (schema.c). */
int store_migrate(struct db_conn *db, struct km_error *err) KM_WUR;

/* Borrows a connection (blocks while all are in use) and gives it back. */
struct store_conn *store_conn_acquire(struct store *s);
void store_conn_release(struct store *s, struct store_conn *c);

/* The SQL text for c's engine, for the few queries SQLite and PostgreSQL
 * cannot share: each text is its own static string (and cache entry). */
const char *store_sql(const struct store_conn *c, const char *sqlite_sql, const char *pg_sql);

/* The condition "the keygen's enclave_keys (a JSON object: enclave id ->
 * public key) names key for enclave id" (SQL expressions, the id as
 * text), for building the two texts of a query: SQLite's json_extract,
 * PostgreSQL's ->> on the column cast to json. */
#define STORE_ENCLAVE_KEY_IS_SQLITE(id, key)                                                       \
    "json_extract(enclave_keys, '$.\"' || " id " || '\"') = " key
#define STORE_ENCLAVE_KEY_IS_PG(id, key)                                                           \
    "(CAST(enclave_keys AS json) ->> CAST(" id " AS TEXT)) = " key

/* The cached statement for sql, reset and with bindings cleared. NULL on a
 * prepare failure (a bug in our SQL, or the server is gone: logged). */
struct db_stmt *store_stmt(struct store_conn *c, const char *sql);

/*
 * Group commit (db.h group_commit; SQLite with fsync on): a commit is
 * durable once the WAL has been synced after it, and one sync covers every
 * commit written before it began. store_commit and autocommit writes call
 * this after the writer lock is released, so the next writer runs while
 * this one waits, and the commits that end during one sync share the next.
 * Numbers the commit just ended on c, then returns once a sync that began
 * after it has finished: at once where db_needs_sync is false. A failed
 * sync ends the process (abort, logged): the kernel may have dropped the
 * pages it could not write, so no later sync could be trusted to cover
 * them, and a restart recovers from what reached the disk (PostgreSQL
 * stops for the same reason).
 */
void store_make_durable(struct store_conn *c);

/* Numbers the commit just ended on c for store_wait_durable (0 where
 * db_needs_sync is false). */
uint64_t store_commit_number(struct store_conn *c);

/* store_commit without the wait: *ticket (0 when there is nothing to
 * wait for) goes to store_wait_durable. */
int store_commit_deferred(struct store_conn *c, uint64_t *ticket) KM_WUR;

/* Write transactions (db_begin: one writer at a time across every
 * gateway of the database). store_begin takes the writer lock; a
 * successful commit or the rollback releases it (a failed commit leaves
 * it for the rollback; releasing the connection rolls back at the latest). */
int store_begin(struct store_conn *c) KM_WUR;
int store_commit(struct store_conn *c) KM_WUR;
void store_rollback(struct store_conn *c);

/* Ends a write begun with store_begin on c, taken from s: commits when r
 * is KM_OK, rolls back otherwise (also when the commit fails), releases
 * c. Returns r, or the commit's error. */
int store_end(struct store *s, struct store_conn *c, int r) KM_WUR;

/* db_step (DB_ROW, DB_DONE or a KM_ERR_*), except that a write outside
 * store_begin (autocommit) holds the writer lock for its duration. Every
 * query of the store steps through this. */
int store_step(struct store_conn *c, struct db_stmt *st);

/* The KM_* error for an unexpected store_step result rc: KM_ERR_EXISTS (a
 * constraint) passes quietly; anything else is logged with db_errmsg and
 * what, and a row or end where none was expected becomes KM_ERR_IO. */
int store_db_err(struct store_conn *c, int rc, const char *what);

/* Binds text (NULL binds NULL): also the JSON documents the store keeps
 * as they were given. */
int store_bind_text(struct db_stmt *st, int idx, const char *v) KM_WUR;

/* Column readers: a heap copy (NULL for SQL NULL) and a copy into a fixed
 * buffer (truncating). */
char *store_col_strdup(struct db_stmt *st, int col);
void store_col_copy(char *dst, size_t cap, struct db_stmt *st, int col);

/* A keygen's enclave_keys column (enclave_keys.c): the JSON object text
 * {"<id>":"<pubkey hex>"}, keys in the order given, written as the store
 * always wrote it (compact; n == 0 binds NULL). KM_ERR_LIMIT beyond
 * STORE_MAX_ENCLAVES, KM_ERR_NOMEM if it cannot be written. */
int store_bind_enclave_keys(struct db_stmt *st, int idx, const struct store_enclave_key *keys,
                            size_t n) KM_WUR;

/* Reads that column into keys (room for STORE_MAX_ENCLAVES), in its
 * order; *n = 0 for SQL NULL or text that is no JSON object. Entries that
 * are no "<decimal id>":"<key that fits>" pair, and any beyond
 * STORE_MAX_ENCLAVES, are left out (logged): the gateway wrote none. */
void store_col_enclave_keys(struct db_stmt *st, int col, struct store_enclave_key *keys, size_t *n);

int64_t store_now(void);

/* Runs a single-row "SELECT id FROM ... WHERE ..." style listing with one
 * int64 parameter (or none when param < 0). */
int store_list_ids(struct store *s, const char *sql, int64_t param, char (**ids)[37],
                   size_t *n) KM_WUR;

/* ---- session lifecycle (lifecycle.c): what keygen.c and signing.c share */

enum lifecycle_kind {
    LIFECYCLE_KEYGEN,
    LIFECYCLE_SIGNING,
};

/* A kind's statuses in which a session can still expire or fail (SQL). */
#define LIFECYCLE_KEYGEN_UNFINISHED  "('reserved','collecting','running')"
#define LIFECYCLE_SIGNING_UNFINISHED "('awaiting_approvals','running')"

/* A kind's advance: compare-and-set from (id ?1, step ?2, running) to step
 * ?3, status ?4, state ?5 at time ?6 (lifecycle_bind_advance binds them);
 * outputs: the kind's own "col = ?7," assignments, each ending in a comma. */
#define LIFECYCLE_ADVANCE_SQL(table, outputs)                                                      \
    "UPDATE " table " SET step = ?3, status = ?4, state = ?5, attempts = 0,"                       \
    " next_attempt_at = 0, error = NULL, updated_at = ?6, " outputs                                \
    " completed_at = CASE WHEN ?4 = 'completed' THEN ?6 ELSE completed_at END"                     \
    " WHERE id = ?1 AND step = ?2 AND status = 'running'"
int lifecycle_bind_advance(struct db_stmt *st, const char *id, int from_step, int to_step,
                           const char *status, const char *state) KM_WUR;

/* Runs st (an UPDATE or DELETE of one session) if r, its binding, is
 * KM_OK, and resets it: KM_ERR_STATE when no row changed (the session is
 * not as the statement requires, or gone), KM_ERR_INTERNAL for a NULL st. */
int lifecycle_exec(struct store_conn *c, struct db_stmt *st, int r, const char *what) KM_WUR;

/* A session's status as text (KM_ERR_NOT_FOUND for an unknown id); the
 * require_ form: KM_ERR_STATE unless it is want. */
#define LIFECYCLE_STATUS_MAX 32
int lifecycle_status(struct store_conn *c, enum lifecycle_kind kind, const char *id,
                     char *status) KM_WUR;
int lifecycle_require_status(struct store_conn *c, enum lifecycle_kind kind, const char *id,
                             const char *want) KM_WUR;

/* In the caller's transaction: a waiting session (collecting, awaiting
 * approvals) starts running at step 0; *started: whether it was waiting. */
int lifecycle_start(struct store_conn *c, enum lifecycle_kind kind, const char *id,
                    bool *started) KM_WUR;

/* The store_keygen_* / store_signing_* functions of these names (store.h);
 * fail: KM_ERR_STATE unless the session is unfinished. */
int lifecycle_retry_later(struct store *s, enum lifecycle_kind kind, const char *id, int step,
                          int64_t next_attempt_at, const char *error) KM_WUR;
int lifecycle_fail(struct store *s, enum lifecycle_kind kind, const char *id,
                   const char *error) KM_WUR;
int lifecycle_list_running(struct store *s, enum lifecycle_kind kind, char (**ids)[37],
                           size_t *n) KM_WUR;
int lifecycle_list_expired(struct store *s, enum lifecycle_kind kind, int64_t now, char (**ids)[37],
                           size_t *n) KM_WUR;

/* A connection beside the pool, to the same database (the change
 * listener's). */
int store_open_conn(struct store *s, struct db_conn **out, struct km_error *err) KM_WUR;

/* Where store.c keeps the change listener of notify.c. */
struct store_listener;
struct store_listener **store_listener_slot(struct store *s);

#endif /* KM_STORE_INTERNAL_H */
