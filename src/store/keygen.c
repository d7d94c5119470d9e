/*
 * keygen.c - keygen sessions and their participant slots.
 */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "store/internal.h"
#include "common/banned.h"

static const char *const keygen_status_names[] = {"reserved", "collecting", "running", "completed",
                                                  "failed"};

const char *store_keygen_status_name(enum store_keygen_status st)
{
    return (unsigned)st < KM_ARRAY_LEN(keygen_status_names) ? keygen_status_names[st] : "?";
}

static int keygen_status_parse(const char *s, enum store_keygen_status *out)
{
    for (size_t i = 0; i < KM_ARRAY_LEN(keygen_status_names); i++) {
        if (s != NULL && strcmp(s, keygen_status_names[i]) == 0) {
            *out = (enum store_keygen_status)i;
            return KM_OK;
        }
    }
    return KM_ERR_INVALID;
}

void store_keygen_clear(struct store_keygen *k)
{
    free(k->subsets);
    free(k->state);
    free(k->subset_results);
    free(k->encrypted_taproot_tweak);
    free(k->encrypted_session_secret);
    free(k->encrypted_aggregate_public_key);
    free(k->error);
    for (size_t i = 0; i < k->nparticipants; i++)
        free(k->participants[i].encrypted_private_key);
    free(k->participants);
    memset(k, 0, sizeof(*k));
}

static const char SQL_KEYGEN_INSERT[] =
    "INSERT INTO keygen_sessions (id, status, coordinator_user_id, coordinator_enclave_id,"
    " subsets, encrypted_taproot_tweak, timeout_secs, max_signing_sessions, enclave_keys,"
    " created_at, updated_at, expires_at, session_public_key, api_key_id)"
    " VALUES (?1, 'reserved', ?2, ?3, ?4, ?5, ?6, ?7, ?10, ?8, ?8, ?9, ?11, ?12)";
static const char SQL_KEYGEN_EXISTS[] = "SELECT 1 FROM keygen_sessions WHERE id = ?1";
static const char SQL_QUOTA_HOUR[] =
    "SELECT count(*) FROM api_key_reserves WHERE api_key_id = ?1 AND reserved_at >= ?2";
static const char SQL_RESERVE_LOG[] =
    "INSERT INTO api_key_reserves (api_key_id, reserved_at) VALUES (?1, ?2)";
static const char SQL_RESERVE_PRUNE[] =
    "DELETE FROM api_key_reserves WHERE api_key_id = ?1 AND reserved_at < ?2";
static const char SQL_QUOTA_LIVE[] = "SELECT count(*) FROM keygen_sessions WHERE api_key_id = ?1"
                                     " AND status IN " LIFECYCLE_KEYGEN_UNFINISHED;

static int count_for_key(struct store_conn *c, const char *sql, const char *key, int64_t since,
                         int64_t *n)
{
    struct db_stmt *st = store_stmt(c, sql);
    if (st == NULL)
        return KM_ERR_INTERNAL;
    int r = store_bind_text(st, 1, key);
    if (r == KM_OK && db_param_count(st) >= 2)
        r = db_bind_int64(st, 2, since);
    int rc = r == KM_OK ? store_step(c, st) : r;
    if (r == KM_OK && rc == DB_ROW)
        *n = db_col_int64(st, 0);
    else if (r == KM_OK)
        r = store_db_err(c, rc, "count keygens of an API key");
    db_reset(st);
    return r;
}

/* Inside the reserve's transaction: counts this reserve for the hourly
 * quota (deleting the keygen later does not undo it) and forgets the key's
 * reserves older than an hour. */
static int log_reserve(struct store_conn *c, const char *key, int64_t now)
{
    int r = KM_OK;
    const char *sql[2] = {SQL_RESERVE_PRUNE, SQL_RESERVE_LOG};
    int64_t at[2] = {now - 3600, now};
    for (int i = 0; i < 2 && r == KM_OK; i++) {
        struct db_stmt *st = store_stmt(c, sql[i]);
        if (st == NULL)
            return KM_ERR_INTERNAL;
        r = store_bind_text(st, 1, key);
        if (r == KM_OK)
            r = db_bind_int64(st, 2, at[i]);
        int rc = r == KM_OK ? store_step(c, st) : r;
        if (r == KM_OK && rc != DB_DONE)
            r = store_db_err(c, rc, "log the reserve of an API key");
        db_reset(st);
    }
    return r;
}

