/*
 * signing.c - signing sessions, approvals, and failing the sessions of a
 * restarted enclave.
 */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "store/internal.h"
#include "common/banned.h"

static const char *const signing_status_names[] = {"awaiting_approvals", "running", "completed",
                                                   "failed"};

const char *store_signing_status_name(enum store_signing_status st)
{
    return (unsigned)st < KM_ARRAY_LEN(signing_status_names) ? signing_status_names[st] : "?";
}

static enum store_signing_status signing_status_parse(const char *s)
{
    for (size_t i = 0; i < KM_ARRAY_LEN(signing_status_names); i++) {
        if (s != NULL && strcmp(s, signing_status_names[i]) == 0)
            return (enum store_signing_status)i;
    }
    return STORE_SIGNING_FAILED;
}

void store_signing_clear(struct store_signing *sg)
{
    free(sg->items);
    free(sg->state);
    free(sg->results);
    free(sg->error);
    free(sg->approvals);
    memset(sg, 0, sizeof(*sg));
}

static int step_one(struct store_conn *c, struct db_stmt *st, const char *what)
{
    int rc = store_step(c, st);
    int r = (rc == DB_DONE || rc == DB_ROW) ? KM_OK : store_db_err(c, rc, what);
    return r;
}

static const char SQL_KEYGEN_QUOTA[] =
    "SELECT status, max_signing_sessions, signing_sessions_created FROM keygen_sessions"
    " WHERE id = ?1";
static const char SQL_KEYGEN_QUOTA_USE[] =
    "UPDATE keygen_sessions SET signing_sessions_created = signing_sessions_created + 1"
    " WHERE id = ?1";
static const char SQL_SIGNING_INSERT[] =
    "INSERT INTO signing_sessions (id, keygen_session_id, status, items, timeout_secs,"
    " created_at, updated_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)";

static int signing_create(struct store *s, const struct store_signing *sg, uint64_t *ticket)
{
    *ticket = 0;
    struct store_conn *c = store_conn_acquire(s);
    int r = store_begin(c), rc;
    struct db_stmt *st;
    if (r != KM_OK)
        goto out;
    st = store_stmt(c, SQL_KEYGEN_QUOTA);
    if (st == NULL) {
        r = KM_ERR_INTERNAL;
        goto out;
    }
    r = store_bind_text(st, 1, sg->keygen_session_id);
    rc = store_step(c, st);
    if (rc == DB_DONE)
        r = KM_ERR_NOT_FOUND;
    else if (rc != DB_ROW)
        r = store_db_err(c, rc, "read keygen quota");
    else if (strcmp(db_col_text(st, 0), "completed") != 0)
        r = KM_ERR_STATE;
    else if (db_col_int64(st, 2) >= db_col_int64(st, 1))
        r = KM_ERR_LIMIT;
    db_reset(st);
    if (r != KM_OK)
        goto out;

    st = store_stmt(c, SQL_SIGNING_INSERT);
    if (st == NULL) {
        r = KM_ERR_INTERNAL;
        goto out;
    }
    int64_t now = store_now();
    r = store_bind_text(st, 1, sg->id);
    if (r == KM_OK)
        r = store_bind_text(st, 2, sg->keygen_session_id);
    if (r == KM_OK)
        r = store_bind_text(st, 3, store_signing_status_name(sg->status));
    if (r == KM_OK)
        r = store_bind_text(st, 4, sg->items);
    if (r == KM_OK)
        r = db_bind_int64(st, 5, sg->timeout_secs);
    if (r == KM_OK)
        r = db_bind_int64(st, 6, now);
    if (r == KM_OK)
        r = db_bind_int64(st, 7, now + (int64_t)sg->timeout_secs);
    if (r == KM_OK && (rc = store_step(c, st)) != DB_DONE)
        r = store_db_err(c, rc, "insert signing session");
    db_reset(st);
    if (r == KM_OK) {
        st = store_stmt(c, SQL_KEYGEN_QUOTA_USE);
        r = st == NULL ? KM_ERR_INTERNAL : store_bind_text(st, 1, sg->keygen_session_id);
        if (r == KM_OK)
            r = step_one(c, st, "count signing session");
        if (st != NULL)
            db_reset(st);
    }
    if (r == KM_OK)
        r = store_commit_deferred(c, ticket);
out:
    if (r != KM_OK)
        store_rollback(c);
    store_conn_release(s, c);
    return r;
}

