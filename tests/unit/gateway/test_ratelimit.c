/*
 * test_ratelimit.c - token buckets (src/gateway/ratelimit.c): a key gets its
 * burst, then one request per 1/rate seconds, with a Retry-After that tells
 * when; keys do not share buckets; a table full of busy keys still limits a
 * new key (it shares) and idle keys give their place to new ones.
 */
#include "test.h"

#include <stdio.h>

#include "gateway/ratelimit.h"
#include "common/banned.h"

static void test_burst_then_rate(void **state)
{
    (void)state;
    struct rate_limiter *rl = rate_limiter_new(2, 3, 64);
    uint32_t wait = 0;
    for (int i = 0; i < 3; i++)
        CHECK(rate_limiter_take(rl, "10.0.0.1", 1000, &wait));
    CHECK(!rate_limiter_take(rl, "10.0.0.1", 1000, &wait));
    CHECK_EQ(wait, 1);
    /* Another key has its own bucket. */
    CHECK(rate_limiter_take(rl, "10.0.0.2", 1000, &wait));
    /* 2 per second: one token back after 500 ms, not after 400. */
    CHECK(!rate_limiter_take(rl, "10.0.0.1", 1400, &wait));
    CHECK(rate_limiter_take(rl, "10.0.0.1", 1500, &wait));
    CHECK(!rate_limiter_take(rl, "10.0.0.1", 1500, &wait));
    /* Never more than the burst, however long idle. */
    for (int i = 0; i < 3; i++)
        CHECK(rate_limiter_take(rl, "10.0.0.1", 100000, &wait));
    CHECK(!rate_limiter_take(rl, "10.0.0.1", 100000, &wait));
    rate_limiter_free(rl);
}

static void test_slow_rate_retry_after(void **state)
{
    (void)state;
    struct rate_limiter *rl = rate_limiter_new(0.1, 1, 8); /* one per 10 s */
    uint32_t wait = 0;
    CHECK(rate_limiter_take(rl, "k", 0, &wait));
    CHECK(!rate_limiter_take(rl, "k", 0, &wait));
    CHECK_EQ(wait, 10);
    CHECK(!rate_limiter_take(rl, "k", 5000, &wait));
    CHECK_EQ(wait, 5);
    CHECK(rate_limiter_take(rl, "k", 10000, &wait));
    rate_limiter_free(rl);
}

/* Many more keys than slots: every busy key stays limited (a newcomer
 * shares a busy bucket rather than getting a fresh one), and once the
 * busy keys go idle, newcomers get full buckets. */
static void test_table_full(void **state)
{
    (void)state;
    struct rate_limiter *rl = rate_limiter_new(1, 2, 16);
    char key[32];
    size_t allowed = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "attacker-%d", i);
        allowed += rate_limiter_take(rl, key, 0, NULL);
    }
    /* At most burst per slot in the same instant, whatever the keys. */
    CHECK(allowed <= 2 * 16);
    /* Later, idle buckets are full again and serve new keys. */
    CHECK(rate_limiter_take(rl, "newcomer", 60000, NULL));
    CHECK(rate_limiter_take(rl, "newcomer", 60000, NULL));
    CHECK(!rate_limiter_take(rl, "newcomer", 60000, NULL));
    rate_limiter_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_burst_then_rate),
        TEST(test_slow_rate_retry_after),
        TEST(test_table_full),
    };
    return RUN_TESTS("unit.gateway.ratelimit", tests);
}
