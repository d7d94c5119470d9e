#include "enclave/idem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/xmalloc.h"
#include "crypto/thash.h"
#include "common/banned.h"

#define IDEM_BUCKETS 4096

struct idem_entry {
    struct uuid command_id;
    uint8_t digest[IDEM_DIGEST_LEN];
    bool running;
    struct uuid session, keygen; /* nil when none */
    /* The reply, compact: most are results, and an inline error message
     * buffer (1 kB) in each of thousands of entries would be most of the
     * cache's memory and of its cost per command. */
    json_t *result;          /* when ok: one reference */
    struct env_error *error; /* when not ok: malloc'd */
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
    json_decref(r->result);
    memset(r, 0, sizeof(*r));
}

/* Stores reply in e, and gives it back from e. */
static void entry_keep(struct idem_entry *e, const struct idem_reply *reply)
{
    e->result = json_incref(reply->result);
    if (!reply->ok) {
        e->error = xmalloc(sizeof(*e->error));
        *e->error = reply->error;
    }
}

static void entry_give(struct idem_reply *out, const struct idem_entry *e)
{
    memset(out, 0, sizeof(*out));
    out->ok = e->error == NULL;
    out->result = json_incref(e->result);
    if (e->error != NULL)
        out->error = *e->error;
}

static void entry_free(struct idem_entry *e)
{
    json_decref(e->result);
    free(e->error);
    free(e);
}

/* About the size of v as compact JSON text, for the bytes budget: no
 * dump (that cost is what holding the object saves). */
static size_t json_bytes(const json_t *v)
{
    size_t n = 2;
    const char *k;
    json_t *m;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        json_object_foreach((json_t *)(uintptr_t)v, k, m)
        {
            n += strlen(k) + 4 + json_bytes(m);
        }
        return n;
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(v); i++)
            n += 1 + json_bytes(json_array_get(v, i));
        return n;
    case JSON_STRING:
        return n + json_string_length(v);
    default:
        return 8;
    }
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
    entry_free(e);
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
            entry_give(reply, e);
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
        entry_keep(e, reply);
        if (session)
            e->session = *session;
        if (keygen)
            e->keygen = *keygen;
        /* The fixed part of an entry is bounded by max_entries; the bytes
         * budget is for the replies. */
        e->bytes =
            64 + (e->result ? json_bytes(e->result) : 0) + (e->error ? sizeof(*e->error) : 0);
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

/*
 * The digest walks the JSON tree and hashes it as it goes, instead of
 * dumping a canonical text first: the dump (escaping, buffer growth, a
 * sort per object) cost more than the hash, on every cached command. Each
 * value is hashed as a type tag and a length-prefixed body, object members
 * in key order, so the encoding is unambiguous and key order does not
 * matter. The digest only meets other digests of the same process (the
 * cache lives in memory), so its exact form is free to change.
 */
enum { D_NULL = 1, D_TRUE, D_FALSE, D_INT, D_REAL, D_STR, D_ARR, D_OBJ };

static void digest_str(struct thash *h, const char *p, size_t n)
{
    thash_update_be64(h, (uint64_t)n);
    thash_update(h, p, n);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void digest_value(struct thash *h, const json_t *v);

static void digest_object(struct thash *h, const json_t *v)
{
    /* Small objects (every argument object of the protocol) sort on the
     * stack. */
    const char *stack_keys[32];
    size_t n = json_object_size(v), i = 0;
    const char **keys = n <= 32 ? stack_keys : XALLOC_ARRAY(const char *, n);
    const char *k;
    json_t *m;
    (void)m;
    thash_update_u8(h, D_OBJ);
    thash_update_be64(h, (uint64_t)n);
    json_object_foreach((json_t *)(uintptr_t)v, k, m)
    {
        keys[i++] = k;
    }
    qsort(keys, n, sizeof(*keys), key_cmp);
    for (i = 0; i < n; i++) {
        digest_str(h, keys[i], strlen(keys[i]));
        digest_value(h, json_object_get(v, keys[i]));
    }
    if (keys != stack_keys)
        free(keys);
}

static void digest_value(struct thash *h, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        digest_object(h, v);
        break;
    case JSON_ARRAY:
        thash_update_u8(h, D_ARR);
        thash_update_be64(h, (uint64_t)json_array_size(v));
        for (size_t i = 0; i < json_array_size(v); i++)
            digest_value(h, json_array_get(v, i));
        break;
    case JSON_STRING:
        thash_update_u8(h, D_STR);
        digest_str(h, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        thash_update_u8(h, D_INT);
        thash_update_be64(h, (uint64_t)json_integer_value(v));
        break;
    case JSON_REAL: {
        double d = json_real_value(v);
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        thash_update_u8(h, D_REAL);
        thash_update_be64(h, bits);
        break;
    }
    case JSON_TRUE:
        thash_update_u8(h, D_TRUE);
        break;
    case JSON_FALSE:
        thash_update_u8(h, D_FALSE);
        break;
    case JSON_NULL:
        thash_update_u8(h, D_NULL);
        break;
    }
}

void idem_digest(uint8_t out[IDEM_DIGEST_LEN], const char *cmd, const json_t *args)
{
    struct thash h;
    thash_init(&h, "KeyMeld/idem-digest");
    digest_str(&h, cmd, strlen(cmd));
    digest_value(&h, args);
    if (thash_final(&h, out) != KM_OK)
        KM_BUG("SHA-256 failed");
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
