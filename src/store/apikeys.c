/*
 * apikeys.c - operator API keys: who may create work (store/store.h "API
 * keys"). Only a SHA-256 of each token is stored.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "store/internal.h"
#include "common/banned.h"

static const char SQL_KEY_INSERT[] =
    "INSERT INTO api_keys (id, secret_sha256, name, keygens_per_hour, live_keygens,"
    " max_participants, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_KEY_GET[] =
    "SELECT id, secret_sha256, name, keygens_per_hour, live_keygens, max_participants,"
    " created_at, revoked_at FROM api_keys WHERE id = ?1";
static const char SQL_KEY_LIST[] =
    "SELECT id, secret_sha256, name, keygens_per_hour, live_keygens, max_participants,"
    " created_at, revoked_at FROM api_keys ORDER BY created_at, id";
static const char SQL_KEY_REVOKE[] =
    "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at = 0";
static const char SQL_KEY_EXISTS[] = "SELECT 1 FROM api_keys WHERE id = ?1";

static void key_from_row(struct store_api_key *k, struct db_stmt *st)
{
    memset(k, 0, sizeof(*k));
    store_col_copy(k->id, sizeof(k->id), st, 0);
    store_col_copy(k->secret_sha256, sizeof(k->secret_sha256), st, 1);
    store_col_copy(k->name, sizeof(k->name), st, 2);
    k->keygens_per_hour = (uint32_t)db_col_int64(st, 3);
    k->live_keygens = (uint32_t)db_col_int64(st, 4);
    k->max_participants = (uint32_t)db_col_int64(st, 5);
    k->created_at = db_col_int64(st, 6);
    k->revoked_at = db_col_int64(st, 7);
}

int store_api_key_create(struct store *s, struct store_api_key *k)
{
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, SQL_KEY_INSERT);
    int r = st ? KM_OK : KM_ERR_INTERNAL;
    if (r == KM_OK)
        r = store_bind_text(st, 1, k->id);
    if (r == KM_OK)
        r = store_bind_text(st, 2, k->secret_sha256);
    if (r == KM_OK)
        r = store_bind_text(st, 3, k->name);
    if (r == KM_OK)
        r = db_bind_int64(st, 4, k->keygens_per_hour);
    if (r == KM_OK)
        r = db_bind_int64(st, 5, k->live_keygens);
    if (r == KM_OK)
        r = db_bind_int64(st, 6, k->max_participants);
    k->created_at = store_now();
    if (r == KM_OK)
        r = db_bind_int64(st, 7, k->created_at);
    if (r == KM_OK) {
        int rc = store_step(c, st);
        if (rc != DB_DONE)
            r = store_db_err(c, rc, "create API key"); /* KM_ERR_EXISTS: a taken id */
    }
    if (st != NULL)
        db_reset(st);
    store_conn_release(s, c);
    return r;
}

int store_api_key_get(struct store *s, const char *id, struct store_api_key *out)
{
    memset(out, 0, sizeof(*out));
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, SQL_KEY_GET);
    int r = st ? store_bind_text(st, 1, id) : KM_ERR_INTERNAL;
    if (r == KM_OK) {
        int rc = store_step(c, st);
        if (rc == DB_ROW)
            key_from_row(out, st);
        else
            r = rc == DB_DONE ? KM_ERR_NOT_FOUND : store_db_err(c, rc, "read API key");
    }
    if (st != NULL)
        db_reset(st);
    store_conn_release(s, c);
    return r;
}

int store_api_key_list(struct store *s, struct store_api_key **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, SQL_KEY_LIST);
    int r = st ? KM_OK : KM_ERR_INTERNAL, rc = DB_DONE;
    while (r == KM_OK && (rc = store_step(c, st)) == DB_ROW) {
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        key_from_row(&(*out)[*n], st);
        (*n)++;
    }
    if (r == KM_OK && rc != DB_DONE)
        r = store_db_err(c, rc, "list API keys");
    if (st != NULL)
        db_reset(st);
    store_conn_release(s, c);
    return r;
}

int store_api_key_revoke(struct store *s, const char *id)
{
    struct store_conn *c = store_conn_acquire(s);
    struct db_stmt *st = store_stmt(c, SQL_KEY_EXISTS);
    int r = st ? store_bind_text(st, 1, id) : KM_ERR_INTERNAL;
    if (r == KM_OK) {
        int rc = store_step(c, st);
        r = rc == DB_ROW    ? KM_OK
            : rc == DB_DONE ? KM_ERR_NOT_FOUND
                            : store_db_err(c, rc, "read API key");
    }
    if (st != NULL)
        db_reset(st);
    if (r == KM_OK && (st = store_stmt(c, SQL_KEY_REVOKE)) != NULL) {
        r = store_bind_text(st, 1, id);
        if (r == KM_OK)
            r = db_bind_int64(st, 2, store_now());
        int rc = r == KM_OK ? store_step(c, st) : r;
        if (r == KM_OK && rc != DB_DONE)
            r = store_db_err(c, rc, "revoke API key");
        db_reset(st);
    }
    store_conn_release(s, c);
    return r;
}
