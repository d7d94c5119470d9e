#include "common/hex.h"

#include <string.h>

#include "common/banned.h"

char *hex_encode(char *out, size_t outcap, const uint8_t *p, size_t n)
{
    if (n > (SIZE_MAX - 1) / 2 || outcap < 2 * n + 1)
        KM_BUG("hex_encode: output buffer too small");
    for (size_t i = 0; i < n; i++) {
        unsigned hi = p[i] >> 4, lo = p[i] & 0xf;
        /* 87 + v is 'a' + v - 10; subtract 39 more when v < 10 to land on
         * '0' + v. The mask is all-ones exactly when v < 10. */
        out[2 * i] = (char)(87u + hi + (((hi - 10u) >> 8) & ~38u & 0xffu));
        out[2 * i + 1] = (char)(87u + lo + (((lo - 10u) >> 8) & ~38u & 0xffu));
    }
    out[2 * n] = '\0';
    return out;
}

/* Value of one hex digit, and an all-ones validity mask, with no branch on
 * the character. */
static unsigned hex_digit(unsigned char c, unsigned *valid)
{
    unsigned num = c ^ 48u;                       /* '0'..'9' -> 0..9 */
    unsigned num_ok = ((num - 10u) >> 8) & 0xffu; /* 0xff if num < 10 */
    unsigned alpha = (c & ~32u) - 55u;            /* 'A'/'a' -> 10 */
    unsigned alpha_ok = (((alpha - 10u) ^ (alpha - 16u)) >> 8) & 0xffu;
    *valid = num_ok | alpha_ok;
    return (num_ok & num) | (alpha_ok & alpha);
}

int hex_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *hex, size_t hexlen)
{
    *outlen = 0;
    if (hexlen % 2 != 0)
        return KM_ERR_INVALID;
    if (hexlen / 2 > outcap)
        return KM_ERR_TOO_LARGE;

    unsigned all_valid = 0xff;
    for (size_t i = 0; i < hexlen / 2; i++) {
        unsigned v1, v2;
        unsigned hi = hex_digit((unsigned char)hex[2 * i], &v1);
        unsigned lo = hex_digit((unsigned char)hex[2 * i + 1], &v2);
        all_valid &= v1 & v2;
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    if (all_valid != 0xff) {
        memset(out, 0, hexlen / 2);
        return KM_ERR_INVALID;
    }
    *outlen = hexlen / 2;
    return KM_OK;
}

int hex_decode_exact(uint8_t *out, size_t n, const char *hex, size_t hexlen)
{
    size_t got;
    if (n > SIZE_MAX / 2 || hexlen != 2 * n)
        return KM_ERR_INVALID;
    return hex_decode(out, n, &got, hex, hexlen);
}
