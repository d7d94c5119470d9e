/*
 * clock.h - monotonic time and deadlines.
 *
 * Every blocking operation in KeyMeld takes a struct deadline rather than a
 * relative timeout, so a request that passes through several layers (pool
 * acquire, connect, write, wait for reply) keeps one budget.
 */
#ifndef KM_COMMON_CLOCK_H
#define KM_COMMON_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds / milliseconds. */
uint64_t clock_now_ns(void);
uint64_t clock_now_ms(void);

/* Wall-clock (CLOCK_REALTIME) for timestamps shown to humans/stored. */
uint64_t clock_wall_ms(void);

/* Formats a wall-clock time in RFC 3339 UTC with milliseconds,
 * e.g. "2026-11-24T15:17:48.123Z". out must hold 25 bytes. */
void clock_format_rfc3339(char out[25], uint64_t wall_ms);

struct deadline {
    uint64_t at_ms; /* monotonic ms; UINT64_MAX = never */
};

/* A deadline timeout_ms from now (saturating). */
struct deadline deadline_in_ms(uint64_t timeout_ms);
/* A deadline that never expires. */
struct deadline deadline_never(void);
bool deadline_is_never(struct deadline d);
bool deadline_expired(struct deadline d);
/* Milliseconds left, 0 when expired, clamped to INT32_MAX: fits poll(). */
int deadline_remaining_ms(struct deadline d);
/* The earlier of two deadlines. */
struct deadline deadline_min(struct deadline a, struct deadline b);

/* Sleeps for ms milliseconds (restarting after signals). */
void clock_sleep_ms(uint64_t ms);

#endif /* KM_COMMON_CLOCK_H */
