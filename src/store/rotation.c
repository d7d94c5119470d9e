/*
 * rotation.c - enclaves' sealed identity keys (current and next) and what
 * a key rotation reads and writes (store/store.h "key rotation";
 * gateway/rotation.c drives it).
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "store/internal.h"
#include "common/banned.h"

static const char SQL_SEALED_CURRENT[] =
    "SELECT key_epoch, sealer, sealed_key, public_key FROM enclave_sealed_keys"
    " WHERE enclave_id = ?1 AND state = 'current'";
static const char SQL_SEALED_ADD[] =
    "INSERT INTO enclave_sealed_keys (enclave_id, key_epoch, sealer, sealed_key, public_key,"
    " state, created_at) SELECT ?1, ?2, ?3, ?4, ?5, 'current', ?6 WHERE NOT EXISTS"
    " (SELECT 1 FROM enclave_sealed_keys WHERE enclave_id = ?1 AND state = 'current')";
static const char SQL_SEALED_NEXT[] =
    "SELECT key_epoch, sealer, sealed_key, public_key FROM enclave_sealed_keys"
    " WHERE enclave_id = ?1 AND state = 'next'";
static const char SQL_SEALED_ADD_NEXT[] =
    "INSERT INTO enclave_sealed_keys (enclave_id, key_epoch, sealer, sealed_key, public_key,"
    " state, created_at) SELECT ?1, ?2, ?3, ?4, ?5, 'next', ?6 WHERE NOT EXISTS"
    " (SELECT 1 FROM enclave_sealed_keys WHERE enclave_id = ?1 AND state = 'next')";
static const char SQL_SEALED_RETIRE[] =
    "UPDATE enclave_sealed_keys SET state = 'retired' WHERE enclave_id = ?1 AND state = 'current'";
static const char SQL_SEALED_PROMOTE[] =
    "UPDATE enclave_sealed_keys SET state = 'current' WHERE enclave_id = ?1 AND state = 'next'"
    " AND key_epoch = ?2";
static const char SQL_ENCLAVE_ROTATED[] =
    "UPDATE enclaves SET public_key = ?2, key_epoch = key_epoch + 1, updated_at = ?3"
    " WHERE enclave_id = ?1";
/* Completed keygens whose ciphertexts for the enclave are still under
 * the key public_key (their enclave_keys snapshot names it). One text per
 * engine: JSON access differs. */
#define KEYGENS_USING(key_is)                                                                      \
    "SELECT id FROM keygen_sessions WHERE status = 'completed' AND " key_is " LIMIT ?3"
static const char SQL_KEYGENS_USING_SQLITE[] =
    KEYGENS_USING(STORE_ENCLAVE_KEY_IS_SQLITE("?1", "?2"));
static const char SQL_KEYGENS_USING_PG[] = KEYGENS_USING(STORE_ENCLAVE_KEY_IS_PG("?1", "?2"));
static const char SQL_KEYGENS_BUSY[] =
    "SELECT count(DISTINCT k.id) FROM keygen_sessions k JOIN keygen_participants p"
    " ON p.keygen_session_id = k.id WHERE p.enclave_id = ?1"
    " AND k.status IN ('reserved', 'collecting', 'running')";
#define KEYGEN_REKEY(key_is)                                                                       \
    "UPDATE keygen_sessions SET encrypted_session_secret = ?3, state = ?4, enclave_keys = ?5,"     \
    " updated_at = ?6 WHERE id = ?1 AND status = 'completed' AND " key_is
static const char SQL_KEYGEN_REKEY_SQLITE[] = KEYGEN_REKEY(STORE_ENCLAVE_KEY_IS_SQLITE("?2", "?7"));
static const char SQL_KEYGEN_REKEY_PG[] = KEYGEN_REKEY(STORE_ENCLAVE_KEY_IS_PG("?2", "?7"));
static const char SQL_SLOT_REKEY[] = "UPDATE keygen_participants SET encrypted_private_key = ?3"
                                     " WHERE keygen_session_id = ?1 AND user_id = ?2";

void store_sealed_key_clear(struct store_sealed_key *k)
{
    free(k->sealed_key_hex);
    memset(k, 0, sizeof(*k));
}

/* The enclave's sealed key in one state (sql: SQL_SEALED_CURRENT or
 * SQL_SEALED_NEXT). KM_ERR_NOT_FOUND when it has none. */
