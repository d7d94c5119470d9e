/*
 * coord_pool.c - this gateway's stock of pre-generated nonces
 * (docs/PROTOCOL.md "Nonce pools", coordinator.nonce_pool_size).
 *
 * Per (keygen, enclave): the pool entries this gateway filled itself with
 * nonce_pool_fill, each its entry id and the sealed public nonce of every
 * participant of the keygen on that enclave. A signing claims (removes)
 * entries before it names them in signing_sign; an entry is never handed
 * out twice by this gateway, and the enclave refuses a second use anyway
 * (nonce_unavailable). Memory only: every gateway uses only what it filled,
 * so gateways on one database never share an entry and nothing is stored;
 * a restart starts empty (the enclaves' unused entries expire or are
 * evicted there).
 *
 * Refill: after a signing of the keygen completes (coord_pool_refill),
 * every enclave of the keygen whose stock is below half the target gets
 * one nonce_pool_fill up to the target, at most one fill per keygen at a
 * time. Entries are dropped ttl_secs minus a margin after their fill;
 * stale ones (an enclave restarted or evicted the keygen) make signing_sign
 * answer nonce_unavailable, and the signing drops that stock
 * (coord_pool_drop) and takes the three-round path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "gateway/coord_internal.h"
#include "common/banned.h"

#define LOG_COMP     "coordinator"
#define POOL_BUCKETS 256
/* Keygens with a stock at once; the least recently used goes first. */
#define POOL_MAX_KEYGENS 1024
/* After a fill that an enclave refused or did not answer (its pools are
 * full: limit_exceeded; it is down), the keygen is not filled again for
 * this long, so signings do not send it a doomed fill each. */
#define POOL_FILL_BACKOFF_MS 5000

struct pool_stock {
    uint32_t enclave_id;
    struct coord_pool_entry *entries; /* oldest first */
    size_t n, cap;
};

struct pool_keygen {
    char id[37];
    bool filling;
    uint64_t used_ms;
    uint64_t fill_after_ms; /* monotonic: no fill before (POOL_FILL_BACKOFF_MS) */
    struct pool_stock *stocks;
    size_t nstocks;
    struct pool_keygen *next; /* bucket chain */
};

struct coord_pool {
    unsigned target;
    pthread_mutex_t lock;
    struct pool_keygen *buckets[POOL_BUCKETS];
    size_t nkeygens;
    struct coord_pool_stats stats;
};

void coord_pool_entry_clear(struct coord_pool_entry *e)
{
    for (size_t i = 0; i < e->n_nonces; i++)
        free(e->nonces[i].ciphertext.p);
    free(e->nonces);
    memset(e, 0, sizeof(*e));
}