/* Inside the reserve's transaction: the key's quotas still allow one more. */
static int check_quota(struct store_conn *c, const char *key, const struct store_reserve_quota *q,
                       int64_t now, const char **which)
{
    int64_t n = 0;
    int r = KM_OK;
    if (q->keygens_per_hour > 0 &&
        (r = count_for_key(c, SQL_QUOTA_HOUR, key, now - 3600, &n)) == KM_OK &&
        n >= q->keygens_per_hour) {
        *which = "keygens_per_hour";
        return KM_ERR_LIMIT;
    }
    if (r == KM_OK && q->live_keygens > 0 &&
        (r = count_for_key(c, SQL_QUOTA_LIVE, key, 0, &n)) == KM_OK && n >= q->live_keygens) {
        *which = "live_keygens";
        return KM_ERR_LIMIT;
    }
    return r;
}
static const char SQL_SLOT_INSERT[] =
    "INSERT INTO keygen_participants (keygen_session_id, position, user_id, enclave_id)"
    " VALUES (?1, ?2, ?3, ?4)";

int store_keygen_reserve(struct store *s, const struct store_keygen *k,
                         const struct store_reserve_quota *quota, const char **which)
{
    struct store_conn *c = store_conn_acquire(s);
    int r = store_begin(c), rc;
    struct db_stmt *st;
    int64_t now = store_now();
    if (which != NULL)
        *which = NULL;
    if (r != KM_OK)
        goto out;
    /* A taken id is a conflict (409) whatever the quotas say. */
    st = store_stmt(c, SQL_KEYGEN_EXISTS);
    if (st == NULL) {
        r = KM_ERR_INTERNAL;
        goto out;
    }
    r = store_bind_text(st, 1, k->id);
    rc = r == KM_OK ? store_step(c, st) : r;
    if (r == KM_OK && rc == DB_ROW)
        r = KM_ERR_EXISTS;
    else if (r == KM_OK && rc != DB_DONE)
        r = store_db_err(c, rc, "look up a keygen id");
    db_reset(st);
    if (r != KM_OK)
        goto out;
    if (quota != NULL && k->api_key_id[0] != '\0') {
        const char *w = NULL;
        r = check_quota(c, k->api_key_id, quota, now, &w);
        if (which != NULL)
            *which = w;
        if (r == KM_OK)
            r = log_reserve(c, k->api_key_id, now);
        if (r != KM_OK)
            goto out;
    }
    st = store_stmt(c, SQL_KEYGEN_INSERT);
    if (st == NULL) {
        r = KM_ERR_INTERNAL;
        goto out;
    }
    r = store_bind_text(st, 1, k->id);
    if (r == KM_OK)
        r = store_bind_text(st, 2, k->coordinator_user_id);
    if (r == KM_OK)
        r = db_bind_int64(st, 3, k->coordinator_enclave_id);
    if (r == KM_OK)
        r = store_bind_text(st, 4, k->subsets);
    if (r == KM_OK)
        r = store_bind_text(st, 5, k->encrypted_taproot_tweak);
    if (r == KM_OK)
        r = db_bind_int64(st, 6, k->timeout_secs);
    if (r == KM_OK)
        r = db_bind_int64(st, 7, k->max_signing_sessions);
    if (r == KM_OK)
        r = db_bind_int64(st, 8, now);
    if (r == KM_OK)
        r = db_bind_int64(st, 9, now + (int64_t)k->timeout_secs);
    if (r == KM_OK)
        r = store_bind_enclave_keys(st, 10, k->enclave_keys, k->nenclave_keys);
    if (r == KM_OK)
        r = store_bind_text(st, 11, k->session_public_key);
    if (r == KM_OK)
        r = store_bind_text(st, 12, k->api_key_id);
    if (r == KM_OK && (rc = store_step(c, st)) != DB_DONE)
        r = store_db_err(c, rc, "insert keygen session");
    db_reset(st);
    for (size_t i = 0; r == KM_OK && i < k->nparticipants; i++) {
        st = store_stmt(c, SQL_SLOT_INSERT);
        if (st == NULL) {
            r = KM_ERR_INTERNAL;
            break;
        }
        r = store_bind_text(st, 1, k->id);
        if (r == KM_OK)
            r = db_bind_int64(st, 2, (int64_t)i);
        if (r == KM_OK)
            r = store_bind_text(st, 3, k->participants[i].user_id);
        if (r == KM_OK)
            r = db_bind_int64(st, 4, k->participants[i].enclave_id);
        if (r == KM_OK && (rc = store_step(c, st)) != DB_DONE)
            r = store_db_err(c, rc, "insert participant slot");
        db_reset(st);
    }
    if (r == KM_OK)
        r = store_commit(c);
out:
    if (r != KM_OK)
        store_rollback(c);
    store_conn_release(s, c);
    return r;
}