static int get_sealed(struct store *s, const char *sql, uint32_t enclave_id,
                      struct store_sealed_key *out)
{
    memset(out, 0, sizeof(*out));
    out->enclave_id = enclave_id;
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, sql);
    int r = KM_ERR_INTERNAL;
    if (st != NULL) {
        r = db_bind_int64(st, 1, enclave_id);
        int rc = r == KM_OK ? store_step(c, st) : r;
        if (rc == DB_ROW) {
            out->key_epoch = db_col_int64(st, 0);
            store_col_copy(out->sealer, sizeof(out->sealer), st, 1);
            char *blob = store_col_strdup(st, 2);
            out->sealed_key_hex = blob ? blob : xstrdup("");
            store_col_copy(out->public_key, sizeof(out->public_key), st, 3);
        } else if (r == KM_OK) {
            r = rc == DB_DONE ? KM_ERR_NOT_FOUND : store_db_err(c, rc, "read sealed key");
        }
        db_reset(st);
    }
    store_conn_release(s, c);
    return r;
}

/* Inserts k in one state (sql: SQL_SEALED_ADD or SQL_SEALED_ADD_NEXT) in
 * its own transaction; KM_ERR_EXISTS when the enclave has a key in that
 * state already. */
static int add_sealed(struct store *s, const char *sql, const struct store_sealed_key *k)
{
    struct store_conn *c = store_conn_acquire(s);
    int r = store_begin(c);
    struct db_stmt *st = r == KM_OK ? store_stmt(c, sql) : NULL;
    if (r == KM_OK && st == NULL)
        r = KM_ERR_INTERNAL;
    if (r == KM_OK) {
        r = db_bind_int64(st, 1, k->enclave_id);
        if (r == KM_OK)
            r = db_bind_int64(st, 2, k->key_epoch);
        if (r == KM_OK)
            r = store_bind_text(st, 3, k->sealer);
        if (r == KM_OK)
            r = store_bind_text(st, 4, k->sealed_key_hex);
        if (r == KM_OK)
            r = store_bind_text(st, 5, k->public_key);
        if (r == KM_OK)
            r = db_bind_int64(st, 6, store_now());
        int rc = r == KM_OK ? store_step(c, st) : r;
        if (r == KM_OK && rc != DB_DONE)
            r = store_db_err(c, rc, "record sealed key");
        else if (r == KM_OK && db_changes(st) == 0)
            r = KM_ERR_EXISTS;
        db_reset(st);
    }
    return store_end(s, c, r);
}

int store_sealed_key_current(struct store *s, uint32_t enclave_id, struct store_sealed_key *out)
{
    return get_sealed(s, SQL_SEALED_CURRENT, enclave_id, out);
}

int store_sealed_key_add(struct store *s, const struct store_sealed_key *k)
{
    return add_sealed(s, SQL_SEALED_ADD, k);
}

int store_sealed_key_next(struct store *s, uint32_t enclave_id, struct store_sealed_key *out)
{
    return get_sealed(s, SQL_SEALED_NEXT, enclave_id, out);
}

int store_sealed_key_add_next(struct store *s, const struct store_sealed_key *k)
{
    return add_sealed(s, SQL_SEALED_ADD_NEXT, k);
}

/* Runs one prepared update with (enclave id, int64, text) bindings. */
static int exec_update(struct store_conn *c, const char *sql, uint32_t enclave_id, int64_t v,
                       const char *text, int64_t *changes)
{
    struct db_stmt *st = store_stmt(c, sql);
    if (st == NULL)
        return KM_ERR_INTERNAL;
    int r = db_bind_int64(st, 1, enclave_id);
    if (r == KM_OK && text != NULL) {
        r = store_bind_text(st, 2, text);
        if (r == KM_OK)
            r = db_bind_int64(st, 3, v);
    } else if (r == KM_OK && db_param_count(st) >= 2) {
        r = db_bind_int64(st, 2, v);
    }
    int rc = r == KM_OK ? store_step(c, st) : r;
    if (r == KM_OK && rc != DB_DONE)
        r = store_db_err(c, rc, "rotate enclave key");
    if (changes != NULL)
        *changes = db_changes(st);
    db_reset(st);
    return r;
}

int store_sealed_key_promote(struct store *s, uint32_t enclave_id, int64_t key_epoch,
                             const char *public_key_hex)
{
    struct store_conn *c = store_conn_acquire(s);
    int64_t promoted = 0;
    int r = store_begin(c);
    if (r == KM_OK)
        r = exec_update(c, SQL_SEALED_RETIRE, enclave_id, 0, NULL, NULL);
    if (r == KM_OK)
        r = exec_update(c, SQL_SEALED_PROMOTE, enclave_id, key_epoch, NULL, &promoted);
    if (r == KM_OK && promoted != 1)
        r = KM_ERR_STATE;
    if (r == KM_OK)
        r = exec_update(c, SQL_ENCLAVE_ROTATED, enclave_id, store_now(), public_key_hex, NULL);
    return store_end(s, c, r);
}