struct coord_pool *coord_pool_new(unsigned target)
{
    struct coord_pool *p = xcalloc(1, sizeof(*p));
    p->target = target;
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

static void stock_clear(struct pool_stock *s)
{
    for (size_t i = 0; i < s->n; i++)
        coord_pool_entry_clear(&s->entries[i]);
    free(s->entries);
    s->entries = NULL;
    s->n = s->cap = 0;
}

static void keygen_free(struct pool_keygen *k)
{
    for (size_t i = 0; i < k->nstocks; i++)
        stock_clear(&k->stocks[i]);
    free(k->stocks);
    free(k);
}

void coord_pool_free(struct coord_pool *p)
{
    if (p == NULL)
        return;
    for (size_t b = 0; b < POOL_BUCKETS; b++) {
        while (p->buckets[b] != NULL) {
            struct pool_keygen *k = p->buckets[b];
            p->buckets[b] = k->next;
            keygen_free(k);
        }
    }
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static size_t bucket_of(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *q = id; *q; q++)
        h = (h ^ (uint8_t)*q) * 16777619u;
    return h % POOL_BUCKETS;
}

static struct pool_keygen *find_locked(struct coord_pool *p, const char *keygen)
{
    for (struct pool_keygen *k = p->buckets[bucket_of(keygen)]; k != NULL; k = k->next) {
        if (strcmp(k->id, keygen) == 0)
            return k;
    }
    return NULL;
}

static void unlink_locked(struct coord_pool *p, struct pool_keygen *victim)
{
    struct pool_keygen **pp = &p->buckets[bucket_of(victim->id)];
    while (*pp != victim)
        pp = &(*pp)->next;
    *pp = victim->next;
    p->nkeygens--;
}

/* Makes room for one more keygen: the least recently used one that is not
 * being filled goes. */
static void evict_lru_locked(struct coord_pool *p)
{
    struct pool_keygen *lru = NULL;
    for (size_t b = 0; b < POOL_BUCKETS; b++) {
        for (struct pool_keygen *k = p->buckets[b]; k != NULL; k = k->next) {
            if (!k->filling && (lru == NULL || k->used_ms < lru->used_ms))
                lru = k;
        }
    }
    if (lru != NULL) {
        unlink_locked(p, lru);
        keygen_free(lru);
    }
}

static struct pool_keygen *get_locked(struct coord_pool *p, const char *keygen)
{
    struct pool_keygen *k = find_locked(p, keygen);
    if (k != NULL)
        return k;
    if (p->nkeygens >= POOL_MAX_KEYGENS)
        evict_lru_locked(p);
    k = xcalloc(1, sizeof(*k));
    snprintf(k->id, sizeof(k->id), "%s", keygen);
    size_t b = bucket_of(keygen);
    k->next = p->buckets[b];
    p->buckets[b] = k;
    p->nkeygens++;
    return k;
}

static struct pool_stock *stock_of(struct pool_keygen *k, uint32_t eid, bool create)
{
    for (size_t i = 0; i < k->nstocks; i++) {
        if (k->stocks[i].enclave_id == eid)
            return &k->stocks[i];
    }
    if (!create)
        return NULL;
    k->stocks = xrealloc(k->stocks, (k->nstocks + 1) * sizeof(*k->stocks));
    struct pool_stock *s = &k->stocks[k->nstocks++];
    memset(s, 0, sizeof(*s));
    s->enclave_id = eid;
    return s;
}

/* Drops the entries that expire before they could be used. */
static void prune_expired(struct pool_stock *s, uint64_t now)
{
    size_t gone = 0; /* oldest first: the expired ones lead */
    while (gone < s->n && s->entries[gone].expires_ms <= now)
        coord_pool_entry_clear(&s->entries[gone++]);
    if (gone == 0)
        return;
    memmove(s->entries, s->entries + gone, (s->n - gone) * sizeof(*s->entries));
    s->n -= gone;
}

/* Whether every enclave's stock of k holds units entries (dropping the
 * expired ones first). */
static bool stock_enough(struct pool_keygen *k, const uint32_t *enclaves, size_t n, size_t units,
                         uint64_t now)
{
    for (size_t i = 0; i < n; i++) {
        struct pool_stock *s = stock_of(k, enclaves[i], false);
        if (s == NULL)
            return false;
        prune_expired(s, now);
        if (s->n < units)
            return false;
    }
    return true;
}

/* Moves the oldest units entries of s (checked by stock_enough) to out. */
static void take_oldest(struct pool_stock *s, size_t units, struct coord_pool_entry *out)
{
    if (s == NULL || s->n < units)
        KM_BUG("a nonce stock changed under its lock");
    memcpy(out, s->entries, units * sizeof(*s->entries));
    memmove(s->entries, s->entries + units, (s->n - units) * sizeof(*s->entries));
    s->n -= units;
}

bool coord_pool_claim(struct coord_pool *p, const char *keygen, const uint32_t *enclaves, size_t n,
                      size_t units, struct coord_pool_entry *out)
{
    if (p == NULL || p->target == 0 || units == 0)
        return false;
    uint64_t now = clock_now_ms();
    pthread_mutex_lock(&p->lock);
    struct pool_keygen *k = find_locked(p, keygen);
    bool ok = k != NULL && stock_enough(k, enclaves, n, units, now);
    if (k != NULL)
        k->used_ms = now; /* signed recently: worth refilling */
    for (size_t i = 0; ok && i < n; i++)
        take_oldest(stock_of(k, enclaves[i], false), units, out + i * units);
    if (ok)
        p->stats.claims++;
    else
        p->stats.misses++;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

void coord_pool_drop(struct coord_pool *p, const char *keygen, uint32_t eid)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    struct pool_keygen *k = find_locked(p, keygen);
    struct pool_stock *s = k != NULL ? stock_of(k, eid, false) : NULL;
    if (s != NULL) {
        stock_clear(s);
        p->stats.drops++;
    }
    pthread_mutex_unlock(&p->lock);
}

void coord_pool_drop_enclave(struct coord_pool *p, uint32_t eid)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    for (size_t b = 0; b < POOL_BUCKETS; b++) {
        for (struct pool_keygen *k = p->buckets[b]; k != NULL; k = k->next) {
            struct pool_stock *s = stock_of(k, eid, false);
            if (s != NULL)
                stock_clear(s);
        }
    }
    pthread_mutex_unlock(&p->lock);
}