static const char SQL_KEYGEN_GET[] =
    "SELECT id, status, step, coordinator_user_id, coordinator_enclave_id, subsets,"
    " encrypted_taproot_tweak, timeout_secs, max_signing_sessions, session_public_key,"
    " encrypted_session_secret, enclave_keys, state, encrypted_aggregate_public_key,"
    " aggregate_check, subset_results, error, attempts, next_attempt_at, created_at,"
    " updated_at, expires_at, completed_at, api_key_id FROM keygen_sessions WHERE id = ?1";
static const char SQL_SLOTS_GET[] =
    "SELECT user_id, enclave_id, registered, encrypted_private_key, auth_pubkey,"
    " require_signing_approval, registered_at FROM keygen_participants"
    " WHERE keygen_session_id = ?1 ORDER BY position";

static void keygen_from_row(struct store_keygen *k, struct db_stmt *st, bool with_state)
{
    store_col_copy(k->id, sizeof(k->id), st, 0);
    if (keygen_status_parse(db_col_text(st, 1), &k->status) != KM_OK)
        k->status = STORE_KEYGEN_FAILED;
    k->step = (int)db_col_int64(st, 2);
    store_col_copy(k->coordinator_user_id, sizeof(k->coordinator_user_id), st, 3);
    k->coordinator_enclave_id = (uint32_t)db_col_int64(st, 4);
    k->subsets = store_col_strdup(st, 5);
    k->encrypted_taproot_tweak = store_col_strdup(st, 6);
    k->timeout_secs = (uint32_t)db_col_int64(st, 7);
    k->max_signing_sessions = (uint32_t)db_col_int64(st, 8);
    store_col_copy(k->session_public_key, sizeof(k->session_public_key), st, 9);
    k->encrypted_session_secret = store_col_strdup(st, 10);
    store_col_enclave_keys(st, 11, k->enclave_keys, &k->nenclave_keys);
    /* Step outputs matter to the coordinator only while it runs the steps;
     * every signing and status read of a completed session would copy
     * them (the largest column) for nothing. */
    if (k->status == STORE_KEYGEN_RUNNING || with_state)
        k->state = store_col_strdup(st, 12);
    k->encrypted_aggregate_public_key = store_col_strdup(st, 13);
    store_col_copy(k->aggregate_check, sizeof(k->aggregate_check), st, 14);
    k->subset_results = store_col_strdup(st, 15);
    k->error = store_col_strdup(st, 16);
    k->attempts = (int)db_col_int64(st, 17);
    k->next_attempt_at = db_col_int64(st, 18);
    k->created_at = db_col_int64(st, 19);
    k->updated_at = db_col_int64(st, 20);
    k->expires_at = db_col_int64(st, 21);
    k->completed_at = db_col_int64(st, 22);
    store_col_copy(k->api_key_id, sizeof(k->api_key_id), st, 23);
}

static void participant_from_row(struct store_participant *p, struct db_stmt *st)
{
    store_col_copy(p->user_id, sizeof(p->user_id), st, 0);
    p->enclave_id = (uint32_t)db_col_int64(st, 1);
    p->registered = db_col_int64(st, 2) != 0;
    p->encrypted_private_key = store_col_strdup(st, 3);
    store_col_copy(p->auth_pubkey, sizeof(p->auth_pubkey), st, 4);
    p->require_signing_approval = db_col_int64(st, 5) != 0;
    p->registered_at = db_col_int64(st, 6);
}

