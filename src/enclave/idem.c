#include "enclave/idem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/clock.h"
#include "common/xmalloc.h"
#include "common/banned.h"

#define IDEM_BUCKETS 4096

struct idem_entry {
    struct uuid command_id;
    uint8_t digest[IDEM_DIGEST_LEN];
    bool running;
    struct uuid session, keygen; /* nil when none */
    struct idem_reply reply;
    size_t bytes;
    struct idem_entry *hnext;         /* hash chain */
    struct idem_entry *older, *newer; /* finished entries, oldest first */
};

struct idem {
    pthread_mutex_t lock;
    pthread_cond_t finished;
    size_t max_entries, max_bytes;
    size_t count, bytes; /* finished entries */
    struct idem_entry *oldest, *newest;
    struct idem_entry *buckets[IDEM_BUCKETS];
};

static size_t bucket_of(const struct uuid *id)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof(id->b); i++) {
        h ^= id->b[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h % IDEM_BUCKETS);
}

struct idem *idem_new(size_t max_entries, size_t max_bytes)
{
    struct idem *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->finished, NULL);
    c->max_entries = max_entries;
    c->max_bytes = max_bytes;
    return c;
}

void idem_reply_clear(struct idem_reply *r)
{
    free(r->result_json);
    memset(r, 0, sizeof(*r));
}

static void reply_copy(struct idem_reply *dst, const struct idem_reply *src)
{
    *dst = *src;
    dst->result_json = src->result_json ? xstrdup(src->result_json) : NULL;
}

static struct idem_entry *find_locked(struct idem *c, const struct uuid *id)
{
    for (struct idem_entry *e = c->buckets[bucket_of(id)]; e != NULL; e = e->hnext)
        if (uuid_equal(&e->command_id, id))
            return e;
    return NULL;
}

static void unhash_locked(struct idem *c, struct idem_entry *e)
{
    struct idem_entry **pp = &c->buckets[bucket_of(&e->command_id)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
}

/* Frees a finished entry (unlinking it from the age list too). */
static void drop_locked(struct idem *c, struct idem_entry *e)
{
    unhash_locked(c, e);
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    c->count--;
    c->bytes -= e->bytes;
    idem_reply_clear(&e->reply);
    free(e);
}

enum idem_status idem_begin(struct idem *c, const struct uuid *command_id,
                            const uint8_t digest[IDEM_DIGEST_LEN], uint32_t wait_ms,
                            struct idem_reply *reply)
{
    struct deadline dl = deadline_in_ms(wait_ms);
    enum idem_status st;
    memset(reply, 0, sizeof(*reply));
    pthread_mutex_lock(&c->lock);
    for (;;) {
        struct idem_entry *e = find_locked(c, command_id);
        if (e == NULL) {
            e = xcalloc(1, sizeof(*e));
            e->command_id = *command_id;
            memcpy(e->digest, digest, IDEM_DIGEST_LEN);
            e->running = true;
            size_t b = bucket_of(command_id);
            e->hnext = c->buckets[b];
            c->buckets[b] = e;
            st = IDEM_RUN;
            break;
        }
        if (memcmp(e->digest, digest, IDEM_DIGEST_LEN) != 0) {
            st = IDEM_CONFLICT;
            break;
        }
        if (!e->running) {
            reply_copy(reply, &e->reply);
            st = IDEM_DONE;
            break;
        }
        if (deadline_expired(dl)) {
            st = IDEM_BUSY;
            break;
        }
        /* The first instance is running: wait for its reply (or for its
         * entry to go away after a retryable failure, then run). */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + 100 * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&c->finished, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
    return st;
}

static void evict_locked(struct idem *c)
{
    while (c->oldest != NULL && (c->count > c->max_entries || c->bytes > c->max_bytes))
        drop_locked(c, c->oldest);
}

void idem_finish(struct idem *c, const struct uuid *command_id, const struct uuid *session,
                 const struct uuid *keygen, const struct idem_reply *reply, bool cache)
{
    pthread_mutex_lock(&c->lock);
    struct idem_entry *e = find_locked(c, command_id);
    if (e == NULL || !e->running)
        KM_BUG("idem_finish without idem_begin");
    if (!cache) {
        unhash_locked(c, e);
        free(e);
    } else {
        e->running = false;
        reply_copy(&e->reply, reply);
        if (session)
            e->session = *session;
        if (keygen)
            e->keygen = *keygen;
        /* The fixed part of an entry is bounded by max_entries; the bytes
         * budget is for the replies. */
        e->bytes = 64 + (reply->result_json ? strlen(reply->result_json) : 0);
        e->older = c->newest;
        if (c->newest)
            c->newest->newer = e;
        else
            c->oldest = e;
        c->newest = e;
        c->count++;
        c->bytes += e->bytes;
        evict_locked(c);
    }
    pthread_cond_broadcast(&c->finished);
    pthread_mutex_unlock(&c->lock);
}

void idem_drop_session(struct idem *c, const struct uuid *id)
{
    pthread_mutex_lock(&c->lock);
    struct idem_entry *e = c->oldest;
    while (e != NULL) {
        struct idem_entry *next = e->newer;
        if (uuid_equal(&e->session, id) || uuid_equal(&e->keygen, id))
            drop_locked(c, e);
        e = next;
    }
    pthread_mutex_unlock(&c->lock);
}

size_t idem_count(struct idem *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void idem_digest(uint8_t out[IDEM_DIGEST_LEN], const char *cmd, const json_t *args)
{
    char *canon = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
    if (canon == NULL)
        KM_BUG("out of memory canonicalising arguments");
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, cmd, strlen(cmd) + 1) != 1 ||
        EVP_DigestUpdate(md, canon, strlen(canon)) != 1 || EVP_DigestFinal_ex(md, out, NULL) != 1)
        KM_BUG("SHA-256 failed");
    EVP_MD_CTX_free(md);
    free(canon);
}

void idem_free(struct idem *c)
{
    if (c == NULL)
        return;
    while (c->oldest != NULL)
        drop_locked(c, c->oldest);
    for (size_t b = 0; b < IDEM_BUCKETS; b++)
        if (c->buckets[b] != NULL)
            KM_BUG("idem_free with a command still running");
    pthread_cond_destroy(&c->finished);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
