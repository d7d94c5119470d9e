/*
 * ratelimit.c - token buckets in a fixed table (gateway/ratelimit.h).
 */
#include "gateway/ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/secure.h"
#include "common/xmalloc.h"
#include "common/banned.h"

struct bucket {
    char key[RATE_KEY_MAX + 1]; /* "" = free */
    double tokens;
    uint64_t at_ms; /* when tokens was computed */
};

struct rate_limiter {
    pthread_mutex_t lock;
    double rate, burst;
    uint64_t seed;
    size_t n;
    struct bucket *slots;
};

struct rate_limiter *rate_limiter_new(double rate, double burst, size_t slots)
{
    struct rate_limiter *rl = xcalloc(1, sizeof(*rl));
    pthread_mutex_init(&rl->lock, NULL);
    rl->rate = rate > 0 ? rate : 1;
    rl->burst = burst >= 1 ? burst : 1;
    rl->n = slots >= 2 ? slots : 2;
    rl->slots = xcalloc(rl->n, sizeof(*rl->slots));
    if (secure_random(&rl->seed, sizeof(rl->seed)) != KM_OK)
        rl->seed = (uint64_t)(uintptr_t)rl ^ 0x9e3779b97f4a7c15ull;
    return rl;
}

void rate_limiter_free(struct rate_limiter *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->slots);
    free(rl);
}

/* FNV-1a over the key from the seed, then a 64-bit finalizer (splitmix64):
 * without the seed, where a key lands cannot be predicted. */
static uint64_t key_hash(uint64_t seed, const char *key)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

static void refill(const struct rate_limiter *rl, struct bucket *b, uint64_t now_ms)
{
    if (now_ms > b->at_ms) {
        b->tokens += (double)(now_ms - b->at_ms) * rl->rate / 1000.0;
        if (b->tokens > rl->burst)
            b->tokens = rl->burst;
    }
    b->at_ms = now_ms;
}

/* The bucket of key: its own, a free or full one it takes over, or (all
 * candidates busy) the fuller candidate, shared. */
static struct bucket *find(struct rate_limiter *rl, const char *key, uint64_t now_ms)
{
    uint64_t h = key_hash(rl->seed, key);
    struct bucket *cand[2] = {&rl->slots[h % rl->n], &rl->slots[(h >> 32) % rl->n]};
    for (int i = 0; i < 2; i++)
        if (strcmp(cand[i]->key, key) == 0)
            return cand[i];
    for (int i = 0; i < 2; i++) {
        if (cand[i]->key[0] != '\0')
            refill(rl, cand[i], now_ms);
        if (cand[i]->key[0] == '\0' || cand[i]->tokens >= rl->burst) {
            snprintf(cand[i]->key, sizeof(cand[i]->key), "%s", key);
            cand[i]->tokens = rl->burst;
            cand[i]->at_ms = now_ms;
            return cand[i];
        }
    }
    return cand[0]->tokens >= cand[1]->tokens ? cand[0] : cand[1];
}

/* Whole seconds, rounded up, at least 1 (a Retry-After of 0 invites a
 * busy loop). */
static uint32_t ceil_secs(double secs)
{
    if (secs > 86400.0)
        return 86400u;
    uint32_t whole = (uint32_t)secs;
    if ((double)whole < secs)
        whole++;
    return whole > 0 ? whole : 1;
}

bool rate_limiter_take(struct rate_limiter *rl, const char *key, uint64_t now_ms,
                       uint32_t *retry_after_secs)
{
    char k[RATE_KEY_MAX + 1];
    snprintf(k, sizeof(k), "%s", key && key[0] ? key : "-");
    pthread_mutex_lock(&rl->lock);
    struct bucket *b = find(rl, k, now_ms);
    refill(rl, b, now_ms);
    bool ok = b->tokens >= 1.0;
    if (ok)
        b->tokens -= 1.0;
    else if (retry_after_secs != NULL)
        *retry_after_secs = ceil_secs((1.0 - b->tokens) / rl->rate);
    pthread_mutex_unlock(&rl->lock);
    return ok;
}