int store_signing_create(struct store *s, const struct store_signing *sg)
{
    uint64_t ticket;
    int r = signing_create(s, sg, &ticket);
    store_wait_durable(s, ticket);
    return r;
}

int store_signing_create_deferred(struct store *s, const struct store_signing *sg,
                                  uint64_t *durable_ticket)
{
    return signing_create(s, sg, durable_ticket);
}

static const char SQL_SIGNING_GET[] =
    "SELECT id, keygen_session_id, status, step, items, timeout_secs, state, results, error,"
    " attempts, next_attempt_at, created_at, updated_at, expires_at, completed_at"
    " FROM signing_sessions WHERE id = ?1";
static const char SQL_APPROVALS_GET[] =
    "SELECT user_id, timestamp, signature, approved_at FROM signing_approvals"
    " WHERE signing_session_id = ?1 ORDER BY user_id";

static int signing_load(struct store_conn *c, const char *id, struct store_signing *out)
{
    memset(out, 0, sizeof(*out));
    struct db_stmt *st = store_stmt(c, SQL_SIGNING_GET);
    if (st == NULL)
        return KM_ERR_INTERNAL;
    int r = store_bind_text(st, 1, id);
    int rc = r == KM_OK ? store_step(c, st) : r;
    if (rc == DB_ROW) {
        store_col_copy(out->id, sizeof(out->id), st, 0);
        store_col_copy(out->keygen_session_id, sizeof(out->keygen_session_id), st, 1);
        out->status = signing_status_parse(db_col_text(st, 2));
        out->step = (int)db_col_int64(st, 3);
        out->items = store_col_strdup(st, 4);
        out->timeout_secs = (uint32_t)db_col_int64(st, 5);
        out->state = store_col_strdup(st, 6);
        out->results = store_col_strdup(st, 7);
        out->error = store_col_strdup(st, 8);
        out->attempts = (int)db_col_int64(st, 9);
        out->next_attempt_at = db_col_int64(st, 10);
        out->created_at = db_col_int64(st, 11);
        out->updated_at = db_col_int64(st, 12);
        out->expires_at = db_col_int64(st, 13);
        out->completed_at = db_col_int64(st, 14);
    } else if (rc == DB_DONE) {
        r = KM_ERR_NOT_FOUND;
    } else if (r == KM_OK) {
        r = store_db_err(c, rc, "load signing session");
    }
    db_reset(st);
    if (r != KM_OK)
        return r;

    st = store_stmt(c, SQL_APPROVALS_GET);
    if (st == NULL)
        return KM_ERR_INTERNAL;
    r = store_bind_text(st, 1, id);
    size_t cap = 0;
    while (r == KM_OK && (rc = store_step(c, st)) == DB_ROW) {
        if (out->napprovals == cap) {
            cap = cap ? cap * 2 : 4;
            out->approvals = xrealloc(out->approvals, cap * sizeof(*out->approvals));
        }
        struct store_approval *a = &out->approvals[out->napprovals++];
        store_col_copy(a->user_id, sizeof(a->user_id), st, 0);
        a->timestamp = db_col_int64(st, 1);
        store_col_copy(a->signature, sizeof(a->signature), st, 2);
        a->approved_at = db_col_int64(st, 3);
    }
    if (r == KM_OK && rc != DB_DONE)
        r = store_db_err(c, rc, "load approvals");
    db_reset(st);
    return r;
}

int store_signing_get(struct store *s, const char *id, struct store_signing *out)
{
    struct store_conn *c = store_conn_acquire(s);
    int r = signing_load(c, id, out);
    store_conn_release(s, c);
    if (r != KM_OK)
        store_signing_clear(out);
    return r;
}

int store_signing_status_get(struct store *s, const char *id, enum store_signing_status *out)
{
    char status[LIFECYCLE_STATUS_MAX];
    struct store_conn *c = store_conn_acquire(s);
    int r = lifecycle_status(c, LIFECYCLE_SIGNING, id, status);
    store_conn_release(s, c);
    if (r == KM_OK)
        *out = signing_status_parse(status);
    return r;
}

