#include "common/clock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/banned.h"

static uint64_t clock_read_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t clock_now_ns(void)
{
    return clock_read_ns(CLOCK_MONOTONIC);
}

uint64_t clock_now_ms(void)
{
    return clock_now_ns() / 1000000u;
}

uint64_t clock_wall_ms(void)
{
    return clock_read_ns(CLOCK_REALTIME) / 1000000u;
}

void clock_format_rfc3339(char out[25], uint64_t wall_ms)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* strftime bounds every field; only the milliseconds are added by hand. */
    char base[21];
    if (strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) != 19)
        memcpy(base, "0000-00-00T00:00:00", 20);
    snprintf(out, 25, "%.19s.%03uZ", base, (unsigned)(wall_ms % 1000));
}

struct deadline deadline_in_ms(uint64_t timeout_ms)
{
    uint64_t now = clock_now_ms();
    struct deadline d = {UINT64_MAX};
    if (timeout_ms < UINT64_MAX - now)
        d.at_ms = now + timeout_ms;
    return d;
}

struct deadline deadline_never(void)
{
    struct deadline d = {UINT64_MAX};
    return d;
}

bool deadline_is_never(struct deadline d)
{
    return d.at_ms == UINT64_MAX;
}

bool deadline_expired(struct deadline d)
{
    return !deadline_is_never(d) && clock_now_ms() >= d.at_ms;
}

int deadline_remaining_ms(struct deadline d)
{
    if (deadline_is_never(d))
        return INT32_MAX;
    uint64_t now = clock_now_ms();
    if (now >= d.at_ms)
        return 0;
    uint64_t left = d.at_ms - now;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

struct deadline deadline_min(struct deadline a, struct deadline b)
{
    return a.at_ms <= b.at_ms ? a : b;
}

void clock_sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}
