/*
 * lifecycle.c - what keygen and signing sessions have in common: a session
 * waits for its participants (collecting, awaiting_approvals), starts
 * running, and the coordinator drives its steps (advance, retry later)
 * until it completes or fails; unfinished ones expire. The kinds differ
 * only in their table, their waiting status and their unfinished
 * statuses, so each kind is a set of texts built from the same templates.
 */
#include "store/internal.h"

#include <string.h>

#include "common/banned.h"

#define STATUS_SQL(table) "SELECT status FROM " table " WHERE id = ?1"
/* A waiting session has run no step: the coordinator starts at 0. */
#define START_SQL(table, waiting)                                                                  \
    "UPDATE " table " SET status = 'running', step = 0, updated_at = ?2"                           \
    " WHERE id = ?1 AND status = '" waiting "'"
#define RETRY_SQL(table)                                                                           \
    "UPDATE " table " SET attempts = attempts + 1, next_attempt_at = ?3, error = ?4,"              \
    " updated_at = ?5 WHERE id = ?1 AND step = ?2 AND status = 'running'"
/* Only an unfinished session fails here: a completed one that the expiry
 * sweep or a failing step races keeps its result (a completed keygen fails
 * only with its enclave: store_fail_sessions_of_enclave). */
#define FAIL_SQL(table, unfinished)                                                                \
    "UPDATE " table " SET status = 'failed', error = ?2, updated_at = ?3"                          \
    " WHERE id = ?1 AND status IN " unfinished
#define RUNNING_SQL(table) "SELECT id FROM " table " WHERE status = 'running' ORDER BY created_at"
#define EXPIRED_SQL(table, unfinished)                                                             \
    "SELECT id FROM " table " WHERE status IN " unfinished " AND expires_at <= ?1"

#define KG "keygen_sessions"
#define SG "signing_sessions"
/* Each text its own static string: the statement cache is keyed by its
 * address. */
static const char SQL_KEYGEN_STATUS[] = STATUS_SQL(KG);
static const char SQL_KEYGEN_START[] = START_SQL(KG, "collecting");
static const char SQL_KEYGEN_RETRY[] = RETRY_SQL(KG);
static const char SQL_KEYGEN_FAIL[] = FAIL_SQL(KG, LIFECYCLE_KEYGEN_UNFINISHED);
static const char SQL_KEYGEN_RUNNING[] = RUNNING_SQL(KG);
static const char SQL_KEYGEN_EXPIRED[] = EXPIRED_SQL(KG, LIFECYCLE_KEYGEN_UNFINISHED);
static const char SQL_SIGNING_STATUS[] = STATUS_SQL(SG);
static const char SQL_SIGNING_START[] = START_SQL(SG, "awaiting_approvals");
static const char SQL_SIGNING_RETRY[] = RETRY_SQL(SG);
static const char SQL_SIGNING_FAIL[] = FAIL_SQL(SG, LIFECYCLE_SIGNING_UNFINISHED);
static const char SQL_SIGNING_RUNNING[] = RUNNING_SQL(SG);
static const char SQL_SIGNING_EXPIRED[] = EXPIRED_SQL(SG, LIFECYCLE_SIGNING_UNFINISHED);

static const struct {
    const char *status, *start, *retry, *fail, *running, *expired;
} kinds[] = {
    [LIFECYCLE_KEYGEN] = {SQL_KEYGEN_STATUS, SQL_KEYGEN_START, SQL_KEYGEN_RETRY, SQL_KEYGEN_FAIL,
                          SQL_KEYGEN_RUNNING, SQL_KEYGEN_EXPIRED},
    [LIFECYCLE_SIGNING] = {SQL_SIGNING_STATUS, SQL_SIGNING_START, SQL_SIGNING_RETRY,
                           SQL_SIGNING_FAIL, SQL_SIGNING_RUNNING, SQL_SIGNING_EXPIRED},
};

int lifecycle_exec(struct store_conn *c, struct db_stmt *st, int r, const char *what)
{
    if (st == NULL)
        return KM_ERR_INTERNAL;
    int rc = r == KM_OK ? store_step(c, st) : r;
    if (r == KM_OK && rc != DB_DONE)
        r = store_db_err(c, rc, what);
    else if (r == KM_OK && db_changes(st) != 1)
        r = KM_ERR_STATE;
    db_reset(st);
    return r;
}

