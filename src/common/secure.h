/*
 * secure.h - wiping, constant-time comparison and OS randomness.
 *
 * Secrets (private keys, session secrets, nonces, derived AES keys) live in
 * fixed-size buffers and must be wiped with secure_wipe() before they go out
 * of scope, on every path (the `out:` label of the function skeleton).
 */
#ifndef KM_COMMON_SECURE_H
#define KM_COMMON_SECURE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Overwrites n bytes at p with zeros; never optimized away. p may be NULL
 * when n is 0. */
void secure_wipe(void *p, size_t n);

/* Wipes then frees n bytes of heap memory (freezero). NULL is a no-op. */
void secure_free(void *p, size_t n);

/* Constant-time equality: returns 1 if a[0..n) == b[0..n), else 0. The time
 * depends only on n. */
int secure_memeq(const void *a, const void *b, size_t n);

/* Fills p with n bytes from the kernel CSPRNG (getrandom). Returns KM_OK or
 * KM_ERR_IO. Blocks only until the pool is first initialized at boot. */
int secure_random(void *p, size_t n) KM_WUR;

#endif /* KM_COMMON_SECURE_H */
