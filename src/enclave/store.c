#include "enclave/store.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "common/banned.h"

#define STORE_BUCKETS 1024

struct store {
    pthread_mutex_t lock;
    store_removed_fn evict_cb;
    void *evict_ud;
    size_t max;
    size_t count;
    uint32_t nkind[2];
    struct session *buckets[STORE_BUCKETS];
};

/* A growable list of removed sessions, released after the lock is dropped
 * (their destroy callbacks may call back into the store). */
struct rmlist {
    struct session **v;
    size_t n, cap;
};

static void rmlist_push(struct rmlist *l, struct session *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = xrealloc(l->v, st_mult(l->cap, sizeof(*l->v)));
    }
    l->v[l->n++] = s;
}

static size_t bucket_of(enum session_kind kind, const struct uuid *id)
{
    /* FNV-1a: UUIDv7s share their leading timestamp bytes, so every byte
     * counts. */
    uint64_t h = 1469598103934665603ull ^ (uint64_t)kind;
    for (size_t i = 0; i < sizeof(id->b); i++) {
        h ^= id->b[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h % STORE_BUCKETS);
}

struct store *store_new(size_t max_sessions)
{
    struct store *st = xcalloc(1, sizeof(*st));
    pthread_mutex_init(&st->lock, NULL);
    st->max = max_sessions;
    return st;
}

struct session *session_new(enum session_kind kind, const struct uuid *id,
                            const struct uuid *keygen_id, void *data, void (*destroy)(void *data))
{
    struct session *s = xcalloc(1, sizeof(*s));
    s->kind = kind;
    s->id = *id;
    s->keygen_id = *keygen_id;
    s->data = data;
    s->destroy = destroy;
    s->expires_ms = STORE_NEVER;
    pthread_cond_init(&s->turn, NULL);
    return s;
}

static void session_destroy(struct session *s)
{
    if (s->destroy != NULL)
        s->destroy(s->data);
    pthread_cond_destroy(&s->turn);
    free(s);
}

void session_discard(struct session *s)
{
    session_destroy(s);
}

static struct session *find_locked(struct store *st, enum session_kind kind, const struct uuid *id)
{
    for (struct session *s = st->buckets[bucket_of(kind, id)]; s != NULL; s = s->hnext)
        if (s->kind == kind && uuid_equal(&s->id, id))
            return s;
    return NULL;
}

/* Unlinks s from the map and queues its map reference for release. */
static void unlink_locked(struct store *st, struct session *s, struct rmlist *out)
{
    struct session **pp = &st->buckets[bucket_of(s->kind, &s->id)];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    s->hnext = NULL;
    s->removed = true;
    st->count--;
    st->nkind[s->kind]--;
    /* Commands waiting for their turn find out when they get it. */
    rmlist_push(out, s);
}

/* Removes s and, for a keygen session, its signing sessions (queued first:
 * they hold references to the keygen). */
static void remove_locked(struct store *st, struct session *s, struct rmlist *out)
{
    if (s->removed)
        return;
    if (s->kind == SESSION_KEYGEN) {
        for (size_t b = 0; b < STORE_BUCKETS; b++) {
            struct session *c = st->buckets[b];
            while (c != NULL) {
                struct session *next = c->hnext;
                if (c->kind == SESSION_SIGNING && uuid_equal(&c->keygen_id, &s->id))
                    unlink_locked(st, c, out);
                c = next;
            }
        }
    }
    unlink_locked(st, s, out);
}

/* Tells cb about each removed session, then drops the map's references. */
static void rmlist_finish(struct store *st, struct rmlist *l, store_removed_fn cb, void *ud)
{
    for (size_t i = 0; i < l->n; i++) {
        if (cb != NULL)
            cb(ud, l->v[i]);
        store_release(st, l->v[i]);
    }
    free(l->v);
}

static bool expired(const struct session *s, uint64_t now_ms)
{
    return s->expires_ms != STORE_NEVER && now_ms >= s->expires_ms;
}

void store_set_evict_callback(struct store *st, store_removed_fn cb, void *ud)
{
    pthread_mutex_lock(&st->lock);
    st->evict_cb = cb;
    st->evict_ud = ud;
    pthread_mutex_unlock(&st->lock);
}

void store_set_evictable(struct store *st, struct session *s, bool evictable)
{
    pthread_mutex_lock(&st->lock);
    s->evictable = evictable;
    pthread_mutex_unlock(&st->lock);
}

/* The least recently used evictable session that only the map holds (a
 * signing session holds a reference to its keygen), or NULL. */
static struct session *eviction_victim_locked(struct store *st)
{
    struct session *victim = NULL;
    for (size_t b = 0; b < STORE_BUCKETS; b++)
        for (struct session *s = st->buckets[b]; s != NULL; s = s->hnext)
            if (s->evictable && s->refs == 1 &&
                (victim == NULL || s->last_used_ms < victim->last_used_ms))
                victim = s;
    return victim;
}

int store_insert(struct store *st, struct session *s, const struct session *parent,
                 uint64_t expires_ms, uint64_t now_ms, int *existing_state)
{
    struct rmlist rm = {0}, evicted = {0};
    int r = KM_OK;
    pthread_mutex_lock(&st->lock);
    if (st->count >= st->max && st->evict_cb != NULL) {
        struct session *victim = eviction_victim_locked(st);
        if (victim != NULL)
            remove_locked(st, victim, &evicted);
    }
    struct session *old = find_locked(st, s->kind, &s->id);
    if (old != NULL && expired(old, now_ms)) {
        remove_locked(st, old, &rm);
        old = NULL;
    }
    if (old != NULL) {
        *existing_state = old->state;
        r = KM_ERR_EXISTS;
    } else if (parent != NULL && parent->removed) {
        r = KM_ERR_NOT_FOUND;
    } else if (st->count >= st->max) {
        r = KM_ERR_LIMIT;
    } else {
        size_t b = bucket_of(s->kind, &s->id);
        s->hnext = st->buckets[b];
        st->buckets[b] = s;
        s->refs = 1;
        s->expires_ms = expires_ms;
        s->last_used_ms = now_ms;
        st->count++;
        st->nkind[s->kind]++;
    }
    store_removed_fn cb = st->evict_cb;
    void *ud = st->evict_ud;
    pthread_mutex_unlock(&st->lock);
    rmlist_finish(st, &rm, NULL, NULL);
    rmlist_finish(st, &evicted, cb, ud);
    return r;
}

struct session *store_acquire(struct store *st, enum session_kind kind, const struct uuid *id,
                              uint64_t now_ms, uint64_t *ticket)
{
    pthread_mutex_lock(&st->lock);
    struct session *s = find_locked(st, kind, id);
    if (s != NULL && expired(s, now_ms))
        s = NULL; /* the reaper wipes it */
    if (s != NULL) {
        s->refs++;
        *ticket = s->next_ticket++;
        s->last_used_ms = now_ms;
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

bool store_turn_wait(struct store *st, struct session *s, uint64_t ticket)
{
    pthread_mutex_lock(&st->lock);
    while (s->serving != ticket)
        pthread_cond_wait(&s->turn, &st->lock);
    bool live = !s->removed;
    pthread_mutex_unlock(&st->lock);
    return live;
}

void store_turn_end(struct store *st, struct session *s)
{
    pthread_mutex_lock(&st->lock);
    s->serving++;
    pthread_cond_broadcast(&s->turn);
    pthread_mutex_unlock(&st->lock);
}

void store_release(struct store *st, struct session *s)
{
    pthread_mutex_lock(&st->lock);
    if (s->refs == 0)
        KM_BUG("session released more often than acquired");
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&st->lock);
    if (last) {
        if (!s->removed)
            KM_BUG("last reference to a session still in the store");
        session_destroy(s);
    }
}

void store_set_state(struct store *st, struct session *s, int state)
{
    pthread_mutex_lock(&st->lock);
    s->state = state;
    pthread_mutex_unlock(&st->lock);
}

void store_set_expiry(struct store *st, struct session *s, uint64_t expires_ms)
{
    pthread_mutex_lock(&st->lock);
    s->expires_ms = expires_ms;
    pthread_mutex_unlock(&st->lock);
}

bool store_remove(struct store *st, struct session *s, store_removed_fn cb, void *ud)
{
    struct rmlist rm = {0};
    pthread_mutex_lock(&st->lock);
    bool was = !s->removed;
    remove_locked(st, s, &rm);
    pthread_mutex_unlock(&st->lock);
    rmlist_finish(st, &rm, cb, ud);
    return was;
}

size_t store_reap(struct store *st, uint64_t now_ms, store_removed_fn cb, void *ud)
{
    struct rmlist rm = {0};
    pthread_mutex_lock(&st->lock);
    for (size_t b = 0; b < STORE_BUCKETS; b++) {
        struct session *s = st->buckets[b];
        while (s != NULL) {
            /* Removing a keygen unlinks signing sessions, possibly the next
             * one in this chain: restart the chain after a removal. */
            if (expired(s, now_ms)) {
                remove_locked(st, s, &rm);
                s = st->buckets[b];
                continue;
            }
            s = s->hnext;
        }
    }
    pthread_mutex_unlock(&st->lock);
    size_t n = rm.n;
    rmlist_finish(st, &rm, cb, ud);
    return n;
}

void store_counts(struct store *st, uint32_t *keygen, uint32_t *signing)
{
    pthread_mutex_lock(&st->lock);
    *keygen = st->nkind[SESSION_KEYGEN];
    *signing = st->nkind[SESSION_SIGNING];
    pthread_mutex_unlock(&st->lock);
}

void store_free(struct store *st)
{
    if (st == NULL)
        return;
    struct rmlist rm = {0};
    pthread_mutex_lock(&st->lock);
    for (size_t b = 0; b < STORE_BUCKETS; b++)
        while (st->buckets[b] != NULL)
            remove_locked(st, st->buckets[b], &rm);
    pthread_mutex_unlock(&st->lock);
    rmlist_finish(st, &rm, NULL, NULL);
    pthread_mutex_destroy(&st->lock);
    free(st);
}
