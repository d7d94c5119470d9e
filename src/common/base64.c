/*
 * base64.c - strict standard base64 (base64.h).
 */
#include "common/base64.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "common/banned.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const uint8_t *p, size_t n)
{
    char *out = xmalloc(st_add(st_mult((n + 2) / 3, 4), 1));
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        size_t q = n - i < 3 ? n - i : 3;
        uint32_t w = (uint32_t)p[i] << 16;
        if (q > 1)
            w |= (uint32_t)p[i + 1] << 8;
        if (q > 2)
            w |= p[i + 2];
        out[o++] = alphabet[w >> 18 & 63];
        out[o++] = alphabet[w >> 12 & 63];
        out[o++] = q > 1 ? alphabet[w >> 6 & 63] : '=';
        out[o++] = q > 2 ? alphabet[w & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* One group of q (2..4) characters into q - 1 bytes at p; false on a bad
 * character or unused bits that are not zero (non-canonical). */
static bool decode_group(uint8_t *p, const char *s, size_t q)
{
    uint32_t w = 0;
    for (size_t k = 0; k < 4; k++) {
        int v = k < q ? b64_val(s[k]) : 0;
        if (v < 0)
            return false;
        w = w << 6 | (uint32_t)v;
    }
    if ((q == 2 && (w & 0xffff) != 0) || (q == 3 && (w & 0xff) != 0))
        return false;
    p[0] = (uint8_t)(w >> 16);
    if (q > 2)
        p[1] = (uint8_t)(w >> 8);
    if (q > 3)
        p[2] = (uint8_t)w;
    return true;
}

int base64_decode(uint8_t **out, size_t *out_len, const char *s, size_t n, size_t max,
                  bool padding_optional)
{
    *out = NULL;
    *out_len = 0;
    size_t pad = n >= 1 && s[n - 1] == '=' ? (n >= 2 && s[n - 2] == '=' ? 2 : 1) : 0;
    size_t data = n - pad;
    bool bad_len = pad > 0 ? n % 4 != 0 : padding_optional ? data % 4 == 1 : data % 4 != 0;
    if (bad_len)
        return KM_ERR_INVALID;
    if (data == 0)
        return KM_OK;
    size_t olen = data / 4 * 3 + (data % 4 == 0 ? 0 : data % 4 - 1);
    if (olen > max)
        return KM_ERR_TOO_LARGE;
    uint8_t *p = xmalloc(olen);
    size_t o = 0;
    for (size_t i = 0; i < data; i += 4) {
        size_t q = data - i < 4 ? data - i : 4;
        if (!decode_group(p + o, s + i, q)) {
            free(p);
            return KM_ERR_INVALID;
        }
        o += q - 1;
    }
    *out = p;
    *out_len = o;
    return KM_OK;
}