int store_keygens_using_key(struct store *s, uint32_t enclave_id, const char *public_key_hex,
                            size_t max, char (**ids)[37], size_t *n)
{
    *ids = NULL;
    *n = 0;
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st =
        store_stmt(c, store_sql(c, SQL_KEYGENS_USING_SQLITE, SQL_KEYGENS_USING_PG));
    int r = st ? KM_OK : KM_ERR_INTERNAL;
    char eid[16];
    snprintf(eid, sizeof(eid), "%u", enclave_id);
    if (r == KM_OK)
        r = store_bind_text(st, 1, eid);
    if (r == KM_OK)
        r = store_bind_text(st, 2, public_key_hex);
    if (r == KM_OK)
        r = db_bind_int64(st, 3, (int64_t)max);
    int rc = DB_DONE;
    while (r == KM_OK && (rc = store_step(c, st)) == DB_ROW) {
        *ids = xrealloc(*ids, (*n + 1) * sizeof(**ids));
        store_col_copy((*ids)[*n], sizeof((*ids)[*n]), st, 0);
        (*n)++;
    }
    if (r == KM_OK && rc != DB_DONE)
        r = store_db_err(c, rc, "list keygens of an enclave key");
    if (st != NULL)
        db_reset(st);
    store_conn_release(s, c);
    return r;
}

int store_keygens_busy_on(struct store *s, uint32_t enclave_id, int64_t *count)
{
    *count = 0;
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, SQL_KEYGENS_BUSY);
    int r = KM_ERR_INTERNAL;
    if (st != NULL) {
        r = db_bind_int64(st, 1, enclave_id);
        int rc = r == KM_OK ? store_step(c, st) : r;
        if (r == KM_OK)
            r = rc == DB_ROW ? KM_OK : store_db_err(c, rc, "count keygens in progress");
        if (r == KM_OK)
            *count = db_col_int64(st, 0);
        db_reset(st);
    }
    store_conn_release(s, c);
    return r;
}

int store_keygen_rekey(struct store *s, const struct store_keygen_rekey *rk)
{
    struct store_conn *c = store_conn_acquire(s);
    char eid[16];
    snprintf(eid, sizeof(eid), "%u", rk->enclave_id);
    int r = store_begin(c);
    struct db_stmt *st =
        r == KM_OK ? store_stmt(c, store_sql(c, SQL_KEYGEN_REKEY_SQLITE, SQL_KEYGEN_REKEY_PG))
                   : NULL;
    if (r == KM_OK && st == NULL)
        r = KM_ERR_INTERNAL;
    if (r == KM_OK) {
        r = store_bind_text(st, 1, rk->keygen_id);
        if (r == KM_OK)
            r = store_bind_text(st, 2, eid);
        if (r == KM_OK)
            r = store_bind_text(st, 3, rk->encrypted_session_secret);
        if (r == KM_OK)
            r = store_bind_text(st, 4, rk->state);
        if (r == KM_OK)
            r = store_bind_enclave_keys(st, 5, rk->enclave_keys, rk->nenclave_keys);
        if (r == KM_OK)
            r = db_bind_int64(st, 6, store_now());
        if (r == KM_OK)
            r = store_bind_text(st, 7, rk->old_public_key);
        int rc = r == KM_OK ? store_step(c, st) : r;
        if (r == KM_OK && rc != DB_DONE)
            r = store_db_err(c, rc, "re-encrypted keygen");
        else if (r == KM_OK && db_changes(st) != 1)
            r = KM_ERR_STATE; /* re-encrypted already, or no longer completed */
        db_reset(st);
    }
    for (size_t i = 0; r == KM_OK && i < rk->nslots; i++) {
        st = store_stmt(c, SQL_SLOT_REKEY);
        if (st == NULL) {
            r = KM_ERR_INTERNAL;
            break;
        }
        r = store_bind_text(st, 1, rk->keygen_id);
        if (r == KM_OK)
            r = store_bind_text(st, 2, rk->slots[i].user_id);
        if (r == KM_OK)
            r = store_bind_text(st, 3, rk->slots[i].encrypted_private_key);
        int rc = r == KM_OK ? store_step(c, st) : r;
        if (r == KM_OK && rc != DB_DONE)
            r = store_db_err(c, rc, "re-encrypted participant key");
        db_reset(st);
    }
    return store_end(s, c, r);
}
