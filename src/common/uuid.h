/*
 * uuid.h - UUIDv7 (RFC 9562): time-ordered identifiers.
 *
 * Used for command ids, session ids, user ids, batch item ids. The text form
 * is the lower-case hyphenated 36-character string.
 */
#ifndef KM_COMMON_UUID_H
#define KM_COMMON_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define UUID_STR_LEN 36

struct uuid {
    uint8_t b[16];
};

/* A fresh UUIDv7: 48-bit Unix milliseconds, 12 bits of sub-millisecond
 * time (so ids from one process sort in creation order), 62 random bits.
 * Returns KM_OK or KM_ERR_IO if the kernel RNG fails. */
int uuid_v7_new(struct uuid *out) KM_WUR;

/* Writes the 36-character lower-case form and a NUL (37 bytes). */
void uuid_format(char out[UUID_STR_LEN + 1], const struct uuid *u);

/* Parses exactly 36 characters "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex
 * in either case). Any version is accepted. Returns KM_OK or
 * KM_ERR_INVALID. */
int uuid_parse(struct uuid *out, const char *s, size_t len) KM_WUR;

bool uuid_equal(const struct uuid *a, const struct uuid *b);
bool uuid_is_nil(const struct uuid *u);
/* Version nibble (7 for ours). */
unsigned uuid_version(const struct uuid *u);

#endif /* KM_COMMON_UUID_H */
