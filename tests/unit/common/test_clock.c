#include "test.h"

#include <string.h>

#include "common/clock.h"
#include "common/banned.h"

static void test_deadlines(void **state)
{
    (void)state;
    struct deadline never = deadline_never();
    CHECK(deadline_is_never(never));
    CHECK(!deadline_expired(never));
    CHECK_EQ(deadline_remaining_ms(never), INT32_MAX);

    struct deadline now = deadline_in_ms(0);
    CHECK(deadline_expired(now));
    CHECK_EQ(deadline_remaining_ms(now), 0);

    struct deadline later = deadline_in_ms(60000);
    CHECK(!deadline_expired(later));
    CHECK(deadline_remaining_ms(later) > 59000);
    CHECK(deadline_min(later, now).at_ms == now.at_ms);
    CHECK(deadline_min(never, later).at_ms == later.at_ms);

    /* Saturates instead of wrapping. */
    CHECK(deadline_is_never(deadline_in_ms(UINT64_MAX)));
}

static void test_sleep_and_monotonic(void **state)
{
    (void)state;
    uint64_t a = clock_now_ns();
    clock_sleep_ms(5);
    uint64_t b = clock_now_ns();
    CHECK(b - a >= 5000000u);
}

static void test_rfc3339(void **state)
{
    (void)state;
    char out[25];
    clock_format_rfc3339(out, 1795000000123ull);
    CHECK_STR_EQ(out, "2026-11-18T11:06:40.123Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_deadlines),
        TEST(test_sleep_and_monotonic),
        TEST(test_rfc3339),
    };
    return RUN_TESTS("common.clock", tests);
}