void coord_pool_stats(struct coord_pool *p, struct coord_pool_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    *out = p->stats;
    pthread_mutex_unlock(&p->lock);
}

/* ---- refill ---- */

/* How many entries each enclave should get (0: enough), and marks the
 * keygen as filling; false when nothing is needed or a fill runs. */
static bool plan_fill(struct coord_pool *p, const char *keygen, const uint32_t *enclaves, size_t n,
                      uint32_t *counts)
{
    bool any = false;
    uint64_t now = clock_now_ms();
    pthread_mutex_lock(&p->lock);
    struct pool_keygen *k = get_locked(p, keygen);
    k->used_ms = now;
    for (size_t i = 0; i < n && !k->filling && now >= k->fill_after_ms; i++) {
        struct pool_stock *s = stock_of(k, enclaves[i], true);
        prune_expired(s, now);
        counts[i] = 0;
        if (s->n * 2 < p->target) {
            size_t want = p->target - s->n;
            counts[i] = (uint32_t)(want > PROTO_POOL_FILL_MAX ? PROTO_POOL_FILL_MAX : want);
            any = true;
        }
    }
    if (any)
        k->filling = true;
    pthread_mutex_unlock(&p->lock);
    return any;
}

/* Moves a fill's entries into the stock (res keeps nothing it owned). */
static void add_entries(struct coord_pool *p, const char *keygen, uint32_t eid,
                        struct proto_nonce_pool_fill_result *res)
{
    /* An entry is used ttl minus a margin at most after its fill, so it
     * never expires in the enclave on its way there. */
    uint64_t ttl_ms = (uint64_t)res->ttl_secs * 1000u;
    uint64_t margin_ms = ttl_ms / 10 + 5000;
    uint64_t expires = clock_now_ms() + (ttl_ms > margin_ms ? ttl_ms - margin_ms : 0);
    pthread_mutex_lock(&p->lock);
    struct pool_keygen *k = get_locked(p, keygen);
    struct pool_stock *s = stock_of(k, eid, true);
    for (size_t i = 0; i < res->n_entries; i++) {
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 64;
            s->entries = xrealloc(s->entries, s->cap * sizeof(*s->entries));
        }
        struct coord_pool_entry *e = &s->entries[s->n++];
        memcpy(e->id, res->entries[i].entry_id, sizeof(e->id));
        e->n_nonces = res->entries[i].n_nonces;
        e->nonces = res->entries[i].nonces;
        e->expires_ms = expires;
        res->entries[i].nonces = NULL;
        res->entries[i].n_nonces = 0;
    }
    p->stats.filled += res->n_entries;
    pthread_mutex_unlock(&p->lock);
}