/* Reads the session row and its slots on connection c (inside or outside
 * a transaction). */
static int keygen_load(struct store_conn *c, const char *id, struct store_keygen *out,
                       bool with_state)
{
    memset(out, 0, sizeof(*out));
    struct db_stmt *st = store_stmt(c, SQL_KEYGEN_GET);
    if (st == NULL)
        return KM_ERR_INTERNAL;
    int r = store_bind_text(st, 1, id);
    int rc = r == KM_OK ? store_step(c, st) : r;
    if (rc == DB_ROW)
        keygen_from_row(out, st, with_state);
    else if (rc == DB_DONE)
        r = KM_ERR_NOT_FOUND;
    else if (r == KM_OK)
        r = store_db_err(c, rc, "load keygen session");
    db_reset(st);
    if (r != KM_OK)
        return r;

    st = store_stmt(c, SQL_SLOTS_GET);
    if (st == NULL)
        return KM_ERR_INTERNAL;
    r = store_bind_text(st, 1, id);
    size_t cap = 0;
    while (r == KM_OK && (rc = store_step(c, st)) == DB_ROW) {
        if (out->nparticipants == cap) {
            cap = cap ? cap * 2 : 8;
            out->participants = xrealloc(out->participants, cap * sizeof(*out->participants));
        }
        struct store_participant *p = &out->participants[out->nparticipants++];
        memset(p, 0, sizeof(*p));
        participant_from_row(p, st);
        if (p->registered)
            out->nregistered++;
    }
    if (r == KM_OK && rc != DB_DONE)
        r = store_db_err(c, rc, "load participants");
    db_reset(st);
    return r;
}

static char *dup_or_null(const char *p)
{
    return p != NULL ? xstrdup(p) : NULL;
}

void store_keygen_copy(struct store_keygen *dst, const struct store_keygen *src)
{
    *dst = *src;
    dst->subsets = dup_or_null(src->subsets);
    dst->encrypted_taproot_tweak = dup_or_null(src->encrypted_taproot_tweak);
    dst->encrypted_session_secret = dup_or_null(src->encrypted_session_secret);
    dst->state = dup_or_null(src->state);
    dst->encrypted_aggregate_public_key = dup_or_null(src->encrypted_aggregate_public_key);
    dst->subset_results = dup_or_null(src->subset_results);
    dst->error = dup_or_null(src->error);
    dst->participants = NULL;
    if (src->nparticipants > 0) {
        dst->participants = XALLOC_ARRAY(struct store_participant, src->nparticipants);
        for (size_t i = 0; i < src->nparticipants; i++) {
            dst->participants[i] = src->participants[i];
            dst->participants[i].encrypted_private_key =
                dup_or_null(src->participants[i].encrypted_private_key);
        }
    }
}

/* Completed keygens come from the cache when they can (internal.h). */
int store_keygen_get(struct store *s, const char *id, struct store_keygen *out)
{
    if (store_kcache_get(s, id, out))
        return KM_OK;
    uint64_t gen = store_kcache_gen(s);
    struct store_conn *c = store_conn_acquire(s);
    int r = keygen_load(c, id, out, false);
    store_conn_release(s, c);
    if (r == KM_OK)
        store_kcache_put(s, gen, out);
    else
        store_keygen_clear(out);
    return r;
}

int store_keygen_get_with_state(struct store *s, const char *id, struct store_keygen *out)
{
    struct store_conn *c = store_conn_acquire(s);
    int r = keygen_load(c, id, out, true);
    store_conn_release(s, c);
    if (r != KM_OK)
        store_keygen_clear(out);
    return r;
}

static const char SQL_KEYGEN_INIT[] =
    "UPDATE keygen_sessions SET status = 'collecting', session_public_key = ?2,"
    " encrypted_session_secret = ?3, updated_at = ?4 WHERE id = ?1 AND status = 'reserved'";
static const char SQL_SLOT_REGISTER[] =
    "UPDATE keygen_participants SET registered = 1, encrypted_private_key = ?3,"
    " auth_pubkey = ?4, require_signing_approval = ?5, registered_at = ?6"
    " WHERE keygen_session_id = ?1 AND user_id = ?2 AND registered = 0";