/* A user's approval again replaces the earlier one. */
static const char SQL_APPROVAL_PUT[] =
    "INSERT INTO signing_approvals (signing_session_id, user_id, timestamp, signature,"
    " approved_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (signing_session_id, user_id)"
    " DO UPDATE SET timestamp = excluded.timestamp, signature = excluded.signature,"
    " approved_at = excluded.approved_at";
static const char SQL_APPROVAL_HAS[] =
    "SELECT 1 FROM signing_approvals WHERE signing_session_id = ?1 AND user_id = ?2";

int store_signing_approve(struct store *s, const char *id, const struct store_approval *a,
                          size_t required, const char *const *required_users, bool *now_running)
{
    *now_running = false;
    struct store_conn *c = store_conn_acquire(s);
    int r = store_begin(c);
    struct db_stmt *st;
    if (r == KM_OK)
        r = lifecycle_require_status(c, LIFECYCLE_SIGNING, id, "awaiting_approvals");
    if (r != KM_OK)
        goto out;

    st = store_stmt(c, SQL_APPROVAL_PUT);
    if (st == NULL) {
        r = KM_ERR_INTERNAL;
        goto out;
    }
    r = store_bind_text(st, 1, id);
    if (r == KM_OK)
        r = store_bind_text(st, 2, a->user_id);
    if (r == KM_OK)
        r = db_bind_int64(st, 3, a->timestamp);
    if (r == KM_OK)
        r = store_bind_text(st, 4, a->signature);
    if (r == KM_OK)
        r = db_bind_int64(st, 5, store_now());
    if (r == KM_OK)
        r = step_one(c, st, "record approval");
    db_reset(st);

    size_t have = 0;
    for (size_t i = 0; r == KM_OK && i < required; i++) {
        st = store_stmt(c, SQL_APPROVAL_HAS);
        if (st == NULL) {
            r = KM_ERR_INTERNAL;
            break;
        }
        r = store_bind_text(st, 1, id);
        if (r == KM_OK)
            r = store_bind_text(st, 2, required_users[i]);
        if (r == KM_OK && store_step(c, st) == DB_ROW)
            have++;
        db_reset(st);
    }
    if (r == KM_OK && have == required)
        r = lifecycle_start(c, LIFECYCLE_SIGNING, id, now_running);
    if (r == KM_OK)
        r = store_commit(c);
out:
    if (r != KM_OK)
        store_rollback(c);
    store_conn_release(s, c);
    return r;
}

static const char SQL_SIGNING_ADVANCE[] =
    LIFECYCLE_ADVANCE_SQL("signing_sessions", "results = coalesce(?7, results),");

int store_signing_advance(struct store *s, const char *id, const struct store_signing_progress *p)
{
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, SQL_SIGNING_ADVANCE);
    int r = lifecycle_bind_advance(st, id, p->from_step, p->to_step,
                                   store_signing_status_name(p->status), p->state);
    if (r == KM_OK)
        r = store_bind_text(st, 7, p->results);
    r = lifecycle_exec(c, st, r, "advance signing session");
    store_conn_release(s, c);
    return r;
}

int store_signing_retry_later(struct store *s, const char *id, int step, int64_t next_attempt_at,
                              const char *error)
{
    return lifecycle_retry_later(s, LIFECYCLE_SIGNING, id, step, next_attempt_at, error);
}

int store_signing_fail(struct store *s, const char *id, const char *error)
{
    return lifecycle_fail(s, LIFECYCLE_SIGNING, id, error);
}

int store_signing_list_running(struct store *s, char (**ids)[37], size_t *n)
{
    return lifecycle_list_running(s, LIFECYCLE_SIGNING, ids, n);
}

int store_signing_list_expired(struct store *s, int64_t now, char (**ids)[37], size_t *n)
{
    return lifecycle_list_expired(s, LIFECYCLE_SIGNING, now, ids, n);
}

/* A session relies on an enclave when the keys it recorded at
 * initialization include that enclave's key (one text per engine: JSON
 * access differs). */
