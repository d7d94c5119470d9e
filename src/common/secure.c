#include "common/secure.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/banned.h"

void secure_wipe(void *p, size_t n)
{
    if (n > 0)
        explicit_bzero(p, n);
}

void secure_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    secure_wipe(p, n);
    free(p);
}

int secure_memeq(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (uint8_t)(x[i] ^ y[i]);
    /* Map 0 -> 1, anything else -> 0 without a branch on diff. */
    return (int)(1 & ((uint32_t)(diff - 1) >> 8));
}

int secure_random(void *p, size_t n)
{
    uint8_t *out = p;
    while (n > 0) {
        ssize_t got = getrandom(out, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return KM_ERR_IO;
        }
        out += got;
        n -= (size_t)got;
    }
    return KM_OK;
}