static const char SQL_SLOT_GET[] =
    "SELECT registered, encrypted_private_key, auth_pubkey, require_signing_approval"
    " FROM keygen_participants WHERE keygen_session_id = ?1 AND user_id = ?2";
static const char SQL_KEYGEN_COUNTS[] =
    "SELECT count(*), sum(registered) FROM keygen_participants WHERE keygen_session_id = ?1";

/* Compares a registered slot with p: KM_OK when identical, KM_ERR_EXISTS
 * when registered with other data, KM_ERR_STATE when not registered,
 * KM_ERR_NOT_FOUND when the user has no slot. */
static int slot_matches(struct store_conn *c, const char *id, const struct store_participant *p)
{
    struct db_stmt *st = store_stmt(c, SQL_SLOT_GET);
    if (st == NULL)
        return KM_ERR_INTERNAL;
    int r = store_bind_text(st, 1, id);
    if (r == KM_OK)
        r = store_bind_text(st, 2, p->user_id);
    int rc = r == KM_OK ? store_step(c, st) : r;
    if (rc == DB_DONE) {
        r = KM_ERR_NOT_FOUND;
    } else if (rc == DB_ROW) {
        const char *key = db_col_text(st, 1);
        const char *auth = db_col_text(st, 2);
        bool same = key != NULL && strcmp(key, p->encrypted_private_key) == 0 && auth != NULL &&
                    strcmp(auth, p->auth_pubkey) == 0 &&
                    (db_col_int64(st, 3) != 0) == p->require_signing_approval;
        r = db_col_int64(st, 0) == 0 ? KM_ERR_STATE : same ? KM_OK : KM_ERR_EXISTS;
    } else if (r == KM_OK) {
        r = store_db_err(c, rc, "read participant");
    }
    db_reset(st);
    return r;
}

/* Fills one slot; KM_ERR_EXISTS if registered before with other data,
 * KM_ERR_NOT_FOUND if the user has no slot. */
static int slot_register(struct store_conn *c, const char *id, const struct store_participant *p)
{
    struct db_stmt *st = store_stmt(c, SQL_SLOT_REGISTER);
    if (st == NULL)
        return KM_ERR_INTERNAL;
    int r = store_bind_text(st, 1, id);
    if (r == KM_OK)
        r = store_bind_text(st, 2, p->user_id);
    if (r == KM_OK)
        r = store_bind_text(st, 3, p->encrypted_private_key);
    if (r == KM_OK)
        r = store_bind_text(st, 4, p->auth_pubkey);
    if (r == KM_OK)
        r = db_bind_int64(st, 5, p->require_signing_approval ? 1 : 0);
    if (r == KM_OK)
        r = db_bind_int64(st, 6, store_now());
    int rc = r == KM_OK ? store_step(c, st) : r;
    if (r == KM_OK && rc != DB_DONE)
        r = store_db_err(c, rc, "register participant");
    int64_t changed = db_changes(st);
    db_reset(st);
    if (r != KM_OK || changed == 1)
        return r;

    /* Nothing updated: unknown user, or registered already. The same data
     * again is a retried request, not a conflict. */
    return slot_matches(c, id, p);
}

int store_keygen_initialize(struct store *s, const char *id, const char *session_public_key,
                            const char *encrypted_session_secret,
                            const struct store_participant *coordinator)
{
    struct store_conn *c = store_conn_acquire(s);
    int r = store_begin(c);
    if (r != KM_OK)
        goto out;
    struct db_stmt *st = store_stmt(c, SQL_KEYGEN_INIT);
    r = st == NULL ? KM_ERR_INTERNAL : store_bind_text(st, 1, id);
    if (r == KM_OK)
        r = store_bind_text(st, 2, session_public_key);
    if (r == KM_OK)
        r = store_bind_text(st, 3, encrypted_session_secret);
    if (r == KM_OK)
        r = db_bind_int64(st, 4, store_now());
    r = lifecycle_exec(c, st, r, "initialize keygen session");
    if (r == KM_ERR_STATE) { /* not reserved: KM_ERR_NOT_FOUND if unknown */
        char status[LIFECYCLE_STATUS_MAX];
        r = lifecycle_status(c, LIFECYCLE_KEYGEN, id, status);
        r = r == KM_OK ? KM_ERR_STATE : r;
    }
    if (r == KM_OK)
        r = slot_register(c, id, coordinator);
    if (r == KM_OK)
        r = store_commit(c);
out:
    if (r != KM_OK)
        store_rollback(c);
    store_conn_release(s, c);
    return r;
}

