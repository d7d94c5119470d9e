/*
 * lease.c - which gateway drives a running session (several gateways on
 * one PostgreSQL database). A gateway claims a session's lease before it
 * runs the session's steps and gives it back when the session waits for
 * clients or ends; a gateway that dies loses its leases when they expire
 * and the others take the sessions over (store.h, "Leases").
 */
#include "store/internal.h"

#include <string.h>

#include "common/banned.h"

/* The two session tables share the lease columns (migration 6). */
static const char SQL_KEYGEN_CLAIM[] =
    "UPDATE keygen_sessions SET lease_owner = ?2, lease_expires_at = ?4"
    " WHERE id = ?1 AND status = 'running'"
    " AND (lease_owner = ?2 OR lease_owner = '' OR lease_expires_at < ?3)";
static const char SQL_SIGNING_CLAIM[] =
    "UPDATE signing_sessions SET lease_owner = ?2, lease_expires_at = ?4"
    " WHERE id = ?1 AND status = 'running'"
    " AND (lease_owner = ?2 OR lease_owner = '' OR lease_expires_at < ?3)";
static const char SQL_KEYGEN_RELEASE[] =
    "UPDATE keygen_sessions SET lease_owner = '', lease_expires_at = 0"
    " WHERE id = ?1 AND lease_owner = ?2";
static const char SQL_SIGNING_RELEASE[] =
    "UPDATE signing_sessions SET lease_owner = '', lease_expires_at = 0"
    " WHERE id = ?1 AND lease_owner = ?2";
/* Running sessions nobody drives: the lease lapsed (its gateway died) or
 * was never taken, and no retry is pending. */
static const char SQL_KEYGEN_ORPHANS[] =
    "SELECT id FROM keygen_sessions WHERE status = 'running' AND lease_expires_at < ?1"
    " AND next_attempt_at <= ?1 AND updated_at < CAST(?1 AS BIGINT) - 2";
static const char SQL_SIGNING_ORPHANS[] =
    "SELECT id FROM signing_sessions WHERE status = 'running' AND lease_expires_at < ?1"
    " AND next_attempt_at <= ?1 AND updated_at < CAST(?1 AS BIGINT) - 2";

static int lease_exec(struct store *s, const char *sql, const char *id, const char *owner,
                      int64_t now, int64_t until, int64_t *changed)
{
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, sql);
    int r = st == NULL ? KM_ERR_INTERNAL : KM_OK;
    if (r == KM_OK)
        r = db_bind_text(st, 1, id);
    if (r == KM_OK)
        r = db_bind_text(st, 2, owner);
    if (r == KM_OK && db_param_count(st) >= 3)
        r = db_bind_int64(st, 3, now);
    if (r == KM_OK && db_param_count(st) >= 4)
        r = db_bind_int64(st, 4, until);
    if (r == KM_OK) {
        int rc = store_step(c, st);
        if (rc == DB_DONE)
            *changed = db_changes(st);
        else
            r = store_db_err(c, rc, "session lease");
    }
    if (st != NULL)
        db_reset(st);
    store_conn_release(s, c);
    return r;
}

int store_lease_claim(struct store *s, enum store_session_kind kind, const char *id,
                      const char *owner, int64_t now, uint32_t lease_secs)
{
    int64_t changed = 0;
    int r = lease_exec(s, kind == STORE_KEYGEN ? SQL_KEYGEN_CLAIM : SQL_SIGNING_CLAIM, id, owner,
                       now, now + (int64_t)lease_secs, &changed);
    if (r == KM_OK && changed != 1)
        r = KM_ERR_STATE;
    return r;
}

int store_lease_release(struct store *s, enum store_session_kind kind, const char *id,
                        const char *owner)
{
    int64_t changed = 0;
    return lease_exec(s, kind == STORE_KEYGEN ? SQL_KEYGEN_RELEASE : SQL_SIGNING_RELEASE, id, owner,
                      0, 0, &changed);
}

int store_lease_list_orphans(struct store *s, enum store_session_kind kind, int64_t now,
                             char (**ids)[37], size_t *n)
{
    return store_list_ids(s, kind == STORE_KEYGEN ? SQL_KEYGEN_ORPHANS : SQL_SIGNING_ORPHANS, now,
                          ids, n);
}