#define FAIL_KEYGENS_OF_ENCLAVE(key_is)                                                            \
    "UPDATE keygen_sessions SET status = 'failed', error = ?3, updated_at = ?4"                    \
    " WHERE status IN ('collecting','running','completed') AND " key_is
#define FAIL_SIGNINGS_OF_ENCLAVE(key_is)                                                           \
    "UPDATE signing_sessions SET status = 'failed', error = ?3, updated_at = ?4"                   \
    " WHERE status IN ('awaiting_approvals','running') AND keygen_session_id IN"                   \
    " (SELECT id FROM keygen_sessions WHERE " key_is ")"
static const char SQL_FAIL_KEYGENS_OF_ENCLAVE_SQLITE[] =
    FAIL_KEYGENS_OF_ENCLAVE(STORE_ENCLAVE_KEY_IS_SQLITE("?1", "?2"));
static const char SQL_FAIL_KEYGENS_OF_ENCLAVE_PG[] =
    FAIL_KEYGENS_OF_ENCLAVE(STORE_ENCLAVE_KEY_IS_PG("?1", "?2"));
static const char SQL_FAIL_SIGNINGS_OF_ENCLAVE_SQLITE[] =
    FAIL_SIGNINGS_OF_ENCLAVE(STORE_ENCLAVE_KEY_IS_SQLITE("?1", "?2"));
static const char SQL_FAIL_SIGNINGS_OF_ENCLAVE_PG[] =
    FAIL_SIGNINGS_OF_ENCLAVE(STORE_ENCLAVE_KEY_IS_PG("?1", "?2"));

int store_fail_sessions_of_enclave(struct store *s, uint32_t enclave_id, const char *old_key,
                                   const char *error, size_t *failed)
{
    *failed = 0;
    struct store_conn *c = store_conn_acquire(s);
    int r = store_begin(c);
    /* Signing sessions first: the keygen update below changes nothing they
     * are matched on, but keep the order obvious. */
    const char *sqls[] = {
        store_sql(c, SQL_FAIL_SIGNINGS_OF_ENCLAVE_SQLITE, SQL_FAIL_SIGNINGS_OF_ENCLAVE_PG),
        store_sql(c, SQL_FAIL_KEYGENS_OF_ENCLAVE_SQLITE, SQL_FAIL_KEYGENS_OF_ENCLAVE_PG),
    };
    for (size_t i = 0; r == KM_OK && i < 2; i++) {
        struct db_stmt *st = store_stmt(c, sqls[i]);
        if (st == NULL) {
            r = KM_ERR_INTERNAL;
            break;
        }
        char idtext[16];
        snprintf(idtext, sizeof(idtext), "%u", enclave_id);
        r = store_bind_text(st, 1, idtext);
        if (r == KM_OK)
            r = store_bind_text(st, 2, old_key);
        if (r == KM_OK)
            r = store_bind_text(st, 3, error);
        if (r == KM_OK)
            r = db_bind_int64(st, 4, store_now());
        if (r == KM_OK)
            r = step_one(c, st, "fail sessions of enclave");
        if (r == KM_OK)
            *failed += (size_t)db_changes(st);
        db_reset(st);
    }
    return store_end(s, c, r);
}

static const char SQL_PRUNE_SIGNING[] =
    "DELETE FROM signing_sessions WHERE status IN ('completed','failed') AND updated_at < ?1";
static const char SQL_PRUNE_KEYGEN[] =
    "DELETE FROM keygen_sessions WHERE status = 'failed' AND updated_at < ?1";

int store_prune_finished(struct store *s, int64_t before, size_t *deleted)
{
    *deleted = 0;
    struct store_conn *c = store_conn_acquire(s);
    int r = store_begin(c);
    const char *sqls[] = {SQL_PRUNE_SIGNING, SQL_PRUNE_KEYGEN};
    for (size_t i = 0; r == KM_OK && i < 2; i++) {
        struct db_stmt *st = store_stmt(c, sqls[i]);
        if (st == NULL) {
            r = KM_ERR_INTERNAL;
            break;
        }
        r = db_bind_int64(st, 1, before);
        if (r == KM_OK)
            r = step_one(c, st, "prune finished sessions");
        if (r == KM_OK)
            *deleted += (size_t)db_changes(st);
        db_reset(st);
    }
    return store_end(s, c, r);
}