int store_keygen_register(struct store *s, const char *id, const struct store_participant *p,
                          size_t *registered, size_t *expected, bool *now_running)
{
    *registered = *expected = 0;
    *now_running = false;
    struct store_conn *c = store_conn_acquire(s);
    int r = store_begin(c), rc;
    struct db_stmt *st;
    if (r != KM_OK)
        goto out;
    /* Registration is open only while collecting. */
    r = lifecycle_require_status(c, LIFECYCLE_KEYGEN, id, "collecting");
    if (r == KM_OK)
        r = slot_register(c, id, p);
    else if (r == KM_ERR_STATE && slot_matches(c, id, p) == KM_OK)
        r = KM_OK; /* a retry of a registration that already counted */
    if (r != KM_OK)
        goto out;

    st = store_stmt(c, SQL_KEYGEN_COUNTS);
    if (st == NULL) {
        r = KM_ERR_INTERNAL;
        goto out;
    }
    r = store_bind_text(st, 1, id);
    if ((rc = store_step(c, st)) == DB_ROW) {
        *expected = (size_t)db_col_int64(st, 0);
        *registered = (size_t)db_col_int64(st, 1);
    } else {
        r = store_db_err(c, rc, "count participants");
    }
    db_reset(st);
    if (r == KM_OK && *registered == *expected)
        r = lifecycle_start(c, LIFECYCLE_KEYGEN, id, now_running);
    if (r == KM_OK)
        r = store_commit(c);
out:
    if (r != KM_OK)
        store_rollback(c);
    store_conn_release(s, c);
    return r;
}

static const char SQL_KEYGEN_ADVANCE[] = LIFECYCLE_ADVANCE_SQL(
    "keygen_sessions",
    "encrypted_aggregate_public_key = coalesce(?7, encrypted_aggregate_public_key),"
    " aggregate_check = coalesce(?8, aggregate_check),"
    " subset_results = coalesce(?9, subset_results),");

int store_keygen_advance(struct store *s, const char *id, const struct store_keygen_progress *p)
{
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, SQL_KEYGEN_ADVANCE);
    int r = lifecycle_bind_advance(st, id, p->from_step, p->to_step,
                                   store_keygen_status_name(p->status), p->state);
    if (r == KM_OK)
        r = store_bind_text(st, 7, p->encrypted_aggregate_public_key);
    if (r == KM_OK)
        r = store_bind_text(st, 8, p->aggregate_check);
    if (r == KM_OK)
        r = store_bind_text(st, 9, p->subset_results);
    r = lifecycle_exec(c, st, r, "advance keygen session");
    store_conn_release(s, c);
    return r;
}

int store_keygen_retry_later(struct store *s, const char *id, int step, int64_t next_attempt_at,
                             const char *error)
{
    return lifecycle_retry_later(s, LIFECYCLE_KEYGEN, id, step, next_attempt_at, error);
}

int store_keygen_fail(struct store *s, const char *id, const char *error)
{
    return lifecycle_fail(s, LIFECYCLE_KEYGEN, id, error);
}

static const char SQL_KEYGEN_DELETE[] = "DELETE FROM keygen_sessions WHERE id = ?1";

int store_keygen_delete(struct store *s, const char *id)
{
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, SQL_KEYGEN_DELETE);
    int r = st == NULL ? KM_ERR_INTERNAL : store_bind_text(st, 1, id);
    r = lifecycle_exec(c, st, r, "delete keygen session");
    store_conn_release(s, c);
    return r == KM_ERR_STATE ? KM_ERR_NOT_FOUND : r;
}

int store_keygen_list_running(struct store *s, char (**ids)[37], size_t *n)
{
    return lifecycle_list_running(s, LIFECYCLE_KEYGEN, ids, n);
}

int store_keygen_list_expired(struct store *s, int64_t now, char (**ids)[37], size_t *n)
{
    return lifecycle_list_expired(s, LIFECYCLE_KEYGEN, now, ids, n);
}