static void fill_done(struct coord_pool *p, const char *keygen, bool all_ok)
{
    pthread_mutex_lock(&p->lock);
    struct pool_keygen *k = find_locked(p, keygen);
    if (k != NULL) {
        k->filling = false;
        k->fill_after_ms = all_ok ? 0 : clock_now_ms() + POOL_FILL_BACKOFF_MS;
    }
    pthread_mutex_unlock(&p->lock);
}

static void prepare_fill(struct fanout_call *call, const char *keygen, uint32_t eid, uint32_t count)
{
    struct proto_nonce_pool_fill_args a = {.count = count};
    if (uuid_parse(&a.keygen_session_id, keygen, strlen(keygen)) != KM_OK)
        KM_BUG("keygen id %s is not a UUID", keygen);
    memset(call, 0, sizeof(*call));
    call->enclave_id = eid;
    call->cmd = "nonce_pool_fill";
    call->args = proto_nonce_pool_fill_args_encode(&a);
    /* Never repeated: a repeated id would get the same entries back. */
    if (uuid_v7_new(&call->command_id) != KM_OK)
        KM_BUG("no randomness for a command id");
}

/* Takes the entries of every fill that answered; false when one did not. */
static bool collect_fills(struct coord_pool *p, const char *keygen, struct fanout_call *calls,
                          size_t n)
{
    bool all_ok = true;
    for (size_t i = 0; i < n; i++) {
        struct proto_nonce_pool_fill_result res;
        struct km_error e;
        if (calls[i].rc != KM_OK) {
            log_debug(LOG_COMP, "keygen %s: nonce_pool_fill on enclave %u failed: %s: %s", keygen,
                      calls[i].enclave_id, calls[i].reply.error.code,
                      calls[i].reply.error.message[0] ? calls[i].reply.error.message
                                                      : calls[i].err.msg);
            all_ok = false;
            continue;
        }
        if (proto_nonce_pool_fill_result_decode(&res, calls[i].reply.result, &e) != KM_OK) {
            log_warn(LOG_COMP, "keygen %s: enclave %u: bad nonce_pool_fill result: %s", keygen,
                     calls[i].enclave_id, e.msg);
            all_ok = false;
            continue;
        }
        add_entries(p, keygen, calls[i].enclave_id, &res);
        proto_nonce_pool_fill_result_clear(&res);
    }
    return all_ok;
}

void coord_pool_refill(struct coord *c, const char *keygen, const uint32_t *enclaves, size_t n)
{
    struct coord_pool *p = c->pool;
    uint32_t counts[PROTO_MAX_ENCLAVES];
    if (p == NULL || p->target == 0 || !plan_fill(p, keygen, enclaves, n, counts))
        return;
    uint32_t ids[PROTO_MAX_ENCLAVES];
    struct fanout_call calls[PROTO_MAX_ENCLAVES];
    size_t m = 0;
    char err[COORD_ERR_MAX];
    for (size_t i = 0; i < n; i++) {
        if (counts[i] > 0)
            ids[m++] = enclaves[i];
    }
    /* A full enclave is not waited for (the next signing refills), a hung
     * one not tried again for a while. */
    enum calls_verdict v = coord_claim_enclaves(c, ids, m, err, sizeof(err));
    bool all_ok = v == CALLS_WAIT;
    if (v == CALLS_OK) {
        m = 0;
        for (size_t i = 0; i < n; i++) {
            if (counts[i] > 0)
                prepare_fill(&calls[m++], keygen, enclaves[i], counts[i]);
        }
        fanout_run(c->em, calls, m, c->call_timeout_ms);
        coord_release_enclaves(c, ids, m);
        all_ok = collect_fills(p, keygen, calls, m);
        fanout_clear(calls, m);
    }
    fill_done(p, keygen, all_ok);
}
