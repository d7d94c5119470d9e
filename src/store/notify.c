/*
 * notify.c - change notices between gateways sharing one PostgreSQL
 * database (store.h "Several gateways"): each session change is announced
 * on one channel, and a thread per gateway listens on a connection of its
 * own and passes on what the other gateways announced.
 */
#include "store/internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "common/banned.h"

#define LOG_COMP         "store"
#define NOTIFY_CHANNEL   "keymeld_changed"
#define LISTEN_POLL_MS   200 /* how soon a stop is noticed */
#define RECONNECT_MIN_MS 250 /* back-off after a lost listening connection */
#define RECONNECT_MAX_MS 5000

struct store_listener {
    struct store *s;
    struct db_conn *conn; /* NULL while reconnecting */
    pthread_t thread;
    atomic_bool stopping;
    char self[STORE_OWNER_MAX + 1];
    store_change_fn fn;
    void *ud;
};

int store_notify_changed(struct store *s, const char *owner, const char *id)
{
    if (!store_shared(s))
        return KM_OK;
    char payload[STORE_OWNER_MAX + 1 + 64];
    snprintf(payload, sizeof(payload), "%s:%s", owner, id);
    struct store_conn *c = store_conn_acquire(s);
    int r = db_notify(c->db, NOTIFY_CHANNEL, payload);
    if (r != KM_OK)
        r = store_db_err(c, r, "announce a change");
    store_conn_release(s, c);
    return r;
}

/* (Re)opens the listening connection; on success everything may have
 * changed while nobody listened. */
static bool listen_again(struct store_listener *l)
{
    struct km_error err;
    db_close(l->conn, false);
    l->conn = NULL;
    struct db_conn *c = NULL;
    if (store_open_conn(l->s, &c, &err) != KM_OK) {
        log_warn(LOG_COMP, "change listener: %s", err.msg);
        return false;
    }
    if (db_listen(c, NOTIFY_CHANNEL) != KM_OK) {
        log_warn(LOG_COMP, "change listener: LISTEN failed: %s", db_errmsg(c));
        db_close(c, false);
        return false;
    }
    l->conn = c;
    l->fn(l->ud, "");
    return true;
}

/* Payload "<owner>:<id>" (the owner is host:port, the id has no colon):
 * another gateway's changes only. */
static void deliver(struct store_listener *l, const char *payload)
{
    const char *colon = strrchr(payload, ':');
    if (colon == NULL)
        return;
    size_t n = (size_t)(colon - payload);
    if (n == strlen(l->self) && strncmp(payload, l->self, n) == 0)
        return;
    l->fn(l->ud, colon + 1);
}

static void *listener_main(void *arg)
{
    struct store_listener *l = arg;
    uint32_t backoff = RECONNECT_MIN_MS;
    char payload[DB_NOTIFY_PAYLOAD_MAX + 1];
    while (!atomic_load(&l->stopping)) {
        if (l->conn == NULL) {
            if (listen_again(l)) {
                backoff = RECONNECT_MIN_MS;
            } else {
                for (uint32_t t = 0; t < backoff && !atomic_load(&l->stopping); t += LISTEN_POLL_MS)
                    clock_sleep_ms(LISTEN_POLL_MS);
                backoff = backoff * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : backoff * 2;
            }
            continue;
        }
        int r = db_wait_notify(l->conn, LISTEN_POLL_MS, payload, sizeof(payload));
        if (r == KM_OK) {
            deliver(l, payload);
        } else if (r != KM_ERR_TIMEOUT) {
            log_warn(LOG_COMP, "change listener lost its connection (%s): reconnecting",
                     db_errmsg(l->conn));
            db_close(l->conn, false);
            l->conn = NULL;
        }
    }
    return NULL;
}

int store_listen_start(struct store *s, const char *owner, store_change_fn fn, void *ud,
                       struct km_error *err)
{
    struct store_listener **slot = store_listener_slot(s);
    if (!store_shared(s) || *slot != NULL)
        return KM_OK;
    struct store_listener *l = xcalloc(1, sizeof(*l));
    l->s = s;
    l->fn = fn;
    l->ud = ud;
    snprintf(l->self, sizeof(l->self), "%s", owner);
    struct db_conn *c = NULL;
    int r = store_open_conn(s, &c, err);
    if (r == KM_OK && db_listen(c, NOTIFY_CHANNEL) != KM_OK)
        r = km_error_set(err, KM_ERR_IO, 0, "LISTEN failed: %s", db_errmsg(c));
    if (r != KM_OK) {
        db_close(c, false);
        free(l);
        return r;
    }
    l->conn = c;
    if (pthread_create(&l->thread, NULL, listener_main, l) != 0)
        KM_BUG("cannot start the change listener");
    *slot = l;
    return KM_OK;
}

void store_listen_stop(struct store *s)
{
    struct store_listener **slot = store_listener_slot(s);
    struct store_listener *l = *slot;
    if (l == NULL)
        return;
    atomic_store(&l->stopping, true);
    pthread_join(l->thread, NULL);
    db_close(l->conn, false);
    free(l);
    *slot = NULL;
}
