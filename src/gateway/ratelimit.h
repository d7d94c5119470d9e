/*
 * ratelimit.h - token buckets keyed by a short string (a client address,
 * an API key id): each key may spend `burst` requests at once and earns
 * `rate` more per second. Memory is fixed at creation: the table holds at
 * most `slots` keys; a new key takes the place of one whose bucket is full
 * again (it has been idle long enough to be forgotten without effect), and
 * when none is, shares the fuller of its two candidate buckets. Keys are
 * placed by a hash with a per-table random seed, so a client cannot choose
 * keys that land on someone else's bucket. Thread-safe.
 */
#ifndef KM_GATEWAY_RATELIMIT_H
#define KM_GATEWAY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATE_KEY_MAX 63 /* longer keys are cut: addresses and ids fit */

struct rate_limiter;

/* rate > 0 tokens per second, burst >= 1, slots >= 2. */
struct rate_limiter *rate_limiter_new(double rate, double burst, size_t slots);
void rate_limiter_free(struct rate_limiter *rl);

/* Takes one token for key at monotonic time now_ms. true: allowed. false:
 * refused; *retry_after_secs (when not NULL) is when a token will be there
 * again, rounded up, at least 1. */
bool rate_limiter_take(struct rate_limiter *rl, const char *key, uint64_t now_ms,
                       uint32_t *retry_after_secs);

#endif /* KM_GATEWAY_RATELIMIT_H */
