#include "common/uuid.h"

#include <string.h>
#include <time.h>

#include "common/hex.h"
#include "common/secure.h"
#include "common/banned.h"

int uuid_v7_new(struct uuid *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    /* RFC 9562 §6.2 method 3: the 12-bit rand_a field carries the fraction
     * of the millisecond, scaled to 0..4095. */
    uint32_t frac = (uint32_t)(((uint64_t)(ts.tv_nsec % 1000000) * 4096u) / 1000000u);

    int r = secure_random(out->b + 8, 8);
    if (r != KM_OK)
        return r;
    for (int i = 0; i < 6; i++)
        out->b[i] = (uint8_t)(ms >> (40 - 8 * i));
    out->b[6] = (uint8_t)(0x70 | (frac >> 8));
    out->b[7] = (uint8_t)frac;
    out->b[8] = (uint8_t)(0x80 | (out->b[8] & 0x3f)); /* variant 10 */
    return KM_OK;
}

void uuid_format(char out[UUID_STR_LEN + 1], const struct uuid *u)
{
    static const int groups[5][2] = {{0, 4}, {4, 2}, {6, 2}, {8, 2}, {10, 6}};
    char *p = out;
    for (int g = 0; g < 5; g++) {
        if (g > 0)
            *p++ = '-';
        hex_encode(p, (size_t)groups[g][1] * 2 + 1, u->b + groups[g][0], (size_t)groups[g][1]);
        p += groups[g][1] * 2;
    }
    *p = '\0';
}

int uuid_parse(struct uuid *out, const char *s, size_t len)
{
    static const int groups[5][2] = {{0, 4}, {4, 2}, {6, 2}, {8, 2}, {10, 6}};
    memset(out, 0, sizeof(*out));
    if (len != UUID_STR_LEN)
        return KM_ERR_INVALID;
    size_t pos = 0;
    for (int g = 0; g < 5; g++) {
        if (g > 0) {
            if (s[pos] != '-')
                return KM_ERR_INVALID;
            pos++;
        }
        size_t n = (size_t)groups[g][1];
        if (hex_decode_exact(out->b + groups[g][0], n, s + pos, 2 * n) != KM_OK) {
            memset(out, 0, sizeof(*out));
            return KM_ERR_INVALID;
        }
        pos += 2 * n;
    }
    return KM_OK;
}

bool uuid_equal(const struct uuid *a, const struct uuid *b)
{
    return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

bool uuid_is_nil(const struct uuid *u)
{
    static const struct uuid nil;
    return uuid_equal(u, &nil);
}

unsigned uuid_version(const struct uuid *u)
{
    return u->b[6] >> 4;
}
