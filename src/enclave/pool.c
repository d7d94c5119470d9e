/*
 * pool.c - the nonce pools: per completed keygen, pre-generated secret
 * nonces waiting for signing_sign (docs/PROTOCOL.md "Nonce pools").
 *
 * Single use by construction: an entry leaves its pool (under the lock)
 * before any of its nonces signs, and is never put back; its secret nonces
 * are wiped when used, evicted, expired, or when the keygen goes. Nothing
 * here is ever sealed or stored, so a restart empties every pool.
 */
#include "enclave/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "common/xmalloc.h"
#include "common/banned.h"

void pool_entry_wipe(struct pool_entry *e)
{
    for (size_t i = 0; e->sec != NULL && i < e->n; i++)
        musig_secnonce_free(e->sec[i]);
    free(e->sec);
    free(e->pub);
    memset(e, 0, sizeof(*e));
}

/* Wipes entries [0, k) of the pool and closes the gap. Lock held. */
static void drop_oldest(struct kg_pool *p, size_t k)
{
    if (k == 0)
        return; /* p->e may be NULL: no pointer arithmetic on it */
    for (size_t i = 0; i < k; i++)
        pool_entry_wipe(&p->e[i]);
    memmove(p->e, p->e + k, (p->n - k) * sizeof(*p->e));
    memset(p->e + p->n - k, 0, k * sizeof(*p->e));
    p->n -= k;
    p->owner->entries -= k;
}

/* Wipes the expired entries (oldest first, all with the same TTL, so they
 * are a prefix). Lock held. */
static void drop_expired(struct kg_pool *p, uint64_t now_ms)
{
    size_t k = 0;
    while (k < p->n && p->e[k].expires_ms <= now_ms)
        k++;
    if (k > 0)
        drop_oldest(p, k);
}

static void wipe_all(struct pool_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pool_entry_wipe(&v[i]);
}

int pool_add(struct keygen_data *kg, struct pool_entry *fresh, size_t n, uint64_t now_ms,
             struct en_err *e)
{
    struct kg_pool *p = &kg->pool;
    if (n > EN_POOL_PER_KEYGEN)
        KM_BUG("%zu pool entries at once", n);
    pthread_mutex_lock(&p->owner->lock);
    int rc = KM_OK;
    if (p->closed) {
        rc = en_fail(e, PROTO_E_NOT_FOUND, "the keygen session was removed during the fill");
        goto out;
    }
    drop_expired(p, now_ms);
    size_t evict = p->n + n > EN_POOL_PER_KEYGEN ? p->n + n - EN_POOL_PER_KEYGEN : 0;
    if (p->owner->entries - evict + n > p->owner->max) {
        rc = en_fail(e, PROTO_E_LIMIT_EXCEEDED,
                     "this enclave holds %zu pool entries; %zu more would pass its limit of %zu",
                     p->owner->entries, n, p->owner->max);
        goto out;
    }
    if (evict > 0)
        drop_oldest(p, evict);
    if (p->e == NULL)
        p->e = XALLOC_ARRAY(struct pool_entry, EN_POOL_PER_KEYGEN);
    memcpy(p->e + p->n, fresh, n * sizeof(*fresh));
    memset(fresh, 0, n * sizeof(*fresh)); /* the pool owns them now */
    p->n += n;
    p->owner->entries += n;
out:
    pthread_mutex_unlock(&p->owner->lock);
    if (rc != KM_OK)
        wipe_all(fresh, n);
    return rc;
}

static long find_entry(const struct kg_pool *p, const uint8_t id[PROTO_POOL_ENTRY_ID_LEN],
                       uint64_t now_ms)
{
    for (size_t i = 0; i < p->n; i++)
        if (memcmp(p->e[i].id, id, PROTO_POOL_ENTRY_ID_LEN) == 0)
            return p->e[i].expires_ms > now_ms ? (long)i : -1;
    return -1;
}

int pool_take(struct keygen_data *kg, const uint8_t (*ids)[PROTO_POOL_ENTRY_ID_LEN], size_t n,
              uint64_t now_ms, struct pool_entry *out, struct en_err *e)
{
    struct kg_pool *p = &kg->pool;
    pthread_mutex_lock(&p->owner->lock);
    /* First check that every id is there: all or none. */
    for (size_t k = 0; k < n; k++) {
        if (find_entry(p, ids[k], now_ms) < 0) {
            pthread_mutex_unlock(&p->owner->lock);
            char hex[2 * PROTO_POOL_ENTRY_ID_LEN + 1];
            hex_encode(hex, sizeof(hex), ids[k], PROTO_POOL_ENTRY_ID_LEN);
            return en_fail(e, PROTO_E_NONCE_UNAVAILABLE,
                           "pool entry %s is not available in this enclave (never filled, "
                           "already used, expired, evicted, or the enclave restarted); nothing "
                           "was signed or consumed: restart the signing with fresh nonces",
                           hex);
        }
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = (size_t)find_entry(p, ids[k], now_ms);
        out[k] = p->e[i];
        memmove(p->e + i, p->e + i + 1, (p->n - i - 1) * sizeof(*p->e));
        memset(&p->e[p->n - 1], 0, sizeof(*p->e));
        p->n--;
        p->owner->entries--;
    }
    pthread_mutex_unlock(&p->owner->lock);
    return KM_OK;
}

void pool_drop(struct keygen_data *kg)
{
    struct kg_pool *p = &kg->pool;
    if (p->owner == NULL)
        return;
    pthread_mutex_lock(&p->owner->lock);
    p->closed = true;
    drop_oldest(p, p->n);
    free(p->e);
    p->e = NULL;
    pthread_mutex_unlock(&p->owner->lock);
}

size_t pool_total(struct en_pools *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->entries;
    pthread_mutex_unlock(&p->lock);
    return n;
}