int lifecycle_status(struct store_conn *c, enum lifecycle_kind kind, const char *id, char *status)
{
    struct db_stmt *st = store_stmt(c, kinds[kind].status);
    if (st == NULL)
        return KM_ERR_INTERNAL;
    int r = store_bind_text(st, 1, id);
    int rc = r == KM_OK ? store_step(c, st) : r;
    if (rc == DB_ROW)
        store_col_copy(status, LIFECYCLE_STATUS_MAX, st, 0);
    else if (rc == DB_DONE)
        r = KM_ERR_NOT_FOUND;
    else if (r == KM_OK)
        r = store_db_err(c, rc, "read a session's status");
    db_reset(st);
    return r;
}

int lifecycle_require_status(struct store_conn *c, enum lifecycle_kind kind, const char *id,
                             const char *want)
{
    char status[LIFECYCLE_STATUS_MAX];
    int r = lifecycle_status(c, kind, id, status);
    return r == KM_OK && strcmp(status, want) != 0 ? KM_ERR_STATE : r;
}

int lifecycle_start(struct store_conn *c, enum lifecycle_kind kind, const char *id, bool *started)
{
    struct db_stmt *st = store_stmt(c, kinds[kind].start);
    int r = st == NULL ? KM_ERR_INTERNAL : store_bind_text(st, 1, id);
    if (r == KM_OK)
        r = db_bind_int64(st, 2, store_now());
    r = lifecycle_exec(c, st, r, "start a session");
    *started = r == KM_OK;
    return r == KM_ERR_STATE ? KM_OK : r;
}

int lifecycle_bind_advance(struct db_stmt *st, const char *id, int from_step, int to_step,
                           const char *status, const char *state)
{
    int r = st == NULL ? KM_ERR_INTERNAL : store_bind_text(st, 1, id);
    if (r == KM_OK)
        r = db_bind_int64(st, 2, from_step);
    if (r == KM_OK)
        r = db_bind_int64(st, 3, to_step);
    if (r == KM_OK)
        r = store_bind_text(st, 4, status);
    if (r == KM_OK)
        r = store_bind_text(st, 5, state);
    if (r == KM_OK)
        r = db_bind_int64(st, 6, store_now());
    return r;
}

int lifecycle_retry_later(struct store *s, enum lifecycle_kind kind, const char *id, int step,
                          int64_t next_attempt_at, const char *error)
{
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, kinds[kind].retry);
    int r = st == NULL ? KM_ERR_INTERNAL : store_bind_text(st, 1, id);
    if (r == KM_OK)
        r = db_bind_int64(st, 2, step);
    if (r == KM_OK)
        r = db_bind_int64(st, 3, next_attempt_at);
    if (r == KM_OK)
        r = store_bind_text(st, 4, error);
    if (r == KM_OK)
        r = db_bind_int64(st, 5, store_now());
    r = lifecycle_exec(c, st, r, "record a session's retry");
    store_conn_release(s, c);
    return r;
}

int lifecycle_fail(struct store *s, enum lifecycle_kind kind, const char *id, const char *error)
{
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, kinds[kind].fail);
    int r = st == NULL ? KM_ERR_INTERNAL : store_bind_text(st, 1, id);
    if (r == KM_OK)
        r = store_bind_text(st, 2, error);
    if (r == KM_OK)
        r = db_bind_int64(st, 3, store_now());
    r = lifecycle_exec(c, st, r, "fail a session");
    store_conn_release(s, c);
    return r;
}

int lifecycle_list_running(struct store *s, enum lifecycle_kind kind, char (**ids)[37], size_t *n)
{
    return store_list_ids(s, kinds[kind].running, -1, ids, n);
}

int lifecycle_list_expired(struct store *s, enum lifecycle_kind kind, int64_t now, char (**ids)[37],
                           size_t *n)
{
    return store_list_ids(s, kinds[kind].expired, now, ids, n);
}
