#include "gateway/replay.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "common/banned.h"

#define LOG_COMP "auth"

uint32_t gw_replay_test_delay_ms;
#define BUCKETS 1024

/* A pair claimed but not yet known to be in the database. */
struct pending {
    struct store_auth_nonce pair;
    bool recording; /* in the batch the thread is writing now */
    struct pending *next;
};

struct gw_replay {
    struct store *store;
    /* Claims hold it shared from their in-memory mark to the end of their
     * database check; the recorder holds it exclusively while it writes a
     * batch and drops the written pairs from memory. So a claim never sees
     * its own pair in the database (recorded between its mark and its
     * check) and takes it for a replay, and no pair is ever in neither
     * place while a claim looks. Writers are preferred: claims arrive all
     * the time and must not starve the recorder. */
    pthread_rwlock_t flush_lock;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* to the thread: work arrived, or stopping */
    struct pending *buckets[BUCKETS];
    size_t npending;        /* all held pairs */
    size_t nwaiting;        /* of which not yet in a batch */
    uint64_t first_ms;      /* when the oldest waiting pair arrived */
    uint64_t not_before_ms; /* after a failed write: when to try again */
    bool stopping;
    pthread_t thread;
};

static size_t bucket_of(const char *key, const char *nonce)
{
    uint32_t h = 2166136261u; /* FNV-1a over nonce then key */
    for (const char *p = nonce; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h % BUCKETS;
}

static struct pending **find_locked(struct gw_replay *r, const char *key, const char *nonce)
{
    struct pending **pp = &r->buckets[bucket_of(key, nonce)];
    while (*pp != NULL &&
           (strcmp((*pp)->pair.nonce, nonce) != 0 || strcmp((*pp)->pair.key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *m, uint64_t at_ms)
{
    struct timespec ts = {(time_t)(at_ms / 1000), (long)(at_ms % 1000) * 1000000L};
    (void)pthread_cond_timedwait(cv, m, &ts);
}

/* Takes every waiting pair into a batch (marking it recording). */
static struct store_auth_nonce *take_batch_locked(struct gw_replay *r, size_t *n)
{
    struct store_auth_nonce *batch = XALLOC_ARRAY(struct store_auth_nonce, r->nwaiting);
    *n = 0;
    for (size_t b = 0; b < BUCKETS; b++) {
        for (struct pending *p = r->buckets[b]; p != NULL; p = p->next) {
            if (!p->recording) {
                p->recording = true;
                batch[(*n)++] = p->pair;
            }
        }
    }
    r->nwaiting = 0;
    return batch;
}

/* After a batch: forgets the recorded pairs (they are in the database now),
 * or puts them back in line when the write failed. */
static void end_batch_locked(struct gw_replay *r, bool recorded)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        struct pending **pp = &r->buckets[b];
        while (*pp != NULL) {
            struct pending *p = *pp;
            if (p->recording && recorded) {
                *pp = p->next;
                free(p);
                r->npending--;
                continue;
            }
            if (p->recording) {
                p->recording = false;
                r->nwaiting++;
            }
            pp = &p->next;
        }
    }
}

/* Writes one batch, without the lock held. Returns whether it was
 * recorded. */
/* Called and returns with r->lock held; takes flush_lock first (claims
 * take it before r->lock). */
static bool record_batch(struct gw_replay *r)
{
    size_t n;
    pthread_mutex_unlock(&r->lock);
    pthread_rwlock_wrlock(&r->flush_lock);
    pthread_mutex_lock(&r->lock);
    struct store_auth_nonce *batch = take_batch_locked(r, &n);
    pthread_mutex_unlock(&r->lock);
    int rc = n > 0 ? store_auth_nonces_add(r->store, batch, n) : KM_OK;
    if (rc != KM_OK)
        log_error(LOG_COMP, "cannot record %zu request nonces (%s); holding them in memory", n,
                  km_strerror(rc));
    free(batch);
    pthread_mutex_lock(&r->lock);
    end_batch_locked(r, rc == KM_OK);
    r->first_ms = clock_now_ms();
    pthread_mutex_unlock(&r->lock);
    pthread_rwlock_unlock(&r->flush_lock);
    pthread_mutex_lock(&r->lock);
    return rc == KM_OK;
}

static void *recorder_main(void *arg)
{
    struct gw_replay *r = arg;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        if (r->nwaiting == 0) {
            if (r->stopping)
                break;
            pthread_cond_wait(&r->wake, &r->lock);
            continue;
        }
        uint64_t now = clock_now_ms();
        uint64_t due = r->nwaiting >= GW_REPLAY_BATCH ? now : r->first_ms + GW_REPLAY_FLUSH_MS;
        if (due < r->not_before_ms)
            due = r->not_before_ms;
        if (!r->stopping && now < due) {
            timed_wait(&r->wake, &r->lock, due);
            continue;
        }
        if (!record_batch(r)) {
            if (r->stopping)
                break; /* one last try only */
            r->not_before_ms = clock_now_ms() + 1000;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

struct gw_replay *gw_replay_new(struct store *store)
{
    struct gw_replay *r = xcalloc(1, sizeof(*r));
    r->store = store;
    pthread_rwlockattr_t rwa;
    pthread_rwlockattr_init(&rwa);
    pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&r->flush_lock, &rwa);
    pthread_rwlockattr_destroy(&rwa);
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&r->thread, NULL, recorder_main, r) != 0)
        KM_BUG("cannot start the nonce recorder thread");
    return r;
}

void gw_replay_free(struct gw_replay *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    /* What is left could not be recorded (the log says why). */
    for (size_t b = 0; b < BUCKETS; b++) {
        while (r->buckets[b] != NULL) {
            struct pending *p = r->buckets[b];
            r->buckets[b] = p->next;
            free(p);
        }
    }
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    pthread_rwlock_destroy(&r->flush_lock);
    free(r);
}

/* Several gateways on one database: a pair another gateway took a moment
 * ago may not be recorded yet by its batch, so only the database decides,
 * one insert per claim. */
static int claim_shared(struct gw_replay *r, const char *key_hex, const char *nonce_hex,
                        int64_t expires_at)
{
    struct store_auth_nonce pair;
    size_t klen = strlen(key_hex), nlen = strlen(nonce_hex);
    if (klen >= sizeof(pair.key) || nlen >= sizeof(pair.nonce))
        return KM_ERR_INVALID;
    memcpy(pair.key, key_hex, klen + 1);
    memcpy(pair.nonce, nonce_hex, nlen + 1);
    pair.expires_at = expires_at;
    return store_auth_nonce_claim(r->store, &pair);
}

int gw_replay_claim(struct gw_replay *r, const char *key_hex, const char *nonce_hex,
                    int64_t expires_at)
{
    if (store_shared(r->store))
        return claim_shared(r, key_hex, nonce_hex, expires_at);
    struct pending *p = xcalloc(1, sizeof(*p));
    size_t klen = strlen(key_hex), nlen = strlen(nonce_hex);
    if (klen >= sizeof(p->pair.key) || nlen >= sizeof(p->pair.nonce)) {
        free(p);
        return KM_ERR_INVALID;
    }
    memcpy(p->pair.key, key_hex, klen + 1);
    memcpy(p->pair.nonce, nonce_hex, nlen + 1);
    p->pair.expires_at = expires_at;

    /* In memory first, so two concurrent claims of one pair cannot both
     * pass the database check below. */
    pthread_rwlock_rdlock(&r->flush_lock);
    pthread_mutex_lock(&r->lock);
    struct pending **slot = find_locked(r, key_hex, nonce_hex);
    int rc = *slot != NULL                          ? KM_ERR_EXISTS
             : r->npending >= GW_REPLAY_MAX_PENDING ? KM_ERR_LIMIT
                                                    : KM_OK;
    if (rc == KM_OK) {
        *slot = p;
        r->npending++;
        if (r->nwaiting++ == 0) {
            r->first_ms = clock_now_ms();
            pthread_cond_signal(&r->wake);
        } else if (r->nwaiting == GW_REPLAY_BATCH) {
            pthread_cond_signal(&r->wake);
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (rc != KM_OK) {
        pthread_rwlock_unlock(&r->flush_lock);
        free(p);
        return rc;
    }

    /* Then the pairs recorded earlier (this run or before a restart). */
    bool seen;
    if (gw_replay_test_delay_ms != 0)
        clock_sleep_ms(gw_replay_test_delay_ms);
    rc = store_auth_nonce_seen(r->store, key_hex, nonce_hex, &seen);
    if (rc == KM_OK && !seen) {
        pthread_rwlock_unlock(&r->flush_lock);
        return KM_OK;
    }
    /* Seen (or unknown): withdraw the claim unless a batch holds it already,
     * in which case recording it again changes nothing. */
    pthread_mutex_lock(&r->lock);
    slot = find_locked(r, key_hex, nonce_hex); /* ours: the pair is held once */
    struct pending *held = *slot;
    if (held != NULL && !held->recording) {
        *slot = held->next;
        r->npending--;
        r->nwaiting--;
        free(held);
    }
    pthread_mutex_unlock(&r->lock);
    pthread_rwlock_unlock(&r->flush_lock);
    return rc == KM_OK ? KM_ERR_EXISTS : rc;
}
